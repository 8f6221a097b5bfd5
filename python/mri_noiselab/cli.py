"""The ``mri-noiselab`` command: parse arguments, call the library, report.

Exit codes: 0 success; 1 some files of a batch failed (the others were
written); 2 bad input or usage (nothing written); 3 an internal error;
130 interrupted. Every failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

import numpy as np

from mri_noiselab import __version__
from mri_noiselab.dicom import (
    BackgroundFunction,
    DicomStack,
    Failure,
    NoBackgroundError,
    NotEligibleError,
    SeriesSigma,
    Skip,
    StackReport,
    clean_source,
    estimate_source_sigma,
    find_stack_background,
    run_example,
)
from mri_noiselab.noise import CORRECTION_METHODS, SIGMA_METHODS
from mri_noiselab.roi import Roi, parse_roi, roi_mask

PROG = "mri-noiselab"
ESTIMATOR_HELP = (
    "σ from the background: mle (default, the most precise), mean (efficiency 0.91-1) or std (the seed's "
    "std/0.655; efficiency 0.45 for 1 coil but about 1/(2N) for N coils, 0.06 at N = 8: it needs "
    "1/efficiency times the background pixels of mle for the same precision)"
)
EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
DEFAULT_F_SIZE = 9
SIGMA_HINT = "use --sigma VALUE with σ from a noise scan or an earlier run"
INCLUDE_DERIVED_HELP = ("DICOM: also correct derived images, computed maps and projections (ADC, FA, MIP, ...) and "
                        "localizers; phase, real and imaginary images, other modalities and mri-noiselab's own "
                        "outputs are always skipped")
DERIVED_HINT = "--include-derived corrects derived images too"
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
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def _f_size(text: str) -> int | tuple[int, ...]:
    parts = text.split(",")
    if len(parts) not in (1, 2, 3):
        raise argparse.ArgumentTypeError(f"expected N, ROWS,COLS or SLICES,ROWS,COLS, got {text!r}")
    sizes = tuple(_positive_int(p.strip()) for p in parts)
    return sizes[0] if len(sizes) == 1 else sizes


def _parser() -> _Parser:
    common = _Parser(add_help=False)
    talk = common.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    talk.add_argument("-v", "--verbose", action="store_true", help="also print each file name")

    background = _Parser(add_help=False)
    background.add_argument(
        "--roi",
        action="append",
        type=_roi,
        metavar="R0:R1,C0:C1[,S0:S1]",
        help="background box, zero-based, stop excluded: rows and columns on every slice or frame, "
        "optionally a slice range; repeat to merge several boxes. Without --roi the background "
        "is found automatically (when this version has it)",
    )
    background.add_argument("--coils", type=_positive_int, default=None,
                            help="receiver coils combined by sum of squares (default: fitted to the background, "
                            "which also gives an adaptive combination's effective count; 1 with --sigma)")

    parser = _Parser(prog=PROG, description="Rician noise bias correction of MR magnitude DICOM images.",
                     epilog="exit codes: 0 ok, 1 some files failed, 2 bad input, 3 internal error, 130 interrupted")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    clean = sub.add_parser(
        "clean",
        parents=[common, background],
        help="correct a DICOM file or folder and write derived DICOM objects",
        description="Estimate σ from a background region (or take --sigma), remove the noise bias, and "
        "write new DICOM objects (new UIDs, derivation metadata, Explicit VR Little Endian). "
        "Inputs are never modified; outputs are written atomically.",
    )
    clean.add_argument("source", metavar="SRC",
                       help="a DICOM or NIfTI (.nii, .nii.gz) file, or a folder (searched recursively); a folder "
                       "holding NIfTI files is processed as NIfTI, any other as DICOM")
    clean.add_argument("-o", "--output", metavar="DST", required=True,
                       help="output file, or folder (for a folder SRC: one file per input file, same relative names)")
    how = clean.add_mutually_exclusive_group()
    how.add_argument("--sigma", type=_positive_float, metavar="VALUE",
                     help="known σ in stored units (from a noise scan or an earlier run): skips estimation")
    how.add_argument("--estimator", choices=SIGMA_METHODS, default="mle", help=ESTIMATOR_HELP)
    clean.add_argument("--method", choices=CORRECTION_METHODS, default="lmmse",
                       help="lmmse (default; keeps edges), moments (the seed's box mean of M², which blurs; "
                       "the earlier default, with --f-size 10) or pointwise (no window)")
    clean.add_argument("--f-size", type=_f_size, default=DEFAULT_F_SIZE, metavar="N",
                       help=f"window: N gives N x N in each slice or frame (default {DEFAULT_F_SIZE}); slices are "
                       "thicker than pixels and frames may be echoes or time points, so they are not mixed. "
                       "ROWS,COLS or SLICES,ROWS,COLS for other windows")
    clean.add_argument("--qc", metavar="FILE.png", help="write a QC figure (needs matplotlib)")
    clean.add_argument("--threads", type=_positive_int, metavar="N", help="threads (default: all cores)")
    clean.add_argument("--uid-prefix", metavar="PREFIX", help="root for the new UIDs, e.g. 1.2.826.0.1.3680043.10.1234.")
    clean.add_argument("--skip-existing", action="store_true",
                       help="DICOM: leave outputs that already exist alone and write the missing ones "
                       "(finishes an interrupted run; a partly written series keeps its SeriesInstanceUID)")
    clean.add_argument("--sigma-per-volume", action="store_true",
                       help="estimate σ for each volume (NIfTI 4-D) or each stack of a DICOM series (echo, b-value, "
                       "time point, multi-frame file) instead of one per series, for noise that differs between them")
    clean.add_argument("--include-derived", action="store_true", help=INCLUDE_DERIVED_HELP)
    where = clean.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_positive_int, metavar="N",
                       help="process files in parallel on a local Dask cluster of N worker processes (needs the dask extra)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="send the files to an existing Dask cluster, e.g. tcp://host:8786 (its workers must see the same paths)")
    clean.set_defaults(run=_clean)

    sigma = sub.add_parser(
        "sigma",
        parents=[common, background],
        help="estimate σ from a background region",
        description="Report σ, the number of background pixels, the mean/std ratio and warnings: one σ per "
        "DICOM series (pooled over its echoes, b-values, time points and files) or NIfTI image.",
    )
    sigma.add_argument("source", metavar="SRC", help="a DICOM or NIfTI file, or a folder")
    sigma.add_argument("--estimator", choices=SIGMA_METHODS, default="mle", help=ESTIMATOR_HELP)
    sigma.add_argument("--sigma-per-volume", action="store_true",
                       help="one σ per volume (NIfTI 4-D) or per stack of a DICOM series, instead of one per series")
    sigma.add_argument("--include-derived", action="store_true", help=INCLUDE_DERIVED_HELP)
    sigma.add_argument("--json", action="store_true", help="print a JSON list, one object per series (or volume)")
    sigma.set_defaults(run=_sigma)

    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="clean a generated phantom and compare σ with the truth",
        description="Generate an MR phantom with Rician noise as DICOM, clean it, and write the output "
        "DICOM and a QC figure. A re-run replaces its own previous files.",
    )
    demo.add_argument("-o", "--output", metavar="DIR", default="mri-noiselab-demo",
                      help="folder for the demo files (default ./mri-noiselab-demo)")
    demo.set_defaults(run=_demo)
    return parser


def _background(rois: Sequence[Roi] | None, coils: int | None) -> BackgroundFunction:
    if rois:
        return lambda stack: roi_mask(rois, stack.shape)
    return lambda stack: find_stack_background(stack, coils)


def _stack_name(item: SeriesSigma | _NiftiLabel) -> str:
    if isinstance(item, _NiftiLabel):
        volume = f", volume {item.volume}" if item.volume is not None else ""
        return f"{item.paths[0].name} ({'x'.join(map(str, item.shape))}{volume})"
    if len(item.stacks) > 1:
        return _files_name(item.paths, len(item.stacks))
    stack = item.stacks[0]
    first = stack.paths[0].name
    n = stack.shape[0]
    unit = "frames" if stack.is_multiframe else "slices"
    return f"{first} (+{len(stack.paths) - 1} files, {n} {unit})" if len(stack.paths) > 1 else f"{first} ({n} {unit})"


def _progress(args: argparse.Namespace, err: TextIO) -> tuple[Callable[[int], None], Callable[[Path], None], Callable[[], None]]:
    """tqdm on a terminal for more than one file; plain lines with --verbose; nothing otherwise."""
    bar: list[Any] = []

    def start(total: int) -> None:
        if args.quiet or total < 2 or not err.isatty():
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        bar.append(tqdm(total=total, unit="file", file=err, leave=False))

    def step(path: Path) -> None:
        if bar:
            bar[0].update(1)
        if args.verbose:
            (bar[0].write if bar else lambda s: print(s, file=err))(f"done: {path.name}")

    def close() -> None:
        if bar:
            bar[0].close()

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


def _clean(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.qc is not None:
        from mri_noiselab.qc import require_matplotlib

        require_matplotlib()
    if _is_nifti_source(args.source):
        for flag in ("skip_existing", "include_derived"):
            if getattr(args, flag):
                raise _UsageError(f"--{flag.replace('_', '-')} is for DICOM inputs")
        return _clean_nifti(args, out, err)
    if args.sigma_per_volume and args.sigma is not None:
        raise _UsageError("--sigma-per-volume estimates σ: it cannot be combined with --sigma")
    # With --sigma, a background only outlines the ROI in the QC figure.
    background = _background(args.roi, args.coils) if args.sigma is None or args.roi else None
    options: dict[str, Any] = {}
    clean = clean_source
    if _parallel(args):
        from mri_noiselab.dask import clean_dicom_source

        clean = clean_dicom_source
        options = {"workers": args.workers, "scheduler": args.scheduler}
        if args.skip_existing:
            raise _UsageError("--skip-existing runs serially: drop --workers/--scheduler")
    else:
        options = {"skip_existing": args.skip_existing}
    start, step, close = _progress(args, err)
    try:
        report = clean(
            args.source,
            args.output,
            background=background,
            sigma=args.sigma,
            estimator=args.estimator,
            method=args.method,
            f_size=args.f_size,
            coils=args.coils,
            num_threads=_threads(args),
            uid_prefix=args.uid_prefix,
            qc=args.qc,
            per_volume=args.sigma_per_volume,
            include_derived=args.include_derived,
            on_start=start,
            on_file=step,
            **options,
        )
    finally:
        close()
    if not args.quiet:
        for group in _sigma_groups(report.stacks, args.sigma_per_volume):
            result = group[0].result
            if result.sigma is not None:
                fitted = " (fitted)" if args.coils is None else ""
                how = f"{result.sigma.method}, coils={result.sigma.coils}{fitted}, n={result.sigma.n} background pixels"
            else:
                how = "given"
            print(f"{_files_name([p for s in group for p in s.paths], len(group))}: "
                  f"σ = {result.derivation.sigma:.4g} ({how})", file=out)
            for warning in result.warnings:
                print(f"  warning: {_one_line(warning)}", file=out)
        print(f"wrote {len(report.written)} file(s) to {args.output}", file=out)
        if report.skipped:
            print(f"skipped {len(report.skipped)} existing file(s)", file=out)
    _report_skips(report.ineligible, args, err)
    total = len(report.written) + len(report.skipped) + sum(len(f.files) for f in report.failures)
    return _report_failures(report.failures, total, err, verbose=args.verbose)


def _sigma_groups(stacks: Sequence[StackReport], per_volume: bool) -> list[list[StackReport]]:
    """The stack reports that share one σ: each source series (they come series by series), or each stack."""
    groups: list[list[StackReport]] = []
    for stack in stacks:
        if groups and not per_volume and groups[-1][0].source_series == stack.source_series:
            groups[-1].append(stack)
        else:
            groups.append([stack])
    return groups


def _files_name(paths: Sequence[Path], stacks: int) -> str:
    """The first file's name and how many more files and stacks: never a tag value."""
    if len(paths) == 1:
        return paths[0].name
    return f"{paths[0].name} (+{len(paths) - 1} files{f', {stacks} stacks' if stacks > 1 else ''})"


def _parallel(args: argparse.Namespace) -> bool:
    return args.workers is not None or args.scheduler is not None


def _threads(args: argparse.Namespace) -> int | None:
    """Kernel threads: --threads, else all cores serially and one per Dask worker (they run side by side)."""
    return args.threads if args.threads is not None or not _parallel(args) else 1


def _is_nifti_source(source: str) -> bool:
    from mri_noiselab.nifti import is_nifti_path, nifti_files

    path = Path(source)
    if not path.is_dir():
        return is_nifti_path(path)
    if not nifti_files(path):
        return False
    # dcm2niix writes its NIfTI next to the DICOMs: a run must not silently skip either kind.
    dicoms = [p for p in path.rglob("*") if p.is_file() and not is_nifti_path(p) and _has_dicom_preamble(p)]
    if dicoms:
        raise _UsageError(
            f"{path} holds both NIfTI and DICOM files (e.g. {dicoms[0].name}): give one kind per run, "
            "for example by moving the NIfTI files to their own folder"
        )
    return True


def _has_dicom_preamble(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _clean_nifti(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from mri_noiselab.nifti import clean_nifti_source, roi_mask_xyz

    if args.uid_prefix is not None:
        raise _UsageError("--uid-prefix is for DICOM outputs; NIfTI files have no UIDs")
    if args.sigma_per_volume and args.sigma is not None:
        raise _UsageError("--sigma-per-volume estimates σ: it cannot be combined with --sigma")
    rois = args.roi
    background: Any = (lambda volume: roi_mask_xyz(rois, volume.shape)) if rois else "auto"
    start, step, close = _progress(args, err)
    try:
        report = clean_nifti_source(
            args.source,
            args.output,
            workers=args.workers,
            scheduler=args.scheduler,
            on_start=start,
            on_file=step,
            background=background,
            sigma=args.sigma,
            per_volume=args.sigma_per_volume,
            estimator=args.estimator,
            method=args.method,
            f_size=args.f_size,
            coils=args.coils,
            num_threads=_threads(args),
            qc=args.qc,
        )
    finally:
        close()
    if not args.quiet:
        for result in report.results:
            sigma = np.atleast_1d(result.sigma)
            value = f"{sigma[0]:.4g}" if sigma.size == 1 else "[" + ", ".join(f"{s:.4g}" for s in sigma) + "]"
            how = f"{result.estimates[0].method}, {'ROI' if rois else 'auto background'}" if result.estimates else "given"
            print(f"{result.source.name}: σ = {value} ({how}), window {'x'.join(map(str, result.window))}", file=out)
            for warning in result.warnings:
                print(f"  warning: {_one_line(warning)}", file=out)
        print(f"wrote {len(report.written)} file(s) to {args.output}", file=out)
    return _report_failures(report.failures, len(report.written) + len(report.failures), err)


def _sigma(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    skips: list[Skip] = []
    if _is_nifti_source(args.source):
        if args.include_derived:
            raise _UsageError("--include-derived is for DICOM inputs")
        estimates, failures = _nifti_sigmas(args)
    else:
        report = estimate_source_sigma(
            args.source, _background(args.roi, args.coils), estimator=args.estimator, coils=args.coils,
            per_volume=args.sigma_per_volume, include_derived=args.include_derived,
        )
        estimates = [(series, series.estimate) for series in report.series]
        failures, skips = report.failures, report.ineligible
    if args.json:
        rows = [
            {
                "source": [str(p) for p in item.paths],
                **_shape(item),
                "sigma": e.sigma,
                "method": e.method,
                "coils": e.coils,
                "coils_fitted": args.coils is None,
                "background": "roi" if args.roi else "auto",
                "n": e.n,
                "mean": e.mean,
                "std": e.std,
                "ratio": e.ratio if np.isfinite(e.ratio) else None,
                "expected_ratio": e.expected_ratio,
                "zeros_excluded": e.zeros_excluded,
                "warnings": _warnings(item, e),
                **({"volume": item.volume} if isinstance(item, _NiftiLabel) and item.volume is not None else {}),
                # σ in each stack's stored units (they differ when the rescale slopes do).
                **({"stacks": [{"source": [str(p) for p in s.paths], "shape": list(s.shape), "sigma": item.sigma_of(s)}
                               for s in item.stacks]} if isinstance(item, SeriesSigma) else {}),
            }
            for item, e in estimates
        ]
        print(json.dumps(rows, indent=2, ensure_ascii=False), file=out)
    elif not args.quiet:
        for item, e in estimates:
            print(
                f"{_stack_name(item)}: σ = {e.sigma:.4g} ({e.method}, coils={e.coils}"
                f"{' fitted' if args.coils is None else ''}), n = {e.n}, "
                f"mean/std = {e.ratio:.3f} (pure noise {e.expected_ratio:.3f}), zeros excluded = {e.zeros_excluded}",
                file=out,
            )
            for warning in _warnings(item, e):
                print(f"  warning: {_one_line(warning)}", file=out)
    _report_skips(skips, args, err)
    total = len({p for item, _ in estimates for p in item.paths}) + sum(len(f.files) for f in failures)
    return _report_failures(failures, total, err, verbose=args.verbose, done="estimated")


def _shape(item: SeriesSigma | _NiftiLabel) -> dict[str, list[int]]:
    """The image's shape; none for a series of several stacks (each stack's is in "stacks")."""
    if isinstance(item, _NiftiLabel):
        return {"shape": list(item.shape)}
    return {"shape": list(item.stacks[0].shape)} if len(item.stacks) == 1 else {}


def _warnings(item: SeriesSigma | _NiftiLabel, estimate: Any) -> list[str]:
    return list(item.warnings) if isinstance(item, SeriesSigma) else list(estimate.warnings)


class _NiftiLabel:
    """What the σ report shows of a NIfTI image (or of one of its volumes)."""

    def __init__(self, path: Path, shape: tuple[int, ...], volume: int | None) -> None:
        self.paths, self.shape, self.volume = [path], shape, volume


def _nifti_sigmas(args: argparse.Namespace) -> tuple[list[tuple[Any, Any]], list[Failure]]:
    from mri_noiselab.nifti import nifti_files, read_nifti, roi_mask_xyz, volume_sigma

    src = Path(args.source)
    rois = args.roi
    background: Any = (lambda v: roi_mask_xyz(rois, v.shape)) if rois else "auto"
    rows: list[tuple[Any, Any]] = []
    failures: list[Failure] = []
    for path in nifti_files(src) if src.is_dir() else [src]:
        try:
            volume = read_nifti(path)
            found = volume_sigma(volume, background, per_volume=args.sigma_per_volume,
                                 estimator=args.estimator, coils=args.coils)
        except (ValueError, TypeError, OSError) as e:
            if not src.is_dir():
                raise
            failures.append(Failure(path, str(e)))
            continue
        per = len(found) > 1
        rows.extend((_NiftiLabel(path, volume.shape, t if per else None), e) for t, e in enumerate(found))
    if not rows and failures:
        raise ValueError(failures[0].message)
    return rows, failures


def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    r = run_example(args.output)
    if not args.quiet:
        error = 100 * (r.sigma_estimated / r.sigma_true - 1)
        print(f"input:  {r.input}", file=out)
        print(f"output: {r.output}", file=out)
        print(f"QC:     {r.qc}", file=out)
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
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.version:
            print(f"{PROG} {__version__}", file=out)
            return EXIT_OK
        if args.command is None:
            parser.error("give a command: clean, sigma or demo")
        return int(args.run(args, out, err))
    except SystemExit as e:  # --help
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; only complete files were written", file=err)
        return EXIT_INTERRUPTED
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
