"""The kernels of the automatic background search against scipy and numpy, to the bit.

find_background's per-voxel steps run in C++ (``_core.box_count``, ``band_select``,
``masked_moments``) on thresholds from :mod:`mri_noiselab._bands`; each must give exactly
what the numpy expressions it replaces give: counts as scipy's box filter of the usable
mask, means as ``numpy.mean``, tests as ``lo <= local / mode <= hi`` and histograms as
``numpy.histogram(numpy.log(local))``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from conftest import rician
from mri_noiselab import _bands
from mri_noiselab._kernels import _core
from mri_noiselab.background import find_background


@pytest.mark.parametrize(
    ("shape", "size"),
    [((7, 30, 25), (3, 5, 4)), ((40, 33), (9, 9)), ((5, 6, 7, 3), (3, 3, 3, 1)), ((4, 9), (11, 20)), ((50,), (7,))],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_count_counts_the_usable_voxels_of_each_window(shape, size, dtype, rng: np.random.Generator) -> None:
    image = rng.random(shape).astype(dtype)
    valid = rng.random(shape) < 0.6
    image[~valid] = 0
    image.flat[0] = -1.0
    image.flat[-1] = np.nan
    local, count, nonfinite, negative = _core.box_count(image, list(size), valid.view(np.uint8), 2)
    expected = np.rint(uniform_filter(valid.astype(np.float64), size, mode="reflect") * math.prod(size))
    assert count.dtype == np.uint32 and np.array_equal(count, expected)
    assert nonfinite == int(valid.flat[-1]) and negative == int(valid.flat[0])
    means, _ = _core.box_moments(image, list(size), False, valid.view(np.uint8), 2)
    assert np.array_equal(local, means, equal_nan=True)


def test_find_background_is_the_same_on_float32_and_float64_integer_values(rng: np.random.Generator) -> None:
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in (20, 96, 112)), indexing="ij")
    truth = np.where((x / 0.7) ** 2 + (y / 0.8) ** 2 + (z / 1.3) ** 2 < 1, 400.0, 0.0)
    image = np.rint(rician(truth, 8.0, rng))
    image[..., :6] = 0
    wide, narrow = find_background(image), find_background(image.astype(np.float32))
    assert np.array_equal(wide.mask, narrow.mask) and wide.mask.any()
    assert (wide.sigma, wide.sigma_range, wide.coils) == (narrow.sigma, narrow.sigma_range, narrow.coils)


# The kernel adds in numpy 2's pairwise order, to the bit; numpy 1.x's reductions group the
# terms otherwise (the dependency floor is numpy 1.24), where the means agree to rounding only.
_NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def _same(got: float, mean: np.floating) -> bool:
    return got == float(mean) if _NUMPY2 else math.isclose(got, float(mean), rel_tol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_moments_are_numpy_means_to_the_bit(dtype, rng: np.random.Generator) -> None:
    for n in [1, 7, 8, 9, 127, 128, 129, 1000, 8191, 70_000, 400_000]:
        values = (rng.random(n + 13) * 10 ** rng.uniform(-3, 4)).astype(dtype)
        values[::3] = np.rint(values[::3])
        mask = np.zeros(values.size, dtype=bool)
        mask[rng.choice(values.size, n, replace=False)] = True
        got = _core.masked_moments(values, mask.view(np.uint8), int(rng.integers(1, 4)))
        v = values[mask].astype(np.float64)
        u = v / v.max()
        assert got[:2] == (n, float(v.max()))
        assert _same(got[2] / n, np.mean(u)) and _same(got[3] / n, np.mean(u * u))
        assert _same(got[4] / n, np.mean((u * u) * (u * u)))
        assert _same(got[5] / n, np.mean(np.square(values[mask], dtype=np.float64)))
        assert got[6] == bool(np.all(v == np.round(v)))
    block = rng.random((30, 40, 50))[::-1, 5:35, ::2]  # a strided view, as the regions are
    mask = rng.random(block.shape) < 0.3
    got = _core.masked_moments(block, mask.view(np.uint8), 2)
    assert _same(got[3] / got[0], np.mean((block[mask] / block[mask].max()) ** 2))


def test_band_select_is_the_numpy_test(rng: np.random.Generator) -> None:
    shape = (9, 40, 31)
    values = rng.random(shape) * 100
    index = rng.integers(0, 50, shape).astype(np.uint32)
    mask = rng.random(shape) < 0.8
    lo = rng.random(50) * 40
    hi = lo + rng.random(50) * 60
    edges = np.sort(rng.choice(np.linspace(1, 99, 500), 40, replace=False))
    out = np.full(shape, 7, dtype=np.uint8)
    block = (slice(2, 8), slice(None, None, -1), slice(3, 30))
    n, low, high, counts, odd = _core.band_select(
        values[block], index[block], mask.view(np.uint8)[block], lo, hi, edges, out[block], 10**6, 2
    )
    passed = mask[block] & (lo[index[block]] <= values[block]) & (values[block] <= hi[index[block]])
    v = values[block][passed]
    assert np.array_equal(out[block], passed.view(np.uint8)) and np.all(np.delete(out, np.s_[2:8], 0) == 7)
    assert (n, low, high) == (v.size, v.min(), v.max())
    where = np.searchsorted(edges, v, side="right")
    assert np.array_equal(counts, np.bincount(where, minlength=edges.size + 1))
    assert np.array_equal(odd, np.sort(v[where % 2 == 1]))


@pytest.mark.parametrize("mode", [0.37, 200.0, 1e5 / 3])
def test_band_thresholds_select_what_the_ratio_test_selects(mode: float, rng: np.random.Generator) -> None:
    tables = _bands.CountTables.of((30, 40, 50), (9, 9, 9), 729)
    lo, hi = _bands.band(tables, 2, mode, 3.5)
    ratio = 2 * np.maximum(np.arange(int(tables.index.max()) + 1, dtype=np.float64), 1.0)
    r_lo, r_hi = (b[tables.index] for b in _bands.gamma_bounds(ratio, 3.5))
    n = rng.integers(0, 730, 200_000)
    # Values on and next to every threshold, where a rounding would show.
    local = np.concatenate([lo[n], hi[n], np.nextafter(lo[n], 0), np.nextafter(hi[n], np.inf), rng.random(n.size) * 3 * mode])
    n = np.tile(n, 5)
    numpy_test = (local / mode >= r_lo[n]) & (local / mode <= r_hi[n])
    assert np.array_equal((lo[n] <= local) & (local <= hi[n]), numpy_test)
    assert not numpy_test[2 * n.size // 5 : 3 * n.size // 5].any() or lo.min() == 0


def _between(values: np.ndarray):
    """band_select's histogram and collected values, from numpy (none collected past the cap)."""

    def between(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        where = np.searchsorted(bounds, values, side="right")
        odd = np.sort(values[where % 2 == 1])
        return np.bincount(where, minlength=bounds.size + 1), odd if odd.size <= _bands.COLLECT else odd[:0]

    return between


def _numpy_histogram(values: np.ndarray, width: float) -> tuple[float, float, np.ndarray, np.ndarray]:
    y = np.log(values)
    lo, hi = float(y.min()), float(y.max())
    nbins = int((hi - lo) / width) + 1
    counts, edges = np.histogram(y, bins=nbins, range=(lo, lo + nbins * width))
    return lo, hi, counts, edges


def test_histograms_of_log_from_thresholds_are_numpys(rng: np.random.Generator) -> None:
    """The image's histogram and each part's own, counted together part by part."""
    width = 1 / 27 / 3
    for trial in range(12):
        values = np.exp(rng.normal(5 + trial % 4, 1 + trial % 3, 30_000))
        edges = _numpy_histogram(values, width)[3]
        # Values whose log is an edge, or next to one: only their own log places them.
        near = np.exp(rng.choice(edges[1:-2], 50))
        values = np.concatenate([values, near, np.nextafter(near, 0), np.nextafter(near, np.inf), [values.min()] * 3])
        # Parts alike, or parts of their own ranges (their minima anywhere in the image's bins).
        parts = np.array_split(rng.permutation(values) if trial % 2 else np.sort(values), 3)
        whole = _bands.LogHistogram(float(values.min()), float(values.max()), width)
        own = [_bands.LogHistogram(float(p.min()), float(p.max()), width) for p in parts]
        for part, hist in zip(parts, own):
            _bands.add_part([whole, hist], _between(part), float(part.min()))
        for hist, v in [(whole, values), *zip(own, parts)]:
            lo, hi, counts, edges = _numpy_histogram(v, width)
            assert hist.ok and (hist.lo, hist.hi) == (lo, hi)
            assert np.array_equal(hist.edges, edges) and np.array_equal(hist.counts, counts)


def test_noise_mode_is_the_lowest_populated_mode_also_through_numpy(rng: np.random.Generator) -> None:
    """The background's mode under a larger one of anatomy; the same when values crowd the
    thresholds and numpy's histogram decides."""
    k = 729.0
    width = _bands.bin_width(k)
    values = np.concatenate([np.exp(rng.normal(np.log(200), 0.04, 30_000)), np.exp(rng.normal(np.log(1e5), 0.3, 60_000))])
    edge = float(np.log(values.min())) + 40 * width  # a bin edge in the thick of the noise
    crowded = np.concatenate([values, np.full(_bands.COLLECT + 1, math.exp(edge))])
    for v, fast in [(values, True), (crowded, False)]:
        hist = _bands.LogHistogram(float(v.min()), float(v.max()), width)
        _bands.add_part([hist], _between(v), float(v.min()))
        assert hist.ok == fast
        mode = _bands.noise_mode(hist, v.size, k, lambda v=v: v)
        assert abs(math.log(mode / 200)) < 2 * width
