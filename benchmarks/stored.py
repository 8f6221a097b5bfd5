"""Stored values corrected in numpy steps around the kernel, or in the kernel alone (``correct_stored``).

A (slices, 512, 512) int16 stack, lmmse with the default in-plane window (9 x 9, 1 across
slices), as the pipeline corrects a DICOM series: ``to_float64, rescale, correct, rescale
back, rint, clip, cast``, on the whole stack and in the pipeline's blocks of 8 slices,
against ``correct_stored`` on the whole stack. Each variant runs in a fresh process: its
best wall and CPU times (all threads; steadier than wall time on a shared machine) of a few
runs after the first, and the first run's peak RSS above the process's after the input was
made (VmHWM reset through /proc/self/clear_refs; the output included: 100 MiB of int16 for
200 slices). Every variant's bits are checked against the first's.

    python benchmarks/stored.py                  # 200 slices, identity and per-slice rescale, 2 threads
    python benchmarks/stored.py --slices 40 --threads 1
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import time

import numpy as np

SIGMA = 10.0
VARIANTS = ("numpy, whole stack", "numpy, blocks of 8 slices", "correct_stored")


def stack(slices: int) -> np.ndarray:
    """A disc of 400 in Rician noise of sigma 10, rounded to int16, made slice by slice (no big temporaries)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:512, :512] - 255.5
    truth = np.where(np.hypot(y, x) < 180, 400.0, 0.0)
    out = np.empty((slices, 512, 512), np.int16)
    for k in range(slices):
        out[k] = np.rint(np.hypot(truth + rng.normal(0, SIGMA, truth.shape), rng.normal(0, SIGMA, truth.shape)))
    return out


def rescale(slices: int, per_slice: bool) -> dict[str, np.ndarray] | None:
    """DICOM's per-slice slope and intercept as the stack converts them (unit = the first slope)."""
    if not per_slice:
        return None
    slope = np.linspace(0.8, 1.2, slices)
    intercept = np.linspace(0.0, 10.0, slices)  # >= 0: zero stays a valid magnitude
    unit = slope[0]
    return {"scale": slope / unit, "offset": intercept / unit, "out_scale": unit / slope, "out_offset": intercept / slope}


def numpy_steps(stored: np.ndarray, conv: dict[str, np.ndarray] | None, threads: int) -> np.ndarray:
    """DicomStack.magnitude_block, mri_noiselab.correct, DicomStack.to_stored_block."""
    import mri_noiselab as nl

    m = stored.astype(np.float64)
    if conv is not None:
        m *= conv["scale"][:, None, None]
        m += conv["offset"][:, None, None]
    a = nl.correct(m, SIGMA, (1, 9, 9), "lmmse", num_threads=threads)
    if conv is None:
        v = np.rint(a)
    else:
        v = a * conv["out_scale"][:, None, None]
        v -= conv["out_offset"][:, None, None]
        np.rint(v, out=v)
    np.clip(v, -32768, 32767, out=v)
    return v.astype(stored.dtype)


def run(variant: str, stored: np.ndarray, conv: dict[str, np.ndarray] | None, threads: int) -> np.ndarray:
    if variant == "numpy, whole stack":
        return numpy_steps(stored, conv, threads)
    if variant == "numpy, blocks of 8 slices":
        out = np.empty_like(stored)
        for b in range(0, stored.shape[0], 8):
            part = None if conv is None else {k: v[b : b + 8] for k, v in conv.items()}
            out[b : b + 8] = numpy_steps(stored[b : b + 8], part, threads)
        return out
    from mri_noiselab.stored import correct_stored

    return correct_stored(stored, SIGMA, (1, 9, 9), "lmmse", num_threads=threads, **(conv or {}))


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def child(variant: str, slices: int, per_slice: bool, threads: int, repeat: int) -> None:
    """One variant in this process: prints wall and CPU seconds, extra MiB and a checksum of the output's bits."""
    import mri_noiselab  # noqa: F401 - imported before the baseline: the kernels' pages are not the variant's

    stored = stack(slices)
    conv = rescale(slices, per_slice)
    # Freed temporaries go back to the system, and the peak restarts from here (Linux).
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = status_kib("VmRSS")
    out = run(variant, stored, conv, threads)
    extra = (status_kib("VmHWM") - base) / 1024
    checksum = int(np.bitwise_xor.reduce(out.view(np.uint16).ravel().astype(np.uint64) * np.arange(out.size, dtype=np.uint64)))
    del out
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        run(variant, stored, conv, threads)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    print(wall, cpu, extra, checksum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.slices, args.child[1] == "per slice", args.threads, args.repeat)
        return
    print(f"{args.slices} x 512 x 512 int16, lmmse (1, 9, 9), {args.threads} threads, best of {args.repeat}")
    print(f"{'rescale':10} {'variant':28} {'wall s':>8} {'x kernel':>9} {'CPU s':>8} {'x kernel':>9} {'peak extra MiB':>15}")
    for rescale_kind in ("identity", "per slice"):
        rows, sums = [], set()
        for variant in VARIANTS:
            cmd = [sys.executable, __file__, "--slices", str(args.slices), "--threads", str(args.threads),
                   "--repeat", str(args.repeat), "--child", variant, rescale_kind]
            wall, cpu, extra, checksum = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
            rows.append((variant, float(wall), float(cpu), float(extra)))
            sums.add(checksum)
        fused_wall, fused_cpu = rows[-1][1:3]
        for variant, wall_s, cpu_s, extra_mib in rows:
            print(f"{rescale_kind:10} {variant:28} {wall_s:8.3f} {wall_s / fused_wall:9.2f} {cpu_s:8.3f} "
                  f"{cpu_s / fused_cpu:9.2f} {extra_mib:15.0f}")
        print(f"{'':10} same bits: {'yes' if len(sums) == 1 else 'NO'}")


if __name__ == "__main__":
    main()
