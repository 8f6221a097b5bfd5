"""Noise level estimation and bias correction: the API for new code.

The formulas are in the C++ core (``cpp/include/noiselab``); this module checks
arguments, converts arrays and turns the core's reports into exceptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    Estimator,
    FSize,
    Method,
    as_kernel_array,
    check_axis,
    check_coils,
    check_estimator,
    check_image,
    check_mask,
    check_method,
    check_sigma_values,
    default_volume_axis,
    get_num_threads,
    sample_view,
    set_num_threads,
    sigma_shape,
    threads,
    window,
)
from mri_noiselab._kernels import _core
from mri_noiselab.background import Background, find_background, fit_coils
from mri_noiselab.chi import efficiency, expected_ratio, is_rounded, mle_sigma, rayleigh_constants, rounded_sigma
from mri_noiselab.errors import NoBackgroundError
from mri_noiselab.quality import RoiQuality, emit_warnings, roi_quality

# estimate_sigma refuses samples that give sigma to worse than +-10% (one standard error):
# 25 values for "mle" with one coil, about 57 for "std".
_MAX_RELATIVE_SE = 0.1
# Sample maxima outside these are rescaled by a power of two before their squares are summed.
_HUGE = 2.0**400
_TINY = 2.0**-400


@dataclass(frozen=True)
class SigmaEstimate:
    """A noise level estimated from a background sample.

    ``float(estimate)`` gives ``sigma``.

    Attributes
    ----------
    sigma : float
        The noise standard deviation of each real channel.
    estimator : str
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
    estimator: Estimator
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


@dataclass(frozen=True)
class CorrectionReport:
    """What the correction kernel saw while it ran (``correct(..., return_report=True)``).

    The same class whatever kernel build (portable or x86-64-v3) is loaded; it
    pickles and compares by value.

    Attributes
    ----------
    n : int
        Voxels corrected (in the mask, if any).
    nonfinite, negative, zeros : int
        Input voxels that are NaN or infinite, negative, and exactly 0.
    clamped : int
        Voxels whose A^2 estimate was negative and set to 0.
    min, max : float
        The smallest and largest input voxel.
    """

    n: int
    nonfinite: int
    negative: int
    zeros: int
    clamped: int
    min: float
    max: float


def _sample(
    background: npt.ArrayLike, mask: npt.ArrayLike | None, exclude_zeros: bool, n_threads: int
) -> tuple[np.ndarray, Any]:
    """The values sigma is estimated from and the kernel's statistics of them; raises for unusable samples."""
    bg = sample_view(as_kernel_array(background, "background"))
    mask_arr = None
    if mask is not None:
        mask_arr = sample_view(check_mask(mask, np.shape(background), "background").view(np.uint8))
    if bg.size == 0:
        raise NoBackgroundError("the background region is empty: select at least a few hundred noise-only pixels")
    stats = _core.sample_stats(bg, mask_arr, exclude_zeros, n_threads)
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
    return (used[used != 0] if exclude_zeros and stats.zeros_excluded else used), stats


def _check_sample(stats: Any, estimator: Estimator, coils: int) -> None:
    """Refuse a sample with no spread, or too small for sigma to +-_MAX_RELATIVE_SE."""
    n = int(stats.n)
    if stats.max - stats.min <= 1e-9 * stats.max:
        raise NoBackgroundError(
            f"the background holds one value ({stats.max:.6g}, {n} times; std = 0): it carries no noise, so "
            "the scanner suppressed or replaced it there; select a region of real noise or give sigma"
        )
    # The relative standard error of sigma is 1 / (2 sqrt(N n efficiency)).
    need = math.ceil(1.0 / (4 * coils * efficiency(estimator, coils) * _MAX_RELATIVE_SE**2))
    if n < need:
        raise NoBackgroundError(
            f"only {n} background values: sigma ({estimator}, {coils} coil(s)) would be uncertain by more than "
            f"±{_MAX_RELATIVE_SE:.0%}; select a larger noise region (at least {need} values, e.g. --roi) or give sigma"
        )


def _rescaled(used: np.ndarray, stats: Any, n_threads: int) -> tuple[np.ndarray, Any, int]:
    """The sample scaled by a power of two 2^-e when its squares would overflow or vanish, its statistics, and e."""
    # Squares of values beyond 2^+-400 overflow or vanish in the sums (sigma = inf or 0). A
    # power of two rescales them exactly, and everything but sigma, mean and std is scale-free.
    exponent = 0 if _TINY <= stats.max <= _HUGE else math.frexp(stats.max)[1]
    if not exponent:
        return used, stats, 0
    used = np.ldexp(used.astype(np.float64), -exponent)
    return used, _core.sample_stats(used, None, False, n_threads), exponent


def _fit(used: np.ndarray, stats: Any, estimator: Estimator, coils: int) -> tuple[float, float, float, float, bool]:
    """(sigma, ratio, expected ratio, MLE sigma, rounded) of a checked sample."""
    sigma, ratio, expected = _core.sigma_from_stats(stats, estimator, coils)
    sigma_mle = mle_sigma(stats.mean_sq, coils)
    rounded = is_rounded(used, sigma_mle)
    if rounded:
        zeros = stats.zeros > 0
        sigma_mle = rounded_sigma(stats.mean_sq, coils, "mle", zeros, sigma_mle)
        measured = {"mle": stats.mean_sq, "mean": stats.mean, "std": stats.std}[estimator]
        sigma = sigma_mle if estimator == "mle" else rounded_sigma(measured, coils, estimator, zeros, sigma)
        expected = expected_ratio(sigma_mle, coils, int(stats.n), True, zeros=zeros)[0]
    return float(sigma), float(ratio), float(expected), sigma_mle, rounded


def estimate_sigma(
    background: npt.ArrayLike,
    estimator: Estimator = "mle",
    coils: int | None = 1,
    mask: npt.ArrayLike | Literal["auto"] | None = None,
    *,
    exclude_zeros: bool = True,
    volume_axis: int | None = None,
    num_threads: int | None = None,
    warn: bool = True,
) -> SigmaEstimate:
    """Estimate the noise level sigma from a background (noise-only) sample or a whole image.

    Parameters
    ----------
    background : array_like
        Magnitude values with no signal, any shape (a ROI cut out of the image),
        or, with ``mask="auto"``, a whole 1-D to 4-D image. Finite and
        non-negative (inside the mask).
    estimator : {"mle", "std", "mean"}
        ``"mle"``: sigma^2 = sum(M^2) / (2 N n), the maximum-likelihood estimator.
        ``"std"``: std(M) / sqrt(2N - beta_N^2) (mri-noiselab 0.1's std / 0.655 for N = 1).
        ``"mean"``: mean(M) / beta_N. See Notes for their efficiencies.
    coils : int or None
        Number N of receiver coils combined by sum of squares. None fits N to
        the background (:func:`mri_noiselab.fit_coils`; a sample that fits no N
        is taken as one coil, and its quality report says why).
    mask : array_like of bool or "auto", optional
        Same shape as ``background``; only True values are used. ``"auto"``
        finds the background of an image with :func:`mri_noiselab.find_background`,
        or raises NoBackgroundError saying why it cannot; the chosen voxels are
        returned in ``SigmaEstimate.mask``.
    exclude_zeros : bool
        Leave exact zeros (zero padding, suppressed background) out; they bias
        every estimator down.
    volume_axis : int, optional
        With ``mask="auto"``: the axis that holds volumes, which the search's
        windows never span (default: the last axis of a 4-D image).
    num_threads : int, optional
        Threads for this call; see :func:`mri_noiselab.set_num_threads`.
    warn : bool
        Issue each quality warning as a :class:`mri_noiselab.RoiWarning`
        (they are in ``SigmaEstimate.warnings`` either way).

    Returns
    -------
    SigmaEstimate
        With the ROI quality report in ``quality``.

    Raises
    ------
    NoBackgroundError
        (a ValueError) If the sample is empty, all zeros, one value repeated, or
        too small to give sigma to +-10% (one standard error): fewer than
        25 / (N efficiency) values, 25 for ``"mle"`` with one coil.
    ValueError
        If the sample holds NaN/inf or negative values, for an unknown
        estimator, or coils outside 1 to 2**32 - 1.

    Notes
    -----
    With N coils the background is central chi with 2N degrees of freedom:
    E[M] = beta_N sigma, beta_N = sqrt(pi/2) (2N-1)!! / (2^(N-1) (N-1)!), and
    E[M^2] = 2 N sigma^2. ``"mle"`` reaches the Cramer-Rao bound (relative standard
    error 1 / (2 sqrt(N n))); ``"mean"`` has an efficiency of 0.91 (N = 1) to 1,
    ``"std"`` 0.45 for N = 1 but about 1/(2N) for N coils (0.062 at N = 8: 16 times
    the pixels of ``"mle"`` for the same precision). Integer data with a plain
    estimate below 50 are fitted as rounded noise k = round(M) (``rounded``).

    References
    ----------
    .. [1] H. Gudbjartsson, S. Patz, Magn Reson Med 34:910 (1995).
    .. [2] S. Aja-Fernandez, A. Tristan-Vega, C. Alberola-Lopez, Magn Reson Imaging 27:1397 (2009).

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((128, 128))
    >>> truth[32:96, 32:96] = 100.0  # an object in air
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))  # sigma 10
    >>> round(nl.estimate_sigma(image[:24, :24]).sigma, 1)  # a noise-only corner
    9.8
    >>> est = nl.estimate_sigma(image, mask="auto")  # the background found automatically
    >>> round(est.sigma, 1), est.coils, est.warnings
    (10.0, 1, ())
    """
    estimator = check_estimator(estimator)
    n_coils = None if coils is None else check_coils(coils)
    found = None
    if isinstance(mask, str):
        if mask != "auto":
            raise ValueError(f"mask must be a boolean array, 'auto' or None, got {mask!r}")
        found = find_background(background, n_coils, volume_axis=volume_axis, num_threads=num_threads)
        n_coils, mask = found.coils, found.mask
    n_threads = threads(num_threads)
    used, stats = _sample(background, mask, exclude_zeros, n_threads)
    if n_coils is None:
        try:
            n_coils = fit_coils(used)
        except NoBackgroundError:
            n_coils = 1
    _check_sample(stats, estimator, n_coils)
    used, stats, exponent = _rescaled(used, stats, n_threads)
    sigma, ratio, expected, sigma_mle, rounded = _fit(used, stats, estimator, n_coils)
    quality = roi_quality(used, n_coils, zeros_excluded=int(stats.zeros_excluded), sigma_mle=sigma_mle)
    if warn:
        emit_warnings(found.warnings if found is not None else quality.warnings)
    return SigmaEstimate(
        sigma=math.ldexp(sigma, exponent), estimator=estimator, coils=n_coils, n=int(stats.n),
        mean=math.ldexp(float(stats.mean), exponent), std=math.ldexp(float(stats.std), exponent), ratio=ratio,
        expected_ratio=expected, zeros_excluded=int(stats.zeros_excluded), rounded=rounded, quality=quality,
        mask=None if found is None else found.mask, coils_fitted=coils is None, background=found,
    )


def sigma_per_volume(
    image: npt.ArrayLike,
    mask: npt.ArrayLike | Literal["auto"] = "auto",
    estimator: Estimator = "mle",
    coils: int | None = None,
    *,
    volume_axis: int | None = None,
    num_threads: int | None = None,
) -> list[SigmaEstimate]:
    """Estimate sigma separately for each volume of an image.

    Parameters
    ----------
    image : array_like
        Magnitude image with a volume axis: 4-D ``(x, y, z, t)`` by default.
    mask : array_like of bool or "auto"
        The background: one mask for every volume (the image's shape without
        the volume axis), one per volume (the image's shape), or ``"auto"`` to
        find it in each volume with :func:`mri_noiselab.find_background`.
    estimator, coils
        As in :func:`estimate_sigma`.
    volume_axis : int, optional
        The axis that holds volumes; the last axis of a 4-D image by default.
    num_threads : int, optional
        Threads for the kernels.

    Returns
    -------
    list of SigmaEstimate
        One per volume, warnings kept in each (none issued). Pass
        ``[e.sigma for e in ...]`` to :func:`correct` with the same ``volume_axis``.

    Raises
    ------
    NoBackgroundError
        If a volume's background is empty or all zeros (the message names it).
    ValueError
        For an image without a volume axis, a mask of the wrong shape or bad values.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> image = np.hypot(*rng.normal(0, 1, (2, 40, 40, 4, 3)) * [10, 20, 40])  # (x, y, z, t) noise
    >>> [round(e.sigma) for e in nl.sigma_per_volume(image)]
    [10, 20, 40]
    """
    arr = np.asarray(image)
    axis = default_volume_axis(arr.ndim, volume_axis)
    if axis is None:
        raise ValueError(f"sigma per volume needs a 4-D (x, y, z, t) image or a volume_axis, got shape {arr.shape}")
    volumes = np.moveaxis(arr, axis, -1)
    per_volume = None if isinstance(mask, str) else _volume_masks(mask, arr.shape, axis)
    if isinstance(mask, str) and mask != "auto":
        raise ValueError(f"mask must be a boolean array or 'auto', got {mask!r}")
    estimates = []
    for t in range(volumes.shape[-1]):
        values = volumes[..., t]
        try:
            if per_volume is None:
                found = estimate_sigma(values, estimator, coils, mask="auto", num_threads=num_threads, warn=False)
            else:
                found = estimate_sigma(values[per_volume[..., t]], estimator, coils, num_threads=num_threads, warn=False)
        except ValueError as e:
            raise type(e)(f"volume {t}: {e}") from None
        estimates.append(found)
    return estimates


def _volume_masks(mask: npt.ArrayLike, shape: tuple[int, ...], axis: int) -> np.ndarray:
    """A mask for each volume, volumes last: one mask of a volume's shape repeated, or one per volume."""
    m = np.asarray(mask, dtype=bool)
    one = shape[:axis] + shape[axis + 1 :]
    if m.shape == shape:
        return np.moveaxis(m, axis, -1)
    if m.shape == one:
        return np.broadcast_to(m[..., None], (*one, shape[axis]))
    raise ValueError(f"mask shape {m.shape} fits neither the image {shape} nor one volume {one}")


def _sigma_argument(
    sigma: float | SigmaEstimate | npt.ArrayLike, shape: tuple[int, ...], coils: int, volume_axis: int | None
) -> tuple[float, np.ndarray | None]:
    """A scalar sigma, or a float64 map broadcast to ``shape`` (per volume or per voxel)."""
    if isinstance(sigma, SigmaEstimate):
        sigma = sigma.sigma
    arr = check_sigma_values(np.asarray(sigma, dtype=np.float64))
    # The bias 2 N sigma^2 must be a finite double (an infinite one turns A^2 into NaN).
    if arr.size and float(arr.max()) > math.sqrt(np.finfo(np.float64).max / (2 * coils)):
        raise ValueError(
            f"sigma = {float(arr.max()):.3g} is too large: 2 N sigma^2 overflows double precision; "
            "give sigma in the image's units"
        )
    if arr.ndim == 0:
        return float(arr), None
    return 0.0, np.broadcast_to(arr.reshape(sigma_shape(arr.shape, shape, volume_axis)), shape)


@overload
def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: Literal[False] = False,
) -> np.ndarray: ...


@overload
def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: Literal[True],
) -> tuple[np.ndarray, CorrectionReport]: ...


def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, CorrectionReport]:
    """Remove the Rician (noncentral chi) noise bias from a magnitude image.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D, finite and non-negative. float64 stays
        float64; other real types are computed and returned as float32.
    sigma : float, SigmaEstimate or array_like
        Noise level: one value, one per volume (a 1-D array along
        ``volume_axis``), or one per voxel (the image's shape).
    f_size : int or tuple of int, optional
        Window. An int is that size on every axis except the volume axis, the
        slice axis and axes of length 1, so volumes are never averaged together.
        The default is 9 (9 x 9 on a 2-D image, 9 x 9 x 9 on a 3-D volume),
        widened for many coils until the window holds 4 (N + 1) voxels (13 x 13
        on a 2-D image at 32 coils). A tuple gives one size per axis.
    method : {"lmmse", "moments", "pointwise"}
        ``"lmmse"`` (the default): Aja-Fernandez et al. 2008, which keeps the
        voxel's own value where the window holds an edge, with a bias-corrected
        square root. ``"moments"``:
        A^2 = <M^2> - 2 N sigma^2, a box blur of M^2. ``"pointwise"``: the same
        with no window (power subtraction).
    coils : int
        Receiver coils combined by sum of squares.
    mask : array_like of bool, optional
        Only voxels inside the mask enter the local moments and are corrected;
        the others are returned unchanged.
    volume_axis : int, optional
        The axis that holds volumes (time points, directions, echoes): the
        last axis of a 4-D image by default, none otherwise. Give 0 for a
        ``(t, z, y, x)`` array from SimpleITK or pydicom.
    slice_axis : int, optional
        An axis an int ``f_size`` leaves alone: slices thicker than pixels, as
        the DICOM and NIfTI workflows declare them (``slice_axis=0`` on a DICOM
        stack or a SimpleITK ``(z, y, x)`` array gives their in-plane window,
        ``slice_axis=2`` on a nibabel ``(x, y, z)`` array).
    num_threads : int, optional
        Threads for this call; see :func:`mri_noiselab.set_num_threads`.
    return_report : bool
        Also return the kernel's :class:`CorrectionReport`.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, CorrectionReport)
        The corrected magnitude, same shape as ``image``.

    Raises
    ------
    ValueError
        For NaN/inf or negative voxels, bad sigma, f_size, coils, method or axes.
    TypeError
        For non-real dtypes or an f_size that is not an int or tuple of ints.

    Notes
    -----
    With box means <.> over the window (scipy's ``mode="reflect"``), ``"moments"``
    computes A = sqrt(max(<M^2> - 2 N sigma^2, 0)) [1]_ and ``"lmmse"`` adds
    K (M^2 - <M^2>), K = 1 - 4 sigma^2 (<M^2> - N sigma^2) / (<M^4> - <M^2>^2)
    clamped to [0, 1] [2]_; its root is Re sqrt(A^2 + i s/2) with s^2 the
    variance of the A^2 estimate, which removes the low bias of sqrt(max(A^2, 0))
    at low SNR (up to 0.1 sigma at SNR 1 with many coils) and needs no clamp.
    The default was chosen by ``benchmarks/accuracy.py --part default`` (README,
    "Which method and window should I use?").

    References
    ----------
    .. [1] H. Gudbjartsson, S. Patz, Magn Reson Med 34:910 (1995).
    .. [2] S. Aja-Fernandez, C. Alberola-Lopez, C.-F. Westin, IEEE TIP 17:1383 (2008).

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> truth = np.full((128, 128), 20.0)  # a flat region at SNR 2
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))
    >>> round(float(image.mean()), 1), round(float(nl.correct(image, 10.0).mean()), 1)
    (22.8, 20.0)
    """
    method = check_method(method)
    coils = check_coils(coils)
    arr = check_image(as_kernel_array(image, "image"))
    volumes = default_volume_axis(arr.ndim, volume_axis)
    slices = check_axis(slice_axis, arr.ndim, "slice_axis")
    sizes = window(1 if method == "pointwise" else f_size, arr.shape, volume_axis=volumes, slice_axis=slices, coils=coils)
    scalar, sigma_map = _sigma_argument(sigma, arr.shape, coils, volumes)
    mask_arr = None if mask is None else check_mask(mask, arr.shape).view(np.uint8)
    kernel: Literal["moments", "lmmse"] = "lmmse" if method == "lmmse" else "moments"
    out, rep = _core.correct(arr, scalar, list(sizes), kernel, coils, mask_arr, sigma_map, threads(num_threads))
    report = _check_report(rep, kernel, "image")
    out = out.reshape(np.shape(image))
    return (out, report) if return_report else out


def _check_report(rep: Any, kernel: Literal["moments", "lmmse"], what: str) -> CorrectionReport:
    """The kernel's report of a correction; raises for values it cannot have corrected (``what`` names them: "image")."""
    if rep.nonfinite:
        raise ValueError(f"{what} contains NaN or infinite values: mask them out (mask=...) before correcting")
    if rep.negative:
        raise ValueError(f"Found negative values in the {what}: magnitude data cannot be negative")
    power = 4 if kernel == "lmmse" else 2
    if float(rep.max) > np.finfo(np.float64).max ** (1 / power):
        raise ValueError(
            f"{what} values up to {rep.max:.3g} overflow float64 once raised to the power "
            f"{power}: scale the image down (and sigma with it)"
        )
    return CorrectionReport(int(rep.n), int(rep.nonfinite), int(rep.negative), int(rep.zeros), int(rep.clamped),
                            float(rep.min), float(rep.max))


__all__ = [
    "CorrectionReport",
    "NoBackgroundError",
    "SigmaEstimate",
    "correct",
    "estimate_sigma",
    "get_num_threads",
    "rayleigh_constants",
    "set_num_threads",
    "sigma_per_volume",
]
