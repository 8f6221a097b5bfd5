"""The ``mri-noiselab`` command: parse arguments into options, call the pipeline, report.

Exit codes: 0 success; 1 some files of a batch failed (the others were
written); 2 bad input or usage (nothing written); 3 an internal error;
130 interrupted (Ctrl-C), 143 terminated (SIGTERM). Every failure is one line
on stderr, never a traceback; the code says what was written even when stdout
is a closed pipe or the console cannot show every character.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, cast

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from mri_noiselab._args import DEFAULT_F_SIZE, ESTIMATORS, METHODS, read_sigma_file
from mri_noiselab._console import Console, Terminated, sigterm_interrupts
from mri_noiselab._files import DEFAULT_MAX_IMAGE_BYTES, size_text
from mri_noiselab._kernels import _core
from mri_noiselab._progress import ProgressBar
from mri_noiselab.clean import BackgroundSpec, CleanOptions, CleanResult, SigmaGroup, Volume
from mri_noiselab.demo import run_example
from mri_noiselab.dicom.series import Skip
from mri_noiselab.errors import PLOT_INSTALL, Failure, NoBackgroundError, NotEligibleError
from mri_noiselab.bids import DEFAULT_DESC, dataset_root
from mri_noiselab.nifti import NiftiMask, is_nifti_path
from mri_noiselab.pipeline import BatchReport, VolumeReport, clean_source, estimate_source_sigma
from mri_noiselab.planning import source_format
from mri_noiselab.roi import Roi, parse_roi, roi_mask

PROG = "mri-noiselab"
ESTIMATOR_HELP = (
    "σ from the background: mle (default, the most precise), mean (efficiency 0.91-1) or std (the standard "
    "deviation scaled for N coils; for 1 coil std/0.655, the estimator of mri-noiselab 0.1; efficiency 0.45 "
    "for 1 coil but about 1/(2N) for N coils, 0.06 at N = 8: it needs 1/efficiency times the background "
    "pixels of mle for the same precision)"
)
EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_TERMINATED = 128 + signal.SIGTERM
SIGMA_HINT = "use --sigma VALUE with σ from a noise scan or an earlier run"
INCLUDE_DERIVED_HELP = ("DICOM: also correct derived images, computed maps and projections (ADC, FA, MIP, ...) and "
                        "localizers; phase, real and imaginary images, other modalities and mri-noiselab's own "
                        "outputs are always skipped")
DERIVED_HINT = "--include-derived corrects derived images too"
PER_VOLUME_HELP = ("one σ per volume (each volume of a 4-D NIfTI, each stack of a DICOM series: echo, b-value, time "
                   "point, multi-frame file) instead of one per series or file, for noise that differs between them "
                   "(a warning says when one σ does not fit a 4-D image's volumes); a 3-D NIfTI keeps its one σ")
# Up to this many skipped files are named one per line; more are counted per reason (-v names each).
SKIPS_LISTED = 10


class _UsageError(Exception):
    """Bad command line; argparse's own errors are routed here to keep them to one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see {self.prog} --help)")


def _roi(text: str) -> Roi:
    try:
        return parse_roi(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """A size in bytes: a number with an optional binary unit, ``2G``, ``512MiB``, ``1.5 GB``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if match is None or float(match[1]) * _UNITS[match[2].upper()] < 1:
        raise argparse.ArgumentTypeError(f"expected a size such as 2G or 512M, got {text!r}")
    return int(float(match[1]) * _UNITS[match[2].upper()])


def _f_size(text: str) -> int | tuple[int, ...]:
    parts = text.split(",")
    if len(parts) not in (1, 2, 3):
        raise argparse.ArgumentTypeError(f"expected N, ROWS,COLS or ROWS,COLS,SLICES, got {text!r}")
    sizes = tuple(_positive_int(p.strip()) for p in parts)
    return sizes[0] if len(sizes) == 1 else sizes


def _shared() -> tuple[_Parser, _Parser]:
    """The options of every command (talk) and of those that read a background."""
    common = _Parser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    talk.add_argument("-v", "--verbose", action="store_true", help="also print each file name")
    background = _Parser(add_help=False)
    where = background.add_mutually_exclusive_group()
    where.add_argument(
        "--roi", action="append", type=_roi, metavar="R0:R1,C0:C1[,S0:S1]",
        help="background box, zero-based, stop excluded: rows and columns on every slice (DICOM rows and columns, "
        "NIfTI x and y), optionally a slice range; repeat to merge several boxes. Without --roi or --mask the "
        "background is found automatically",
    )
    where.add_argument("--mask", metavar="FILE", type=Path,
                       help="NIfTI: background mask on the images' grid (x, y, z, or the whole 4-D shape); its "
                       "non-zero voxels hold noise only")
    background.add_argument("--coils", type=_positive_int, default=None,
                            help="receiver coils combined by sum of squares (default: fitted to the background, "
                            "which also gives an adaptive combination's effective count; 1 with clean --sigma)")
    background.add_argument("--sigma-per-volume", action="store_true", help=PER_VOLUME_HELP)
    background.add_argument("--include-derived", action="store_true", help=INCLUDE_DERIVED_HELP)
    background.add_argument("--max-image-size", type=_size, default=DEFAULT_MAX_IMAGE_BYTES, metavar="SIZE",
                            help="refuse images that declare more uncompressed pixel data than this, before reading "
                            f"them (default {size_text(DEFAULT_MAX_IMAGE_BYTES)}; e.g. 4G for larger genuine images)")
    return common, background


def _add_clean(sub: Any, parents: list[_Parser]) -> None:
    clean = sub.add_parser(
        "clean", parents=parents, help="correct a DICOM or NIfTI file or folder and write derived files",
        description="Estimate σ from the background (or take --sigma), remove the noise bias, and write new "
        "files: DICOM objects with new UIDs and derivation metadata, or NIfTI images with the source's header. "
        "Inputs are never modified; outputs are written atomically. On a terminal, a progress bar on stderr "
        "counts the input files.",
    )
    clean.add_argument("source", metavar="SRC",
                       help="a DICOM or NIfTI (.nii, .nii.gz) file, or a folder (searched recursively) of either")
    clean.add_argument("-o", "--output", metavar="DST", required=True,
                       help="output file, or folder (for a folder SRC: one file per input file, same relative names)")
    how = clean.add_mutually_exclusive_group()
    how.add_argument("--sigma", type=_positive_float, metavar="VALUE",
                     help="known σ in stored units (from a noise scan or an earlier run): skips estimation")
    how.add_argument("--sigma-file", type=Path, metavar="FILE",
                     help="σ from a file: one value, or one per volume of a 4-D image (numbers separated by spaces, "
                     "commas or lines, or the output of sigma --json)")
    how.add_argument("--estimator", choices=ESTIMATORS, default="mle", help=ESTIMATOR_HELP)
    clean.add_argument("--sigma-map-out", metavar="FILE_OR_DIR",
                       help="NIfTI: also write the σ used as a float32 map on each image's grid (x, y, z; x, y, z, t "
                       "with σ per volume), as dwidenoise -noise: a file for one image, else a folder (ending with /) "
                       "mirroring the outputs, maps named *_noise (BIDS: desc-noise)")
    bids = clean.add_mutually_exclusive_group()
    bids.add_argument("--bids-desc", metavar="LABEL", default=DEFAULT_DESC,
                      help="BIDS source (a dataset with dataset_description.json) into an output folder: the desc- "
                      f"label of the outputs (default {DEFAULT_DESC}); sidecars are carried and the output folder "
                      "gets a derivative dataset_description.json")
    bids.add_argument("--no-bids", action="store_true", help="write plain outputs even for a BIDS source")
    clean.add_argument("--method", choices=METHODS, default=CleanOptions.method,
                       help="lmmse (default; keeps edges), moments (the box mean of M² of mri-noiselab 0.1, which "
                       "blurs edges; 0.1's default window was 10) or pointwise (no window)")
    clean.add_argument("--f-size", type=_f_size, default=CleanOptions.f_size, metavar="N",
                       help=f"window: N gives N x N within each slice (default {DEFAULT_F_SIZE}, widened with many coils "
                       "to hold 4 (N + 1) pixels: 13 at 32 coils); slices are thicker "
                       "than pixels, and volumes, echoes and time points are other images, so they are not mixed. "
                       "ROWS,COLS or ROWS,COLS,SLICES (the order of --roi) for other windows")
    clean.add_argument("--qc", metavar="FILE.png", help="write a QC figure (needs matplotlib)")
    clean.add_argument("--json", action="store_true",
                       help="print one JSON object: each volume's input and output files, σ and its standard error, "
                       "coils, estimator, method, window and DICOM SeriesInstanceUIDs; the inputs skipped and why, "
                       "the outputs kept (--skip-existing), the failures; the version")
    clean.add_argument("--threads", type=_positive_int, metavar="N", help="kernel threads (default: all cores)")
    clean.add_argument("--uid-prefix", metavar="PREFIX",
                       help="DICOM: root for the new UIDs, e.g. 1.2.826.0.1.3680043.10.1234.")
    existing = clean.add_mutually_exclusive_group()
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave outputs that already exist alone and write the missing ones (finishes an "
                          "interrupted run with the same options; a partly written DICOM series keeps its "
                          "SeriesInstanceUID)")
    existing.add_argument("--force", action="store_true",
                          help="replace outputs and QC figures that already exist (without it, or --skip-existing, "
                          "a run that would replace a file writes nothing); inside the input folder only earlier "
                          "outputs of mri-noiselab are replaced")
    where = clean.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, metavar="N",
                       help="process files in parallel on a local Dask cluster of N worker processes (needs the dask extra)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="send the files to an existing Dask cluster, e.g. tcp://host:8786 (its workers must see the same paths)")
    clean.set_defaults(run=_clean)


def _parser() -> _Parser:
    common, background = _shared()
    parser = _Parser(prog=PROG, description="Rician noise bias correction of MR magnitude DICOM and NIfTI images.",
                     epilog="exit codes: 0 ok, 1 some files failed, 2 bad input, 3 internal error, 130 interrupted, "
                     "143 terminated")
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {_core.__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_clean(sub, [common, background])
    sigma = sub.add_parser(
        "sigma", parents=[common, background], help="estimate σ from the background",
        description="Report σ, the number of background pixels, the mean/std ratio and warnings: one σ per "
        "DICOM series (pooled over its echoes, b-values, time points and files) or NIfTI image.",
    )
    sigma.add_argument("source", metavar="SRC", help="a DICOM or NIfTI file, or a folder")
    sigma.add_argument("--estimator", choices=ESTIMATORS, default="mle", help=ESTIMATOR_HELP)
    sigma.add_argument("--json", action="store_true", help="print a JSON list, one object per series (or volume)")
    sigma.set_defaults(run=_sigma)
    demo = sub.add_parser(
        "demo", parents=[common], help="clean a generated phantom and compare σ with the truth",
        description="Generate an MR phantom with Rician noise as DICOM, clean it, and write the output "
        "DICOM and a QC figure. A re-run replaces its own previous files.",
    )
    demo.add_argument("-o", "--output", metavar="DIR", default="mri-noiselab-demo",
                      help="folder for the demo files (default ./mri-noiselab-demo)")
    demo.set_defaults(run=_demo)
    return parser


def _roi_mask(rois: Sequence[Roi], volume: Volume) -> np.ndarray:
    return roi_mask(rois, volume.shape, axes=volume.axes)


def _background(args: argparse.Namespace) -> BackgroundSpec:
    """The boxes of --roi or the --mask file on each volume (functions a worker can run), else the automatic search."""
    if args.mask is not None:
        if dataset_root(args.source) is None and source_format(args.source) != "nifti":
            raise ValueError("--mask is a NIfTI mask, for NIfTI inputs: use --roi for DICOM")
        return NiftiMask(args.mask).check()
    return functools.partial(_roi_mask, tuple(args.roi)) if args.roi else None


def _options(args: argparse.Namespace, **more: Any) -> CleanOptions:
    return CleanOptions(estimator=args.estimator, coils=args.coils, per_volume=args.sigma_per_volume,
                        include_derived=args.include_derived, **more)


def _progress(args: argparse.Namespace, err: TextIO) -> tuple[Callable[[int], None], Callable[[Path], None], Callable[[], None]]:
    """A bar on stderr when it is a terminal and the run has more than one file (not with -q or --json);
    with --verbose, a "done: NAME" line per file, above the bar if there is one."""
    bar: list[ProgressBar] = []

    def start(total: int) -> None:
        if total > 1 and not args.quiet and not args.json and err.isatty():
            bar.append(ProgressBar(err, total))

    def step(path: Path) -> None:
        if args.verbose:
            (bar[0].print_above if bar else lambda s: print(s, file=err))(f"done: {path.name}")
        if bar:
            bar[0].step()

    def close() -> None:
        if bar:
            bar.pop().close()

    return start, step, close


def _report_failures(failures: Sequence[Failure], total: int, err: TextIO, *, verbose: bool = False,
                     done: str = "written") -> int:
    for failure in failures:
        print(f"{PROG}: failed: {_one_line(failure.message)}", file=err)
        if verbose and len(failure.files) > 1:
            for path in failure.files:
                print(f"{PROG}:   not {done}: {path}", file=err)
    if failures:
        count = sum(len(f.files) for f in failures)
        print(f"{PROG}: {count} of {total} file(s) failed; the others were {done}", file=err)
        return EXIT_PARTIAL
    return EXIT_OK


def _report_skips(skips: Sequence[Skip], args: argparse.Namespace, err: TextIO) -> None:
    """Files left alone: each DICOM one by name (counted per reason when many), non-DICOM ones with -v only."""
    if args.quiet:
        return
    dicom = [s for s in skips if s.dicom]
    if args.verbose or len(dicom) <= SKIPS_LISTED:
        for skip in skips if args.verbose else dicom:
            print(f"{PROG}: skipped {skip.path}: {skip.reason}", file=err)
    else:
        by_reason: dict[str, list[Skip]] = {}
        for skip in dicom:
            by_reason.setdefault(skip.reason, []).append(skip)
        for reason, group in by_reason.items():
            print(f"{PROG}: skipped {len(group)} file(s): {reason} (first: {group[0].path}; -v lists each)", file=err)
    if dicom:
        hint = f"; {DERIVED_HINT}" if any(s.derived for s in dicom) else ""
        print(f"{PROG}: skipped {len(dicom)} file(s) (not magnitude MR images{hint})", file=err)


def _files_name(paths: Sequence[Path], volumes: int) -> str:
    """The first file's name and how many more files and stacks: never a tag value."""
    if len(paths) == 1:
        return paths[0].name
    return f"{paths[0].name} (+{len(paths) - 1} files{f', {volumes} stacks' if volumes > 1 else ''})"


def _sigma_groups(volumes: Sequence[VolumeReport], per_volume: bool) -> list[list[VolumeReport]]:
    """The volume reports that share one σ: each group (they come group by group), or each volume."""
    groups: list[list[VolumeReport]] = []
    for volume in volumes:
        if groups and not per_volume and groups[-1][0].group == volume.group:
            groups[-1].append(volume)
        else:
            groups.append([volume])
    return groups


def _print_sigmas(volumes: Sequence[VolumeReport], args: argparse.Namespace, out: TextIO) -> None:
    for group in _sigma_groups(volumes, args.sigma_per_volume):
        result = group[0].result
        sigma = result.derivation.sigma
        value = f"[{', '.join(f'{s:.4g}' for s in sigma)}]" if isinstance(sigma, tuple) else f"{sigma:.4g}"
        how = "given"
        if result.sigma is not None:
            fitted = " (fitted)" if args.coils is None else ""
            n = sum(e.n for e in result.estimates)
            how = f"{result.sigma.estimator}, coils={result.sigma.coils}{fitted}, n={n} background pixels"
        print(f"{_files_name([p for v in group for p in v.paths], len(group))}: σ = {value} ({how})", file=out)
        for warning in result.warnings:
            print(f"  warning: {_one_line(warning)}", file=out)


def _clean(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.qc is not None:
        from mri_noiselab.qc import require_matplotlib

        require_matplotlib()
    parallel = args.workers is not None or args.scheduler is not None
    # Kernel threads: --threads, else all cores serially and one per Dask worker (they run side by side).
    threads = args.threads if args.threads is not None or not parallel else 1
    sigma = read_sigma_file(args.sigma_file) if args.sigma_file is not None else args.sigma
    options = _options(args, sigma=sigma, method=args.method, f_size=args.f_size, num_threads=threads)
    start, step, close = _progress(args, err)
    try:
        report = clean_source(
            args.source, args.output, options, background=_background(args), qc=args.qc,
            skip_existing=args.skip_existing, force=args.force, max_image_bytes=args.max_image_size,
            uid_prefix=args.uid_prefix, workers=args.workers, scheduler=args.scheduler, on_start=start,
            on_file=step, bids=False if args.no_bids else None, bids_desc=args.bids_desc, sigma_map=args.sigma_map_out,
        )
    finally:
        close()
    if args.json:
        print(json.dumps(_clean_json(report), indent=2, ensure_ascii=False), file=out)
    elif not args.quiet:
        _print_sigmas(report.volumes, args, out)
        print(f"wrote {len(report.written)} file(s) to {args.output}", file=out)
        if report.skipped:
            print(f"skipped {len(report.skipped)} existing file(s)", file=out)
    _report_skips(report.ineligible, args, err)
    total = len(report.written) + len(report.skipped) + sum(len(f.files) for f in report.failures)
    return _report_failures(report.failures, total, err, verbose=args.verbose)


def _sigma_se(result: CleanResult) -> float | list[float] | None:
    """The standard error of each σ the volume records (:attr:`SigmaEstimate.standard_error`), in this volume's
    units as its σ is; None when σ was given."""
    sigma = result.derivation.sigma
    se = [s * e.standard_error / e.sigma for s, e in zip(sigma if isinstance(sigma, tuple) else (sigma,), result.estimates)]
    return None if not se else se if isinstance(sigma, tuple) else se[0]


def _series_uid(path: Path) -> str | None:
    """The SeriesInstanceUID a DICOM output was written with, read back (the report does not carry it)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
    except (OSError, InvalidDicomError):  # gone since: the files were written, the exit code says so
        return None
    return str(ds.get("SeriesInstanceUID", "")) or None


def _output_row(volume: VolumeReport) -> dict[str, Any]:
    """One volume written, as a JSON object: its files, how it was corrected, its DICOM series."""
    result, derivation = volume.result, volume.result.derivation
    sigma, window = derivation.sigma, derivation.f_size
    dicom = not is_nifti_path(volume.paths[0])
    return {
        "source": [str(p) for p in volume.paths],
        "output": [str(p) for p in volume.outputs],
        "sigma": list(sigma) if isinstance(sigma, tuple) else sigma,
        "sigma_se": _sigma_se(result),
        "estimator": derivation.estimator,
        "coils": derivation.coils,
        "coils_fitted": result.sigma is not None and result.sigma.coils_fitted,
        "method": derivation.method,
        "f_size": [1] * len(window) if derivation.method == "pointwise" else list(window),
        "warnings": list(result.warnings),
        "source_series_uid": (volume.group or None) if dicom else None,
        "series_uid": _series_uid(volume.outputs[0]) if dicom and volume.outputs else None,
    }


def _clean_json(report: BatchReport) -> dict[str, Any]:
    return {
        "version": _core.__version__,
        "outputs": [_output_row(v) for v in report.volumes],
        "existing": [str(p) for p in report.skipped],
        "skipped": [{"path": str(s.path), "reason": s.reason, "dicom": s.dicom} for s in report.ineligible],
        "failures": [{"files": [str(p) for p in f.files], "message": f.message} for f in report.failures],
    }


def _row(group: SigmaGroup, args: argparse.Namespace) -> dict[str, Any]:
    """One σ as a JSON object; ``stacks`` gives σ in each volume's stored units (they differ when the slopes do)."""
    e = group.estimate
    return {
        "source": [str(p) for p in group.paths],
        **({"shape": list(group.volumes[0].shape)} if len(group.volumes) == 1 else {}),
        "sigma": e.sigma,
        "sigma_se": e.standard_error,
        "estimator": e.estimator,
        "coils": e.coils,
        "coils_fitted": args.coils is None,
        "background": "roi" if args.roi else "mask" if args.mask is not None else "auto",
        "n": e.n,
        "mean": e.mean,
        "std": e.std,
        "ratio": e.ratio if math.isfinite(e.ratio) else None,
        "expected_ratio": e.expected_ratio,
        "zeros_excluded": e.zeros_excluded,
        "warnings": list(group.warnings),
        **({"volume": group.index} if group.index is not None else {}),
        "stacks": [{"source": [str(p) for p in v.paths], "shape": list(v.shape), "sigma": group.sigma_of(v)}
                   for v in group.volumes],
    }


def _sigma(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = estimate_source_sigma(args.source, _options(args), background=_background(args),
                                   max_image_bytes=args.max_image_size)
    if args.json:
        print(json.dumps([_row(g, args) for g in report.sigmas], indent=2, ensure_ascii=False), file=out)
    elif not args.quiet:
        for group in report.sigmas:
            e = group.estimate
            print(
                f"{group.label}: σ = {e.sigma:.4g} ({e.estimator}, coils={e.coils}"
                f"{' fitted' if args.coils is None else ''}), n = {e.n}, "
                f"mean/std = {e.ratio:.3f} (pure noise {e.expected_ratio:.3f}), zeros excluded = {e.zeros_excluded}",
                file=out,
            )
            for warning in group.warnings:
                print(f"  warning: {_one_line(warning)}", file=out)
    _report_skips(report.ineligible, args, err)
    total = len({p for g in report.sigmas for p in g.paths}) + sum(len(f.files) for f in report.failures)
    return _report_failures(report.failures, total, err, verbose=args.verbose, done="estimated")


def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from mri_noiselab.qc import require_matplotlib

    try:
        require_matplotlib()
        qc = True
    except ImportError:  # the demo's point is σ and the correction: it runs, without its figure
        qc = False
    r = run_example(args.output, qc=qc)
    if not args.quiet:
        error = 100 * (r.sigma_estimated / r.sigma_true - 1)
        print(f"input:  {r.input}", file=out)
        print(f"output: {r.output}", file=out)
        print(f"QC:     {r.qc if r.qc is not None else f'not drawn (it needs matplotlib: {PLOT_INSTALL})'}", file=out)
        print(f"σ estimated {r.sigma_estimated:.3f}, truth {r.sigma_true:.3f} ({error:+.1f}%)", file=out)
        print(f"air (truth 0): mean {r.air_before:.1f} before, {r.air_after:.1f} after", file=out)
        print(f"dark tissue (truth {r.dark_true:.0f}): mean {r.dark_before:.1f} before, {r.dark_after:.1f} after", file=out)
    return EXIT_OK


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.
    out, err : text streams, optional
        Where results and errors go; stdout and stderr by default.
    """
    out = cast(TextIO, Console(out or sys.stdout))
    err = cast(TextIO, Console(err or sys.stderr))
    try:
        with sigterm_interrupts():
            return _run(argv, out, err)
    finally:
        out.flush()
        err.flush()


def _run(argv: Sequence[str] | None, out: TextIO, err: TextIO) -> int:
    try:
        parser = _parser()
        with contextlib.redirect_stdout(out):  # --help and --version print to the stream given
            args = parser.parse_args(argv)
        if args.command is None:
            parser.error("give a command: clean, sigma or demo")
        return int(args.run(args, out, err))
    except SystemExit as e:  # --help
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_BAD_INPUT
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"{PROG}: {'terminated' if terminated else 'interrupted'}; only complete files were written", file=err)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    except NoBackgroundError as e:
        print(f"{PROG}: error: {_one_line(str(e))} ({SIGMA_HINT})", file=err)
        return EXIT_BAD_INPUT
    except NotEligibleError as e:
        hint = f" ({DERIVED_HINT})" if e.derived else ""
        print(f"{PROG}: error: {_one_line(str(e))}{hint}", file=err)
        return EXIT_BAD_INPUT
    except (_UsageError, ValueError, TypeError, OSError, ImportError) as e:
        print(f"{PROG}: error: {_one_line(str(e)) or type(e).__name__}", file=err)
        return EXIT_BAD_INPUT
    except Exception as e:  # a bug: still one line, but say it is ours
        print(f"{PROG}: internal error ({type(e).__name__}: {_one_line(str(e))}); please report it", file=err)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
