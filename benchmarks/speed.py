"""Speed of subtract_noise against the seed's numpy/scipy steps and a numpy copy.

Prints one table, every row measured in the same run on the same data:
best-of-N wall time of each, and the ratios the project tracks
(seed / ours: how many times faster; ours / copy: how close to the memory floor).

    python benchmarks/speed.py            # the full table (a few minutes on 2 cores)
    python benchmarks/speed.py --quick    # small shapes only, for a smoke run
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter

import mri_noiselab
from mri_noiselab._kernels import KERNELS

SHAPES: dict[str, tuple[int, ...]] = {
    "512^2": (512, 512),
    "256^3": (256, 256, 256),
    "96x96x60x64": (96, 96, 60, 64),
}
QUICK_SHAPES: dict[str, tuple[int, ...]] = {"512^2": (512, 512), "64^3": (64, 64, 64)}


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
    fn()  # warm up: thread pool, caches, lazy imports
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def phantom(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """A bright box in Rician noise, float32, with a noise-only border for the background."""
    a = np.zeros(shape, np.float32)
    inner = tuple(slice(s // 4, s - s // 4) for s in shape)
    a[inner] = 10 * sigma
    noisy = np.hypot(a + rng.normal(0, sigma, shape), rng.normal(0, sigma, shape))
    return noisy.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None, help="runs per timing (best is kept)")
    args = parser.parse_args()
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeat = args.repeat or (3 if args.quick else 5)
    rng = np.random.default_rng(0)
    sigma = 10.0
    print(
        f"mri-noiselab {mri_noiselab.__version__}, kernels {KERNELS}, "
        f"threads={mri_noiselab.get_num_threads()}, best of {repeat}"
    )
    print(f"{'shape':>12} {'f':>3} {'ours ms':>9} {'seed ms':>9} {'copy ms':>8} {'seed/ours':>10} {'ours/copy':>10}")
    for name, shape in shapes.items():
        image = phantom(shape, sigma, rng)
        # The usual ROI: a corner box in-plane, on every slice (as the CLI's --roi R0:R1,C0:C1).
        background = image[(slice(None),) * (len(shape) - 2) + (slice(0, shape[-2] // 8), slice(0, shape[-1] // 8))]
        for f_size in (3, 10):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ours = best_time(lambda: mri_noiselab.subtract_noise(image, background, f_size=f_size), repeat)
            seed = best_time(lambda: seed_steps(image, sigma, f_size), max(1, repeat // 2))
            copy = best_time(lambda: np.copy(image), repeat * 2)
            print(
                f"{name:>12} {f_size:>3} {ours * 1e3:9.1f} {seed * 1e3:9.1f} {copy * 1e3:8.1f}"
                f" {seed / ours:10.1f} {ours / copy:10.2f}"
            )


if __name__ == "__main__":
    main()
