"""Folders of DICOM files to stacks: which files, grouped into series and stacks, in slice order.

Single-frame files are grouped by SeriesInstanceUID, then split by echo, ImageType,
acquisition, time point, inversion time and diffusion weighting and orientation, and
each stack is sorted along the slice normal. Each multi-frame file is a stack of its own.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from mri_noiselab._files import Unreadable, walk_files
from mri_noiselab.dicom.checks import frame_count
from mri_noiselab.dicom.eligibility import eligibility
from mri_noiselab.dicom.pixels import PixelRef, pixel_ref, read_dataset
from mri_noiselab.dicom.read import DicomStack, check_image, hide_values, rescale, stack_from_dataset
from mri_noiselab.errors import DicomError, Failure, NotEligibleError, failure, without_values

# What separates the stacks of one series: echoes, repeated acquisitions, time points,
# inversion times, diffusion weightings. Numbers compare as numbers ("15" == "15.0").
_SPLIT_KEYWORDS = (
    "EchoNumbers", "EchoTime", "ImageType", "AcquisitionNumber", "TemporalPositionIdentifier", "TriggerTime",
    "InversionTime", "DiffusionBValue", "DiffusionGradientOrientation",
)


@dataclass(frozen=True)
class Skip:
    """An input left alone on purpose, and why (see :func:`eligibility`).

    Attributes
    ----------
    path : Path
    reason : str
    dicom : bool
        False for a file that is not DICOM at all (no 'DICM' header).
    derived : bool
        True when ``include_derived`` would have let it through.
    """

    path: Path
    reason: str
    dicom: bool = True
    derived: bool = False


@dataclass
class SourceScan:
    """What :func:`read_source` found: stacks to process, files it could not use, files it left alone."""

    stacks: list[DicomStack]
    failures: list[Failure] = field(default_factory=list)
    ineligible: list[Skip] = field(default_factory=list)


def _key_value(value: Any) -> Any:
    """A hashable, comparable form of an attribute value: numbers as rounded floats."""
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    out: list[float | str] = []
    for item in items:
        try:
            out.append(round(float(item), 6))
        except (TypeError, ValueError):
            out.append(str(item))
    return tuple(out)


def _split_key(ds: Dataset) -> tuple[Any, ...]:
    key: list[Any] = [str(ds.get("SeriesInstanceUID", ""))]
    for keyword in _SPLIT_KEYWORDS:
        key.append(_key_value(ds.get(keyword)))
    iop = ds.get("ImageOrientationPatient")
    key.append(tuple(np.round(np.asarray(iop, dtype=float), 3)) if iop is not None and len(iop) == 6 else None)
    return tuple(key)


def _slice_order(datasets: Sequence[Dataset], paths: Sequence[Path]) -> list[int]:
    """Sort by ImagePositionPatient along the IOP normal; InstanceNumber then file name as fallbacks."""
    n = len(datasets)

    def instance(i: int) -> float:
        try:
            return float(datasets[i].get("InstanceNumber"))
        except (TypeError, ValueError):  # absent, empty or not a number
            return float("inf")

    try:
        positions = []
        for ds in datasets:
            iop = np.asarray(ds.ImageOrientationPatient, dtype=float)
            ipp = np.asarray(ds.ImagePositionPatient, dtype=float)
            if iop.shape != (6,) or ipp.shape != (3,):
                raise ValueError
            positions.append(float(np.dot(ipp, np.cross(iop[:3], iop[3:]))))
        return sorted(range(n), key=lambda i: (positions[i], instance(i), str(paths[i])))
    except (AttributeError, ValueError, TypeError):
        return sorted(range(n), key=lambda i: (instance(i), str(paths[i])))


def _dicom_files(folder: Path, exclude: Path | None) -> tuple[list[Path], list[Unreadable]]:
    files, unreadable = walk_files(folder, exclude=exclude)
    return [p for p in files if p.name.upper() != "DICOMDIR"], unreadable


def _message(path: Path, error: BaseException) -> str:
    """One line naming the file: a DicomError's text, or what a bad value broke (never the value)."""
    message = str(error) if isinstance(error, DicomError) else f"damaged DICOM header ({without_values(error)})"
    return message if message.startswith(str(path)) else f"{path}: {message}"


@dataclass
class _Grouping:
    """The files of a folder as they are read: stacks of multi-frame files, single-frame files by
    series and stack key, the files left alone, and the errors of each series."""

    include_derived: bool
    stacks: list[DicomStack] = field(default_factory=list)
    groups: dict[tuple[Any, ...], list[tuple[Dataset, Path, PixelRef]]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    ineligible: list[Skip] = field(default_factory=list)
    series_files: dict[str, list[Path]] = field(default_factory=dict)
    series_errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, path: Path) -> None:
        uid = None
        try:
            if not pydicom.misc.is_dicom(path):
                self.ineligible.append(Skip(path, "not a DICOM file (no 'DICM' file header)", dicom=False))
                return
            ds = read_dataset(path, defer_pixels=True)
            skip = _judge(ds, path, self.include_derived)
            if skip is not None:
                self.ineligible.append(skip)
                return
            uid = str(ds.get("SeriesInstanceUID", "")) if "SeriesInstanceUID" in ds else None
            if uid is not None:
                self.series_files.setdefault(uid, []).append(path)
            check_image(ds, path)
            if frame_count(ds) > 1:
                self.stacks.append(stack_from_dataset(ds, path, self.include_derived))
            else:
                self.groups.setdefault(_split_key(ds), []).append((ds, path, pixel_ref(ds, path)))
        except OSError as e:
            self.failures.append(Failure(path, f"{path}: cannot read: {e}"))
        except (ValueError, TypeError) as e:  # DicomError, or a value unlike its VR (BitsAllocated "x")
            message = _message(path, e)
            if uid is None:
                self.failures.append(Failure(path, message))
            else:
                self.series_errors.setdefault(uid, []).append(message)

    def scan(self) -> SourceScan:
        """The stacks, sorted by their first file; every stack of a series with an error left out."""
        stacks = list(self.stacks)
        for members in self.groups.values():
            try:
                stacks.append(_stack_from_files([m[0] for m in members], [m[1] for m in members], [m[2] for m in members]))
            except (ValueError, TypeError) as e:  # a value unlike its VR (RescaleSlope "x") fails its series only
                message = str(e) if isinstance(e, DicomError) else _message(members[0][1], e)  # a DicomError names its file
                self.series_errors.setdefault(str(members[0][0].SeriesInstanceUID), []).append(message)
        # All or nothing per source series: a series with one unusable file or stack is not corrected.
        for uid, errors in self.series_errors.items():
            stacks = [s for s in stacks if s.series_uid != uid]
            more = f" (and {len(errors) - 1} more error(s) in the series)" if len(errors) > 1 else ""
            self.failures.append(failure(self.series_files[uid], errors[0] + more))
        stacks.sort(key=lambda s: str(s.paths[0]))
        return SourceScan(stacks, self.failures, self.ineligible)


@hide_values
def read_folder(
    folder: str | os.PathLike[str],
    *,
    exclude: str | os.PathLike[str] | None = None,
    include_derived: bool = False,
) -> SourceScan:
    """Read every DICOM file under ``folder`` and group the slices into stacks.

    Single-frame files are grouped by SeriesInstanceUID, then split by these
    top-level attributes, numbers compared as numbers: EchoNumbers, EchoTime,
    ImageType, AcquisitionNumber, TemporalPositionIdentifier, TriggerTime,
    InversionTime, DiffusionBValue, DiffusionGradientOrientation and
    ImageOrientationPatient (to 3 decimals). Only these standard attributes
    split a series: diffusion directions that a vendor keeps in private tags
    alone (GE) stay in one stack. Each stack is sorted by ImagePositionPatient
    projected on the normal of ImageOrientationPatient (InstanceNumber when
    positions are missing). Each multi-frame file is a stack of its own.

    Parameters
    ----------
    folder : path-like
        Searched recursively; hidden files and DICOMDIR are skipped.
    exclude : path-like, optional
        A sub-folder to skip (the output folder, when it lies inside the input).
    include_derived : bool
        See :func:`mri_noiselab.dicom.eligibility`.

    Returns
    -------
    SourceScan
        The stacks; the failures (a file whose series is known fails its
        whole series: none of the series' stacks is returned); and the files
        left alone: not DICOM, or not eligible.

    Raises
    ------
    DicomError
        If the folder holds no usable DICOM image at all.
    NotEligibleError
        If it holds DICOM files but none to correct.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DicomError(f"{root}: not a folder")
    files, unreadable = _dicom_files(root, Path(exclude) if exclude is not None else None)
    grouping = _Grouping(include_derived)
    for bad in unreadable:
        if bad.path == root:
            raise DicomError(f"{root}: cannot read the folder ({bad.reason})")
        grouping.failures.append(Failure(bad.path, f"{bad.path}: cannot read the folder ({bad.reason}): its files were not processed"))
    for path in files:
        grouping.add(path)
    scan = grouping.scan()
    if not scan.stacks:
        _raise_nothing_found(root, scan.failures, scan.ineligible)
    return scan


def _judge(ds: Dataset, path: Path, include_derived: bool) -> Skip | None:
    """:func:`eligibility` of a file read from ``path``: None, or why it is skipped."""
    try:
        reason = eligibility(ds, include_derived=include_derived)
        if reason is None:
            return None
        return Skip(path, reason, derived=not include_derived and eligibility(ds, include_derived=True) is None)
    except (ValueError, TypeError) as e:  # a value that is not what its VR promises (NumberOfFrames "x")
        raise DicomError(_message(path, e)) from None


def _raise_nothing_found(root: Path, failures: Sequence[Failure], ineligible: Sequence[Skip]) -> None:
    if failures:
        unusable = sum(len(f.files) for f in failures)
        raise DicomError(f"{root}: no usable DICOM image found ({unusable} file(s) unusable, first: {failures[0].message})")
    skipped = [s for s in ineligible if s.dicom]
    if skipped:
        raise NotEligibleError(
            f"{root}: nothing to correct: none of its {len(skipped)} DICOM file(s) is a magnitude MR image "
            f"(first: {skipped[0].path}: {skipped[0].reason})",
            derived=any(s.derived for s in skipped),
        )
    others = f" ({len(ineligible)} non-DICOM file(s))" if ineligible else ""
    raise DicomError(f"{root}: no usable DICOM image found{others}")


def _stack_from_files(datasets: list[Dataset], paths: list[Path], pixels: list[PixelRef]) -> DicomStack:
    """One stack of single-frame files: sorted along the slice normal, one image format; pixels left in the files."""
    order = _slice_order(datasets, paths)
    datasets = [datasets[i] for i in order]
    paths = [paths[i] for i in order]
    pixels = [pixels[i] for i in order]
    first = datasets[0]
    for ds, p in zip(datasets, paths):
        for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation"):
            if ds.get(keyword) != first.get(keyword):
                raise DicomError(
                    f"{p}: {keyword} {ds.get(keyword)} differs from {first.get(keyword)} in {paths[0].name} "
                    "of the same series: one stack needs one image format"
                )
    scales = []
    for ds, p in zip(datasets, paths):
        try:
            scales.append(rescale(ds, 1))
        except DicomError as e:
            raise DicomError(f"{p}: {e}") from None
    # pydicom decodes BitsAllocated 8, 16 and 32 to these; a file that decodes otherwise fails then.
    dtype = np.dtype(f"{'i' if int(first.get('PixelRepresentation', 0)) == 1 else 'u'}{int(first.BitsAllocated) // 8}")
    return DicomStack(
        datasets,
        paths,
        None,
        np.concatenate([r[0] for r in scales]),
        np.concatenate([r[1] for r in scales]),
        pixels=pixels,
        dtype=dtype,
    )


@hide_values
def read_stack(paths: Sequence[str | os.PathLike[str]], *, include_derived: bool = False) -> DicomStack:
    """Read the files of one stack again: the ``paths`` of a stack that :func:`read_source` found.

    Gives the stack :func:`read_source` gave (same order, and the same frames
    of a MIXED file for the same ``include_derived``), without its checks of
    :func:`eligibility`: a worker process re-reads its stacks with this.

    Raises
    ------
    DicomError
        As :func:`read_file`.
    """
    files = [Path(p) for p in paths]
    datasets = []
    for p in files:
        ds = read_dataset(p, defer_pixels=len(files) > 1)
        check_image(ds, p)
        datasets.append(ds)
    if len(files) == 1:
        return stack_from_dataset(datasets[0], files[0], include_derived)
    return _stack_from_files(datasets, files, [pixel_ref(ds, p) for ds, p in zip(datasets, files)])


@hide_values
def read_source(
    path: str | os.PathLike[str],
    *,
    exclude: str | os.PathLike[str] | None = None,
    include_derived: bool = False,
) -> SourceScan:
    """Read a file (one stack; errors raise) or a folder (see :func:`read_folder`).

    Raises
    ------
    NotEligibleError
        If the file is not one to correct (see :func:`eligibility`), or a
        folder holds none.
    DicomError
        If the file cannot be used, or a folder holds no usable image.
    """
    p = Path(path)
    if p.is_dir():
        return read_folder(p, exclude=exclude, include_derived=include_derived)
    if not p.exists():
        raise DicomError(f"{p}: no such file or folder")
    ds = read_dataset(p)
    skip = _judge(ds, p, include_derived)
    if skip is not None:
        raise NotEligibleError(f"{p}: not corrected: {skip.reason}", derived=skip.derived)
    check_image(ds, p)
    return SourceScan([stack_from_dataset(ds, p, include_derived)])


__all__ = ["SourceScan", "Skip", "read_folder", "read_source", "read_stack"]
