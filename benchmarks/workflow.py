"""The user's job, timed whole: a folder of DICOM slices in, a derived series out.

Builds one MR series (512x512 int16 slices of a head phantom with Rician noise, sigma 10,
and 16 zero-padded columns on each side, as scanners pad a rectangular field of view),
then times, each as a fresh process so that its peak resident memory is its own:

- the CLI with a background box (`clean SRC -o DST --roi ...`), on all cores and on one;
- the CLI with the automatic background (`clean SRC -o DST`);
- the CLI with a background box and a 9x9x9 window (across slices: streamed with a halo);
- the seed's how-to, step for step, in a loop over the files: dcmread, float32, sigma =
  std(ROI)/0.655, scipy's uniform_filter of M^2, subtraction, clip, cast, new UID, save_as;
- a bare pydicom loop: dcmread, pixel_array, new UID, save_as (the floor of any pydicom tool);
- a plain copy of the folder (shutil.copytree).

    python benchmarks/workflow.py                 # 200 slices, median of 3
    python benchmarks/workflow.py --slices 1000 --repeats 1 --skip seed bare copy

The CLI runs once on all cores (a worker process per core) and once with ``--threads 1``
(no worker process). Prints wall time, peak RSS (of the process, and of its largest worker)
and the ratios to the seed loop and the bare loop; the runs take turns, so that each sees
the same moments of a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIGMA = 10.0
PAD = 16
ROI = "0:30,80:430"  # above the head: rows 0-29, columns 80-429 (away from the zero padding)


def make_series(folder: Path, slices: int, size: int) -> None:
    """One series of `slices` single-frame MR files written with pydicom alone."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size] / (size - 1) * 2 - 1
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    folder.mkdir(parents=True)
    for k in range(slices):
        z = 2 * k / max(slices - 1, 1) - 1
        r = (x / 0.7) ** 2 + ((y + 0.05) / 0.8) ** 2 + (z / 1.2) ** 2
        truth = np.where(r < 1, 600.0, 0.0) + np.where(r < 0.8, 300.0 * (1 + 0.3 * np.sin(12 * x) * np.cos(9 * y)), 0.0)
        noisy = np.hypot(truth + rng.normal(0, SIGMA, truth.shape), rng.normal(0, SIGMA, truth.shape))
        pixels = np.rint(noisy).astype(np.int16)
        pixels[:, :PAD] = 0
        pixels[:, -PAD:] = 0
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.ImageType = "MR", ["ORIGINAL", "PRIMARY", "M", "ND"]
        ds.PatientName, ds.PatientID = "Phantom^Workflow", "WF0001"
        ds.SeriesNumber, ds.InstanceNumber = 5, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-128.0, -128.0, float(k)]
        ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1.0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"IM{k + 1:05d}.dcm", enforce_file_format=True)


SEED_LOOP = r"""
import sys, numpy as np, pydicom
from pathlib import Path
from pydicom.uid import generate_uid
from scipy.ndimage import uniform_filter
src, dst, f = Path(sys.argv[1]), Path(sys.argv[2]), 3
dst.mkdir()
for path in sorted(src.iterdir()):
    ds = pydicom.dcmread(path)
    img = ds.pixel_array.astype(np.float32)
    bkg = img[0:100, 80:430]
    sigma = np.std(bkg) / 0.655
    mean = uniform_filter(img, size=f)
    var = uniform_filter(img * img, size=f) - mean * mean
    a2 = np.clip(mean * mean + var - 2 * sigma * sigma, 0, None)
    out = np.clip(np.sqrt(a2), 0, 2 ** (ds.BitsStored - 1) - 1).astype(ds.pixel_array.dtype)
    ds.PixelData = out.tobytes()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dst / path.name)
"""

BARE_LOOP = r"""
import sys, pydicom
from pathlib import Path
from pydicom.uid import generate_uid
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
dst.mkdir()
for path in sorted(src.iterdir()):
    ds = pydicom.dcmread(path)
    ds.pixel_array
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(dst / path.name)
"""

COPY = r"""
import shutil, sys
shutil.copytree(sys.argv[1], sys.argv[2])
"""

CLI = r"""
import sys
from mri_noiselab.cli import main
code = main(sys.argv[1:])
if code:
    sys.exit(code)
"""

# Appended to every script: the process's own peak resident memory and its largest worker's (Linux).
PEAK = r"""
import json, resource
rss = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"peak_kib": rss, "worker_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def run(script: str, args: list[str]) -> tuple[float, float, float]:
    """(wall seconds, peak RSS MiB, the largest worker process's peak RSS MiB) of one fresh process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script + PEAK, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr}")
    peaks = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, peaks["peak_kib"] / 1024, peaks["worker_kib"] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], help="runs to leave out (by the start of their name)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mri-noiselab-workflow-") as tmp:
        root = Path(tmp)
        src = root / "series"
        make_series(src, args.slices, args.size)
        size_mib = sum(p.stat().st_size for p in src.iterdir()) / 2**20
        pixels_mib = args.slices * args.size**2 * 2 / 2**20
        runs = {
            "CLI --roi": (CLI, ["clean", "-q", str(src), "-o", "{out}", "--roi", ROI]),
            "CLI --roi --threads 1": (CLI, ["clean", "-q", str(src), "-o", "{out}", "--roi", ROI, "--threads", "1"]),
            "CLI automatic background": (CLI, ["clean", "-q", str(src), "-o", "{out}"]),
            "CLI --roi, 9x9x9 window": (CLI, ["clean", "-q", str(src), "-o", "{out}", "--roi", ROI, "--f-size", "9,9,9"]),
            "seed how-to loop": (SEED_LOOP, [str(src), "{out}"]),
            "bare pydicom loop": (BARE_LOOP, [str(src), "{out}"]),
            "copy of the folder": (COPY, [str(src), "{out}"]),
        }
        runs = {k: v for k, v in runs.items() if not any(k.startswith(s) for s in args.skip)}
        results: dict[str, tuple[float, float, float]] = {}
        # Round robin: every run sees the machine's noise of the same moments.
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
        for i in range(args.repeats):
            for name, (script, template) in runs.items():
                out = root / f"out-{i}"
                samples[name].append(run(script, [a.replace("{out}", str(out)) for a in template]))
                shutil.rmtree(out)
        for name, got in samples.items():
            results[name] = (statistics.median(g[0] for g in got), max(g[1] for g in got), max(g[2] for g in got))
    seed = results.get("seed how-to loop", (float("nan"),))[0]
    bare = results.get("bare pydicom loop", (float("nan"),))[0]
    print(f"{args.slices} slices of {args.size}x{args.size} int16 ({size_mib:.0f} MiB), median of {args.repeats}, "
          f"{os.cpu_count()} cores")
    print("| run | wall s | × seed loop | × bare loop | peak RSS MiB | largest worker MiB |\n|---|---|---|---|---|---|")
    for name, (wall, peak, worker) in results.items():
        print(f"| {name} | {wall:.2f} | {wall / seed:.2f} | {wall / bare:.2f} | {peak:.0f} | {worker:.0f} |")
    if "CLI --roi" in results and "CLI automatic background" in results:
        print(f"\nautomatic background / --roi: {results['CLI automatic background'][0] / results['CLI --roi'][0]:.2f}")
    if "CLI --roi, 9x9x9 window" in results:
        print(f"3-D window's peak RSS / the series' pixel bytes: {results['CLI --roi, 9x9x9 window'][1] / pixels_mib:.2f}")


if __name__ == "__main__":
    main()
