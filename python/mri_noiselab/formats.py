"""The file formats the pipeline reads and writes: DICOM series and NIfTI files.

Each format scans a source into groups of volumes (a DICOM series, a NIfTI file), reads a
group again in a worker, checks outputs a resumed run left, tells its own outputs, and
writes a cleaned volume: a DICOM stack whose correction was left to be streamed goes through
:func:`mri_noiselab.stream.write_stack`, a block of slices at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mri_noiselab._atomic import AtomicBatch, permission_bits
from mri_noiselab.blocks import SliceBlocks, blocks
from mri_noiselab.clean import CleanOptions, CleanResult, Volume
from mri_noiselab.derivation import PACKAGE, Derivation
from mri_noiselab.dicom.derive import derive_datasets, derived_series_uid, write_dataset
from mri_noiselab.dicom.pixels import read_dataset
from mri_noiselab.dicom.read import DicomStack
from mri_noiselab.dicom.eligibility import is_own_output as is_own_dicom
from mri_noiselab.dicom.series import Skip, read_source, read_stack
from mri_noiselab.errors import DicomError, Failure, NiftiError
from mri_noiselab.nifti import NiftiVolume, find_nifti, is_own_output, read_nifti, verify_output, write_nifti
from mri_noiselab.planning import Format
from mri_noiselab.stream import write_stack


@dataclass
class Output:
    """Where and how one group's outputs are written."""

    batch: AtomicBatch
    series_uid: str | None  # DICOM: the SeriesInstanceUID of every output of the group
    uid_prefix: str | None
    protected: Sequence[Path]  # files never replaced (the inputs)
    processes: int = 1  # worker processes for a streamed DICOM stack
    on_file: Callable[[Path], None] | None = None  # called with each input file once its output is written

    def report(self, paths: Sequence[Path]) -> None:
        """Report the input files of a volume written whole."""
        if self.on_file is not None:
            for path in paths:
                self.on_file(path)


@dataclass
class Group:
    """The volumes of one group as files (per volume), and as read when the scan read them."""

    files: list[list[Path]]
    loaded: list[Volume] | None = None


@dataclass
class Scan:
    groups: list[Group]
    failures: list[Failure] = field(default_factory=list)
    ineligible: list[Skip] = field(default_factory=list)


class Form(Protocol):
    """What the pipeline needs of a file format: groups of volumes, reading them again, writing them."""

    def scan(self, src: Path, exclude: Path | None, options: CleanOptions) -> Scan: ...
    def read(self, files: list[list[Path]], options: CleanOptions) -> list[Volume]: ...
    def existing(self, volumes: Sequence[Volume], targets: list[list[Path]], todo: list[list[bool]],
                 expected: Sequence[Derivation]) -> str | None: ...
    def own_output(self, path: Path) -> bool: ...
    def write(self, volume: Volume, result: CleanResult, targets: list[Path], todo: list[bool], out: Output) -> list[Path]: ...


class _Dicom:
    """DICOM: a folder is read whole to find its series; each series is one group."""

    def scan(self, src: Path, exclude: Path | None, options: CleanOptions) -> Scan:
        scan = read_source(src, exclude=exclude, include_derived=options.include_derived)
        series: dict[str, list[DicomStack]] = {}
        for stack in scan.stacks:
            series.setdefault(stack.series_uid, []).append(stack)
        groups = [Group([list(s.paths) for s in stacks], list(stacks)) for stacks in series.values()]
        return Scan(groups, list(scan.failures), list(scan.ineligible))

    def read(self, files: list[list[Path]], options: CleanOptions) -> list[Volume]:
        return [read_stack(paths, include_derived=options.include_derived) for paths in files]

    def existing(self, volumes: Sequence[Volume], targets: list[list[Path]], todo: list[list[bool]],
                 expected: Sequence[Derivation]) -> str | None:
        """The SeriesInstanceUID of the series' outputs that exist, each checked whole against what this run would write."""
        done = [(ds, path, target, derivation.description())
                for stack, ts, flags, derivation in zip(volumes, targets, todo, expected)
                for ds, path, target, missing in zip(_stack(stack).datasets, stack.paths, ts, flags) if not missing]
        return derived_series_uid(done)

    def own_output(self, path: Path) -> bool:
        try:
            return is_own_dicom(read_dataset(path))
        except DicomError:
            return False

    def write(self, volume: Volume, result: CleanResult, targets: list[Path], todo: list[bool], out: Output) -> list[Path]:
        assert out.series_uid is not None  # every DICOM job has its series' UID
        stack = _stack(volume)
        stored = result.stored
        if stored is None:
            assert result.stored_block is not None
            if not stack.is_multiframe:  # one file a slice: corrected, derived and written a block at a time
                return write_stack(stack, result.stored_block, result.derivation, targets, todo,
                                   series_uid=out.series_uid, uid_prefix=out.uid_prefix, protected=out.protected,
                                   batch=out.batch, processes=out.processes, on_file=out.on_file)
            stored = np.concatenate([result.stored_block(b, None) for b in blocks(stack)])  # one file holds them all
        whole, pixels = stack.file_pixels(stored)
        datasets = derive_datasets(whole, pixels, result.derivation, series_uid=out.series_uid, uid_prefix=out.uid_prefix)
        written = [write_dataset(ds, target, protected=out.protected, batch=out.batch, mode=permission_bits(source),
                                 folder_mode=permission_bits(source.parent))
                   for ds, target, source, w in zip(datasets, targets, volume.paths, todo) if w]
        out.report(volume.paths)
        return written


@dataclass(frozen=True)
class _Nifti:
    """NIfTI: each file is one group, read when its job runs (files are not all held in memory).

    ``keep`` limits the files of a folder to some (a BIDS dataset's: those in its subjects' folders).
    """

    keep: Callable[[Path], bool] | None = None

    def scan(self, src: Path, exclude: Path | None, options: CleanOptions) -> Scan:
        if options.include_derived:
            raise ValueError("include_derived (--include-derived) is for DICOM inputs")
        if not src.exists():
            raise NiftiError(f"{src}: no such file or folder")
        if not src.is_dir():
            return Scan([Group([[src]])])
        found, unreadable = find_nifti(src, exclude=exclude)
        if self.keep is not None:
            found = [p for p in found if self.keep(p)]
        failures = []
        for folder in unreadable:
            if folder.path == src:
                raise NiftiError(f"{src}: cannot read the folder ({folder.reason})")
            failures.append(Failure(folder.path, f"{folder.path}: cannot read the folder ({folder.reason}): its files were not processed"))
        # This package's outputs are never inputs, wherever they lie in the source (as for DICOM).
        own = [p for p in found if self.own_output(p)]
        files = [p for p in found if p not in own]
        if not files and not failures:
            where = " in the subjects' folders (sub-<label>) of the BIDS dataset" if self.keep is not None else ""
            raise NiftiError(f"{src}: no .nii or .nii.gz file found{where}" + (f" (only {len(own)} output(s) of {PACKAGE})" if own else ""))
        return Scan([Group([[p]]) for p in files], failures, [Skip(p, f"output of {PACKAGE}") for p in own])

    def read(self, files: list[list[Path]], options: CleanOptions) -> list[Volume]:
        return [read_nifti(paths[0]) for paths in files]

    def existing(self, volumes: Sequence[Volume], targets: list[list[Path]], todo: list[list[bool]],
                 expected: Sequence[Derivation]) -> str | None:
        for ts, flags, derivation in zip(targets, todo, expected):
            for target, missing in zip(ts, flags):
                if not missing:
                    verify_output(target, derivation.nifti_description())
        return None

    def own_output(self, path: Path) -> bool:
        try:
            return is_own_output(path)
        except NiftiError:
            return False

    def write(self, volume: Volume, result: CleanResult, targets: list[Path], todo: list[bool], out: Output) -> list[Path]:
        if not isinstance(volume, NiftiVolume):
            raise TypeError(f"a NIfTI output needs a NIfTI volume, got {type(volume).__name__}")
        assert result.stored is not None  # a NIfTI image is corrected whole
        description = result.derivation.nifti_description()
        written = [write_nifti(volume, result.stored, target, description, batch=out.batch)
                   for target, w in zip(targets, todo) if w]
        out.report(volume.paths)
        return written


def _stack(volume: Volume) -> DicomStack:
    if not isinstance(volume, DicomStack):
        raise TypeError(f"a DICOM output needs a DICOM stack, got {type(volume).__name__}")
    return volume


FORMATS: dict[Format, Form] = {"dicom": _Dicom(), "nifti": _Nifti()}


def nifti_form(keep: Callable[[Path], bool]) -> Form:
    """The NIfTI format, scanning only the files of a folder for which ``keep`` is true."""
    return _Nifti(keep)




def _planes(volume: Volume, values: np.ndarray) -> np.ndarray:
    """An array of the volume's shape as the QC figure shows it: ``(slices, rows, cols)`` of the first volume."""
    if volume.volume_axis is not None:
        values = np.take(values, 0, axis=volume.volume_axis)
    axes = volume.axes
    return np.transpose(values, (axes[2], axes[0], axes[1])) if len(axes) == 3 else values


def figure_png(volume: Volume, result: CleanResult) -> bytes:
    """The QC figure of a cleaned volume; of three of its slices when it was streamed (never held whole)."""
    from mri_noiselab.qc import qc_png

    sigma = result.derivation.sigma
    first = sigma[0] if isinstance(sigma, tuple) else sigma
    mask = None if result.mask is None else _planes(volume, result.mask)
    if result.stored is None:
        assert isinstance(volume, SliceBlocks) and result.stored_block is not None
        chosen = sorted({volume.shape[0] * j // 4 for j in (1, 2, 3)})
        before = np.concatenate([volume.magnitude_block(slice(k, k + 1)) for k in chosen])
        after = np.concatenate([volume.magnitude_block(slice(k, k + 1), result.stored_block(slice(k, k + 1), None))
                                for k in chosen])
        return qc_png(before, after, None if mask is None else mask[chosen], first, derivation=result.derivation,
                      spacing=_spacing(volume))
    corrected = result.corrected
    if corrected is None:  # stored values to stored values: shown from the values written
        assert isinstance(volume, (SliceBlocks, NiftiVolume)) and result.stored is not None
        corrected = (volume.magnitude_block(slice(None), result.stored) if isinstance(volume, SliceBlocks)
                     else volume.magnitude_of(result.stored))
    return qc_png(_planes(volume, volume.magnitude()), _planes(volume, corrected), mask, first,
                  derivation=result.derivation, spacing=_spacing(volume), directions=_directions(volume))


def _spacing(volume: Volume) -> tuple[float, float] | None:
    """Row and column spacing of the shown planes (DICOM PixelSpacing, NIfTI zooms), when known."""
    if isinstance(volume, DicomStack):
        ds = volume.datasets[0]
        spacing = ds.get("PixelSpacing")
        for group in ds.get("SharedFunctionalGroupsSequence") or []:
            for item in group.get("PixelMeasuresSequence") or []:
                spacing = item.get("PixelSpacing", spacing)
        try:
            return (float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else None
        except (TypeError, ValueError):
            return None
    if isinstance(volume, NiftiVolume):
        zooms = volume.zooms
        return (float(zooms[0]), float(zooms[1])) if len(zooms) >= 2 else None
    return None


def _directions(volume: Volume) -> tuple[str, ...] | None:
    """Where a NIfTI image's first two axes point (nibabel's axis codes), for the radiological view."""
    return volume.axis_codes[:2] if isinstance(volume, NiftiVolume) else None
