"""mri-noiselab: noise level estimation and Rician bias correction for MRI magnitude images."""

from mri_noiselab._args import get_num_threads, set_num_threads
from mri_noiselab._kernels import _core
from mri_noiselab.background import Background, auto_background, find_background, fit_coils
from mri_noiselab.chi import rayleigh_constants
from mri_noiselab.compat import subtract_noise, subtract_noise_masked
from mri_noiselab.correction import CorrectionReport, correct
from mri_noiselab.errors import NoBackgroundError
from mri_noiselab.noise import SigmaEstimate, estimate_sigma, sigma_map, sigma_per_volume
from mri_noiselab.quality import RoiQuality, RoiWarning

__version__: str = _core.__version__

__all__ = [
    "Background",
    "CorrectionReport",
    "NoBackgroundError",
    "RoiQuality",
    "RoiWarning",
    "SigmaEstimate",
    "__version__",
    "auto_background",
    "correct",
    "estimate_sigma",
    "find_background",
    "fit_coils",
    "get_num_threads",
    "rayleigh_constants",
    "set_num_threads",
    "sigma_map",
    "sigma_per_volume",
    "subtract_noise",
    "subtract_noise_masked",
]
