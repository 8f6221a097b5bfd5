"""Automatic background selection and smooth sigma maps.

The local statistics are box means computed by the C++ core (``_core.box_moments``);
this module only does per-voxel comparisons, a histogram and small closed forms
(:mod:`mri_noiselab.chi`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    FSize,
    as_kernel_array,
    check_axis,
    check_coils,
    check_image,
    check_mask,
    default_volume_axis,
    threads,
    window,
)
from mri_noiselab._kernels import _core
from mri_noiselab.chi import expected_ratio, is_rounded, mle_sigma, mle_variance
from mri_noiselab.errors import NoBackgroundError

# Local windows whose statistic lies beyond this many standard deviations of the
# pure-noise distribution are "not background". 3.5 keeps ~99.95% of noise windows
# (a negligible truncation bias) while rejecting anatomy with A >~ 1.5 sigma.
_ACCEPT_Z = 3.5


@dataclass(frozen=True)
class Background:
    """The noise-only background found by :func:`find_background`, and what it tells.

    Attributes
    ----------
    mask : numpy.ndarray of bool
        The voxels judged to be pure noise.
    coils : int
        The coil count N used: the one given, or the one the background's
        moments fit (``coils_fitted``).
    coils_fitted : bool
        True when ``coils`` was fitted rather than given.
    sigma : float
        Maximum-likelihood sigma of the chosen voxels for ``coils`` coils.
    sigma_range : tuple of float
        The lowest and highest sigma of the regions of the background (thirds
        of each image axis) that hold enough voxels; equal to ``(sigma, sigma)``
        when only one region does.
    warnings : tuple of str
        What looks doubtful but was accepted (noise varying across the field of
        view, a coil count that differs from the one given).
    """

    mask: np.ndarray = field(repr=False)
    coils: int
    coils_fitted: bool
    sigma: float
    sigma_range: tuple[float, float]
    warnings: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of background voxels."""
        return int(np.count_nonzero(self.mask))


# At least this many voxels: sigma to +-3.5% (N = 1), and room for the shape tests below.
_MIN_BACKGROUND = 200
# Fitted coil counts beyond this are a flat signal (a Rician at high SNR has kurtosis ~1
# like a chi with many degrees of freedom), not noise.
_MAX_FIT_COILS = 64
# A background whose regions' sigma differ by more than these factors (and significantly)
# is non-stationary noise: one sigma is then off by about half the spread somewhere.
_SPREAD_WARN = 1.15
_SPREAD_REFUSE = 1.5
# A small central object leaves its background ~1.4x denser in the border than inside.
# Only a sparse selection is judged so: a background that fills a fifth of the centre is
# a real one (an object touching one side of the field of view, or lost in noise).
_SPARSE = 0.2
_BORDER_DENSITY = 1.25
_ASK = "select a region of pure noise (roi=..., --roi) or give sigma (--sigma) from a noise scan"


def _image_and_valid(image: npt.ArrayLike, mask: npt.ArrayLike | None, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """The image as the kernels take it, and its usable voxels: non-zero and in ``mask``."""
    arr = check_image(as_kernel_array(image, "image"))
    user = None if mask is None else check_mask(mask, arr.shape)
    stats = _core.sample_stats(arr, None if user is None else user.view(np.uint8), True, n_threads)
    if stats.nonfinite:
        raise ValueError("image contains NaN or infinite values: mask them out (mask=...)")
    if stats.negative:
        raise ValueError("Found negative values in the image: magnitude data cannot be negative")
    valid = arr != 0
    if user is not None:
        valid &= user
    if not valid.any():
        raise ValueError("image has no non-zero voxels (inside the mask): there is no noise to measure")
    return arr, valid


def _box_mean(x: np.ndarray, sizes: tuple[int, ...], mask: np.ndarray | None, n_threads: int) -> np.ndarray:
    """Box mean of x^2 (masked: over in-mask voxels only), from the C++ kernel."""
    m2, _ = _core.box_moments(x, list(sizes), False, None if mask is None else mask.view(np.uint8), n_threads)
    return m2


def _gamma_bounds(k: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on mean / E for a Gamma(k, 1/k) variable at +-z sds (Wilson-Hilferty).

    The local mean of M^2 over n pure-noise voxels, divided by 2 N sigma^2, is
    Gamma(N n, 1/(N n)): chi^2 with 2 N n degrees of freedom over 2 N n.
    """
    c = 1.0 / (9.0 * k)
    lo = np.clip(1.0 - c - z * np.sqrt(c), 0.0, None) ** 3
    hi = (1.0 - c + z * np.sqrt(c)) ** 3
    return lo, hi


def _noise_mode(local: np.ndarray, k: float) -> float:
    """The lowest well-populated mode of the local <M^2> values (the background's).

    In log space the spread of pure-noise local means is about 1/sqrt(k) whatever
    sigma is, and the mode of log Gamma(k, theta) is exactly log(k theta), the mean.
    Signal only adds to <M^2>, so the background is the lowest mode holding at least
    2% of the voxels; anatomy may be larger and is then ignored.
    """
    y = np.log(local)
    sd = 1.0 / math.sqrt(k)
    width = sd / 3.0
    lo, hi = float(y.min()), float(y.max())
    nbins = int((hi - lo) / width) + 1
    if nbins < 8:  # (nearly) one value: no spread to find a mode in, and the smoothing needs bins
        return float(math.exp(0.5 * (lo + hi)))
    counts, edges = np.histogram(y, bins=nbins, range=(lo, lo + nbins * width))
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    smooth = np.convolve(counts, kernel / kernel.sum(), mode="same")
    left = np.concatenate([[-1.0], smooth[:-1]])
    right = np.concatenate([smooth[1:], [-1.0]])
    peaks = np.flatnonzero((smooth >= left) & (smooth > right) & (smooth > 0))
    reach = 6  # +-2 sd of the noise peak
    csum = np.concatenate([[0], np.cumsum(counts)])
    need = max(0.02 * y.size, 20)
    chosen: int | None = None
    for i in peaks:
        mass = csum[min(i + reach + 1, nbins)] - csum[max(i - reach, 0)]
        if mass >= need:
            chosen = int(i)
            break
    if chosen is None:
        chosen = int(np.argmax(smooth))
    return float(math.exp(0.5 * (edges[chosen] + edges[chosen + 1])))


def _moments(v: np.ndarray) -> tuple[float, float, float]:
    """(mean/std, E[M^4]/E[M^2]^2, E[M^2]) of the sample, scaled first so that M^4 cannot overflow."""
    scale = float(v.max())
    u = v / scale
    u2 = u * u
    m2 = float(np.mean(u2))
    mean = float(np.mean(u))
    std = math.sqrt(max(m2 - mean * mean, 0.0))
    ratio = mean / std if std > 0 else math.inf
    return ratio, float(np.mean(u2 * u2)) / (m2 * m2), m2 * scale * scale


def _fit_coils(kurtosis: float) -> int:
    """N from E[M^4]/E[M^2]^2 = (N + 1)/N, the central chi's; 0 when no N in 1..64 fits."""
    if kurtosis <= 1.0:
        return 0
    n = 1.0 / (kurtosis - 1.0)
    # Below 0.7 the tail is heavier than any noise (a mixture of levels); above the
    # largest N the sample is flatter than noise.
    if n < 0.7 or n > _MAX_FIT_COILS + 0.5:
        return 0
    return max(1, round(n))


def _noise_misfit(values: np.ndarray, coils: int | None) -> tuple[int, float, str | None]:
    """Is this sample central chi noise? Returns (N, MLE sigma, None) or (N, sigma, why not).

    The kurtosis E[M^4]/E[M^2]^2 = (N+1)/N fits N (unless given); the mean/std must
    then match the chi value of that N within 10% and 5 standard errors (the model
    of rounded values for integer data: rounding changes both while sigma is small).
    Dim tissue mimics the kurtosis of noise with few coils but not its mean/std.
    """
    ratio, kurtosis, mean_sq = _moments(values)
    fitted = _fit_coils(kurtosis)
    n_coils = coils or max(fitted, 1)
    sigma = mle_sigma(mean_sq, n_coils)
    if fitted == 0:
        what = "a heavier tail than noise" if kurtosis > 1.0 + 1.0 / 0.7 else "flatter than noise: signal"
        return n_coils, sigma, (
            f"the darkest region's values follow no noise distribution for any coil count "
            f"(E[M^4]/E[M^2]^2 = {kurtosis:.2f}: {what}): the background is zero-filled, filtered or absent"
        )
    if coils is not None and abs(fitted - coils) > max(1, 0.25 * coils):
        return n_coils, sigma, (
            f"the darkest region's values are not noise with the {coils} coil(s) given (their shape fits "
            f"{fitted}): give the right coil count (or none, to fit it)"
        )
    # Rounding to integers changes the noise's shape only while sigma is a few units.
    expected, se = expected_ratio(sigma, n_coils, values.size, is_rounded(values, sigma))
    if abs(ratio - expected) > 0.1 * expected + 5 * se:
        return n_coils, sigma, (
            f"the darkest region's mean/std is {ratio:.2f} where noise with {n_coils} coil(s) gives "
            f"{expected:.2f}: it is not pure noise (zero filling, filtering or anatomy)"
        )
    return n_coils, sigma, None


def fit_coils(values: npt.ArrayLike) -> int:
    """The coil count N whose central chi distribution fits a background sample.

    Parameters
    ----------
    values : array_like
        Background magnitudes (exact zeros left out).

    Returns
    -------
    int
        N in 1..64: from the kurtosis E[M^4]/E[M^2]^2 = (N+1)/N, confirmed by the
        mean/std of the same N. Sum-of-squares data give the number of coils; an
        adaptive combination gives an effective N, which is what its correction needs.

    Raises
    ------
    NoBackgroundError
        If the sample has fewer than 2 values, or no N fits it (not pure noise).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[v != 0]
    if v.size < 2 or not np.all(np.isfinite(v)) or float(v.max()) <= 0:
        raise NoBackgroundError("too few non-zero background values to fit a coil count; give --coils")
    coils, _, misfit = _noise_misfit(v, None)
    if misfit is not None:
        raise NoBackgroundError(f"{misfit}; give --coils, or {_ASK}")
    return coils


def _bounds(count: np.ndarray, coils: int) -> tuple[np.ndarray, np.ndarray]:
    """Each window's PIESNO bounds, looked up: its count of usable voxels is a whole number."""
    n = np.rint(count).astype(np.intp)
    table = coils * np.maximum(np.arange(int(n.max(initial=0)) + 1, dtype=np.float64), 1.0)
    lo, hi = _gamma_bounds(table, _ACCEPT_Z)
    return lo[n], hi[n]


def _select(local: np.ndarray, count: np.ndarray, valid: np.ndarray, mode: float, coils: int) -> np.ndarray:
    """PIESNO-style test: the window's <M^2> within 3.5 sds of its pure-noise Gamma law."""
    lo, hi = _bounds(count, coils)
    rel = local / mode
    return valid & (rel >= lo) & (rel <= hi)


def _outer_share(chosen: np.ndarray, axes: Sequence[int]) -> tuple[float, float]:
    """Densities of chosen voxels in the outer sixth of the image (along ``axes``) and inside it."""
    band = np.zeros(chosen.shape, dtype=bool)
    for axis in axes:
        n = chosen.shape[axis]
        index = np.arange(n)
        edge = (index < n / 6) | (index >= n - n / 6)
        shape = [1] * chosen.ndim
        shape[axis] = n
        band |= edge.reshape(shape)
    inner = ~band
    outside = float(chosen[band].mean()) if band.any() else 0.0
    inside = float(chosen[inner].mean()) if inner.any() else 0.0
    return outside, inside


def _region_sigmas(
    arr: np.ndarray, local: np.ndarray, count: np.ndarray, full: np.ndarray, axes: Sequence[int], coils: int, k: float
) -> tuple[list[tuple[float, int]], np.ndarray]:
    """(MLE sigma, n) of the noise found in each third of the image along ``axes``, each on its own,
    and the mask of the voxels they used.

    Each region gets its own lowest mode and PIESNO test, so a noise level that
    drifts across the field of view shows up even where the global test, tied to
    one level, rejected the noisier part as "signal". A region whose darkest voxels
    do not fit noise with ``coils`` coils (all anatomy) or hold fewer than 500
    voxels or a tenth of the region says nothing and is left out.
    """
    out = []
    mask = np.zeros(full.shape, dtype=bool)
    # The regions are blocks of the array: views, so the whole search is one pass over it.
    for cell in itertools.product(range(3), repeat=len(axes)):
        index: list[slice] = [slice(None)] * arr.ndim
        for axis, third in zip(axes, cell):
            n = arr.shape[axis]
            index[axis] = slice(third * n // 3, (third + 1) * n // 3)
        block = tuple(index)
        inside = full[block]
        if np.count_nonzero(inside) < 1000:
            continue
        loc = local[block][inside]
        lo, hi = _bounds(count[block][inside], coils)
        rel = loc / _noise_mode(loc, k)
        keep = (rel >= lo) & (rel <= hi)
        v = arr[block][inside][keep].astype(np.float64)
        # A mode held by a tenth of the region or less is a dim structure (a ventricle),
        # not the region's background.
        if v.size < max(500, 0.1 * loc.size):
            continue
        _, sigma, misfit = _noise_misfit(v, coils)
        if misfit is None:
            out.append((sigma, int(v.size)))
            chosen = np.zeros(inside.shape, dtype=bool)
            chosen[inside] = keep
            mask[block] |= chosen
    return out, mask


@dataclass(frozen=True)
class _Local:
    """The local statistics of an image: box means of M^2 over its usable voxels and their counts."""

    arr: np.ndarray
    valid: np.ndarray
    local: np.ndarray
    count: np.ndarray
    k: float  # voxels per window
    axes: list[int]  # the spatial axes of 16 voxels or more, at most 3: where regions are compared


def _local_statistics(
    image: npt.ArrayLike, mask: npt.ArrayLike | None, f_size: FSize, volume_axis: int | None,
    slice_axis: int | None, n_threads: int,
) -> _Local:
    arr, valid = _image_and_valid(image, mask, n_threads)
    volumes = default_volume_axis(arr.ndim, volume_axis)
    sizes = window(f_size, arr.shape, volume_axis=volumes, slice_axis=slice_axis)
    k = float(np.prod(sizes))
    local = _box_mean(arr, sizes, valid, n_threads)
    count = _box_mean(valid.astype(np.float32), sizes, None, n_threads) * k
    axes = [d for d in range(arr.ndim) if d != volumes and arr.shape[d] >= 16][:3]
    return _Local(arr, valid, local, count, k, axes)


def _candidates(stats: _Local) -> np.ndarray:
    """Voxels whose window is well filled: the ones the noise mode and the regions are judged on."""
    # Windows with fewer than half their voxels non-zero are too noisy to judge (and sit
    # on the edge of zero padding); they can still be background through the test.
    full = stats.valid & (stats.count >= 0.5 * stats.k) & (stats.local > 0)
    if not full.any():
        full = stats.valid & (stats.local > 0)
    if not full.any():
        raise NoBackgroundError(f"the image has no voxel with a non-zero neighbourhood: no noise to measure; {_ASK}")
    return full


def _classify(stats: _Local, mode: float, given: int | None) -> tuple[np.ndarray, int, float]:
    """The voxels that pass the noise test, their coil count and MLE sigma; raises when they are no noise."""
    n_coils = given or 1
    chosen = _select(stats.local, stats.count, stats.valid, mode, n_coils)
    if given is None:
        for _ in range(4):  # N only moves the bounds: converges in a step or two
            if np.count_nonzero(chosen) < _MIN_BACKGROUND:
                break
            fitted = _fit_coils(_moments(stats.arr[chosen].astype(np.float64))[1])
            if fitted in (0, n_coils):
                break
            n_coils = fitted
            chosen = _select(stats.local, stats.count, stats.valid, mode, n_coils)
    n = int(np.count_nonzero(chosen))
    if n < _MIN_BACKGROUND:
        raise NoBackgroundError(
            f"found only {n} voxels that look like pure noise: the image has no usable background "
            f"(cropped, masked, zero-filled or filtered); {_ASK}"
        )
    n_coils, sigma, misfit = _noise_misfit(stats.arr[chosen].astype(np.float64), given)
    if misfit is not None:
        raise NoBackgroundError(f"{misfit}; {_ASK}")
    if stats.axes:
        outside, inside = _outer_share(chosen, stats.axes)
        # Noise surrounds the object: its voxels are denser in the border than in the centre.
        # Anatomy (or dark structures inside it) taken for noise is spread evenly or central.
        if outside < _BORDER_DENSITY * inside and inside < _SPARSE:
            raise NoBackgroundError(
                f"the voxels that look like noise lie inside the image ({100 * inside:.0f}% of its centre "
                f"against {100 * outside:.0f}% of its border), not around the object: the background is "
                f"zero-filled or the image is cropped to the anatomy; {_ASK}"
            )
    return chosen, n_coils, sigma


def _stationary(
    stats: _Local, full: np.ndarray, chosen: np.ndarray, n_coils: int, fitted: bool, sigma: float
) -> Background:
    """The background after comparing the noise of the image's regions: refused when it varies too much."""
    regions, regional = (
        _region_sigmas(stats.arr, stats.local, stats.count, full, stats.axes, n_coils, stats.k) if stats.axes else ([], None)
    )
    n = int(np.count_nonzero(chosen))
    low = min(regions, default=(sigma, n))
    high = max(regions, default=(sigma, n))
    spread = high[0] / low[0]
    # log sigma of a region has standard error 1 / (2 sqrt(N n)): a spread is real when
    # it exceeds 4 standard errors of the difference.
    significant = math.log(spread) > 4 * math.sqrt(1 / (4 * n_coils * low[1]) + 1 / (4 * n_coils * high[1]))
    if significant and spread > _SPREAD_REFUSE:
        raise NoBackgroundError(
            f"the noise level varies {spread:.1f}x across the background (sigma {low[0]:.4g} to "
            f"{high[0]:.4g}): one sigma would be wrong in part of the image (parallel imaging or "
            f"coil sensitivities); {_ASK}, or correct with a sigma map"
        )
    notes: list[str] = []
    if significant and spread > _SPREAD_WARN and regional is not None:
        # The global test keeps the level of the mode only; each region's own noise joins it,
        # so that sigma is the average over the field of view.
        chosen = chosen | regional
        sigma = mle_sigma(float(np.mean(np.square(stats.arr[chosen], dtype=np.float64))), n_coils)
        notes.append(
            f"non-stationary noise: sigma varies {spread:.2f}x across the background ({low[0]:.4g} to "
            f"{high[0]:.4g}); the single sigma is its average"
        )
    return Background(chosen, n_coils, fitted, sigma, (low[0], high[0]), tuple(notes))


def find_background(
    image: npt.ArrayLike,
    coils: int | None = None,
    *,
    mask: npt.ArrayLike | None = None,
    f_size: FSize = 9,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
) -> Background:
    """Find the noise-only background of a magnitude image, or say why there is none.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D, finite and non-negative inside ``mask``.
    coils : int, optional
        Receiver coils combined by sum of squares; fitted from the background
        when None (sum-of-squares and adaptive-combine data alike).
    mask : array_like of bool, optional
        Voxels the search may use; masked-out voxels are never background.
    f_size : int or tuple of int
        Window of the local statistics; an int as in :func:`mri_noiselab.correct`.
    volume_axis, slice_axis : int, optional
        As in :func:`mri_noiselab.correct`: windows never span volumes.
    num_threads : int, optional
        Threads for the kernels.

    Returns
    -------
    Background
        The mask, the coil count, the regional sigma range and warnings.

    Raises
    ------
    NoBackgroundError
        When no region of the image is pure noise, with the reason (see Notes).
    ValueError
        If the image is empty, or has NaN/inf or negative voxels inside the mask.

    Notes
    -----
    2 N sigma^2 is the lowest well-populated mode of the local <M^2> in log space [1]_
    (signal only raises <M^2>); a voxel is background when its window's <M^2> lies
    within 3.5 sds of its pure-noise Gamma law [2]_; N is refitted from the chosen
    voxels' kurtosis E[M^4]/E[M^2]^2 = (N+1)/N. It refuses rather than guesses: fewer
    than 200 candidates; a kurtosis that fits no N in 1..64 or a mean/std 10% and 5
    standard errors off the chi value (zero filling, filtering, anatomy); a coil count
    against the one given; sparse candidates no denser at the image's border than
    inside (anatomy); regions (thirds of each axis) whose sigma differ over 1.5x
    (a warning above 1.15x). Faint anatomy with A^2 below about 3.5 sqrt(N / n) 2 sigma^2
    cannot be told from noise and biases sigma up by a few percent.

    References
    ----------
    .. [1] S. Aja-Fernandez, A. Tristan-Vega, C. Alberola-Lopez, Magn Reson Imaging 27:1397 (2009).
    .. [2] C. G. Koay, E. Ozarslan, C. Pierpaoli, J Magn Reson 199:94 (2009).
    """
    given = None if coils is None else check_coils(coils)
    stats = _local_statistics(image, mask, f_size, volume_axis, slice_axis, threads(num_threads))
    full = _candidates(stats)
    mode = _noise_mode(stats.local[full], stats.k)
    chosen, n_coils, sigma = _classify(stats, mode, given)
    return _stationary(stats, full, chosen, n_coils, given is None, sigma)


def auto_background(
    image: npt.ArrayLike,
    coils: int | None = 1,
    *,
    mask: npt.ArrayLike | None = None,
    f_size: FSize = 9,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
) -> np.ndarray:
    """The noise-only voxels of a magnitude image: :func:`find_background`'s mask.

    The parameters and exceptions are :func:`find_background`'s. Exact zeros (zero
    padding, suppressed background) and masked-out voxels are never in the mask.
    """
    found = find_background(
        image, coils, mask=mask, f_size=f_size, volume_axis=volume_axis, slice_axis=slice_axis, num_threads=num_threads
    )
    return found.mask


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
    """
    coils = check_coils(coils)
    n_threads = threads(num_threads)
    arr, valid = _image_and_valid(image, None, n_threads)
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


__all__ = ["Background", "auto_background", "find_background", "fit_coils", "sigma_map"]
