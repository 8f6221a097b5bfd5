"""Automatic background selection: the noise-only voxels of an image, or why there are none.

The per-voxel work runs in the C++ core: box means of M^2 with each window's count of
usable voxels (``_core.box_count``), the band tests and histograms on them
(``_core.band_select``, with thresholds from :mod:`mri_noiselab._bands`) and the moments
of the voxels chosen (``_core.masked_moments``). This module decides, with small closed
forms (:mod:`mri_noiselab.chi`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    FSize,
    as_kernel_array,
    check_coils,
    check_image,
    check_mask,
    default_volume_axis,
    threads,
    window,
)
from mri_noiselab._bands import (
    COLLECT, CountTables, LogHistogram, add_part, band, bin_width, noise_mode, outer_share, thirds,
)
from mri_noiselab._kernels import _core
from mri_noiselab.chi import ROUNDED_BELOW, expected_ratio, mle_sigma
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

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((128, 128))
    >>> truth[32:96, 32:96] = 100.0  # an object in air
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))  # sigma 10
    >>> found = nl.find_background(image)
    >>> found.n, bool(found.mask[32:96, 32:96].any())  # the air around the object, none of the object
    (11192, False)
    >>> [round(s, 1) for s in found.sigma_range]  # sigma in the thirds of the image: stationary noise
    [9.8, 10.1]
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


def image_and_valid(image: npt.ArrayLike, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """The image as the kernels take it, and its usable (non-zero) voxels; raises as the search does."""
    arr = check_image(as_kernel_array(image, "image"))
    stats = _core.sample_stats(arr, None, True, n_threads)
    _check_values(stats.nonfinite, stats.negative)
    return arr, _usable(arr, None)


def _check_values(nonfinite: int, negative: int) -> None:
    if nonfinite:
        raise ValueError("image contains NaN or infinite values: mask them out (mask=...)")
    if negative:
        raise ValueError("Found negative values in the image: magnitude data cannot be negative")


def _usable(arr: np.ndarray, user: np.ndarray | None) -> np.ndarray:
    valid: np.ndarray = np.not_equal(arr, 0)
    if user is not None:
        valid &= user
    if not valid.any():
        raise ValueError("image has no non-zero voxels (inside the mask): there is no noise to measure")
    return valid


@dataclass(frozen=True)
class _Sample:
    """What the noise tests need of a sample: its size, mean/std, E[M^4]/E[M^2]^2, E[M^2], and
    whether it holds whole numbers only."""

    n: int
    ratio: float
    kurtosis: float
    mean_sq: float
    integers: bool

    @classmethod
    def of(cls, values: np.ndarray, mask: np.ndarray, n_threads: int) -> _Sample:
        """The in-mask values, by the kernel: sums in numpy's order, so the same bits as numpy's means."""
        n, scale, s1, s2, s4, _, integers = _core.masked_moments(values, mask.view(np.uint8), n_threads)
        # Scaled by the maximum first so that M^4 cannot overflow.
        m2 = s2 / n
        mean = s1 / n
        std = math.sqrt(max(m2 - mean * mean, 0.0))
        ratio = mean / std if std > 0 else math.inf
        return cls(n, ratio, (s4 / n) / (m2 * m2), m2 * scale * scale, integers)


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


def _noise_misfit(sample: _Sample, coils: int | None) -> tuple[int, float, str | None]:
    """Is this sample central chi noise? Returns (N, MLE sigma, None) or (N, sigma, why not).

    The kurtosis E[M^4]/E[M^2]^2 = (N+1)/N fits N (unless given); the mean/std must
    then match the chi value of that N within 10% and 5 standard errors (the model
    of rounded values for integer data: rounding changes both while sigma is small).
    Dim tissue mimics the kurtosis of noise with few coils but not its mean/std.
    """
    ratio, kurtosis = sample.ratio, sample.kurtosis
    fitted = _fit_coils(kurtosis)
    n_coils = coils or max(fitted, 1)
    sigma = mle_sigma(sample.mean_sq, n_coils)
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
    expected, se = expected_ratio(sigma, n_coils, sample.n, sigma < ROUNDED_BELOW and sample.integers)
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

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> channels = rng.normal(0, 3.0, (2, 4, 20_000))  # real and imaginary parts of 4 coils' noise
    >>> nl.fit_coils(np.sqrt((channels**2).sum(axis=(0, 1))))  # their sum of squares
    4
    >>> nl.fit_coils(np.hypot(*channels[:, 0]))  # one coil: Rayleigh
    1
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(v):  # a sample without zeros (estimate_sigma's) is not copied
        v = v[v != 0]
    if v.size < 2 or not np.all(np.isfinite(v)) or float(v.max()) <= 0:
        raise NoBackgroundError("too few non-zero background values to fit a coil count; give --coils")
    coils, _, misfit = _noise_misfit(_Sample.of(v, np.ones(v.shape, dtype=np.uint8), threads(None)), None)
    if misfit is not None:
        raise NoBackgroundError(f"{misfit}; give --coils, or {_ASK}")
    return coils


@dataclass(frozen=True)
class _Local:
    """The local statistics of an image: box means of M^2 over its usable voxels and their counts."""

    arr: np.ndarray
    valid: np.ndarray  # uint8: the usable voxels
    local: np.ndarray
    count: np.ndarray  # uint32: the usable voxels of each window
    tables: CountTables
    k: float  # voxels per window
    axes: list[int]  # the spatial axes of 16 voxels or more, at most 3: where regions are compared
    n_threads: int

    def band(self, lo: np.ndarray, hi: np.ndarray, block: tuple[slice, ...] = (), edges: np.ndarray | None = None,
             out: np.ndarray | None = None) -> tuple[int, float, float, np.ndarray, np.ndarray]:
        """(n, min, max, histogram over edges, values in its odd intervals) of local at the usable
        voxels of ``block`` with lo[n] <= local <= hi[n], n their window's count; 1 there in ``out``."""
        return _core.band_select(
            self.local[block], self.count[block], self.valid[block], lo, hi,
            np.empty(0) if edges is None else edges, out, COLLECT, self.n_threads,
        )

    def sample(self, mask: np.ndarray, block: tuple[slice, ...] = ()) -> _Sample:
        return _Sample.of(self.arr[block], mask[block], self.n_threads)


def _local_statistics(
    image: npt.ArrayLike, mask: npt.ArrayLike | None, f_size: FSize, volume_axis: int | None,
    slice_axis: int | None, n_threads: int,
) -> _Local:
    arr = check_image(as_kernel_array(image, "image"))
    valid = _usable(arr, None if mask is None else check_mask(mask, arr.shape)).view(np.uint8)
    volumes = default_volume_axis(arr.ndim, volume_axis)
    sizes = window(f_size, arr.shape, volume_axis=volumes, slice_axis=slice_axis)
    # One sweep: the masked means, each window's count (which they divide by), and the checks.
    local, count, nonfinite, negative = _core.box_count(arr, list(sizes), valid, n_threads)
    _check_values(nonfinite, negative)
    volume = math.prod(s for s, n in zip(sizes, arr.shape) if n > 1)
    n_max = volume if volume <= 1 << 20 else int(count.max())
    axes = [d for d in range(arr.ndim) if d != volumes and arr.shape[d] >= 16][:3]
    tables = CountTables.of(arr.shape, sizes, n_max)
    return _Local(arr, valid, local, count, tables, float(np.prod(sizes)), axes, n_threads)


@dataclass(frozen=True)
class _Candidates:
    """The voxels whose window is well filled, the ones the noise mode and the regions are judged
    on, as band tables; their number and range in each region (the whole image without regions);
    the noise mode of all of them and of each region of 1000 or more."""

    lo: np.ndarray
    hi: np.ndarray
    blocks: list[tuple[tuple[slice, ...], int, float, float]]
    mode: float = 0.0
    modes: dict[int, float] = field(default_factory=dict)

    def with_modes(self, stats: _Local) -> _Candidates:
        """The modes, from one histogram pass over each region (the image's and its own at once)."""
        w = bin_width(stats.k)
        parts = [(i, b) for i, b in enumerate(self.blocks) if b[1]]
        whole = LogHistogram(min(b[2] for _, b in parts), max(b[3] for _, b in parts), w)
        own = {i: LogHistogram(b[2], b[3], w) for i, b in parts if stats.axes and b[1] >= 1000}
        for i, (block, _, part_min, _) in parts:
            between = partial(self._between, stats, block)
            add_part([whole, *([own[i]] if i in own else [])], between, part_min)
        mode = noise_mode(whole, sum(b[1] for _, b in parts), stats.k, partial(self._values, stats, ()))
        modes = {i: noise_mode(h, self.blocks[i][1], stats.k, partial(self._values, stats, self.blocks[i][0]))
                 for i, h in own.items()}
        return _Candidates(self.lo, self.hi, self.blocks, mode, modes)

    def _between(self, stats: _Local, block: tuple[slice, ...], bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return stats.band(self.lo, self.hi, block, edges=bounds)[3:]

    def _values(self, stats: _Local, block: tuple[slice, ...]) -> np.ndarray:
        chosen = np.empty(stats.local[block].shape, dtype=np.uint8)
        stats.band(self.lo, self.hi, block, out=chosen)
        return np.asarray(stats.local[block][chosen.view(bool)])


def _candidates(stats: _Local) -> _Candidates:
    blocks = thirds(stats.arr.shape, stats.axes) if stats.axes else [()]
    # Windows with fewer than half their voxels non-zero are too noisy to judge (and sit
    # on the edge of zero padding); they can still be background through the test.
    for need_half in (True, False):
        lo, hi = stats.tables.candidates(need_half)
        found = [(b, *stats.band(lo, hi, b)[:3]) for b in blocks]
        if any(f[1] for f in found):
            return _Candidates(lo, hi, found).with_modes(stats)
    raise NoBackgroundError(f"the image has no voxel with a non-zero neighbourhood: no noise to measure; {_ASK}")


def _select(stats: _Local, mode: float, coils: int, chosen: np.ndarray) -> int:
    """PIESNO-style test: the window's <M^2> within 3.5 sds of its pure-noise Gamma law; 1 in ``chosen``."""
    lo, hi = band(stats.tables, coils, mode, _ACCEPT_Z)
    return int(stats.band(lo, hi, out=chosen)[0])


def _classify(stats: _Local, mode: float, given: int | None) -> tuple[np.ndarray, int, float]:
    """The voxels that pass the noise test, their coil count and MLE sigma; raises when they are no noise."""
    n_coils = given or 1
    chosen = np.empty(stats.arr.shape, dtype=np.uint8)
    n = _select(stats, mode, n_coils, chosen)
    sample = None
    if given is None:
        for _ in range(4):  # N only moves the bounds: converges in a step or two
            if n < _MIN_BACKGROUND:
                break
            sample = stats.sample(chosen)
            fitted = _fit_coils(sample.kurtosis)
            if fitted in (0, n_coils):
                break
            n_coils = fitted
            n = _select(stats, mode, n_coils, chosen)
            sample = None
    if n < _MIN_BACKGROUND:
        raise NoBackgroundError(
            f"found only {n} voxels that look like pure noise: the image has no usable background "
            f"(cropped, masked, zero-filled or filtered); {_ASK}"
        )
    n_coils, sigma, misfit = _noise_misfit(sample or stats.sample(chosen), given)
    if misfit is not None:
        raise NoBackgroundError(f"{misfit}; {_ASK}")
    if stats.axes:
        outside, inside = outer_share(chosen.view(bool), stats.axes)
        # Noise surrounds the object: its voxels are denser in the border than in the centre.
        # Anatomy (or dark structures inside it) taken for noise is spread evenly or central.
        if outside < _BORDER_DENSITY * inside and inside < _SPARSE:
            raise NoBackgroundError(
                f"the voxels that look like noise lie inside the image ({100 * inside:.0f}% of its centre "
                f"against {100 * outside:.0f}% of its border), not around the object: the background is "
                f"zero-filled or the image is cropped to the anatomy; {_ASK}"
            )
    return chosen, n_coils, sigma


def _region_sigmas(stats: _Local, full: _Candidates, coils: int) -> tuple[list[tuple[float, int]], np.ndarray]:
    """(MLE sigma, n) of the noise found in each third of the image along the axes, each on its own,
    and the mask (uint8) of the voxels they used.

    Each region gets its own lowest mode and PIESNO test, so a noise level that
    drifts across the field of view shows up even where the global test, tied to
    one level, rejected the noisier part as "signal". A region whose darkest voxels
    do not fit noise with ``coils`` coils (all anatomy) or hold fewer than 500
    voxels or a tenth of the region says nothing and is left out.
    """
    out = []
    mask = np.zeros(stats.arr.shape, dtype=np.uint8)
    for i, (block, n_inside, _, _) in enumerate(full.blocks):
        if n_inside < 1000:
            continue
        lo, hi = band(stats.tables, coils, full.modes[i], _ACCEPT_Z)
        n = int(stats.band(np.maximum(lo, full.lo), hi, block, out=mask[block])[0])
        # A mode held by a tenth of the region or less is a dim structure (a ventricle),
        # not the region's background.
        misfit = "few" if n < max(500, 0.1 * n_inside) else None
        if misfit is None:
            _, sigma, misfit = _noise_misfit(stats.sample(mask, block), coils)
        if misfit is None:
            out.append((sigma, n))
        else:
            mask[block] = 0
    return out, mask


def _stationary(stats: _Local, full: _Candidates, chosen: np.ndarray, n_coils: int, fitted: bool, sigma: float) -> Background:
    """The background after comparing the noise of the image's regions: refused when it varies too much."""
    regions, regional = _region_sigmas(stats, full, n_coils) if stats.axes else ([], None)
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
        chosen |= regional
        n, _, _, _, _, sum_sq, _ = _core.masked_moments(stats.arr, chosen, stats.n_threads)
        sigma = mle_sigma(sum_sq / n, n_coils)
        notes.append(
            f"non-stationary noise: sigma varies {spread:.2f}x across the background ({low[0]:.4g} to "
            f"{high[0]:.4g}); the single sigma is its average"
        )
    return Background(chosen.view(bool), n_coils, fitted, sigma, (low[0], high[0]), tuple(notes))


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

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((128, 128))
    >>> truth[32:96, 32:96] = 100.0  # an object in air
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))  # sigma 10
    >>> found = nl.find_background(image)
    >>> round(found.sigma, 1), found.coils, found.coils_fitted, found.warnings
    (10.0, 1, True, ())
    >>> cropped = image[32:96, 32:96]  # the object only: no air left
    >>> nl.find_background(cropped, coils=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    mri_noiselab.errors.NoBackgroundError: the darkest region's values are not noise with the 1 coil(s) given ...
    """
    given = None if coils is None else check_coils(coils)
    stats = _local_statistics(image, mask, f_size, volume_axis, slice_axis, threads(num_threads))
    full = _candidates(stats)
    mode = full.mode
    chosen, n_coils, sigma = _classify(stats, mode, given)
    return _stationary(stats, full, chosen, n_coils, given is None, sigma)


def search_tiles(magnitude: np.ndarray, side: int, volume_axis: int | None, coils: int | None) -> Background:
    """:func:`find_background` of a volume whose slices are tiles of a ``side`` x ``side`` grid (a
    Siemens mosaic; 1: plain slices), searched as slices; the mask is put back in place."""
    if side == 1:
        return find_background(magnitude, coils, volume_axis=volume_axis)
    n, rows, cols = magnitude.shape
    th, tw = rows // side, cols // side
    tiles = magnitude.reshape(n, side, th, side, tw).transpose(0, 1, 3, 2, 4).reshape(-1, th, tw)
    used = tiles.reshape(len(tiles), -1).any(axis=1)  # the grid's unused tiles are all zero
    found = find_background(np.ascontiguousarray(tiles[used]), coils)
    mask = np.zeros(tiles.shape, dtype=bool)
    mask[used] = found.mask
    back = mask.reshape(n, side, side, th, tw).transpose(0, 1, 3, 2, 4).reshape(n, rows, cols)
    return dataclasses.replace(found, mask=back)


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

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((128, 128))
    >>> truth[32:96, 32:96] = 100.0  # an object in air
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))  # sigma 10
    >>> image[:, :8] = 0  # zero padding
    >>> air = nl.auto_background(image)
    >>> air.dtype, bool(air[:, :8].any()), bool(air[32:96, 32:96].any())
    (dtype('bool'), False, False)
    >>> round(nl.estimate_sigma(image, mask=air).sigma, 1)  # the same as mask="auto"
    10.0
    """
    found = find_background(
        image, coils, mask=mask, f_size=f_size, volume_axis=volume_axis, slice_axis=slice_axis, num_threads=num_threads
    )
    return found.mask


__all__ = ["Background", "auto_background", "find_background", "fit_coils"]
