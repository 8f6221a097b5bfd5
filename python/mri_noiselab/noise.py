"""Noise level estimation and bias correction: the API for new code.

The formulas are in the C++ core (``cpp/include/noiselab``); this module checks
arguments, converts arrays and turns the core's reports into exceptions.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import numpy.typing as npt

from mri_noiselab._kernels import _core

if TYPE_CHECKING:
    from mri_noiselab.background import Background, RoiQuality

SigmaMethod = Literal["mle", "std", "mean"]
CorrectionMethod = Literal["moments", "pointwise", "lmmse"]
SIGMA_METHODS: tuple[str, ...] = ("mle", "std", "mean")
CORRECTION_METHODS: tuple[str, ...] = ("moments", "pointwise", "lmmse")
MAX_NDIM = 4
# The kernel takes window sizes as 64-bit integers; beyond this the binding would
# reject the call with a message about its C++ signature.
_MAX_WINDOW = 2**63 - 1
_MAX_THREADS = 2**31 - 1
_MAX_COILS = 2**32 - 1
# estimate_sigma refuses samples that give sigma to worse than +-10% (one standard error):
# 25 values for "mle" with one coil, about 57 for "std".
_MAX_RELATIVE_SE = 0.1
# Sample maxima outside these are rescaled by a power of two before their squares are summed.
_HUGE = 2.0**400
_TINY = 2.0**-400

_default_threads: int | None = None


class NoBackgroundError(ValueError):
    """No usable noise-bearing background: empty, all exact zeros, one value repeated,
    too few values for sigma to +-10%, or nothing that looks like noise."""


def set_num_threads(n: int | None) -> None:
    """Set the number of threads the kernels use by default.

    Parameters
    ----------
    n : int or None
        A positive count, or None for all cores (OpenMP's default). A
        ``num_threads`` argument given to a function takes precedence. Results
        are bit-identical whatever the count.
    """
    global _default_threads
    _default_threads = None if n is None else _check_threads(n)


def get_num_threads() -> int:
    """Return the number of threads the kernels use by default."""
    return _default_threads if _default_threads is not None else int(_core.default_threads())


def _check_threads(n: object) -> int:
    # The kernels take a C int; they never start more threads than they have blocks of work.
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= int(n) <= _MAX_THREADS:
        raise ValueError(f"num_threads must be a positive integer (at most {_MAX_THREADS}) or None, got {n!r}")
    return int(n)


def _threads(num_threads: int | None) -> int:
    if num_threads is not None:
        return _check_threads(num_threads)
    return _default_threads or 0


def _check_coils(coils: object) -> int:
    # The kernels take an unsigned 32-bit count.
    if isinstance(coils, bool) or not isinstance(coils, numbers.Integral) or not 1 <= int(coils) <= _MAX_COILS:
        raise ValueError(
            f"coils must be an integer >= 1 and at most {_MAX_COILS} (receiver coils combined by sum of squares), got {coils!r}"
        )
    return int(coils)


def _check_sigma(sigma: object) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    return float(sigma)


def as_kernel_array(a: npt.ArrayLike, name: str, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """Return ``a`` as a float32/float64 array in native byte order the kernels accept.

    Views (strided, reversed, read-only) are passed on without a copy when their
    dtype already fits; integers become float32 unless ``dtype`` says otherwise.

    Raises
    ------
    TypeError
        For bool, complex, object or other non-real dtypes.
    """
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise TypeError(
            f"{name} must hold real numbers (integer or floating point), got dtype {arr.dtype}"
        )
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 or arr.dtype.itemsize > 4 and kind == "f" else np.float32
    target = np.dtype(dtype).newbyteorder("=")
    if arr.dtype != target or not arr.flags.aligned:  # the kernels read T*: alignment is required
        arr = arr.astype(target)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return arr


def sample_view(arr: np.ndarray) -> np.ndarray:
    """A sample as the statistics kernel reads it: its own shape when it has 1 to 4 axes
    (rows are the kernel's unit of parallel work, so a flat copy would run on one thread),
    flattened otherwise."""
    return arr if 1 <= arr.ndim <= MAX_NDIM else arr.reshape(-1)


def squeeze_to_kernel(arr: np.ndarray, window: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Drop axes of length 1 (a window there changes nothing) so that up to 4 axes remain."""
    if arr.ndim <= MAX_NDIM:
        return arr, window
    keep = [d for d in range(arr.ndim) if arr.shape[d] > 1] or [arr.ndim - 1]
    if len(keep) > MAX_NDIM:
        raise ValueError(
            f"images with at most {MAX_NDIM} axes longer than 1 are supported, got shape {arr.shape}"
        )
    return arr.reshape([arr.shape[d] for d in keep]), tuple(window[d] for d in keep)


def window_sizes(f_size: int | Sequence[int], ndim: int, *, volumes_last: bool = False) -> tuple[int, ...]:
    """Turn ``f_size`` into one window size per axis.

    An int applies to every axis, except that with ``volumes_last`` a 4-D input
    keeps its last axis (volumes) out of the window. A sequence must give one
    positive int per axis.
    """
    if isinstance(f_size, bool):
        raise TypeError(f"f_size must be an int or a tuple of ints, got {f_size!r}")
    if isinstance(f_size, np.ndarray) and f_size.ndim == 1:  # as scipy accepts
        f_size = f_size.tolist()
    if isinstance(f_size, numbers.Integral):
        sizes = [int(f_size)] * ndim
        if volumes_last and ndim == 4:
            sizes[-1] = 1
    elif isinstance(f_size, Sequence) and not isinstance(f_size, str):
        if len(f_size) != ndim:
            raise ValueError(f"f_size has {len(f_size)} entries but the image has {ndim} axes: give one per axis")
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in f_size):
            raise TypeError(f"f_size entries must be ints, got {tuple(f_size)!r}")
        sizes = [int(s) for s in f_size]
    else:
        raise TypeError(f"f_size must be an int or a tuple of ints, got {f_size!r}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"f_size must be >= 1 on every axis, got {tuple(sizes)}")
    if any(s > _MAX_WINDOW for s in sizes):
        raise ValueError(f"f_size must be at most 2**63 - 1 on every axis, got {tuple(sizes)}")
    return tuple(sizes)


@dataclass(frozen=True)
class SigmaEstimate:
    """A noise level estimated from a background sample.

    ``float(estimate)`` gives ``sigma``.

    Attributes
    ----------
    sigma : float
        The noise standard deviation of each real channel.
    method : str
        ``"mle"``, ``"std"`` or ``"mean"``.
    coils : int
        Receiver coils: given, or fitted to the background (``coils_fitted``).
    n : int
        Background values used.
    mean, std : float
        Sample mean and population standard deviation of those values.
    ratio : float
        ``mean / std``; ``inf`` when std is 0.
    expected_ratio : float
        The ratio expected for pure noise with ``coils`` coils (1.913 for one coil).
    zeros_excluded : int
        Exact zeros left out of the sample.
    rounded : bool
        True when sigma is the fit of rounded chi noise: integer values whose
        plain estimate is below 50 (rounding, and leaving genuine zeros out, bias
        the plain formulas by +45% at sigma = 0.5, 0.5% at 4 to 5, below 0.01% at
        50). ``expected_ratio`` is then that of the rounded noise.
    quality : RoiQuality or None
        The ROI quality report: zero fraction, mean/std standard error, the
        Kolmogorov-Smirnov fit to the chi distribution and the warnings.
    mask : numpy.ndarray of bool or None
        The background voxels chosen automatically (``mask="auto"``), for display.
    coils_fitted : bool
        True when ``coils`` was fitted to the background (``coils=None``).
    background : Background or None
        What the automatic background found (``mask="auto"``): its coil count,
        the regional sigma range and its warnings, which replace the ROI
        quality report's (their advice, to move a hand-drawn ROI, does not apply).
    """

    sigma: float
    method: str
    coils: int
    n: int
    mean: float
    std: float
    ratio: float
    expected_ratio: float
    zeros_excluded: int = 0
    rounded: bool = False
    quality: RoiQuality | None = None
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)
    coils_fitted: bool = False
    background: Background | None = field(default=None, compare=False, repr=False)

    def __float__(self) -> float:
        return self.sigma

    @property
    def warnings(self) -> tuple[str, ...]:
        """What looks wrong with the background, in words a user can act on."""
        if self.background is not None:
            return self.background.warnings
        return self.quality.warnings if self.quality is not None else ()


def estimate_sigma(
    background: npt.ArrayLike,
    method: SigmaMethod = "mle",
    coils: int | None = 1,
    mask: npt.ArrayLike | Literal["auto"] | None = None,
    *,
    exclude_zeros: bool = True,
    num_threads: int | None = None,
    warn: bool = True,
) -> SigmaEstimate:
    """Estimate the noise level sigma from a background (noise-only) sample or a whole image.

    Parameters
    ----------
    background : array_like
        Magnitude values with no signal, any shape (a ROI cut out of the image),
        or, with ``mask="auto"``, a whole 1-D to 4-D image. Must be finite and
        non-negative (inside the mask).
    method : {"mle", "std", "mean"}
        ``"mle"``: sigma^2 = sum(M^2) / (2 N n), the maximum-likelihood estimator.
        ``"std"``: std(M) / sqrt(2N - beta_N^2) (the seed's std / 0.655 for N = 1).
        ``"mean"``: mean(M) / beta_N.
    coils : int or None
        Number N of receiver coils combined by sum of squares. None fits N to
        the background (:func:`mri_noiselab.background.fit_coils`; a sample that
        fits no N is taken as one coil, and its quality report says why).
    mask : array_like of bool or "auto", optional
        Same shape as ``background``; only True values are used. ``"auto"``
        finds the background of an image with
        :func:`mri_noiselab.background.find_background` (no ROI needed), or
        raises NoBackgroundError saying why it cannot; the chosen voxels are
        returned in ``SigmaEstimate.mask``.
    exclude_zeros : bool
        Leave exact zeros (zero padding, suppressed background) out; they bias
        every estimator down.
    num_threads : int, optional
        Threads for this call; see :func:`set_num_threads`.
    warn : bool
        Issue each quality warning as a :class:`mri_noiselab.background.RoiWarning`
        (they are in ``SigmaEstimate.warnings`` either way).

    Returns
    -------
    SigmaEstimate
        With the ROI quality report in ``quality``.

    Raises
    ------
    NoBackgroundError
        (a ValueError) If the sample is empty, all zeros (suppressed noise), one
        value repeated (after rescaling: a constant offset is no noise either),
        or too small to give sigma to +-10% (one standard error): fewer than
        25 / (N efficiency) values, 25 for ``"mle"`` with one coil.
    ValueError
        If the sample holds NaN/inf or negative values; or for an unknown method
        or coils outside 1 to 2**32 - 1.

    Notes
    -----
    With N coils the background follows a central chi distribution with 2N
    degrees of freedom: E[M] = beta_N sigma with
    beta_N = sqrt(pi/2) (2N-1)!! / (2^(N-1) (N-1)!), and E[M^2] = 2 N sigma^2.

    Relative to ``"mle"`` (which reaches the Cramer-Rao bound, a relative standard
    error of 1 / (2 sqrt(N n))), ``"mean"`` has an efficiency of 0.91 (N = 1) to 1
    and ``"std"`` one of 0.45 for N = 1, 0.24 for N = 2, 0.12 for N = 4 and 0.062
    for N = 8 (about 1/(2N)): for the same precision ``"std"`` needs 1/efficiency
    times the pixels, 16 times for 8 coils.

    Integer data (stored pixel values) with a plain estimate below 50 are fitted
    as rounded noise k = round(M), whose statistic (E[k^2], E[k] or sd(k)) must
    match the sample's; the model excludes k = 0 unless the sample holds zeros.
    ``SigmaEstimate.rounded`` says so.

    References
    ----------
    .. [1] H. Gudbjartsson, S. Patz, Magn Reson Med 34:910 (1995).
    .. [2] S. Aja-Fernandez, A. Tristan-Vega, C. Alberola-Lopez, Magn Reson Imaging 27:1397 (2009).
    """
    # background builds on this module's array helpers, so it is imported here.
    from mri_noiselab.background import (
        _expected_ratio,
        _rounded_model,
        _rounded_sigma,
        RoiWarning,
        emit_warnings,
        find_background,
        fit_coils,
        roi_quality,
    )

    if method not in SIGMA_METHODS:
        raise ValueError(f"unknown sigma method {method!r}: choose one of {', '.join(SIGMA_METHODS)}")
    fitted = coils is None
    coils = None if coils is None else _check_coils(coils)
    chosen = None
    found = None
    if isinstance(mask, str):
        if mask != "auto":
            raise ValueError(f"mask must be a boolean array, 'auto' or None, got {mask!r}")
        found = find_background(background, coils, num_threads=num_threads)
        coils = found.coils
        chosen = mask = found.mask
    bg = sample_view(as_kernel_array(background, "background"))
    mask_arr = None
    if mask is not None:
        mask_arr = np.asarray(mask)
        if mask_arr.shape != np.shape(background):
            raise ValueError(f"mask shape {mask_arr.shape} does not match background shape {np.shape(background)}")
        mask_arr = sample_view(mask_arr.astype(bool).view(np.uint8))
    if bg.size == 0:
        raise NoBackgroundError("the background region is empty: select at least a few hundred noise-only pixels")
    threads = _threads(num_threads)
    stats = _core.sample_stats(bg, mask_arr, exclude_zeros, threads)
    if stats.nonfinite:
        raise ValueError("background contains NaN or infinite values: mask them out or pick another region")
    if stats.negative:
        raise ValueError("Found negative values in the background: magnitude data cannot be negative")
    if stats.n == 0 or stats.zeros == stats.n:
        total = stats.n + stats.zeros_excluded
        raise NoBackgroundError(
            f"background is totally dark: its {total} values are all zeros, so the scanner suppressed or "
            "masked the noise there and sigma cannot be estimated from it; give sigma from a noise scan "
            "or an earlier run"
        )
    used = bg if mask_arr is None else bg[mask_arr.view(bool)]
    if exclude_zeros:
        used = used[used != 0]
    if coils is None:
        try:
            coils = fit_coils(used)
        except NoBackgroundError:
            coils = 1
    _check_sample(stats, method, coils)
    # Squares of values beyond 2^+-400 overflow or vanish in the sums (sigma = inf or 0). A
    # power of two rescales them exactly, and everything but sigma, mean and std is scale-free.
    exponent = 0 if _TINY <= stats.max <= _HUGE else math.frexp(stats.max)[1]
    if exponent:
        used = np.ldexp(used.astype(np.float64), -exponent)
        stats = _core.sample_stats(used, None, False, threads)
    sigma, ratio, expected = _core.sigma_from_stats(stats, method, coils)
    sigma_mle = math.sqrt(stats.mean_sq / (2 * coils))
    rounded = _rounded_model(used, sigma_mle)
    if rounded:
        zeros = stats.zeros > 0
        sigma_mle = _rounded_sigma(stats.mean_sq, coils, "mle", zeros, sigma_mle)
        measured = {"mle": stats.mean_sq, "mean": stats.mean, "std": stats.std}[method]
        sigma = sigma_mle if method == "mle" else _rounded_sigma(measured, coils, method, zeros, sigma)
        expected = _expected_ratio(sigma_mle, coils, int(stats.n), True, zeros=zeros)[0]
    quality = roi_quality(used, coils, zeros_excluded=int(stats.zeros_excluded), sigma_mle=sigma_mle)
    if warn and found is not None:
        for text in found.warnings:
            warnings.warn(text, RoiWarning, stacklevel=2)
    elif warn:
        emit_warnings(quality)
    return SigmaEstimate(
        sigma=math.ldexp(float(sigma), exponent),
        method=method,
        coils=coils,
        n=int(stats.n),
        mean=math.ldexp(float(stats.mean), exponent),
        std=math.ldexp(float(stats.std), exponent),
        ratio=float(ratio),
        expected_ratio=float(expected),
        zeros_excluded=int(stats.zeros_excluded),
        rounded=rounded,
        quality=quality,
        mask=chosen,
        coils_fitted=fitted,
        background=found,
    )


def _efficiency(method: str, coils: int) -> float:
    """Efficiency of a sigma estimator: the Cramer-Rao bound sigma^2 / (4 N n) over its variance.

    With v = Var(M) / sigma^2 = 2N - beta_N^2: 1 for "mle"; beta_N^2 / (4 N v) for "mean"
    (0.91 for N = 1); v^2 / (N (mu_4 - v^2)) for "std" (0.45 for N = 1, 0.062 for N = 8,
    about 1/(2N)), mu_4 = E[(M - E M)^4] / sigma^4 from the chi moments, whose difference
    mu_4 - v^2 = 4 (N (2v - 1) + v - v^2) does not cancel as N grows.
    """
    if method == "mle":
        return 1.0
    beta, factor, _ = rayleigh_constants(coils)
    v = factor * factor
    if method == "mean":
        return beta * beta / (4 * coils * v)
    return v * v / (coils * 4 * (coils * (2 * v - 1) + v - v * v))


def _check_sample(stats: Any, method: str, coils: int) -> None:
    """Refuse a sample with no spread, or too small for sigma to +-_MAX_RELATIVE_SE."""
    n = int(stats.n)
    if stats.max - stats.min <= 1e-9 * stats.max:
        raise NoBackgroundError(
            f"the background holds one value ({stats.max:.6g}, {n} times; std = 0): it carries no noise, so "
            "the scanner suppressed or replaced it there; select a region of real noise or give sigma"
        )
    # The relative standard error of sigma is 1 / (2 sqrt(N n efficiency)).
    need = math.ceil(1.0 / (4 * coils * _efficiency(method, coils) * _MAX_RELATIVE_SE**2))
    if n < need:
        raise NoBackgroundError(
            f"only {n} background values: sigma ({method}, {coils} coil(s)) would be uncertain by more than "
            f"±{_MAX_RELATIVE_SE:.0%}; select a larger noise region (at least {need} values, e.g. --roi) or give sigma"
        )


def _sigma_argument(
    sigma: float | SigmaEstimate | npt.ArrayLike, shape: tuple[int, ...], coils: int
) -> tuple[float, np.ndarray | None]:
    """A scalar sigma, or a float64 map broadcast to ``shape`` (per volume or per voxel)."""
    if isinstance(sigma, SigmaEstimate):
        sigma = sigma.sigma
    arr = np.asarray(sigma, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"sigma must be finite and > 0, got {sigma if arr.ndim == 0 else 'an array with bad values'}")
    # The bias 2 N sigma^2 must be a finite double (an infinite one turns A^2 into NaN).
    if arr.size and float(arr.max()) > math.sqrt(np.finfo(np.float64).max / (2 * coils)):
        raise ValueError(
            f"sigma = {float(arr.max()):.3g} is too large: 2 N sigma^2 overflows double precision; "
            "give sigma in the image's units"
        )
    if arr.ndim == 0:
        return float(arr), None
    try:
        return 0.0, np.broadcast_to(arr, shape)
    except ValueError:
        raise ValueError(
            f"a sigma array of shape {arr.shape} does not broadcast to the image shape {shape}: "
            "give one value per volume (last axis) or one per voxel"
        ) from None


@overload
def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: int | Sequence[int] = 9,
    method: CorrectionMethod = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    num_threads: int | None = None,
    return_report: Literal[False] = False,
) -> np.ndarray: ...


@overload
def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: int | Sequence[int] = 9,
    method: CorrectionMethod = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    num_threads: int | None = None,
    return_report: Literal[True],
) -> tuple[np.ndarray, Any]: ...


def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: int | Sequence[int] = 9,
    method: CorrectionMethod = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    num_threads: int | None = None,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, Any]:
    """Remove the Rician (noncentral chi) noise bias from a magnitude image.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D, finite and non-negative. float64 stays
        float64; other real types are computed and returned as float32.
    sigma : float, SigmaEstimate or array_like
        Noise level. An array broadcasts against the image: shape ``(t,)`` gives
        one value per volume of a 4-D ``(x, y, z, t)`` series, the image's shape
        one per voxel.
    f_size : int or tuple of int
        Window size per axis. An int applies to every axis except the volume
        axis of a 4-D input, so volumes are never averaged together: the
        default 9 is 9 x 9 on a 2-D image and 9 x 9 x 9 on a 3-D volume. Give
        ``(9, 9, 1)`` to keep thick slices (axis 2) apart, as the CLI does.
    method : {"lmmse", "moments", "pointwise"}
        ``"lmmse"`` (the default): Aja-Fernandez et al. 2008, which keeps the
        voxel's own value where the window holds an edge.
        ``"moments"``: A^2 = <M^2> - 2 N sigma^2, a box blur of M^2 (the
        earlier default, with ``f_size=10``).
        ``"pointwise"``: the same with no window (power subtraction).
    coils : int
        Receiver coils combined by sum of squares.
    mask : array_like of bool, optional
        Only voxels inside the mask enter the local moments and are corrected;
        the others are returned unchanged.
    num_threads : int, optional
        Threads for this call; see :func:`set_num_threads`.
    return_report : bool
        Also return the kernel's report: ``clamped`` (voxels whose A^2 estimate
        was negative and set to 0), ``n``, ``zeros``, ``min`` and ``max``.

    Returns
    -------
    numpy.ndarray
        The corrected magnitude, same shape as ``image``; with ``return_report``,
        a tuple ``(corrected, report)``.

    Raises
    ------
    ValueError
        For NaN/inf or negative voxels, bad sigma, f_size, coils or method.
    TypeError
        For non-real dtypes or an f_size that is not an int or tuple of ints.

    Notes
    -----
    With box means <.> over the window, ``"moments"`` computes
    A = sqrt(max(<M^2> - 2 N sigma^2, 0)) [1]_, and ``"lmmse"`` adds
    K (M^2 - <M^2>) with K = 1 - 4 sigma^2 (<M^2> - N sigma^2) / (<M^4> - <M^2>^2)
    clamped to [0, 1] [2]_. Box means use scipy's ``mode="reflect"`` boundary.

    The default (``"lmmse"``, 9) was chosen by ``benchmarks/accuracy.py
    --part default``: on a 3-D phantom it has a lower RMSE than the uncorrected
    image from SNR 1 to 50 with 1 to 32 coils and keeps edges, where
    ``"moments"`` with ``f_size=10`` blurs (RMSE 5 times the uncorrected one at
    SNR 50). With a 9 x 9 x 9 window its flat-region bias stays within 0.05
    sigma; with 9 x 9 in-plane it exceeds that at SNR 1 with 4 or more coils
    (up to 0.09 sigma). See the README, "Which method and window should I use?".

    References
    ----------
    .. [1] H. Gudbjartsson, S. Patz, Magn Reson Med 34:910 (1995).
    .. [2] S. Aja-Fernandez, M. Lopez-Martin, H. Knutsson, IEEE TIP 17:1383 (2008).
    """
    if method not in CORRECTION_METHODS:
        raise ValueError(f"unknown correction {method!r}: choose one of {', '.join(CORRECTION_METHODS)}")
    coils = _check_coils(coils)
    arr = as_kernel_array(image, "image")
    if arr.size == 0:
        raise ValueError("image is empty (an axis has length 0)")
    if arr.ndim > MAX_NDIM:
        raise ValueError(f"images of 1 to {MAX_NDIM} dimensions are supported, got {arr.ndim}")
    window = window_sizes(1 if method == "pointwise" else f_size, arr.ndim, volumes_last=True)
    scalar, sigma_map = _sigma_argument(sigma, arr.shape, coils)
    mask_arr = None
    if mask is not None:
        mask_arr = np.asarray(mask)
        if mask_arr.shape != arr.shape:
            raise ValueError(f"mask shape {mask_arr.shape} does not match image shape {arr.shape}")
        mask_arr = mask_arr.astype(bool).view(np.uint8)
    kernel = "lmmse" if method == "lmmse" else "moments"
    out, report = _core.correct(arr, scalar, list(window), kernel, coils, mask_arr, sigma_map, _threads(num_threads))
    if report.nonfinite:
        raise ValueError("image contains NaN or infinite values: mask them out (mask=...) before correcting")
    if report.negative:
        raise ValueError("Found negative values in the image: magnitude data cannot be negative")
    power = 4 if kernel == "lmmse" else 2
    if float(report.max) > np.finfo(np.float64).max ** (1 / power):
        raise ValueError(
            f"image values up to {report.max:.3g} overflow float64 once raised to the power "
            f"{power}: scale the image down (and sigma with it)"
        )
    out = out.reshape(np.shape(image))
    return (out, report) if return_report else out


def rayleigh_constants(coils: int = 1) -> tuple[float, float, float]:
    """Return (beta_N, std factor, mean/std ratio) of background noise with ``coils`` coils."""
    coils = _check_coils(coils)
    return float(_core.chi_beta(coils)), float(_core.chi_std_factor(coils)), float(_core.chi_mean_std_ratio(coils))


__all__ = [
    "NoBackgroundError",
    "SigmaEstimate",
    "correct",
    "estimate_sigma",
    "get_num_threads",
    "rayleigh_constants",
    "set_num_threads",
]
