"""mri-noiselab: noise level estimation and Rician bias correction for MRI magnitude images."""

from mri_noiselab._kernels import _core
from mri_noiselab.compat import subtract_noise, subtract_noise_masked
from mri_noiselab.noise import (
    SigmaEstimate,
    correct,
    estimate_sigma,
    get_num_threads,
    rayleigh_constants,
    set_num_threads,
)

__version__: str = _core.__version__

__all__ = [
    "SigmaEstimate",
    "__version__",
    "correct",
    "estimate_sigma",
    "get_num_threads",
    "rayleigh_constants",
    "set_num_threads",
    "subtract_noise",
    "subtract_noise_masked",
]
