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


def gamma_bounds(k: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on mean / E for a Gamma(k, 1/k) variable at +-z sds (Wilson-Hilferty).

    The local mean of M^2 over n pure-noise voxels, divided by 2 N sigma^2, is
    Gamma(N n, 1/(N n)): chi^2 with 2 N n degrees of freedom over 2 N n.
    """
    c = 1.0 / (9.0 * k)
    lo = np.clip(1.0 - c - z * np.sqrt(c), 0.0, None) ** 3
    hi = (1.0 - c + z * np.sqrt(c)) ** 3
    return lo, hi


def _first_bits(passes: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """Per entry, the smallest bit pattern in [0, +inf] whose double passes (passing is monotone)."""
    lo = np.zeros(n, dtype=np.int64)
    hi = np.full(n, _INF_BITS, dtype=np.int64)
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
    lo = _first_bits(lambda x: x / mode >= r_lo, r_lo.size).view(np.float64)
    hi = (_first_bits(lambda x: x / mode > r_hi, r_hi.size) - 1).view(np.float64)
    return lo, hi


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


def _zones(xmin: float, xmax: float, ranges: list[tuple[float, float]]) -> np.ndarray:
    """Sorted boundaries [start, end, start, end, ...] of the union of ``ranges`` within
    (xmin, xmax]: where log(local) must be computed to be placed."""
    first = float(np.nextafter(xmin, np.inf))  # copies of xmin are certain: their log is lo
    merged: list[list[float]] = []
    for start, end in sorted((max(s, first), e) for s, e in ranges if s <= xmax and e > first):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        elif start < end:
            merged.append([start, end])
    return np.array(merged, dtype=np.float64).reshape(-1)


Between = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _fast_histogram(
    between: Between, xmin: float, xmax: float, width: float
) -> tuple[float, float, np.ndarray | None, np.ndarray | None] | None:
    """(lo, hi, counts, edges) of numpy.histogram(log(local)) from counts of local between
    thresholds and the logs of the few values near them; None when those are too many, or
    show that the extremes' logs are not those of the extreme values."""
    if not _SAFE[0] < xmin <= xmax < _SAFE[1]:
        return None
    lo, hi = (float(v) for v in np.log(np.array([xmin, xmax])))
    nbins, edges = _bins(lo, hi, width)
    x_lo, x_hi = _near(np.array([lo, hi]))
    ranges = [(float(np.nextafter(xmin, np.inf)), float(x_hi[0])), (float(x_lo[1]), xmax)]
    e_lo, e_hi = _near(np.empty(0) if edges is None else edges)
    bounds = _zones(xmin, xmax, ranges + list(zip(e_lo.tolist(), e_hi.tolist())))
    got, near = between(bounds)
    got = got.astype(np.intp)
    if int(got[1::2].sum()) != near.size:
        return None
    y = np.log(near)
    if y.size and (float(y.min()) < lo or float(y.max()) > hi):
        return None
    if edges is None:
        return lo, hi, None, None
    counts = np.zeros(nbins, dtype=np.intp)
    counts[0] = got[0]  # below the first zone: xmin's copies, in the first bin
    # Between zones, a value lies above exactly the edges whose zone ends below it.
    past = np.searchsorted(e_hi, bounds[1::2], side="right") - 1
    inside = (past >= 0) & (past < nbins)
    np.add.at(counts, past[inside], got[2::2][inside])
    # In the zones, numpy's own bins of the logs: edges[j] <= y < edges[j + 1], the last bin closed.
    j = np.searchsorted(edges, y, side="right") - 1
    j[y == edges[-1]] = nbins - 1
    np.add.at(counts, j[(j >= 0) & (j < nbins)], 1)
    return lo, hi, counts, edges


def noise_mode(
    between: Between, xmin: float, xmax: float, n: int, k: float,
    values: Callable[[], np.ndarray],
) -> float:
    """The lowest well-populated mode of the candidates' local <M^2> (the background's).

    ``between(bounds)`` counts the candidates' values in the intervals between sorted
    bounds (below the first, between each pair, above the last) and returns those in the
    odd intervals (bounds[2i] <= value < bounds[2i + 1]), or fewer when they are too many;
    ``values()`` returns all of them, for numpy's histogram when the counts cannot decide. ``xmin``, ``xmax`` and ``n`` are
    their range and number, ``k`` the window's voxel count.

    In log space the spread of pure-noise local means is about 1/sqrt(k) whatever
    sigma is, and the mode of log Gamma(k, theta) is exactly log(k theta), the mean.
    Signal only adds to <M^2>, so the background is the lowest mode holding at least
    2% of the voxels; anatomy may be larger and is then ignored.
    """
    sd = 1.0 / math.sqrt(k)
    width = sd / 3.0
    found = _fast_histogram(between, xmin, xmax, width)
    if found is None:
        y = np.log(values())
        lo, hi = float(y.min()), float(y.max())
        nbins, edges = _bins(lo, hi, width)
        counts = None if edges is None else np.histogram(y, bins=nbins, range=(lo, lo + nbins * width))[0]
    else:
        lo, hi, counts, edges = found
    if counts is None or edges is None:  # (nearly) one value: no spread to find a mode in
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
