"""The compiled box-moment kernel against scipy.ndimage.uniform_filter (mode="reflect")."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from mri_noiselab import _core

SHAPES = [(7,), (1,), (5, 8), (40, 3), (3, 130), (200,), (6, 5, 4), (9, 1, 4), (3, 4, 5, 6), (2, 3, 2, 3)]


def _sizes(n: int) -> list[int]:
    # 1 .. 2n+3, covering odd, even and longer-than-the-axis windows.
    return sorted({1, 2, 3, 4, max(1, n - 1), n, n + 1, 2 * n, 2 * n + 3})


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_box_mean_of_m2_matches_scipy_for_every_window(shape: tuple[int, ...], rng: np.random.Generator) -> None:
    x = rng.uniform(0, 100, shape)
    per_axis = [_sizes(n) for n in shape]
    combos = list(itertools.product(*per_axis))
    if len(combos) > 60:  # keep 4-D affordable: a fixed, seeded sample of the grid
        picks = rng.choice(len(combos), 60, replace=False)
        combos = [combos[i] for i in picks]
    for size in combos:
        m2, m4 = _core.box_moments(x, list(size), True)
        np.testing.assert_allclose(m2, uniform_filter(x**2, size, mode="reflect"), rtol=1e-11, err_msg=str(size))
        # scipy's own running sums drift by rounding relative to the largest x**4 they carried
        # (ours for M^4 are compensated), hence the absolute term.
        np.testing.assert_allclose(
            m4, uniform_filter(x**4, size, mode="reflect"), rtol=1e-11, atol=1e-14 * np.max(x**4), err_msg=str(size)
        )


def test_float32_input_is_accumulated_in_double(rng: np.random.Generator) -> None:
    x = rng.uniform(0, 4000, (64, 64)).astype(np.float32)
    m2, _ = _core.box_moments(x, [10, 10])
    ref = uniform_filter(x.astype(np.float64) ** 2, 10, mode="reflect")
    np.testing.assert_allclose(m2, ref, rtol=1e-12)


def test_strided_reversed_and_readonly_views_are_read_in_place(rng: np.random.Generator) -> None:
    base = rng.uniform(0, 10, (20, 30))
    view = base[::-2, 1::3]
    view.flags.writeable = False
    m2, _ = _core.box_moments(view, [3, 4])
    np.testing.assert_allclose(m2, uniform_filter(np.ascontiguousarray(view) ** 2, (3, 4), mode="reflect"), rtol=1e-12)


def test_masked_box_mean_divides_by_the_in_mask_count(rng: np.random.Generator) -> None:
    x = rng.uniform(0, 10, (12, 9))
    mask = rng.random((12, 9)) > 0.3
    m2, _ = _core.box_moments(x, [3, 5], False, mask.astype(np.uint8))
    num = uniform_filter(np.where(mask, x**2, 0.0), (3, 5), mode="reflect")
    den = uniform_filter(mask.astype(float), (3, 5), mode="reflect")
    expected = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    np.testing.assert_allclose(m2, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_results_are_bit_identical_for_any_thread_count(threads: int, rng: np.random.Generator) -> None:
    x = rng.uniform(0, 1e4, (70, 33, 41)).astype(np.float32)
    ref, _ = _core.box_moments(x, [10, 10, 10], False, None, 1)
    got, _ = _core.box_moments(x, [10, 10, 10], False, None, threads)
    assert np.array_equal(got, ref)
    out1, _ = _core.correct(x, 50.0, [10, 10, 10], "lmmse", 1, None, None, 1)
    outn, _ = _core.correct(x, 50.0, [10, 10, 10], "lmmse", 1, None, None, threads)
    assert np.array_equal(out1, outn)


def test_kernel_rejects_unsupported_dtypes_and_window_lengths() -> None:
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.box_moments(np.ones((3, 3), np.int16), [1, 1])
    with pytest.raises(TypeError, match="float32 or float64"):
        _core.box_moments(np.ones((3, 3), ">f8"), [1, 1])
    with pytest.raises(ValueError, match="one size per axis"):
        _core.box_moments(np.ones((3, 3)), [1])
    with pytest.raises(ValueError, match="window sizes must be >= 1"):
        _core.box_moments(np.ones((3, 3)), [0, 1])


@pytest.mark.parametrize("snr", [800, 20000])
def test_fourth_moment_variance_survives_a_bright_region(snr: int) -> None:
    """<M^4> - <M^2>^2 in the background next to very bright tissue, against exact integer sums.

    Plain running sums in double keep rounding residue of the tissue's huge M^4 in the
    background that follows (10% errors at A/sigma = 2e4); the compensated sums must
    stay accurate far beyond the variance's own sampling error (about 30% for 81 samples).
    """
    rng = np.random.default_rng(1)
    truth = np.zeros((256, 256))
    truth[60:200, 60:200] = 5.0 * snr
    m = np.rint(np.hypot(truth + rng.normal(0, 5, truth.shape), rng.normal(0, 5, truth.shape))).astype(np.int64)
    w = 9
    padded = np.pad(m, w // 2, mode="symmetric").astype(object)  # numpy "symmetric" is scipy "reflect"

    def box_sum(a: np.ndarray) -> np.ndarray:  # Python-int sums over every window
        return np.lib.stride_tricks.sliding_window_view(a, (w, w)).sum(axis=(-2, -1))

    s2, s4 = box_sum(padded**2), box_sum(padded**4)  # exact Python integers
    exact_var = np.frompyfunc(float, 1, 1)(s4 * w**2 - s2**2).astype(float) / w**4
    m2, m4 = _core.box_moments(m.astype(np.float32), [w, w], True)
    background = truth == 0
    rel = np.abs((m4 - m2**2) - exact_var)[background] / exact_var[background]
    assert rel.max() < 1e-6


def test_the_x86_64_v3_build_gives_the_baseline_results() -> None:
    import importlib

    baseline = _baseline_module()
    assert baseline.__name__ == "mri_noiselab._core"
    try:
        _core_v3 = importlib.import_module("mri_noiselab._core_v3")
    except ImportError:
        pytest.skip("no x86-64-v3 build on this platform")
    if not baseline.cpu_has_x86_64_v3():
        pytest.skip("this CPU cannot run the x86-64-v3 build")
    x = np.random.default_rng(5).uniform(0, 1000, (40, 50, 30)).astype(np.float32)
    mask = (np.random.default_rng(6).random(x.shape) > 0.2).astype(np.uint8)
    for method, m in (("moments", None), ("lmmse", None), ("lmmse", mask)):
        a, _ = baseline.correct(x, 30.0, [7, 6, 5], method, 2, m, None, 0)
        b, _ = _core_v3.correct(x, 30.0, [7, 6, 5], method, 2, m, None, 0)
        assert np.array_equal(a, b), method  # no FMA contraction: the same arithmetic, wider vectors
    sa, sb = baseline.sample_stats(x, None, True, 0), _core_v3.sample_stats(x, None, True, 0)
    assert sa.n == sb.n and sa.mean == pytest.approx(sb.mean, rel=1e-14) and sa.std == pytest.approx(sb.std, rel=1e-12)


def _baseline_module():  # noqa: ANN202 - the compiled module has no stub
    # The package attribute _core is the build in use; the baseline is the submodule itself.
    import importlib

    return importlib.import_module("mri_noiselab._core")
