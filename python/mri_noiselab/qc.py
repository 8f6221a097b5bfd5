"""Quality-control figure: slices before and after correction, their residual, background histograms.

Needs matplotlib (the ``plot`` extra). The figure is drawn with the Agg canvas
directly, so it works without a display and leaves pyplot's backend alone. It
shows no patient name, ID, date or file name.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from mri_noiselab._atomic import atomic_write
from mri_noiselab.chi import chi_pdf, mle_sigma
from mri_noiselab.errors import PLOT_INSTALL

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_OPPOSITE = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
# DICOM's PatientOrientation (0020,0020) writes head and foot for superior and inferior.
_SYNONYMS = {"H": "S", "F": "I"}


class CorrectionRecord(Protocol):
    """What the figure's title reports of a correction; :class:`mri_noiselab.derivation.Derivation` meets it."""

    @property
    def method(self) -> str: ...
    @property
    def sigma(self) -> float | tuple[float, ...]: ...
    @property
    def f_size(self) -> tuple[int, ...]: ...
    @property
    def coils(self) -> int: ...
    @property
    def estimator(self) -> str | None: ...


def require_matplotlib() -> None:
    """Raise ImportError with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"the QC figure needs matplotlib: {PLOT_INSTALL}") from None


@dataclass(frozen=True)
class _View:
    """How a plane is turned for display, and the patient directions at the image's left and top edges."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    left: str = ""
    top: str = ""

    def show(self, plane: np.ndarray) -> np.ndarray:
        turned = plane.T if self.transpose else plane
        return turned[:: -1 if self.flip_rows else 1, :: -1 if self.flip_cols else 1]

    def aspect(self, spacing: tuple[float, float] | None) -> float:
        """Displayed pixel height over width, from the spacing of the rows and columns as given."""
        if spacing is None:
            return 1.0
        distances = [float(v) for v in spacing]
        if len(distances) != 2 or not all(math.isfinite(d) and d > 0 for d in distances):
            raise ValueError(f"spacing {tuple(spacing)}: two positive distances (rows, columns) expected")
        across_rows, across_cols = distances
        return across_cols / across_rows if self.transpose else across_rows / across_cols


def _towards_ras(code: str) -> str:
    return code if code in "RAS" else _OPPOSITE[code]


def _view(directions: Sequence[str] | None) -> _View:
    """The radiological view of planes whose row and column indices increase towards ``directions``.

    As a DICOM viewer shows a standard acquisition: the patient's right on the
    image's left (anterior on the left for a sagittal plane), anterior (axial) or
    superior at the top. So the horizontal axis is the right-left one when it is in
    the plane, else the anterior-posterior one, and both displayed axes increase
    towards L, P or I (a flip wherever the index increases towards R, A or S).
    """
    if directions is None:
        return _View()
    codes = [_SYNONYMS.get(str(c)[:1].upper(), str(c)[:1].upper()) for c in directions]
    if len(codes) != 2 or not all(c in _OPPOSITE for c in codes) or codes[1] in (codes[0], _OPPOSITE[codes[0]]):
        raise ValueError(f"directions {tuple(directions)}: expected two of R/L, A/P, S/I (H/F) on different axes")
    across = next(i for axis in ("RL", "AP") for i, c in enumerate(codes) if c in axis)
    down = 1 - across
    return _View(
        transpose=across == 0,
        flip_rows=codes[down] in "RAS",
        flip_cols=codes[across] in "RAS",
        left=_towards_ras(codes[across]),
        top=_towards_ras(codes[down]),
    )


def _shown_slices(count: int, slices: Sequence[int] | None) -> list[int]:
    """The slices drawn: ``slices``, else those a quarter, half and three quarters of the way through."""
    if slices is None:
        return sorted({count * j // 4 for j in (1, 2, 3)})
    chosen = [int(k) for k in slices]
    if not chosen or any(not 0 <= k < count for k in chosen):
        raise ValueError(f"slices {list(slices)}: at least one, each in 0..{count - 1}")
    return chosen


def _checked(
    original: npt.ArrayLike, corrected: npt.ArrayLike, mask: npt.ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The images and mask as float and bool arrays of one 2-D or 3-D shape."""
    before = np.asarray(original, dtype=np.float64)
    after = np.asarray(corrected, dtype=np.float64)
    if before.shape != after.shape or before.ndim not in (2, 3):
        raise ValueError(
            f"original {before.shape} and corrected {after.shape} must be the same 2-D or 3-D shape"
        )
    region = None if mask is None else np.asarray(mask, dtype=bool)
    if region is not None and region.shape != before.shape:
        raise ValueError(f"mask shape {region.shape} does not match the image shape {before.shape}")
    return before, after, region


def _parameters(sigma: float | None, record: CorrectionRecord | None, coils: int, fitted: bool) -> str:
    """The figure's title: sigma with its unit and origin, then method, window and coils."""
    parts = []
    if sigma is not None:
        if record is not None:
            origin = f"estimated, {record.estimator}" if record.estimator else "given"
            volumes = len(record.sigma) if isinstance(record.sigma, tuple) else 1
            origin += f"; volume 1 of {volumes}" if volumes > 1 else ""
        else:
            origin = "MLE of the background" if fitted else "given"
        parts.append(f"σ = {sigma:.4g} stored units ({origin})")
    if record is not None:
        window = "none (pointwise)" if record.method == "pointwise" else "x".join(map(str, record.f_size))
        parts += [f"method {record.method}", f"window {window}"]
    parts.append(f"coils {coils}")
    return "Rician bias correction: " + ", ".join(parts)


def _frame(ax: Any, view: _View) -> None:
    """No ticks; the patient directions at the left and top edges when known."""
    ax.set_xticks([])
    ax.set_yticks([])
    if view.left:
        # On a dark box: legible over the grey images and the diverging residual alike.
        box = {"facecolor": "black", "edgecolor": "none", "alpha": 0.6, "pad": 1.5}
        style = {"transform": ax.transAxes, "color": "yellow", "fontsize": 9, "fontweight": "bold", "bbox": box}
        ax.text(0.02, 0.5, view.left, ha="left", va="center", **style)
        ax.text(0.5, 0.98, view.top, ha="center", va="top", **style)


def _draw_slices(
    panel: Any,
    images: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    chosen: list[int],
    view: _View,
    aspect: float,
    depth: int | None,
) -> None:
    """One row per slice: original and corrected on one grey scale, their residual on a diverging one."""
    before, after, region = images
    originals = [view.show(before[k]) for k in chosen]
    correcteds = [view.show(after[k]) for k in chosen]
    masks = [None if region is None else view.show(region[k]) for k in chosen]
    residuals = [o - c for o, c in zip(originals, correcteds)]
    # One grey window for both: the comparison is the point of the figure.
    grey = float(np.percentile(np.stack(originals + correcteds), 99.5)) or 1.0
    spread = float(np.percentile(np.abs(np.stack(residuals)), 99.5)) or 1.0
    axes = panel.subplots(len(chosen), 3, squeeze=False)
    shown = {"interpolation": "nearest", "aspect": aspect}
    for row, k, planes, m in zip(axes, chosen, zip(originals, correcteds, residuals), masks):
        greys = [ax.imshow(p, cmap="gray", vmin=0.0, vmax=grey, **shown) for ax, p in zip(row[:2], planes[:2])]
        diverging = row[2].imshow(planes[2], cmap="RdBu_r", vmin=-spread, vmax=spread, **shown)
        for ax in row[:2]:
            if m is not None and m.any():
                ax.contour(m.astype(float), levels=[0.5], colors="tab:red", linewidths=1.0)
        for ax in row:
            _frame(ax, view)
        if depth is not None:
            row[0].set_ylabel(f"slice {k + 1} of {depth}")
    for ax, title in zip(axes[0], ("Original", "Corrected", "Residual: original − corrected")):
        ax.set_title(title)
    panel.colorbar(greys[0], ax=list(axes[:, :2].ravel()), shrink=0.9, label="magnitude (stored units)")
    panel.colorbar(diverging, ax=list(axes[:, 2]), shrink=0.9, label="difference (stored units)")


def _draw_histograms(
    axes: Any, samples: tuple[np.ndarray, np.ndarray], sigma: float | None, coils: int, fitted: bool
) -> None:
    """The background before, with the chi density of sigma; after, without one (it is no longer chi)."""
    top = max(float(samples[0].max(initial=0.0)), float(samples[1].max(initial=0.0)), 1e-12)
    if np.all(samples[0] == np.round(samples[0])):
        # Integer stored values: bins on integer boundaries, or the histogram shows comb artefacts.
        step = max(1, math.ceil(top / 60))
        bins = np.arange(-0.5, top + step, step)
    else:
        bins = np.linspace(0.0, top, 61)
    for ax, values, label in zip(axes, samples, ("before", "after")):
        ax.hist(values, bins=bins, density=True, color="0.6", label="background")
        mean, std = (float(values.mean()), float(values.std())) if values.size else (math.nan, math.nan)
        ax.set_title(f"Background {label}: mean {mean:.4g}, std {std:.4g}")
        ax.set_xlabel("magnitude (stored units)")
        ax.set_ylabel("density")
    if sigma is not None and sigma > 0:
        grid = np.linspace(0.0, top, 400)
        name = "Rayleigh" if coils == 1 else f"chi, {2 * coils} dof"
        how = "MLE" if fitted else "used"
        axes[0].plot(grid, chi_pdf(grid, sigma, coils), color="tab:red", label=f"{name}, σ = {sigma:.4g} ({how})")
    for ax in axes:
        ax.legend(loc="upper right")


def qc_figure(
    original: npt.ArrayLike,
    corrected: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    sigma: float | None = None,
    *,
    coils: int | None = None,
    derivation: CorrectionRecord | None = None,
    slices: Sequence[int] | None = None,
    spacing: tuple[float, float] | None = None,
    directions: Sequence[str] | None = None,
) -> Figure:
    """Draw the QC figure.

    Parameters
    ----------
    original, corrected : array_like
        Magnitude before and after correction, 2-D ``(rows, cols)`` or 3-D
        ``(slices, rows, cols)``, in the same units.
    mask : array_like of bool, optional
        The background region, same shape. Outlined on the images; its
        values make the histograms.
    sigma : float, optional
        The σ used for the correction, drawn as the "before" density. By default
        the derivation's (its first volume's), else fitted to the background
        by maximum likelihood.
    coils : int, optional
        Receiver coils (the density is central chi with 2N degrees of freedom);
        by default the derivation's, else 1.
    derivation : CorrectionRecord, optional
        How the image was corrected (a :class:`mri_noiselab.derivation.Derivation`):
        its method, window, coils and estimator go in the title.
    slices : sequence of int, optional
        The slices drawn, one row each; by default those a quarter, half and
        three quarters of the way through.
    spacing : (float, float), optional
        The distance between adjacent rows and between adjacent columns
        (DICOM's PixelSpacing order), for the pixel aspect; square pixels when
        not given.
    directions : (str, str), optional
        The patient direction in which the row index and the column index
        increase, one of R/L, A/P, S/I (H/F) each: for a plane of a NIfTI
        image's ``(x, y)`` axes, ``nibabel.aff2axcodes(affine)[:2]``. The planes
        are then turned to the radiological view of a DICOM viewer (patient's
        right on the image's left; anterior, or superior, at the top). By
        default they are shown as stored, which is the DICOM view.

    Returns
    -------
    matplotlib.figure.Figure
        The parameters in the title. One row per slice: original and corrected
        on one grey scale, and the residual (original − corrected) on a
        diverging scale, each scale with a colorbar. With a mask, below: the
        background histograms, mean and standard deviation in their titles;
        "before" with the chi density of σ, "after" without (the corrected
        background does not follow it).
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    before, after, region = _checked(original, corrected, mask)
    depth = before.shape[0] if before.ndim == 3 else None
    if depth is None:
        before, after = before[np.newaxis], after[np.newaxis]
        region = None if region is None else region[np.newaxis]
    chosen = _shown_slices(before.shape[0], slices)
    view = _view(directions)
    aspect = view.aspect(spacing)
    n = coils if coils is not None else derivation.coils if derivation is not None else 1
    given = sigma
    if given is None and derivation is not None:
        given = derivation.sigma[0] if isinstance(derivation.sigma, tuple) else derivation.sigma
    background = None if region is None else (before[region], after[region])
    drawn = given
    if drawn is None and background is not None and background[0].size:
        drawn = mle_sigma(float(np.mean(background[0] ** 2)), n)

    # Rows a little lower than three images side by side need: constrained layout fits the images
    # to the height, with room for the labels (fitted to the width, it pushes them off the figure).
    shown_rows, shown_cols = view.show(before[chosen[0]]).shape
    height = len(chosen) * (min(2.6 * shown_rows * aspect / shown_cols, 4.0) + 0.15) + 0.4
    fig = Figure(figsize=(12, height + (3.4 if background is not None else 0.0) + 0.6), layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(_parameters(drawn, derivation, n, fitted=given is None))
    panels: Any = [fig] if background is None else fig.subfigures(2, 1, height_ratios=[height, 3.4])
    _draw_slices(panels[0], (before, after, region), chosen, view, aspect, depth)
    if background is not None:
        _draw_histograms(panels[1].subplots(1, 2), background, drawn, n, fitted=given is None)
    return fig


def save_qc(
    path: str | os.PathLike[str],
    original: npt.ArrayLike,
    corrected: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    sigma: float | None = None,
    *,
    coils: int | None = None,
    derivation: CorrectionRecord | None = None,
    slices: Sequence[int] | None = None,
    spacing: tuple[float, float] | None = None,
    directions: Sequence[str] | None = None,
    dpi: int = 110,
) -> Path:
    """Draw :func:`qc_figure` (same parameters) and write it as PNG, atomically.

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import mri_noiselab as nl
    >>> from mri_noiselab.qc import save_qc
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((8, 96, 96))  # (slices, rows, cols)
    >>> truth[:, 24:72, 24:72] = 100.0
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))
    >>> estimate = nl.estimate_sigma(image, mask="auto")
    >>> corrected = nl.correct(image, estimate, slice_axis=0)
    >>> scratch = tempfile.TemporaryDirectory()
    >>> png = save_qc(Path(scratch.name, "qc.png"), image, corrected, estimate.mask, estimate.sigma)
    >>> png.name, png.read_bytes()[:4]
    ('qc.png', b'\x89PNG')
    >>> scratch.cleanup()
    """
    png = qc_png(original, corrected, mask, sigma, coils=coils, derivation=derivation, slices=slices,
                 spacing=spacing, directions=directions, dpi=dpi)
    return atomic_write(path, lambda fh: fh.write(png))


def qc_png(
    original: npt.ArrayLike,
    corrected: npt.ArrayLike,
    mask: npt.ArrayLike | None = None,
    sigma: float | None = None,
    *,
    coils: int | None = None,
    derivation: CorrectionRecord | None = None,
    slices: Sequence[int] | None = None,
    spacing: tuple[float, float] | None = None,
    directions: Sequence[str] | None = None,
    dpi: int = 110,
) -> bytes:
    """Draw :func:`qc_figure` (same parameters) and return it as PNG bytes.

    A batch renders the figure before it writes any output, so a drawing
    error leaves nothing behind. The PNG carries no text metadata (not
    even matplotlib's Software entry): nothing about the patient or the files.
    """
    fig = qc_figure(original, corrected, mask, sigma, coils=coils, derivation=derivation, slices=slices,
                    spacing=spacing, directions=directions)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()


__all__ = ["CorrectionRecord", "qc_figure", "qc_png", "require_matplotlib", "save_qc"]
