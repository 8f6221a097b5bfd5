"""Per-voxel tests of the background search as thresholds on <M^2>, for the kernels.

:mod:`mri_noiselab.background` judges each voxel by its window's <M^2> ("local") and the
number n of usable voxels the window holds: against Gamma bounds on local / mode that
depend on n, and through a histogram of log(local). Done voxel by voxel in numpy, these
cost most of the search. Here each test becomes, per n or per histogram edge, a threshold
on local itself, chosen so that the kernels' comparisons (``_core.band_select``) select
and count exactly the voxels that the numpy expressions did, to the last bit:

- ``lo <= local / mode`` holds from the smallest double whose quotient reaches ``lo`` on
  (IEEE division is correctly rounded, hence monotone): found by bisection on the bits;
- ``log(local)`` against a histogram edge E is decided by local against exp(E) except
  within a relative 2^-40 |E| of it (numpy's log and exp are off by under an ulp); the
  few values that close, or that close to the extremes that set the histogram's range,
  are placed by numpy's log of each (all of them, by numpy's histogram, if they are many).

It also holds where the search's regions lie: thirds of the image, and its border.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

_TINY = 5e-324  # the smallest positive double: local >= _TINY is local > 0
_INF_BITS = 0x7FF0000000000000  # +inf; non-negative doubles order as their bit patterns
COLLECT = 4096  # values near thresholds placed one by one
# Beyond these, exp of an edge may leave the normal doubles and lose the guard's precision.
_SAFE = (1e-290, 1e290)


@dataclass(frozen=True)
class CountTables:
    """What the search reads from a window's count n of usable voxels, for n = 0, 1, ...

    The count was a box mean of the 0/1 usable mask times the window volume k: n / volume
    (the kernel divides 1 by each windowed axis in turn) times k in double, which the search
    rounded for its bound tables and compared with k / 2. Replaying that per n keeps every
    decision as it was, while the kernel hands out n exactly.
    """

    index: np.ndarray  # the row of the bound table for count n
    half_full: np.ndarray  # bool: the window held at least half its voxels

    @classmethod
    def of(cls, shape: tuple[int, ...], sizes: tuple[int, ...], n_max: int) -> CountTables:
        inv = 1.0
        for extent, size in zip(shape, sizes):
            if extent > 1 and size > 1:
                inv /= size
        k = float(np.prod(sizes))
        count = (np.arange(n_max + 1, dtype=np.float64) * inv) * k
        return cls(np.rint(count).astype(np.intp), count >= 0.5 * k)

    def candidates(self, need_half: bool) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) per n: local > 0, in a window at least half full when ``need_half``."""
        lo = np.where(self.half_full | (not need_half), _TINY, np.inf)
        return lo, np.full(lo.shape, np.inf)


def thirds(shape: tuple[int, ...], axes: Sequence[int]) -> list[tuple[slice, ...]]:
    """The regions the search compares: thirds of the image along each of ``axes``, as blocks."""
    blocks = []
    for cell in itertools.product(range(3), repeat=len(axes)):
        index: list[slice] = [slice(None)] * len(shape)
        for axis, third in zip(axes, cell):
            n = shape[axis]
            index[axis] = slice(third * n // 3, (third + 1) * n // 3)
        blocks.append(tuple(index))
    return blocks


def outer_share(chosen: np.ndarray, axes: Sequence[int]) -> tuple[float, float]:
    """Densities of chosen voxels in the outer sixth of the image (along ``axes``) and inside it."""
    inner: list[slice] = [slice(None)] * chosen.ndim
    for axis in axes:
        n = chosen.shape[axis]
        index = np.flatnonzero(~((np.arange(n) < n / 6) | (np.arange(n) >= n - n / 6)))
        inner[axis] = slice(int(index[0]), int(index[-1]) + 1) if index.size else slice(0, 0)
    centre = chosen[tuple(inner)]
    n_in = int(np.count_nonzero(centre))
    n_all = int(np.count_nonzero(chosen))
    n_band = chosen.size - centre.size
    outside = (n_all - n_in) / n_band if n_band else 0.0
    inside = n_in / centre.size if centre.size else 0.0
    return outside, inside


def gamma_bounds(k: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on mean / E for a Gamma(k, 1/k) variable at +-z sds (Wilson-Hilferty).

    The local mean of M^2 over n pure-noise voxels, divided by 2 N sigma^2, is
    Gamma(N n, 1/(N n)): chi^2 with 2 N n degrees of freedom over 2 N n.
    """
    c = 1.0 / (9.0 * k)
    lo = np.clip(1.0 - c - z * np.sqrt(c), 0.0, None) ** 3
    hi = (1.0 - c + z * np.sqrt(c)) ** 3
    return lo, hi


def _first_bits(passes: Callable[[np.ndarray], np.ndarray], guess: np.ndarray) -> np.ndarray:
    """Per entry, the smallest bit pattern in [0, +inf] whose double passes (passing is monotone):
    bisection within 8 ulp of ``guess`` where that brackets it, else over all the doubles."""
    g = np.clip(guess, 0.0, np.inf).view(np.int64)
    lo, hi = np.maximum(g - 8, 0), np.minimum(g + 8, _INF_BITS)
    below = np.maximum(lo - 1, 0).view(np.float64)
    held = passes(hi.view(np.float64)) & ((lo == 0) | ~passes(below))
    lo, hi = np.where(held, lo, 0), np.where(held, hi, _INF_BITS)
    while np.any(lo < hi):
        mid = lo + (hi - lo) // 2
        ok = passes(mid.view(np.float64))
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid + 1)
    return lo


def band(tables: CountTables, coils: int, mode: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) per n: ``lo <= local <= hi`` exactly where numpy's ``local / mode`` lies within
    the Gamma bounds of the window's count, the PIESNO test."""
    ratio = coils * np.maximum(np.arange(int(tables.index.max()) + 1, dtype=np.float64), 1.0)
    r_lo, r_hi = (b[tables.index] for b in gamma_bounds(ratio, z))
    lo = _first_bits(lambda x: x / mode >= r_lo, r_lo * mode).view(np.float64)
    hi = (_first_bits(lambda x: x / mode > r_hi, r_hi * mode) - 1).view(np.float64)
    return lo, hi


def bin_width(k: float) -> float:
    """The bins of the noise mode's histogram: a third of the sd of log <M^2> over k noise voxels."""
    sd = 1.0 / math.sqrt(k)
    return sd / 3.0


def _bins(lo: float, hi: float, width: float) -> tuple[int, np.ndarray | None]:
    """The histogram of log(local) over [lo, hi] in bins of ``width``: their number, and their
    edges as numpy.histogram makes them (None below 8 bins: no spread to find a mode in)."""
    nbins = int((hi - lo) / width) + 1
    if nbins < 8:
        return nbins, None
    return nbins, np.histogram_bin_edges(np.empty(0), bins=nbins, range=(lo, lo + nbins * width))


def _near(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """exp(e -+ d): below the first, log(local) < e surely, above the second log(local) > e.
    d, 2^-40 |e|, is thousands of times the error of numpy's log and exp (under 1 ulp)."""
    d = 2.0**-40 * np.maximum(np.abs(e), 1.0)
    return np.exp(e - d), np.exp(e + d)


def _merge(ranges: list[tuple[float, float]]) -> np.ndarray:
    """Sorted boundaries [start, end, start, end, ...] of the union of half-open ``ranges``."""
    merged: list[list[float]] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1)


class LogHistogram:
    """numpy.histogram(numpy.log(values)) over [log min, log max] in bins of ``width``, as the
    search makes it of one set of candidates (the image's, or a region's), added up from the
    parts of the image through counts of the values between thresholds.

    A value whose log could fall either side of an edge, or below the log of the minimum
    or above that of the maximum, lies in a zone of this histogram; the kernel hands those
    (few) values out and numpy's log places them. ``ok`` turns False when the zones held too
    many, or a log showed the extremes' logs are not the range: numpy must then decide.
    """

    def __init__(self, xmin: float, xmax: float, width: float) -> None:
        self.xmin = xmin
        self.ok = _SAFE[0] < xmin <= xmax < _SAFE[1]  # beyond, exp may lose the zones' precision
        self.lo, self.hi = (float(v) for v in np.log(np.array([xmin, xmax])))
        self.nbins, self.edges = _bins(self.lo, self.hi, width)
        self.counts = np.zeros(self.nbins, dtype=np.intp)
        first = float(np.nextafter(xmin, np.inf))  # copies of xmin are certain: their log is lo
        x_lo, x_hi = _near(np.array([self.lo, self.hi]))
        e_lo, self.e_hi = _near(np.empty(0) if self.edges is None else self.edges)
        self.zones = [(first, float(x_hi[0])), (float(x_lo[1]), xmax)]
        self.zones += [(max(s, first), e) for s, e in zip(e_lo.tolist(), self.e_hi.tolist()) if s <= xmax]

    def add(self, bounds: np.ndarray, got: np.ndarray, y: np.ndarray, part_min: float) -> None:
        """Adds a part of the values, the smallest ``part_min``: got[j] of them between bounds[j - 1]
        and bounds[j], bounds the merged zones of all the histograms it adds to and of the part's
        own minimum; ``y`` the logs of the values in the zones (odd j)."""
        if not self.ok or self.edges is None:
            return
        if y.size and (float(y.min()) < self.lo or float(y.max()) > self.hi):
            self.ok = False
            return
        # Between zones a value lies above exactly the edges whose zone ends below it; copies of
        # the minimum (the only values of theirs below its zone) are in the first bin.
        least = np.maximum(np.concatenate([[-np.inf], bounds[1::2]]), part_min)
        past = np.searchsorted(self.e_hi, least, side="right") - 1
        past[least == self.xmin] = 0
        inside = (past >= 0) & (past < self.nbins)
        np.add.at(self.counts, past[inside], got[0::2][inside])
        # In the zones, numpy's own bins of the logs: edges[j] <= y < edges[j + 1], the last closed.
        j = np.searchsorted(self.edges, y, side="right") - 1
        j[y == self.edges[-1]] = self.nbins - 1
        np.add.at(self.counts, j[(j >= 0) & (j < self.nbins)], 1)


Between = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def add_part(hists: Sequence[LogHistogram], between: Between, part_min: float) -> None:
    """Counts a part of the image into ``hists``: ``between(bounds)`` counts its values in the
    intervals between sorted bounds (below the first, between each pair, above the last) and
    returns those in the odd intervals (bounds[2i] <= value < bounds[2i + 1]), or fewer when
    they are too many."""
    first = float(np.nextafter(part_min, np.inf))
    own = _near(np.log(np.array([part_min])))[1]
    bounds = _merge([z for h in hists for z in h.zones] + [(first, float(own[0]))])
    got, near = between(bounds)
    got = got.astype(np.intp)
    if int(got[1::2].sum()) != near.size:
        for h in hists:
            h.ok = False
        return
    y = np.log(near)
    for h in hists:
        h.add(bounds, got, y, part_min)


def noise_mode(hist: LogHistogram, n: int, k: float, values: Callable[[], np.ndarray]) -> float:
    """The lowest well-populated mode of the candidates' local <M^2> (the background's).

    ``hist`` is their histogram of log(local), ``n`` their number and ``k`` the window's
    voxel count; ``values()`` returns them all, for numpy's histogram when ``hist`` cannot
    decide.

    In log space the spread of pure-noise local means is about 1/sqrt(k) whatever
    sigma is, and the mode of log Gamma(k, theta) is exactly log(k theta), the mean.
    Signal only adds to <M^2>, so the background is the lowest mode holding at least
    2% of the voxels; anatomy may be larger and is then ignored.
    """
    lo, hi, counts, edges = hist.lo, hist.hi, hist.counts, hist.edges
    if not hist.ok:
        y = np.log(values())
        lo, hi = float(y.min()), float(y.max())
        nbins, edges = _bins(lo, hi, bin_width(k))
        if edges is not None:
            counts = np.histogram(y, bins=nbins, range=(lo, lo + nbins * bin_width(k)))[0]
    if edges is None:  # (nearly) one value: no spread to find a mode in
        return float(math.exp(0.5 * (lo + hi)))
    nbins = counts.size
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    smooth = np.convolve(counts, kernel / kernel.sum(), mode="same")
    left = np.concatenate([[-1.0], smooth[:-1]])
    right = np.concatenate([smooth[1:], [-1.0]])
    peaks = np.flatnonzero((smooth >= left) & (smooth > right) & (smooth > 0))
    reach = 6  # +-2 sd of the noise peak
    csum = np.concatenate([[0], np.cumsum(counts)])
    need = max(0.02 * n, 20)
    chosen: int | None = None
    for i in peaks:
        mass = csum[min(i + reach + 1, nbins)] - csum[max(i - reach, 0)]
        if mass >= need:
            chosen = int(i)
            break
    if chosen is None:
        chosen = int(np.argmax(smooth))
    return float(math.exp(0.5 * (edges[chosen] + edges[chosen + 1])))
