"""The bundled example: a head-like phantom with Rician noise as DICOM, cleaned, against its truth.

``mri-noiselab demo`` runs :func:`run_example`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mri_noiselab.clean import Volume
from mri_noiselab.dicom.derive import synthetic_mr_image, write_dataset
from mri_noiselab.dicom.read import read_file
from mri_noiselab.pipeline import clean_source
from mri_noiselab.roi import corner_rois, roi_mask


def example_phantom(size: int = 128, sigma: float = 20.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A head-like phantom: the true magnitude and a Rician-noisy uint16 image of it.

    Parameters
    ----------
    size : int
        Rows and columns.
    sigma : float
        Noise standard deviation per channel, in stored units.
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    truth : numpy.ndarray of float64
        Nested ellipses (skull, brain, ventricles, lesions) in a noise-only
        background; the corners are air.
    noisy : numpy.ndarray of uint16
        ``|truth + n|`` with complex Gaussian n, rounded to 12-bit stored values.
    """
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    truth = np.zeros((size, size))
    # (centre y, centre x, semi-axis y, semi-axis x, value added)
    for cy, cx, ay, ax, value in (
        (0.0, 0.0, 0.80, 0.62, 600.0),
        (0.0, 0.0, 0.74, 0.56, -400.0),
        (-0.15, -0.18, 0.28, 0.10, -150.0),
        (-0.15, 0.18, 0.28, 0.10, -150.0),
        (0.35, 0.0, 0.10, 0.10, 250.0),
        (0.45, -0.25, 0.05, 0.05, 80.0),
        (0.45, 0.25, 0.04, 0.04, 40.0),
    ):
        truth[((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2 <= 1.0] += value
    rng = np.random.default_rng(seed)
    noisy = np.hypot(truth + rng.normal(0.0, sigma, truth.shape), rng.normal(0.0, sigma, truth.shape))
    return truth, np.clip(np.rint(noisy), 0, 4095).astype(np.uint16)


@dataclass
class ExampleReport:
    """What :func:`run_example` wrote and measured.

    Attributes
    ----------
    input, output : pathlib.Path
    qc : pathlib.Path or None
        None when the figure was not asked for.
    sigma_true, sigma_estimated : float
    air_before, air_after : float
        Mean magnitude in the corner boxes (air, true value 0) before and after:
        the Rician bias the correction removes.
    dark_true, dark_before, dark_after : float
        Mean true value, and mean magnitude before and after, in the cores of
        the two ventricles (true value 50, signal-to-noise 2.5 at σ = 20),
        away from edges that any window blurs.
    """

    input: Path
    output: Path
    qc: Path | None
    sigma_true: float
    sigma_estimated: float
    air_before: float
    air_after: float
    dark_true: float
    dark_before: float
    dark_after: float


def _corners(volume: Volume) -> np.ndarray:
    """The background of the phantom: its four 16x16 corner boxes, air."""
    return roi_mask(corner_rois(volume.shape, 16), volume.shape)


def run_example(
    directory: str | os.PathLike[str],
    *,
    sigma: float = 20.0,
    f_size: int = 5,
    seed: int = 0,
    num_threads: int | None = None,
    qc: bool = True,
) -> ExampleReport:
    """Generate the example phantom as DICOM, clean it, and write the result and a QC figure.

    Writes ``input/phantom.dcm``, ``output/phantom.dcm`` and (with ``qc``, which
    needs matplotlib) ``qc.png`` under ``directory``; a re-run replaces them
    (atomically), nothing else. The background is the four 16x16 corner boxes,
    which are air in the phantom.
    """
    root = Path(directory)
    truth, noisy = example_phantom(sigma=sigma, seed=seed)
    source = write_dataset(synthetic_mr_image(noisy, BitsStored=12), root / "input" / "phantom.dcm")
    report = clean_source(
        source,
        root / "output" / "phantom.dcm",
        background=_corners,
        f_size=f_size,
        num_threads=num_threads,
        qc=root / "qc.png" if qc else None,
        force=True,
    )
    (done,) = report.volumes
    estimate = done.result.sigma
    cleaned = read_file(done.outputs[0]).magnitude()[0]
    air = roi_mask(corner_rois(truth.shape, 16), truth.shape)
    y, x = np.mgrid[-1 : 1 : truth.shape[0] * 1j, -1 : 1 : truth.shape[1] * 1j]
    dark = ((y + 0.15) / 0.14) ** 2 + ((np.abs(x) - 0.18) / 0.05) ** 2 <= 1.0
    return ExampleReport(
        input=source,
        output=done.outputs[0],
        qc=root / "qc.png" if qc else None,
        sigma_true=sigma,
        sigma_estimated=estimate.sigma if estimate is not None else float("nan"),
        air_before=float(noisy[air].mean()),
        air_after=float(cleaned[air].mean()),
        dark_true=float(truth[dark].mean()),
        dark_before=float(noisy[dark].mean()),
        dark_after=float(cleaned[dark].mean()),
    )


__all__ = ["ExampleReport", "example_phantom", "run_example"]
