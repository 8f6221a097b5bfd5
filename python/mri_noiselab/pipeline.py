"""From files to files, the one way for DICOM and NIfTI: :func:`clean_source` and :func:`estimate_source_sigma`.

1. :func:`source_format` tells the format of a file or folder (a folder holding both is refused);
2. the source is read into groups of volumes (a DICOM series, a NIfTI file) and every
   output and QC figure is planned and checked before anything is written;
3. each group runs as one job, serially or on a Dask cluster (:mod:`mri_noiselab.batch`):
   read (again, in a worker), sigma and correction (:mod:`mri_noiselab.clean`), the QC
   figure, then every file written, all or nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal, Protocol

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from mri_noiselab._atomic import AtomicBatch, check_writable, permission_bits, same_file
from mri_noiselab.batch import INPUT_ERRORS, run_batch
from mri_noiselab.clean import (
    BackgroundSpec,
    CleanFields,
    CleanOptions,
    CleanResult,
    SigmaGroup,
    Volume,
    clean_group,
    group_sigmas,
    options_of,
)
from mri_noiselab.dicom.derive import derive_datasets, derived_series_uid, write_dataset
from mri_noiselab.dicom.read import DicomStack
from mri_noiselab.dicom.series import Skip, read_source, read_stack
from mri_noiselab.errors import Failure, NiftiError, failure
from mri_noiselab.nifti import NiftiVolume, check_nifti_name, is_nifti_path, is_own_output, nifti_files, read_nifti, write_nifti

if TYPE_CHECKING:
    from typing_extensions import Unpack

Format = Literal["dicom", "nifti"]


def _is_dicom(path: Path) -> bool:
    try:
        return path.is_file() and pydicom.misc.is_dicom(path)
    except OSError:
        return False


def source_format(source: str | os.PathLike[str]) -> Format:
    """``"nifti"`` for a ``.nii``/``.nii.gz`` file or a folder of them, else ``"dicom"``.

    Raises
    ------
    ValueError
        For a folder holding both NIfTI and DICOM files: dcm2niix writes its
        NIfTI next to the DICOMs, and a run must not silently skip either kind.
    """
    path = Path(source)
    if not path.is_dir():
        return "nifti" if is_nifti_path(path) else "dicom"
    if not nifti_files(path):
        return "dicom"
    dicoms = [p for p in sorted(path.rglob("*")) if not is_nifti_path(p) and _is_dicom(p)]
    if dicoms:
        raise ValueError(
            f"{path} holds both NIfTI and DICOM files (e.g. {dicoms[0].name}): give one kind per run, "
            "for example by moving the NIfTI files to their own folder"
        )
    return "nifti"


# --------------------------------------------------------------------------- output planning


def output_paths(source: str | os.PathLike[str], destination: str | os.PathLike[str], inputs: Sequence[Path]) -> dict[Path, Path]:
    """Map every input file to its output file.

    A file source goes to ``destination`` itself, or into it with the same
    name when ``destination`` is an existing folder or ends with a separator.
    A folder source gives ``destination/<path relative to the source>``:
    names always come from the input file names, never from tag values.

    Raises
    ------
    ValueError
        If an output would replace an input file, if a folder source is given
        an existing file as destination, or if an output would land outside
        ``destination`` (a sub-folder there that is a symbolic link).
    """
    src = Path(source)
    dst = Path(destination)
    if src.is_dir():
        if dst.exists() and not dst.is_dir():
            raise ValueError(f"the output {dst} is a file: a folder source needs an output folder")
        mapping = {p: dst / p.relative_to(src) for p in inputs}
        root = dst.resolve()
        for out in mapping.values():
            if root not in out.resolve().parents:
                raise ValueError(
                    f"the output {out} would be written outside the output folder {dst} "
                    f"(to {out.resolve()}, through a symbolic link): remove the link or choose another output"
                )
    elif dst.is_dir() or str(destination).endswith((os.sep, "/")):
        mapping = {p: dst / p.name for p in inputs}
    else:
        mapping = {p: dst for p in inputs}
    resolved_inputs = {p.resolve() for p in inputs}
    for out in mapping.values():
        if out.resolve() in resolved_inputs or (out.exists() and any(same_file(out, q) for q in inputs)):
            raise ValueError(f"the output {out} is an input file: choose another output (inputs are never overwritten)")
    return mapping


def qc_paths(qc: str | os.PathLike[str] | None, count: int) -> list[Path]:
    """The QC figure of each of ``count`` volumes: ``qc`` itself for one, else ``<stem>_<n><suffix>``."""
    if qc is None:
        return []
    path = Path(qc)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i + 1}{path.suffix}") for i in range(count)]


def check_targets(outputs: Sequence[Path], figures: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse, before anything is written, outputs (and QC figures) that would replace an input
    or cannot be written."""
    resolved_inputs = {p.resolve() for p in inputs}
    resolved_outputs = {p.resolve() for p in outputs}
    for path in figures:
        if path.resolve() in resolved_inputs or (path.exists() and any(same_file(path, q) for q in inputs)):
            raise ValueError(f"the QC figure {path} is an input file: choose another name (inputs are never overwritten)")
        if path.resolve() in resolved_outputs:
            raise ValueError(f"the QC figure {path} is also an output: choose another name")
    for path in [*outputs, *figures]:
        check_writable(path)


# --------------------------------------------------------------------------- the formats


@dataclass
class _Group:
    """The volumes of one group as files (per volume), and as read when the scan read them."""

    files: list[list[Path]]
    loaded: list[Volume] | None = None


@dataclass
class _Scan:
    groups: list[_Group]
    failures: list[Failure] = field(default_factory=list)
    ineligible: list[Skip] = field(default_factory=list)


class _Form(Protocol):
    """What the pipeline needs of a file format: groups of volumes, reading them again, writing them."""

    def scan(self, src: Path, exclude: Path | None, options: CleanOptions) -> _Scan: ...
    def read(self, files: list[list[Path]], options: CleanOptions) -> list[Volume]: ...
    def existing(self, volumes: Sequence[Volume], targets: list[list[Path]], todo: list[list[bool]]) -> str | None: ...
    def write(self, volume: Volume, result: CleanResult, targets: list[Path], todo: list[bool], job: _Job,
              protected: Sequence[Path], uid_prefix: str | None, batch: AtomicBatch) -> list[Path]: ...


class _Dicom:
    """DICOM: a folder is read whole to find its series; each series is one group."""

    def scan(self, src: Path, exclude: Path | None, options: CleanOptions) -> _Scan:
        scan = read_source(src, exclude=exclude, include_derived=options.include_derived)
        series: dict[str, list[DicomStack]] = {}
        for stack in scan.stacks:
            series.setdefault(stack.series_uid, []).append(stack)
        groups = [_Group([list(s.paths) for s in stacks], list(stacks)) for stacks in series.values()]
        return _Scan(groups, list(scan.failures), list(scan.ineligible))

    def read(self, files: list[list[Path]], options: CleanOptions) -> list[Volume]:
        return [read_stack(paths, include_derived=options.include_derived) for paths in files]

    def existing(self, volumes: Sequence[Volume], targets: list[list[Path]], todo: list[list[bool]]) -> str | None:
        """The SeriesInstanceUID of the series' outputs that exist, checked to derive from their inputs."""
        done = [(ds, path, target) for stack, ts, flags in zip(volumes, targets, todo)
                for ds, path, target, missing in zip(_stack(stack).datasets, stack.paths, ts, flags) if not missing]
        return derived_series_uid(done)

    def write(self, volume: Volume, result: CleanResult, targets: list[Path], todo: list[bool], job: _Job,
              protected: Sequence[Path], uid_prefix: str | None, batch: AtomicBatch) -> list[Path]:
        whole, pixels = _stack(volume).file_pixels(result.stored)
        datasets = derive_datasets(whole, pixels, result.derivation, series_uid=job.series_uid, uid_prefix=uid_prefix)
        return [write_dataset(ds, target, protected=protected, batch=batch, mode=permission_bits(source),
                              folder_mode=permission_bits(source.parent))
                for ds, target, source, w in zip(datasets, targets, volume.paths, todo) if w]


class _Nifti:
    """NIfTI: each file is one group, read when its job runs (files are not all held in memory)."""

    def scan(self, src: Path, exclude: Path | None, options: CleanOptions) -> _Scan:
        if options.include_derived:
            raise ValueError("include_derived (--include-derived) is for DICOM inputs")
        if not src.exists():
            raise NiftiError(f"{src}: no such file or folder")
        files = nifti_files(src, exclude=exclude) if src.is_dir() else [src]
        if not files:
            raise NiftiError(f"{src}: no .nii or .nii.gz file found")
        return _Scan([_Group([[p]]) for p in files])

    def read(self, files: list[list[Path]], options: CleanOptions) -> list[Volume]:
        return [read_nifti(paths[0]) for paths in files]

    def existing(self, volumes: Sequence[Volume], targets: list[list[Path]], todo: list[list[bool]]) -> str | None:
        for ts, flags in zip(targets, todo):
            for target, missing in zip(ts, flags):
                if not missing and not is_own_output(target):
                    raise NiftiError(
                        f"{target}: exists but was not written by mri-noiselab: remove it, or run without "
                        "skipping existing outputs to replace it"
                    )
        return None

    def write(self, volume: Volume, result: CleanResult, targets: list[Path], todo: list[bool], job: _Job,
              protected: Sequence[Path], uid_prefix: str | None, batch: AtomicBatch) -> list[Path]:
        if not isinstance(volume, NiftiVolume):
            raise TypeError(f"a NIfTI output needs a NIfTI volume, got {type(volume).__name__}")
        description = result.derivation.nifti_description()
        return [write_nifti(volume, result.stored, target, description, batch=batch)
                for target, w in zip(targets, todo) if w]


def _stack(volume: Volume) -> DicomStack:
    if not isinstance(volume, DicomStack):
        raise TypeError(f"a DICOM output needs a DICOM stack, got {type(volume).__name__}")
    return volume


_FORMATS: dict[Format, _Form] = {"dicom": _Dicom(), "nifti": _Nifti()}


# --------------------------------------------------------------------------- jobs


@dataclass
class _Job:
    """One group to clean and write: what a worker needs, file names rather than pixels."""

    form: Format
    files: list[list[Path]]  # the files of each volume
    targets: list[list[Path]]  # the output of each file
    todo: list[list[bool]]  # which outputs to write (skip_existing leaves the others)
    figures: list[Path | None]  # the QC figure of each volume
    series_uid: str | None  # DICOM: the SeriesInstanceUID of every output of the group
    loaded: list[Volume] | None = field(default=None, repr=False, compare=False)

    @property
    def paths(self) -> list[Path]:
        return [p for files in self.files for p in files]


@dataclass
class VolumeReport:
    """One volume cleaned and written: its input files, the outputs written, and the result.

    ``group`` identifies the volumes that share one sigma (a DICOM SeriesInstanceUID,
    never shown; a NIfTI file's path).
    """

    paths: list[Path]
    outputs: list[Path]
    result: CleanResult
    group: str = ""


def _planes(volume: Volume, values: np.ndarray) -> np.ndarray:
    """An array of the volume's shape as the QC figure shows it: ``(slices, rows, cols)`` of the first volume."""
    if volume.volume_axis is not None:
        values = np.take(values, 0, axis=volume.volume_axis)
    axes = volume.axes
    return np.transpose(values, (axes[2], axes[0], axes[1])) if len(axes) == 3 else values


def _figure(volume: Volume, result: CleanResult) -> bytes:
    from mri_noiselab.qc import qc_png

    mask = None if result.mask is None else _planes(volume, result.mask)
    sigma = result.derivation.sigma
    first = sigma[0] if isinstance(sigma, tuple) else sigma
    return qc_png(_planes(volume, volume.magnitude()), _planes(volume, result.corrected), mask, first,
                  coils=result.derivation.coils)


def _put(data: bytes, fh: BinaryIO) -> None:
    fh.write(data)


def _run(job: _Job, *, options: CleanOptions, background: BackgroundSpec, protected: Sequence[Path],
         uid_prefix: str | None) -> list[VolumeReport]:
    """Clean and write one group, all or nothing: computed and drawn first, written to temporary
    files, then all renamed into place with one flush per folder (a failure before leaves none)."""
    form = _FORMATS[job.form]
    volumes = job.loaded if job.loaded is not None else form.read(job.files, options)
    results = clean_group(volumes, options, background, todo=[any(flags) for flags in job.todo])
    # Drawn before any write: a plotting error must not leave the outputs of a failed group.
    figures = [_figure(v, r) if path is not None and r is not None else None
               for v, r, path in zip(volumes, results, job.figures)]
    reports = []
    inputs = [p for volume in volumes for p in volume.paths]
    with AtomicBatch() as batch:
        for volume, result, targets, todo in zip(volumes, results, job.targets, job.todo):
            if result is not None:
                outputs = form.write(volume, result, targets, todo, job, protected, uid_prefix, batch)
                reports.append(VolumeReport(list(volume.paths), outputs, result, volume.group))
        for path, png in zip(job.figures, figures):
            if path is not None and png is not None:
                # The figure shows the images: no more open than any of its inputs.
                mode = functools.reduce(operator.and_, (permission_bits(p) or 0o7777 for p in inputs), 0o7777)
                batch.write(path, functools.partial(_put, png), mode=mode)
    return reports


# --------------------------------------------------------------------------- planning


@dataclass
class _Plan:
    src: Path
    form: Format
    inputs: list[Path]
    jobs: list[_Job]
    skipped: list[Path]
    failures: list[Failure]
    errors: list[BaseException]
    ineligible: list[Skip]
    unplanned: list[Path] = field(default_factory=list)  # the files of the groups whose planning failed


def _form(src: Path, uid_prefix: str | None) -> Format:
    form = source_format(src)
    if form == "nifti" and uid_prefix is not None:
        raise ValueError("uid_prefix (--uid-prefix) is for DICOM outputs: NIfTI files have no UIDs")
    return form


def _plan(source: str | os.PathLike[str], destination: str | os.PathLike[str], options: CleanOptions,
          qc: str | os.PathLike[str] | None, skip_existing: bool, uid_prefix: str | None) -> _Plan:
    """Read the source, and map and check every output before anything is written."""
    src, dst = Path(source), Path(destination)
    form = _form(src, uid_prefix)
    if src.is_dir() and dst.resolve() == src.resolve():
        raise ValueError(f"the output {dst} is the input folder, whose files are input files: choose another output")
    scan = _FORMATS[form].scan(src, dst if src.is_dir() else None, options)
    inputs = [p for group in scan.groups for files in group.files for p in files]
    mapping = output_paths(src, destination, inputs)
    if form == "nifti":
        for target in mapping.values():
            check_nifti_name(target)
    figures = iter(qc_paths(qc, sum(len(g.files) for g in scan.groups)))
    figure_of = [[next(figures, None) for _ in g.files] for g in scan.groups]
    check_targets(list(mapping.values()), [f for fs in figure_of for f in fs if f is not None], inputs)
    plan = _Plan(src, form, inputs, [], [], list(scan.failures), [], list(scan.ineligible))
    for group, group_figures in zip(scan.groups, figure_of):
        try:
            _plan_group(plan, group, mapping, group_figures, skip_existing, uid_prefix)
        except INPUT_ERRORS as e:
            if not src.is_dir():
                raise
            paths = [p for files in group.files for p in files]
            plan.errors.append(e)
            plan.failures.append(failure(paths, e))
            plan.unplanned.extend(paths)
    return plan


def _plan_group(plan: _Plan, group: _Group, mapping: dict[Path, Path], figures: list[Path | None],
                skip_existing: bool, uid_prefix: str | None) -> None:
    targets = [[mapping[p] for p in files] for files in group.files]
    todo = [[not (skip_existing and t.exists()) for t in ts] for ts in targets]
    existing = None
    if not all(all(flags) for flags in todo):
        # Outputs left alone must derive from their inputs; the missing outputs of a partly
        # written series join its existing series.
        volumes = group.loaded if group.loaded is not None else []
        existing = _FORMATS[plan.form].existing(volumes, targets, todo)
    plan.skipped.extend(t for ts, flags in zip(targets, todo) for t, w in zip(ts, flags) if not w)
    if not any(any(flags) for flags in todo):
        return
    series_uid = existing or (generate_uid(prefix=uid_prefix) if plan.form == "dicom" else None)
    plan.jobs.append(_Job(plan.form, group.files, targets, todo, figures, series_uid, group.loaded))


# --------------------------------------------------------------------------- entry points


@dataclass
class BatchReport:
    """What :func:`clean_source` did.

    Attributes
    ----------
    volumes : list of VolumeReport
        The volumes cleaned and written, group by group.
    failures : list of Failure
        One per failed group (a DICOM series, a NIfTI file) or unreadable file.
    skipped : list of Path
        Outputs that already existed and were left alone (``skip_existing``).
    ineligible : list of Skip
        Inputs left alone: not DICOM, or not to be corrected (see
        :func:`mri_noiselab.dicom.eligibility`).
    """

    volumes: list[VolumeReport]
    failures: list[Failure]
    skipped: list[Path] = field(default_factory=list)
    ineligible: list[Skip] = field(default_factory=list)

    @property
    def written(self) -> list[Path]:
        """Every output written, in order."""
        return [p for v in self.volumes for p in v.outputs]


def clean_source(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    options: CleanOptions | None = None,
    *,
    background: BackgroundSpec = None,
    qc: str | os.PathLike[str] | None = None,
    skip_existing: bool = False,
    uid_prefix: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
    **fields: Unpack[CleanFields],
) -> BatchReport:
    """Clean a DICOM or NIfTI file, or a folder of them, and write the derived files.

    Each group (a DICOM series: its echoes, b-values, time points and
    multi-frame files; a NIfTI file) gets one sigma, from the pooled background
    of its volumes, and is written all or nothing: if one of its volumes
    fails, none of its files is written and one failure names it.

    Parameters
    ----------
    source : path-like
        A file, or a folder searched recursively (DICOM, or NIfTI: not both).
    destination : path-like
        The output file or folder (see :func:`output_paths`).
    options : CleanOptions, optional
        How to clean; ``**fields`` replace its fields one by one.
    background : mask, function of the volume, "auto" or None
        The noise-only voxels of each volume (a function must be picklable to
        run on a cluster); None finds them, unless sigma is given (then a
        background only marks the QC figure).
    qc : path-like, optional
        A QC figure (PNG) of the volume; with several, ``_<n>`` is added to the name.
    skip_existing : bool
        Leave outputs that exist alone and write the missing ones, to finish an
        interrupted run: σ is the whole group's again, and the new files of a
        partly written series join its existing SeriesInstanceUID. An existing
        output not derived from its input is an error for its group.
    uid_prefix : str, optional
        DICOM: root for the new UIDs.
    workers, scheduler
        Run the groups in parallel on a local or existing Dask cluster (see
        :func:`mri_noiselab.batch.run_batch`); the files are read again there.
    on_start, on_file : callable, optional
        Called with the number of input files, and with each input file once
        its group is written, left alone or has failed.
    **fields
        Fields of :class:`mri_noiselab.clean.CleanOptions` (``sigma``,
        ``estimator``, ``method``, ``f_size``, ``coils``, ``per_volume``,
        ``include_derived``, ``num_threads``).

    Returns
    -------
    BatchReport

    Raises
    ------
    NotEligibleError, DicomError, NiftiError, NoBackgroundError, ValueError, OSError
        For a file source, when every group of a folder fails (the first
        error), or, before anything is written, for an output or QC path that
        is an input, a link, a folder, outside the output folder or not
        writable. Otherwise failures are collected and every good group is written.
    """
    opts = options_of(options, fields)
    plan = _plan(source, destination, opts, qc, skip_existing, uid_prefix)
    if on_start is not None:
        on_start(len(plan.inputs))
    task = functools.partial(_run, options=opts, background=background, protected=plan.inputs, uid_prefix=uid_prefix)

    def done_path(path: Path) -> None:
        if on_file is not None:
            on_file(path)

    def done(job: _Job) -> None:
        for path in job.paths:
            done_path(path)

    if not plan.src.is_dir():  # a single file raises its error
        reports = [r for job in plan.jobs for r in task(job)]
        for job in plan.jobs:
            done(job)
        return BatchReport(reports, plan.failures, plan.skipped, plan.ineligible)
    # Pixels stay here: a worker reads its group again (file names ship faster than pixels).
    parallel = workers is not None or scheduler is not None
    jobs = [dataclasses.replace(job, loaded=None) for job in plan.jobs] if parallel else plan.jobs
    for path in plan.unplanned:
        done_path(path)
    outcome = run_batch(task, jobs, workers=workers, scheduler=scheduler, on_done=done, paths_of=lambda job: job.paths)
    errors = plan.errors + [e for _, e in outcome.errors]
    if not outcome.results and errors:
        raise errors[0]
    failures = plan.failures + [failure(job.paths, e) for job, e in outcome.errors]
    return BatchReport([r for _, rs in outcome.results for r in rs], failures, plan.skipped, plan.ineligible)


@dataclass
class SigmaReport:
    """What :func:`estimate_source_sigma` found: the sigma of each group (or volume), failures, files left alone."""

    sigmas: list[SigmaGroup]
    failures: list[Failure]
    ineligible: list[Skip] = field(default_factory=list)


def estimate_source_sigma(
    source: str | os.PathLike[str],
    options: CleanOptions | None = None,
    *,
    background: BackgroundSpec = None,
    **fields: Unpack[CleanFields],
) -> SigmaReport:
    """Estimate sigma for every group of a DICOM or NIfTI file or folder: one per group, or per volume.

    Parameters
    ----------
    source : path-like
    options : CleanOptions, optional
        ``estimator``, ``coils``, ``per_volume`` and ``include_derived`` apply;
        ``**fields`` replace them one by one.
    background : mask, function of the volume, "auto" or None
        The noise-only voxels of each volume; None finds them. In a group, a
        volume without background takes the sigma of the others.

    Returns
    -------
    SigmaReport
        The estimates; the failures (a group whose background failed fails
        whole); the files left alone.

    Raises
    ------
    DicomError, NiftiError, NoBackgroundError, ValueError
        For a file source, or when no group of a folder gives an estimate.
    """
    opts = options_of(options, fields)
    if opts.sigma is not None:
        raise ValueError("sigma is estimated here: give none")
    src = Path(source)
    form = _FORMATS[_form(src, None)]
    scan = form.scan(src, None, opts)
    found: list[SigmaGroup] = []
    errors: list[BaseException] = []
    for group in scan.groups:
        try:
            volumes = group.loaded if group.loaded is not None else form.read(group.files, opts)
            found.extend(group_sigmas(volumes, opts, background))
        except INPUT_ERRORS as e:
            if not src.is_dir():
                raise
            errors.append(e)
            scan.failures.append(failure([p for files in group.files for p in files], e))
    if not found and errors:
        raise errors[0]
    return SigmaReport(found, scan.failures, scan.ineligible)


__all__ = [
    "BatchReport",
    "Format",
    "SigmaReport",
    "VolumeReport",
    "check_targets",
    "clean_source",
    "estimate_source_sigma",
    "output_paths",
    "qc_paths",
    "source_format",
]
