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


@pytest.mark.parametrize("level", ["x86-64-v3", "x86-64-v4"])
def test_each_optional_build_gives_the_baseline_bits(level: str) -> None:
    import importlib

    from mri_noiselab._kernels import BUILDS

    baseline = _baseline_module()
    assert baseline.__name__ == "mri_noiselab._core"
    try:
        wide = importlib.import_module(BUILDS[level])
    except ImportError:
        pytest.skip(f"no {level} build on this platform")
    if level not in baseline.cpu_levels():
        pytest.skip(f"this CPU cannot run the {level} build")
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1000, (40, 50, 30)).astype(np.float32)
    x[::7, 3, :5] = 0.0  # zeros, and spikes next to them, for the checks and the clamped roots
    x[::9, 4, :5] = 6.5e4
    mask = (np.random.default_rng(6).random(x.shape) > 0.2).astype(np.uint8)
    sigma_map = rng.uniform(5, 50, x.shape)
    for method, m, coils, smap in (
        ("moments", None, 1, None), ("lmmse", None, 1, None), ("lmmse", mask, 4, None), ("lmmse", None, 2, sigma_map)
    ):
        a, ra = baseline.correct(x, 30.0, [7, 6, 5], method, coils, m, smap, 0)
        b, rb = wide.correct(x, 30.0, [7, 6, 5], method, coils, m, smap, 0)
        assert np.array_equal(a, b) and repr(ra) == repr(rb), method  # no FMA contraction: the same arithmetic
    # Stored values: int16 with a rescale per slice, rounded, clipped and cast by the kernel.
    stored = np.rint(x[:, :, :20] * 30).astype(np.int16)
    slopes = rng.uniform(0.5, 2.0, stored.shape[0])
    offsets = rng.uniform(-5, 5, stored.shape[0])
    for method in ("moments", "lmmse"):
        args = (stored, 30.0, [5, 5, 3], method, 1, None, None, 0, slopes, offsets, 1 / slopes, offsets / slopes)
        a, _ = baseline.correct_stored(*args, lo=-32768.0, hi=32767.0)
        b, _ = wide.correct_stored(*args, lo=-32768.0, hi=32767.0)
        assert np.array_equal(a, b), method
    # The box sums with compensated fourth powers, an even and an over-long window among them.
    for window in ([9, 9, 9], [4, 2, 61]):
        for got, want in zip(wide.box_moments(x, window, True), baseline.box_moments(x, window, True)):
            assert np.array_equal(got, want), window
    sa, sb = baseline.sample_stats(x, None, True, 0), wide.sample_stats(x, None, True, 0)
    assert sa.n == sb.n and sa.mean == pytest.approx(sb.mean, rel=1e-14) and sa.std == pytest.approx(sb.std, rel=1e-12)


def test_the_loader_takes_the_best_build_at_or_below_the_one_asked_for() -> None:
    import importlib
    import os
    import subprocess
    import sys

    from mri_noiselab._kernels import BUILDS

    def available(level: str) -> bool:
        try:
            importlib.import_module(BUILDS[level])
        except ImportError:
            return False
        return level in _baseline_module().cpu_levels()

    def loaded(setting: str) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, MRI_NOISELAB_KERNELS=setting)
        code = "from mri_noiselab._kernels import KERNELS, _core; print(KERNELS, _core.__name__)"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)

    # Each setting's candidates, best first: the first one this machine runs is loaded.
    candidates = {
        "auto": ["x86-64-v4", "x86-64-v3"],
        "x86-64-v4": ["x86-64-v4", "x86-64-v3"],
        "x86-64-v3": ["x86-64-v3"],
        "baseline": [],
    }
    for setting, levels in candidates.items():
        want = next((level for level in levels if available(level)), "baseline")
        proc = loaded(setting)
        assert proc.returncode == 0, proc.stderr
        module = BUILDS.get(want, "mri_noiselab._core")
        assert proc.stdout.split() == [want, module], setting
    proc = loaded("avx512")  # a typo warns, and the best build is loaded
    best = next((level for level in candidates["auto"] if available(level)), "baseline")
    assert proc.returncode == 0 and proc.stdout.split()[0] == best
    assert "MRI_NOISELAB_KERNELS='avx512' names no kernel build (auto, baseline, x86-64-v4" in proc.stderr


def _baseline_module():  # noqa: ANN202 - the compiled module has no stub
    # The package attribute _core is the build in use; the baseline is the submodule itself.
    import importlib

    return importlib.import_module("mri_noiselab._core")
