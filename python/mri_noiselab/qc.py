"""Quality-control figure: original and corrected images, background histograms.

Needs matplotlib (the ``plot`` extra). The figure is drawn with the Agg canvas
directly, so it works without a display and leaves pyplot's backend alone. It
shows no patient name, ID, date or file name.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mri_noiselab._atomic import atomic_write
from mri_noiselab.chi import chi_pdf, mle_sigma
from mri_noiselab.errors import PLOT_INSTALL

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def require_matplotlib() -> None:
    """Raise ImportError with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"the QC figure needs matplotlib: {PLOT_INSTALL}") from None


def _display_slice(original: np.ndarray, mask: np.ndarray | None, slice_index: int | None) -> int:
    if original.ndim == 2:
        return 0
    if slice_index is not None:
        if not 0 <= slice_index < original.shape[0]:
            raise ValueError(f"slice_index {slice_index} is out of range for {original.shape[0]} slices")
        return slice_index
    middle = int(original.shape[0]) // 2
    if mask is None:
        return middle
    counts = mask.reshape(mask.shape[0], -1).sum(axis=1)
    if counts[middle] > 0:
        return middle
    return int(np.argmax(counts))


def _draw_histograms(axes: Any, samples: tuple[np.ndarray, np.ndarray], sigma: float | None, coils: int) -> None:
    """The background histograms before and after, each with its chi density (sigma, else the MLE)."""
    top = max(float(samples[0].max(initial=0.0)), float(samples[1].max(initial=0.0)), 1e-12)
    if np.all(samples[0] == np.round(samples[0])):
        # Integer stored values: bins on integer boundaries, or the histogram shows comb artefacts.
        step = max(1, math.ceil(top / 60))
        bins = np.arange(-0.5, top + step, step)
    else:
        bins = np.linspace(0.0, top, 61)
    grid = np.linspace(0.0, top, 400)
    for ax, values, label, given in zip(axes, samples, ("before", "after"), (sigma, None)):
        fitted = float(given) if given is not None else (mle_sigma(float(np.mean(values**2)), coils) if values.size else 0.0)
        ax.hist(values, bins=bins, density=True, color="0.6", label="background")
        if fitted > 0:
            name = "Rayleigh" if coils == 1 else f"chi, {2 * coils} dof"
            ax.plot(grid, chi_pdf(grid, fitted, coils), color="tab:red", label=f"{name}, σ={fitted:.4g}")
        mean = float(values.mean()) if values.size else float("nan")
        ax.set_title(f"Background {label}: mean {mean:.4g}, σ {fitted:.4g}")
        ax.set_xlabel("magnitude (stored units)")
        ax.set_ylabel("density")
        ax.legend(loc="upper right")


def qc_figure(
    original: npt.ArrayLike,
    corrected: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    sigma: float | None = None,
    *,
    coils: int = 1,
    slice_index: int | None = None,
) -> Figure:
    """Draw the QC figure.

    Parameters
    ----------
    original, corrected : array_like
        Magnitude before and after correction, 2-D ``(rows, cols)`` or 3-D
        ``(slices, rows, cols)``, in the same units.
    mask : array_like of bool, optional
        The background region, same shape. Outlined on both images; its
        values make the histograms.
    sigma : float, optional
        The σ used for the correction; drawn as the "before" density. By
        default fitted to the background by maximum likelihood.
    coils : int
        Receiver coils (the density is central chi with 2N degrees of freedom).
    slice_index : int, optional
        The slice shown; by default the middle one, or the one with the most
        background pixels when the middle one has none.

    Returns
    -------
    matplotlib.figure.Figure
        Top: original and corrected on one intensity scale with one colorbar.
        Bottom: background histograms before and after, each with its fitted
        density, background mean and σ in the titles.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    before = np.asarray(original, dtype=np.float64)
    after = np.asarray(corrected, dtype=np.float64)
    if before.shape != after.shape or before.ndim not in (2, 3):
        raise ValueError(
            f"original {before.shape} and corrected {after.shape} must be the same 2-D or 3-D shape"
        )
    region = None if mask is None else np.asarray(mask, dtype=bool)
    if region is not None and region.shape != before.shape:
        raise ValueError(f"mask shape {region.shape} does not match the image shape {before.shape}")
    k = _display_slice(before, region, slice_index)
    shown = (before, after) if before.ndim == 2 else (before[k], after[k])
    shown_mask = None if region is None else (region if region.ndim == 2 else region[k])

    rows = 1 if region is None else 2
    fig = Figure(figsize=(10, 4.6 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 2, squeeze=False)
    # One scale for both images: the comparison is the point of the figure.
    vmax = float(np.percentile(np.concatenate([shown[0].ravel(), shown[1].ravel()]), 99.5)) or 1.0
    where = f" (slice {k + 1} of {before.shape[0]})" if before.ndim == 3 else ""
    images = []
    for ax, data, title in zip(axes[0], shown, ("Original", "Corrected")):
        images.append(ax.imshow(data, cmap="gray", vmin=0.0, vmax=vmax, interpolation="nearest"))
        if shown_mask is not None and shown_mask.any():
            ax.contour(shown_mask.astype(float), levels=[0.5], colors="tab:red", linewidths=1.0)
        ax.set_title(title + where)
        ax.set_axis_off()
    fig.colorbar(images[0], ax=list(axes[0]), shrink=0.85, label="magnitude (stored units)")

    if region is not None:
        _draw_histograms(axes[1], (before[region], after[region]), sigma, coils)
    return fig


def save_qc(
    path: str | os.PathLike[str],
    original: npt.ArrayLike,
    corrected: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    sigma: float | None = None,
    *,
    coils: int = 1,
    slice_index: int | None = None,
    dpi: int = 110,
) -> Path:
    """Draw :func:`qc_figure` and write it as PNG, atomically.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    png = qc_png(original, corrected, mask, sigma, coils=coils, slice_index=slice_index, dpi=dpi)
    return atomic_write(path, lambda fh: fh.write(png))


def qc_png(
    original: npt.ArrayLike,
    corrected: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    sigma: float | None = None,
    *,
    coils: int = 1,
    slice_index: int | None = None,
    dpi: int = 110,
) -> bytes:
    """Draw :func:`qc_figure` and return it as PNG bytes.

    A batch renders the figure before it writes any output, so a drawing
    error leaves nothing behind. The PNG carries no text metadata (not
    even matplotlib's Software entry): nothing about the patient or the files.
    """
    fig = qc_figure(original, corrected, mask, sigma, coils=coils, slice_index=slice_index)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


__all__ = ["qc_figure", "qc_png", "require_matplotlib", "save_qc"]
