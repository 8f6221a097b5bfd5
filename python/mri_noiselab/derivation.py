"""What was done to an image, as its output records it: DICOM derivation attributes, NIfTI descrip.

One record, :class:`Derivation`, rendered for each format; the text that marks an
object as this package's output (:data:`OWN_DERIVATION`) lives here too, so that the
readers recognise what the writers wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.sr.coding import Code

from mri_noiselab._args import Estimator, Method
from mri_noiselab._kernels import _core

PACKAGE = "mri-noiselab"
OWN_DERIVATION = f"Rician noise bias removed by {PACKAGE}"
"""Starts the DerivationDescription of every DICOM object this package writes."""
NIFTI_PREFIX = "Rician bias removed:"
"""Starts the descrip field of every NIfTI image this package writes."""
# CID 7203 "Image Derivation" has no denoising concept: a windowed moment estimate is a
# smoothing of M^2, the pointwise method subtracts 2 N sigma^2 pixel by pixel. The concepts
# are pydicom's codes.DCM.Smoothing and .PixelByPixelSubtraction, spelt out because importing
# pydicom's code dictionary costs 0.12 s, a tenth of a series' run (tests/test_dicom.py
# checks what is written against that dictionary).
_SMOOTHING = Code("113087", "DCM", "Smoothing")
_CODES = {"moments": _SMOOTHING, "lmmse": _SMOOTHING, "pointwise": Code("113062", "DCM", "Pixel by pixel subtraction")}
# DerivationDescription is an ST (at most 1024 characters); NIfTI's descrip is char[80],
# 79 characters and the terminating NUL.
_ST_CHARACTERS = 1024
_DESCRIP_BYTES = 79


@dataclass(frozen=True)
class Derivation:
    """How a derived image was made.

    Attributes
    ----------
    method : {"moments", "pointwise", "lmmse"}
    sigma : float or tuple of float
        sigma in the image's magnitude units (stored values unless the source
        has an intercept or several slopes): one value, or one per volume.
    f_size : tuple of int
        The window on the image's axes, in array order.
    coils : int
    estimator : {"mle", "std", "mean"} or None
        How sigma was estimated, or None when it was given.
    """

    method: Method
    sigma: float | tuple[float, ...]
    f_size: tuple[int, ...]
    coils: int
    estimator: Estimator | None = None

    def _window(self) -> str:
        return "x".join(map(str, self.f_size))

    def description(self) -> str:
        """The DICOM DerivationDescription; the window is on ``(slices, rows, cols)``."""
        origin = f"estimated ({self.estimator}) from the background" if self.estimator else "given"
        window = "none (pointwise)" if self.method == "pointwise" else self._window()
        sigma = self.sigma[0] if isinstance(self.sigma, tuple) else self.sigma
        text = (
            f"{OWN_DERIVATION} {_core.__version__}: method={self.method}, "
            f"sigma={sigma:.6g} stored units ({origin}), f_size={window} (slices x rows x cols), "
            f"coils={self.coils}"
        )
        return text[:_ST_CHARACTERS]

    def code(self) -> tuple[str, str, str]:
        """(value, scheme, meaning) of the method's concept in CID 7203 "Image Derivation"."""
        concept = _CODES[self.method]
        return concept.value, concept.scheme_designator, concept.meaning

    def nifti_description(self) -> str:
        """The NIfTI descrip text (at most 79 ASCII characters): method, sigma, window, coils, version."""
        s = np.atleast_1d(np.asarray(self.sigma, dtype=np.float64))
        sig = f"s={s[0]:.4g}" if s.size == 1 else f"s={s.min():.3g}..{s.max():.3g}/vol"
        win = "1" if self.method == "pointwise" else self._window()
        coil = f" N={self.coils}" if self.coils > 1 else ""
        text = f"{NIFTI_PREFIX} {self.method} {sig} f={win}{coil} {PACKAGE} {_core.__version__}"
        return text.encode("ascii", "replace")[:_DESCRIP_BYTES].decode("ascii")

    def record(self) -> dict[str, Any]:
        """The derivation as JSON-ready fields (a BIDS sidecar's ``NoiseBiasCorrection``): σ in stored
        units, its estimator (None: given), the window on the image's axes (all 1 for pointwise)."""
        return {
            "Software": PACKAGE,
            "Version": _core.__version__,
            "Method": self.method,
            "Sigma": [float(s) for s in self.sigma] if isinstance(self.sigma, tuple) else float(self.sigma),
            "SigmaEstimator": self.estimator,
            "Window": [1 if self.method == "pointwise" else int(f) for f in self.f_size],
            "Coils": int(self.coils),
        }


def difference(recorded: str, expected: str) -> str:
    """What differs between the derivation an output records and the one a run would record, for a message."""
    old, new = recorded.replace(",", " ").split(), expected.replace(",", " ").split()
    if len(old) == len(new):
        return ", ".join(f"{a} (this run: {b})" for a, b in zip(old, new) if a != b)
    return f"{recorded!r} (this run: {expected!r})"


SOURCE_PURPOSE = Code("121322", "DCM", "Source image for image processing operation")
"""The purpose of reference of a derived image's source: pydicom's ``codes.DCM.SourceImageForImageProcessingOperation``."""

__all__ = ["NIFTI_PREFIX", "OWN_DERIVATION", "PACKAGE", "SOURCE_PURPOSE", "Derivation", "difference"]
