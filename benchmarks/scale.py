"""Scale benchmark: a DICOM batch serial vs on a Dask LocalCluster, and a 2 GiB volume through dask.

Run: ``python benchmarks/scale.py [--files 200] [--gib 2] [--chunks 64,256,1024]``. Every file goes to a
temporary folder that is deleted at the end. Each volume run is a fresh
subprocess, so its peak resident memory (VmHWM in /proc/self/status, Linux)
is its own. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIGMA = 10.0


def make_dicoms(folder: Path, n: int) -> None:
    """n single-file series of a 128x128 uint16 disc phantom with Rician noise (pydicom only)."""
    from mri_noiselab.dicom import synthetic_mr_image, write_dataset

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:128, :128] - 63.5
    truth = np.where(np.hypot(y, x) < 40, 400.0, 0.0)
    folder.mkdir()
    for i in range(n):
        noisy = np.hypot(truth + rng.normal(0, SIGMA, truth.shape), rng.normal(0, SIGMA, truth.shape))
        write_dataset(synthetic_mr_image(np.rint(noisy).astype(np.uint16)), folder / f"im{i:04d}.dcm")


def dicom_batch(folder: Path, out: Path, workers: int | None) -> float:
    """Seconds to clean the folder, serially or on a new LocalCluster (its start included)."""
    from mri_noiselab.pipeline import clean_source
    from mri_noiselab.roi import roi_mask

    def background(stack):  # noqa: ANN001, ANN202
        return roi_mask(["0:16,0:16", "112:128,112:128"], stack.shape)

    t = time.perf_counter()
    report = clean_source(folder, out, background=background, f_size=5, workers=workers)
    elapsed = time.perf_counter() - t
    assert not report.failures and len(report.written) == len(list(folder.iterdir()))
    return elapsed


def cluster_overhead() -> float:
    """Seconds to start a 2-worker LocalCluster, run one trivial item and stop it."""
    from mri_noiselab.batch import run_batch

    t = time.perf_counter()
    run_batch(len, ["x"], workers=2, paths_of=lambda item: [Path(item)])
    return time.perf_counter() - t


def make_volume(path: Path, shape: tuple[int, int, int]) -> None:
    """A float32 Rician volume written slab by slab (never whole in memory)."""
    rng = np.random.default_rng(1)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    _, ny, nx = shape
    y, x = np.mgrid[:ny, :nx] - (ny - 1) / 2
    plane = np.where(np.hypot(y, x) < 0.35 * ny, 300.0, 0.0).astype(np.float32)
    for z in range(0, shape[0], 16):
        k = min(16, shape[0] - z)
        re = plane + rng.normal(0, SIGMA, (k, ny, nx)).astype(np.float32)
        im = rng.normal(0, SIGMA, (k, ny, nx)).astype(np.float32)
        out[z : z + k] = np.hypot(re, im)
    out.flush()
    del out


class _NpyBlocks:
    """A .npy file read and written block by block through a short-lived memory map.

    Mapping the whole file once would leave every page touched in the
    process's resident set until the end; a map per block keeps only the
    block being copied.
    """

    def __init__(self, path: Path, mode: str = "r") -> None:
        self.path, self.mode = path, mode
        m = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = m.shape, m.dtype, m.ndim

    def __getitem__(self, index: object) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r")[index])

    def __setitem__(self, index: object, value: np.ndarray) -> None:
        m = np.load(self.path, mmap_mode="r+")
        m[index] = value
        m.flush()


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def volume_child(path: Path, out: Path, mode: str, chunks: tuple[int, ...]) -> None:
    """Run in a fresh process: correct the volume and print time and peak RSS as JSON."""
    import mri_noiselab as nl

    if mode in ("blocks", "map_overlap"):
        import dask
        import dask.array as da

        from mri_noiselab.dask import correct

        src = _NpyBlocks(path)
        np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=src.shape).flush()
        t = time.perf_counter()
        # "blocks": each task reads its block and halo from the file; "map_overlap": a dask
        # array, whose blocks take their halos from their neighbours.
        image = src if mode == "blocks" else da.from_array(src, chunks=chunks)
        lazy = correct(image, SIGMA, f_size=10, chunks=chunks)
        with dask.config.set(scheduler="threads", num_workers=2):
            da.store(lazy, _NpyBlocks(out, "r+"), lock=False)
        elapsed = time.perf_counter() - t
    else:
        t = time.perf_counter()
        corrected = nl.correct(np.load(path), SIGMA, f_size=10)
        np.save(out, corrected)
        elapsed = time.perf_counter() - t
    print(json.dumps({"seconds": elapsed, "peak_rss_mib": _peak_rss_mib()}))


def _chunks(text: str) -> tuple[int, ...]:
    return tuple(int(c) for c in text.split(","))


def run_child(*args: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200, help="DICOM files in the batch (default 200)")
    parser.add_argument("--gib", type=float, default=2.0, help="volume size in GiB (default 2)")
    parser.add_argument("--chunks", default="64,256,1024", help="dask block shape (default 64,256,1024: 64 MiB)")
    parser.add_argument("--child", nargs=4, metavar=("IN", "OUT", "MODE", "CHUNK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        volume_child(Path(args.child[0]), Path(args.child[1]), args.child[2], _chunks(args.child[3]))
        return

    import mri_noiselab as nl

    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="noiselab-scale-") as tmp:
        root = Path(tmp)
        make_dicoms(root / "dicom", args.files)
        serial = dicom_batch(root / "dicom", root / "serial", None)
        parallel = dicom_batch(root / "dicom", root / "parallel", 2)
        rows.append((f"{args.files} DICOMs 128x128, serial", f"{serial:.2f} s", f"{args.files / serial:.1f} files/s", ""))
        rows.append((f"{args.files} DICOMs 128x128, --workers 2", f"{parallel:.2f} s", f"{args.files / parallel:.1f} files/s",
                     "LocalCluster start included"))
        rows.append(("LocalCluster of 2 start + stop alone", f"{cluster_overhead():.2f} s", "", "part of the row above"))
        shutil.rmtree(root / "serial")
        shutil.rmtree(root / "parallel")

        nz = int(round(args.gib * 2**30 / (1024 * 1024 * 4)))
        shape = (nz, 1024, 1024)
        volume = root / "volume.npy"
        make_volume(volume, shape)
        gib = np.prod(shape) * 4 / 2**30
        label = f"{nz}x1024x1024 float32 ({gib:.2f} GiB), window 10^3"
        notes = {
            "blocks": f"memmap read per block {args.chunks.replace(',', 'x')}, 2 threads",
            "map_overlap": f"dask array, chunks {args.chunks.replace(',', 'x')}, 2 threads",
            "memory": "np.load + correct + np.save, 2 threads",
        }
        for mode, note in notes.items():
            r = run_child(str(volume), str(root / f"out_{mode}.npy"), mode, args.chunks)
            rows.append((f"{label}, {mode}", f"{r['seconds']:.1f} s", f"peak RSS {r['peak_rss_mib']:.0f} MiB", note))
        a = np.load(root / "out_blocks.npy", mmap_mode="r")
        b = np.load(root / "out_memory.npy", mmap_mode="r")
        diff, count = 0.0, 0
        for z in range(0, nz, 64):
            d = np.abs(a[z : z + 64].astype(np.float64) - b[z : z + 64])
            diff, count = max(diff, float(d.max())), count + int(np.count_nonzero(d))
        verdict = "bitwise equal" if count == 0 else f"{count} voxels differ, max {diff:.2g} (sigma {SIGMA:g})"
        rows.append(("dask (blocks) result vs in-memory result", "", verdict, ""))
        del a, b

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"mri-noiselab {nl.__version__}, {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, load average at the end {load}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
