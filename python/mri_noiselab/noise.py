"""The noise level sigma: from a background sample or a whole image, per volume, or as a smooth map.

The sums are in the C++ core (``cpp/include/noiselab``); this module checks
arguments, converts arrays and turns the core's reports into exceptions. The
correction that uses sigma is :mod:`mri_noiselab.correction`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    Estimator,
    FSize,
    as_kernel_array,
    check_axis,
    check_coils,
    check_estimator,
    check_mask,
    default_volume_axis,
    sample_view,
    threads,
    window,
)
from mri_noiselab._kernels import _core
from mri_noiselab.background import Background, find_background, fit_coils, image_and_valid
from mri_noiselab.chi import efficiency, expected_ratio, is_rounded, mle_sigma, mle_variance, rounded_sigma
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

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> noise = np.hypot(*rng.normal(0, 5.0, (2, 10_000)))  # Rayleigh: one coil, sigma 5
    >>> est = nl.estimate_sigma(noise)
    >>> round(float(est), 2), round(est.standard_error, 3), est.n, est.coils
    (4.98, 0.025, 10000, 1)
    >>> round(est.ratio, 2), round(est.expected_ratio, 3)  # mean / std of pure Rayleigh noise
    (1.92, 1.913)
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
    def standard_error(self) -> float:
        """The standard error of ``sigma``: sigma / (2 sqrt(N n efficiency)).

        The Cramer-Rao bound sigma / (2 sqrt(N n)) of ``"mle"``, widened by the
        estimator's efficiency (:func:`mri_noiselab.estimate_sigma`, Notes); large-sample
        and for noise that is not rounded (``rounded`` fits are a little less precise).
        """
        return self.sigma / (2 * math.sqrt(self.coils * self.n * efficiency(self.estimator, self.coils)))

    @property
    def warnings(self) -> tuple[str, ...]:
        """What looks wrong with the background, in words a user can act on."""
        if self.background is not None:
            return self.background.warnings
        return self.quality.warnings if self.quality is not None else ()


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


def _box_mean(x: np.ndarray, sizes: tuple[int, ...], mask: np.ndarray | None, n_threads: int) -> np.ndarray:
    """Box mean of x^2 (masked: over in-mask voxels only), from the C++ kernel."""
    m2, _ = _core.box_moments(x, list(sizes), False, None if mask is None else mask.view(np.uint8), n_threads)
    return m2


def sigma_map(
    image: npt.ArrayLike,
    background: npt.ArrayLike,
    coils: int = 1,
    *,
    f_size: FSize = 31,
    min_count: int = 100,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
) -> np.ndarray:
    """A smooth per-voxel noise map sigma(x) interpolated from background voxels.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D (one map per volume, never mixing volumes).
    background : array_like of bool
        Noise-only voxels, e.g. from :func:`auto_background`. Exact zeros are ignored.
    coils : int
        Receiver coils combined by sum of squares.
    f_size : int or tuple of int
        Smoothing window (31; an int as in :func:`mri_noiselab.correct`): larger is
        smoother and more precise but follows slower variations only.
    min_count : int
        Background voxels a window needs for a local value; where it has fewer, a
        window twice as large (and so on, up to the whole volume) is used.
    volume_axis, slice_axis, num_threads
        As in :func:`mri_noiselab.correct`.

    Returns
    -------
    numpy.ndarray
        float64 sigma, same shape as ``image``; pass it to :func:`mri_noiselab.correct`.

    Raises
    ------
    ValueError
        If the mask shape differs, or a volume has fewer than ``min_count`` background voxels.

    Notes
    -----
    sigma^2(x) = <M^2>_bg(x) / (2 N), <.>_bg the box mean over background voxels only
    divided by their count, smoothed once more so that the seams between window scales
    vanish. Valid in and near the background, and inside the object only when the noise
    varies slowly and smoothly (sum of squares, smooth coil sensitivities); not for
    SENSE/GRAPPA, whose g-factor peaks in the middle of the field of view where no
    background is seen, nor for backgrounds filtered, masked or clipped by the scanner.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> sigma = np.tile(np.linspace(5.0, 15.0, 128), (128, 1))  # noise rising from left to right
    >>> truth = np.zeros((128, 128))
    >>> truth[40:88, 40:88] = 200.0
    >>> image = np.hypot(truth + rng.normal(0, 1, truth.shape) * sigma, rng.normal(0, 1, truth.shape) * sigma)
    >>> air = np.ones((128, 128), dtype=bool)
    >>> air[32:96, 32:96] = False
    >>> noise = nl.sigma_map(image, air)
    >>> np.round(noise[64, [16, 64, 112]], 1), np.round(sigma[64, [16, 64, 112]], 1)  # inside the object too
    (array([ 6.2, 10.3, 14. ]), array([ 6.3, 10. , 13.8]))
    >>> corrected = nl.correct(image, noise)  # one sigma per voxel
    """
    coils = check_coils(coils)
    n_threads = threads(num_threads)
    arr, valid = image_and_valid(image, n_threads)
    bg = check_mask(background, arr.shape, "image").astype(bool) & valid
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    volumes = default_volume_axis(arr.ndim, volume_axis)
    sizes = window(f_size, arr.shape, volume_axis=volumes, slice_axis=check_axis(slice_axis, arr.ndim, "slice_axis"))
    per_volume = np.moveaxis(bg, volumes, -1).reshape(-1, arr.shape[volumes]).sum(axis=0) if volumes is not None else np.array([bg.sum()])
    if np.any(per_volume < min_count):
        raise ValueError(
            f"a volume has only {int(per_volume.min())} background voxels (< min_count={min_count}): "
            "too few for a sigma map; select a larger background or lower min_count"
        )
    sigma2 = np.full(arr.shape, np.nan)
    bg_f = bg.astype(np.float32)
    w = list(sizes)
    while True:
        local = _box_mean(arr, tuple(w), bg, n_threads)
        count = _box_mean(bg_f, tuple(w), None, n_threads) * float(np.prod(w))
        todo = np.isnan(sigma2) & (count >= min_count)
        sigma2[todo] = mle_variance(local[todo], coils)
        if not np.isnan(sigma2).any():
            break
        # Windows at least as long as the axis see every background voxel of the volume
        # (reflection repeats them evenly), so doubling ends with full coverage.
        w = [min(2 * s, 2 * arr.shape[d]) if d != volumes else s for d, s in enumerate(w)]
    # box_moments averages squares: feeding sqrt(sigma^2) gives the box mean of sigma^2.
    smooth = _box_mean(np.sqrt(sigma2), sizes, None, n_threads)
    return np.asarray(np.sqrt(smooth))


__all__ = ["SigmaEstimate", "estimate_sigma", "sigma_map", "sigma_per_volume"]
