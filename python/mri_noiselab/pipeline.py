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
from typing import TYPE_CHECKING, Any, BinaryIO

from pydicom.uid import generate_uid

from mri_noiselab._atomic import AtomicBatch, permission_bits, remove_stale_parts
from mri_noiselab._files import DEFAULT_MAX_IMAGE_BYTES, image_limit
from mri_noiselab._files import max_image_bytes as current_limit
from mri_noiselab._args import get_num_threads
from mri_noiselab.batch import failure_message, run_batch
from mri_noiselab.bids import (
    DEFAULT_DESC,
    Companion,
    Companions,
    bids_layout,
    companion_sources,
    dataset_form,
    own_output,
    pending,
    plan_description,
    verify_companions,
    write_companions,
    write_description,
)
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
    planned_derivations,
)
from mri_noiselab.dicom.series import Skip
from mri_noiselab.errors import Failure, failure, named
from mri_noiselab.formats import FORMATS, Group, Output, figure_png
from mri_noiselab.nifti import check_nifti_name
from mri_noiselab.planning import (
    Format,
    check_targets,
    locked_output,
    output_paths,
    output_root,
    qc_paths,
    refuse_existing,
    source_format,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

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
    companions: list[list[Companion]] = field(default_factory=list)  # the files beside each volume's outputs

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


def _put(data: bytes, fh: BinaryIO) -> None:
    fh.write(data)


def _run(job: _Job, *, options: CleanOptions, background: BackgroundSpec, protected: Sequence[Path],
         uid_prefix: str | None, processes: int = 1, on_file: Callable[[Path], None] | None = None) -> list[VolumeReport]:
    """Clean and write one group, all or nothing: drawn first, written to temporary files (a DICOM
    stack a block of slices at a time), then all renamed into place at once (a failure leaves none)."""
    form = FORMATS[job.form]
    volumes = job.loaded if job.loaded is not None else form.read(job.files, options)
    companions = job.companions or [[] for _ in volumes]
    todo = [any(flags) or any(c.todo for c in cs) for flags, cs in zip(job.todo, companions)]
    results = clean_group(volumes, options, background, todo=todo, stream=True)
    # Drawn before any write: a plotting error must not leave the outputs of a failed group.
    figures = [figure_png(v, r) if path is not None and r is not None else None
               for v, r, path in zip(volumes, results, job.figures)]
    reports = []
    inputs = [p for volume in volumes for p in volume.paths]
    with AtomicBatch() as batch:
        out = Output(batch, job.series_uid, uid_prefix, protected, processes, on_file)
        for volume, result, targets, flags, cs in zip(volumes, results, job.targets, job.todo, companions):
            if result is not None:
                outputs = form.write(volume, result, targets, flags, out)
                outputs += write_companions(volume, result.derivation, cs, batch)
                # The report keeps what was done, not the pixels (a folder holds many series).
                light = dataclasses.replace(result, stored=None, corrected=None, mask=None, stored_block=None)
                reports.append(VolumeReport(list(volume.paths), outputs, light, volume.group))
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


def _form(src: Path, uid_prefix: str | None, bids: bool = False) -> Format:
    form: Format = "nifti" if bids else source_format(src)  # a BIDS dataset's sourcedata/ may hold DICOM files
    if form == "nifti" and uid_prefix is not None:
        raise ValueError("uid_prefix (--uid-prefix) is for DICOM outputs: NIfTI files have no UIDs")
    return form


def _plan(source: str | os.PathLike[str], destination: str | os.PathLike[str], form: Format, options: CleanOptions,
          background: BackgroundSpec, qc: str | os.PathLike[str] | None, force: bool, skip_existing: bool,
          uid_prefix: str | None, extras: Companions) -> _Plan:
    """Read the source, and map and check every output before anything is written."""
    src, dst = Path(source), Path(destination)
    if src.is_dir() and dst.resolve() == src.resolve():
        raise ValueError(f"the output {dst} is the input folder, whose files are input files: choose another output")
    scan = extras.form(form).scan(src, dst if src.is_dir() else None, options)
    inputs = [p for group in scan.groups for files in group.files for p in files]
    mapping = output_paths(src, destination, inputs, **extras.naming())
    if form == "nifti":
        for target in mapping.values():
            check_nifti_name(target)
    companions = extras.plan(inputs, mapping, output_root(src, dst))
    outputs = [*mapping.values(), *(c.target for cs in companions.values() for c in cs)]
    figures = iter(qc_paths(qc, sum(len(g.files) for g in scan.groups)))
    figure_of = [[next(figures, None) for _ in g.files] for g in scan.groups]
    check_targets(outputs, [f for fs in figure_of for f in fs if f is not None], [*inputs, *companion_sources(companions)])
    refuse_existing(src, dst, outputs, [f for fs in figure_of for f in fs if f is not None],
                    force=force, skip_existing=skip_existing, own_output=own_output(companions, FORMATS[form].own_output))
    if skip_existing and not force:  # a figure that exists is left alone, like an output
        figure_of = [[None if f is not None and f.exists() else f for f in fs] for fs in figure_of]
    plan = _Plan(src, form, inputs, [], [], list(scan.failures), [], list(scan.ineligible))
    for group, group_figures in zip(scan.groups, figure_of):
        try:
            _plan_group(plan, group, mapping, group_figures, skip_existing, uid_prefix, options, background, companions)
        except Exception as e:  # one group's failure, whatever it is, is that group's only
            paths = [p for files in group.files for p in files]
            if not src.is_dir():
                raise named(e, paths) from None
            plan.errors.append(e)
            plan.failures.append(failure(paths, failure_message(e)))
            plan.unplanned.extend(paths)
    return plan


def _plan_group(plan: _Plan, group: Group, mapping: dict[Path, Path], figures: list[Path | None],
                skip_existing: bool, uid_prefix: str | None, options: CleanOptions, background: BackgroundSpec,
                companions: dict[Path, list[Companion]]) -> None:
    targets = [[mapping[p] for p in files] for files in group.files]
    todo = [[not (skip_existing and t.exists()) for t in ts] for ts in targets]
    beside = [pending([c for p in files for c in companions.get(p, [])], skip_existing) for files in group.files]
    existing = None
    kept = [c.target for cs in beside for c in cs if not c.todo]
    if kept or not all(all(flags) for flags in todo):
        # Outputs left alone must be what this run would write (whole, from their inputs, with
        # the same derivation); the missing outputs of a partly written series join its series.
        form = FORMATS[plan.form]
        volumes = group.loaded if group.loaded is not None else form.read(group.files, options)
        expected = planned_derivations(volumes, options, background)
        existing = form.existing(volumes, targets, todo, expected)
        for volume, derivation, cs in zip(volumes, expected, beside):
            verify_companions(volume, derivation, cs)
    plan.skipped.extend(t for ts, flags in zip(targets, todo) for t, w in zip(ts, flags) if not w)
    plan.skipped.extend(kept)
    if not any(any(flags) for flags in todo) and len(kept) == sum(map(len, beside)):
        return
    series_uid = existing or (generate_uid(prefix=uid_prefix) if plan.form == "dicom" else None)
    plan.jobs.append(_Job(plan.form, group.files, targets, todo, figures, series_uid, group.loaded, beside))


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
    dataset : Path or None
        The ``dataset_description.json`` written for a BIDS derivative dataset.
    """

    volumes: list[VolumeReport]
    failures: list[Failure]
    skipped: list[Path] = field(default_factory=list)
    ineligible: list[Skip] = field(default_factory=list)
    dataset: Path | None = None

    @property
    def written(self) -> list[Path]:
        """Every output written, in order (sidecars and σ maps after their image; the dataset's description last)."""
        return [p for v in self.volumes for p in v.outputs] + ([self.dataset] if self.dataset is not None else [])


def clean_source(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    options: CleanOptions | None = None,
    *,
    background: BackgroundSpec = None,
    qc: str | os.PathLike[str] | None = None,
    skip_existing: bool = False,
    force: bool = False,
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    uid_prefix: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
    bids: bool | None = None,
    bids_desc: str = DEFAULT_DESC,
    sigma_map: str | os.PathLike[str] | None = None,
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
        Leave outputs (and QC figures) that exist alone and write the missing
        ones, to finish an interrupted run: σ is the whole group's again, and
        the new files of a partly written series join its existing
        SeriesInstanceUID. An existing output is kept only when it is what this
        run would write (readable whole, derived from its input, with the same
        derivation: method, σ, window, coils); otherwise its group fails.
    force : bool
        Replace outputs and QC figures that exist. Without it (or
        ``skip_existing``) a run refuses, before writing anything, to replace
        any existing file. Inside the source folder it replaces only this
        package's earlier outputs.
    max_image_bytes : int
        The most uncompressed pixel data one image (a DICOM file, a NIfTI
        image) may declare: larger ones, and compressed data that declares far
        more than it holds, are refused before anything is allocated for them.
    uid_prefix : str, optional
        DICOM: root for the new UIDs.
    workers, scheduler
        Run the groups in parallel on a local or existing Dask cluster (see
        :func:`mri_noiselab.batch.run_batch`); the files are read again there.
    on_start, on_file : callable, optional
        Called with the number of input files, and with each input file once
        its output is written (a series in several blocks reports them as it
        goes), or its group is left alone or has failed.
    bids : bool, optional
        A NIfTI source in a BIDS dataset, cleaned into a folder, gives a BIDS
        derivative dataset (None: when detected; False: never; True: refuse
        other sources): outputs named with ``desc-<bids_desc>``, sidecars
        carried with the derivation, ``dataset_description.json`` (see
        :mod:`mri_noiselab.bids`).
    bids_desc : str
        The ``desc-`` label of BIDS outputs (letters and digits).
    sigma_map : path-like, optional
        NIfTI: also write the σ each image was corrected with as a map on its
        grid: a file for one image, else a folder (ending with a separator or
        existing) that mirrors the outputs' folders.
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
        For a file source (the message names the file), when every group of a
        folder fails (the first error), or, before anything is written, for an
        output or QC path that exists (without ``force`` or ``skip_existing``),
        is an input, a link, a folder, a device or FIFO, outside the output
        folder or not writable; OutputBusyError (an OSError) when another run
        is writing into the output folder. Otherwise failures are collected,
        one per group whatever went wrong in it, and every good group is written.

    Notes
    -----
    The output folder is locked for the run (see
    :func:`mri_noiselab._files.lock_folder`), and temporary files that a killed
    run left in the output folders are removed first.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import pydicom
    >>> from mri_noiselab.dicom import synthetic_mr_image, write_dataset
    >>> from mri_noiselab.pipeline import clean_source
    >>> scratch = tempfile.TemporaryDirectory()
    >>> tmp = Path(scratch.name)
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((128, 128))
    >>> truth[32:96, 32:96] = 500.0  # an object in air, sigma 20
    >>> noisy = np.hypot(truth + rng.normal(0, 20, truth.shape), rng.normal(0, 20, truth.shape))
    >>> source = write_dataset(synthetic_mr_image(np.rint(noisy).astype(np.uint16)), tmp / "in" / "IM0001.dcm")
    >>> report = clean_source(tmp / "in", tmp / "out")  # sigma from the background found
    >>> (volume,) = report.volumes
    >>> round(volume.result.sigma.sigma, 1), [p.relative_to(tmp).as_posix() for p in report.written]
    (20.1, ['out/IM0001.dcm'])
    >>> pydicom.dcmread(tmp / "out" / "IM0001.dcm").ImageType[0]
    'DERIVED'
    >>> report.failures, report.skipped
    ([], [])
    >>> scratch.cleanup()
    """
    opts = options_of(options, fields)
    src = Path(source)
    layout = bids_layout(src, destination, bids=bids, desc=bids_desc)
    form = _form(src, uid_prefix, layout is not None)
    if sigma_map is not None and form != "nifti":
        raise ValueError("sigma_map (--sigma-map-out) writes NIfTI maps: it is for NIfTI inputs")
    extras = Companions(layout, None if sigma_map is None else Path(sigma_map), str(sigma_map).endswith((os.sep, "/")))
    with locked_output(src, Path(destination)), image_limit(max_image_bytes):
        describe = layout is not None and plan_description(layout, force=force, skip_existing=skip_existing)
        plan = _plan(source, destination, form, opts, background, qc, force, skip_existing, uid_prefix, extras)
        folders = {target.parent for job in plan.jobs for targets in job.targets for target in targets}
        folders |= {c.target.parent for job in plan.jobs for cs in job.companions for c in cs}
        remove_stale_parts(folders | {path.parent for path in plan.skipped})
        report = _clean_planned(plan, opts, background, uid_prefix, workers, scheduler, on_start, on_file)
        if layout is not None and describe and (report.volumes or report.skipped):
            report.dataset = write_description(layout)
        return report


def _job(job: _Job, *, limit: int, **run: Any) -> list[VolumeReport]:
    """:func:`_run` under the image size limit of the run (a worker process has its own context)."""
    with image_limit(limit):
        return _run(job, **run)


def _clean_planned(plan: _Plan, opts: CleanOptions, background: BackgroundSpec, uid_prefix: str | None,
                   workers: int | None, scheduler: str | None, on_start: Callable[[int], None] | None,
                   on_file: Callable[[Path], None] | None) -> BatchReport:
    if on_start is not None:
        on_start(len(plan.inputs))
    reported: set[Path] = set()

    def done_path(path: Path) -> None:
        if on_file is not None and path not in reported:
            reported.add(path)
            on_file(path)

    # On a Dask cluster each group runs in a worker on its own; here, a DICOM stack's blocks are
    # spread over worker processes, one per core, and each file is reported as it is written.
    parallel = workers is not None or scheduler is not None
    task = functools.partial(_job, limit=current_limit(), options=opts, background=background,
                             protected=plan.inputs, uid_prefix=uid_prefix,
                             processes=1 if parallel else opts.num_threads or get_num_threads(),
                             on_file=None if parallel else done_path)

    def done(job: _Job) -> None:
        for path in job.paths:
            done_path(path)

    if not plan.src.is_dir():  # a single file raises its error, naming the file
        reports = []
        for job in plan.jobs:
            try:
                reports.extend(task(job))
            except Exception as e:
                raise named(e, job.paths) from None
            done(job)
        return BatchReport(reports, plan.failures, plan.skipped, plan.ineligible)
    # Pixels stay here: a worker reads its group again (file names ship faster than pixels).
    jobs = [dataclasses.replace(job, loaded=None) for job in plan.jobs] if parallel else plan.jobs
    for path in plan.unplanned:
        done_path(path)
    outcome = run_batch(task, jobs, workers=workers, scheduler=scheduler, on_done=done, paths_of=lambda job: job.paths)
    errors = plan.errors + [e for _, e in outcome.errors]
    if not outcome.results and errors:
        raise errors[0]
    failures = plan.failures + [failure(job.paths, failure_message(e)) for job, e in outcome.errors]
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
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
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
    max_image_bytes : int
        As for :func:`clean_source`.

    Returns
    -------
    SigmaReport
        The estimates; the failures (a group whose background failed fails
        whole); the files left alone.

    Raises
    ------
    DicomError, NiftiError, NoBackgroundError, ValueError
        For a file source, or when no group of a folder gives an estimate.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from mri_noiselab.dicom import synthetic_mr_image, write_dataset
    >>> from mri_noiselab.pipeline import estimate_source_sigma
    >>> scratch = tempfile.TemporaryDirectory()
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((128, 128))
    >>> truth[32:96, 32:96] = 500.0  # an object in air, sigma 20
    >>> noisy = np.hypot(truth + rng.normal(0, 20, truth.shape), rng.normal(0, 20, truth.shape))
    >>> path = write_dataset(synthetic_mr_image(np.rint(noisy).astype(np.uint16)), Path(scratch.name, "IM0001.dcm"))
    >>> (group,) = estimate_source_sigma(path).sigmas
    >>> group.label, round(group.estimate.sigma, 1), group.estimate.coils, group.warnings
    ('IM0001.dcm (1 slices)', 20.1, 1, [])
    >>> scratch.cleanup()
    """
    opts = options_of(options, fields)
    if opts.sigma is not None:
        raise ValueError("sigma is estimated here: give none")
    src = Path(source)
    form = dataset_form(src) or FORMATS[_form(src, None)]
    with image_limit(max_image_bytes):
        scan = form.scan(src, None, opts)
        found: list[SigmaGroup] = []
        errors: list[BaseException] = []
        for group in scan.groups:
            paths = [p for files in group.files for p in files]
            try:
                volumes = group.loaded if group.loaded is not None else form.read(group.files, opts)
                found.extend(group_sigmas(volumes, opts, background))
            except Exception as e:  # one group's failure, whatever it is, is that group's only
                if not src.is_dir():
                    raise named(e, paths) from None
                errors.append(e)
                scan.failures.append(failure(paths, failure_message(e)))
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
