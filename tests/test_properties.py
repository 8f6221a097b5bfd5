"""Property-based checks of the kernel against scipy, and thread safety from Python."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import uniform_filter

import mri_noiselab as nl
from mri_noiselab import _core


@st.composite
def strided_case(draw: st.DrawFn) -> tuple[np.ndarray, tuple[int, ...]]:
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    steps = tuple(draw(st.lists(st.sampled_from([1, 2, -1, -2]), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.dtype(">f8"), np.uint16]))
    seed = draw(st.integers(0, 2**32 - 1))
    base_shape = tuple(n * abs(s) for n, s in zip(shape, steps))
    base = np.random.default_rng(seed).uniform(0, 1000, base_shape).astype(dtype)
    view = base[tuple(slice(None, None, s) for s in steps)]
    window = tuple(draw(st.lists(st.integers(1, 2 * max(shape) + 3), min_size=ndim, max_size=ndim)))
    return view, window


@settings(max_examples=150, deadline=None)
@given(strided_case())
def test_correct_matches_scipy_for_any_view_dtype_and_window(case: tuple[np.ndarray, tuple[int, ...]]) -> None:
    view, window = case
    ref_in = np.asarray(view, dtype=np.float64)
    sigma = 100.0
    expected = np.sqrt(np.clip(uniform_filter(ref_in**2, window, mode="reflect") - 2 * sigma**2, 0, None))
    out = nl.correct(view, sigma, f_size=window, method="moments")
    rtol = 1e-6 if out.dtype == np.float32 else 1e-10
    # Clamped voxels are exactly 0; elsewhere compare in A^2 relative to the largest M^2.
    scale = max(float(np.max(ref_in**2)), 1.0)
    assert np.max(np.abs(out.astype(np.float64) ** 2 - expected**2)) <= rtol * scale


def test_concurrent_calls_from_python_threads_match_serial_ones() -> None:
    rng = np.random.default_rng(3)
    images = [rng.uniform(0, 500, (40, 50, 30)).astype(np.float32) for _ in range(6)]
    serial = [nl.correct(im, 20.0, f_size=5, method=m) for im, m in zip(images, ["moments", "lmmse"] * 3)]
    results: list[np.ndarray | None] = [None] * len(images)

    def work(i: int) -> None:
        results[i] = nl.correct(images[i], 20.0, f_size=5, method=["moments", "lmmse"][i % 2])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        assert got is not None and np.array_equal(got, want)


def test_gil_is_released_during_the_kernel() -> None:
    # While one thread runs a long kernel, another Python thread keeps running.
    image = np.random.default_rng(4).uniform(0, 500, (160, 160, 160)).astype(np.float32)
    ticks = 0
    done = threading.Event()

    def kernel() -> None:
        for _ in range(3):
            _core.correct(image, 20.0, [10, 10, 10], "lmmse", 1, None, None, 1)
        done.set()

    t = threading.Thread(target=kernel)
    t.start()
    while not done.is_set():
        ticks += 1
        done.wait(0.001)
    t.join()
    assert ticks > 5
