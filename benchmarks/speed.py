"""Speed of the correction kernel against a numpy copy and the seed's numpy/scipy steps.

Prints, in one run on the same data (best-of-N wall time after a warm-up, float32):

1. ``mri_noiselab.correct`` (the whole public call: checks, a fresh output array, the
   fused kernel) for each shape, f_size, method (``moments``, ``lmmse``) and thread count
   (1, 2), with the ratios the project tracks: ours / copy (how close to the memory
   floor; a copy reads the input once and writes the output once, as the correction
   does) and seed / ours (the seed's steps after sigma is known: cast, two
   ``uniform_filter``, combine, clamp, sqrt, single-threaded);
2. the derived goals: lmmse / moments and the 1 -> 2 threads speed-up;
3. the portable build (``_core``) against the x86-64-v3 (AVX2) and x86-64-v4 (AVX-512)
   ones (``_core_v3``, ``_core_v4``), where they run.

    python benchmarks/speed.py            # the full tables (a few minutes on 2 cores)
    python benchmarks/speed.py --quick    # small shapes only, for a smoke run

The drop-in ``subtract_noise`` runs the same kernel; the seed's window covers every axis,
``correct``'s leaves the volume axis of the 4-D series alone.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np
from scipy.ndimage import uniform_filter

import mri_noiselab
from mri_noiselab._kernels import BUILDS, KERNELS

SHAPES: dict[str, tuple[int, ...]] = {
    "512^2": (512, 512),
    "256^3": (256, 256, 256),
    "96x96x60x64": (96, 96, 60, 64),
}
QUICK_SHAPES: dict[str, tuple[int, ...]] = {"512^2": (512, 512), "64^3": (64, 64, 64)}
METHODS = ("moments", "lmmse")
THREADS = (1, 2)
SIGMA = 10.0


def seed_steps(image: np.ndarray, sigma: float, f_size: int) -> np.ndarray:
    """The seed's computation after sigma is known: cast, two box filters, combine, clamp, sqrt."""
    m = image.astype(np.float32, copy=False)
    m_ave = uniform_filter(m, size=f_size)
    m_ave_sq = np.square(m_ave)
    mean_sq = uniform_filter(np.square(m), size=f_size)
    a2 = m_ave_sq + (mean_sq - m_ave_sq) - 2 * sigma**2
    a2[a2 < 0] = 0
    return np.sqrt(a2)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of `repeat` calls, after one warm-up call (thread pool, caches, imports)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def phantom(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A bright box in Rician noise, float32, with a noise-only border."""
    a = np.zeros(shape, np.float32)
    inner = tuple(slice(s // 4, s - s // 4) for s in shape)
    a[inner] = 10 * sigma
    noisy = np.hypot(a + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))
    return noisy.astype(np.float32)


def kernel_builds() -> dict[str, ModuleType]:
    """The compiled builds this CPU runs, by name: always the portable one, then the optional ones it has."""
    builds = {"portable": importlib.import_module("mri_noiselab._core")}
    runs = builds["portable"].cpu_levels()
    for level, module in reversed(BUILDS.items()):  # slowest first, as the table's columns
        if level in runs:
            try:
                builds[level] = importlib.import_module(module)
            except ImportError:  # built without it (another CPU family or compiler)
                pass
    return builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None, help="runs per timing (best is kept)")
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeat = args.repeat or (3 if args.quick else 7)
    rng = np.random.default_rng(0)
    builds = kernel_builds()
    print(
        f"mri-noiselab {mri_noiselab.__version__}, kernels in use: {KERNELS}, "
        f"default threads {mri_noiselab.get_num_threads()}, best of {repeat}, float32"
    )
    header = (
        f"{'shape':>12} {'f':>3} {'method':>8} {'thr':>3} {'ours ms':>8} {'copy ms':>8} {'seed ms':>8}"
        f" {'ours/copy':>9} {'seed/ours':>9}"
    )
    print(header)
    ours: dict[tuple[str, int, str, int], float] = {}
    for name, shape in shapes.items():
        image = phantom(shape, SIGMA, rng)
        copy = best_time(functools.partial(np.copy, image), repeat * 2)
        for f_size in (3, 10):
            seed = best_time(functools.partial(seed_steps, image, SIGMA, f_size), max(1, repeat // 3))
            for method in METHODS:
                for threads in THREADS:
                    call = functools.partial(mri_noiselab.correct, image, SIGMA, f_size, method, num_threads=threads)
                    t = best_time(call, repeat)
                    ours[name, f_size, method, threads] = t
                    print(
                        f"{name:>12} {f_size:>3} {method:>8} {threads:>3} {t * 1e3:8.1f} {copy * 1e3:8.2f}"
                        f" {seed * 1e3:8.0f} {t / copy:9.2f} {seed / t:9.1f}"
                    )

    print("\nDerived (same run): lmmse / moments at 2 threads; 1 -> 2 threads speed-up")
    print(f"{'shape':>12} {'f':>3} {'lmmse/moments':>13} {'moments 1->2':>12} {'lmmse 1->2':>10}")
    for name in shapes:
        for f_size in (3, 10):
            ratio = ours[name, f_size, "lmmse", 2] / ours[name, f_size, "moments", 2]
            up_m = ours[name, f_size, "moments", 1] / ours[name, f_size, "moments", 2]
            up_l = ours[name, f_size, "lmmse", 1] / ours[name, f_size, "lmmse", 2]
            print(f"{name:>12} {f_size:>3} {ratio:13.2f} {up_m:12.2f} {up_l:10.2f}")

    if len(builds) < 2:
        print("\nOnly the portable build runs here: no build comparison.")
        return
    wide = [b for b in builds if b != "portable"]
    print(f"\nThe portable build against {' and '.join(wide)}, the kernel called directly (2 threads)")
    print(
        f"{'shape':>12} {'f':>3} {'method':>8} {'portable ms':>11}"
        + "".join(f" {b[-2:] + ' ms':>8}" for b in wide)
        + "".join(f" {'portable/' + b[-2:]:>11}" for b in wide)
    )
    for name, shape in shapes.items():
        if len(shape) == 4:  # the volume axis would need correct()'s own window rule
            continue
        image = phantom(shape, SIGMA, rng)
        for f_size in (3, 10):
            window = [f_size] * len(shape)
            for method in METHODS:
                times = {
                    build: best_time(functools.partial(mod.correct, image, SIGMA, window, method, threads=2), repeat)
                    for build, mod in builds.items()
                }
                p = times["portable"]
                print(
                    f"{name:>12} {f_size:>3} {method:>8} {p * 1e3:11.1f}"
                    + "".join(f" {times[b] * 1e3:8.1f}" for b in wide)
                    + "".join(f" {p / times[b]:11.2f}" for b in wide)
                )


if __name__ == "__main__":
    main()
