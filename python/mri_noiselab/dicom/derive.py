"""Stacks to new DICOM objects: derived datasets that record how they were made, written atomically.

Each derived object is its source with new pixels: every attribute is kept except
the UIDs, series number and description, ImageType, the derivation records, the
creation time and the pixel range (see :func:`derive_datasets`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.coding import Code
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
    generate_uid,
)

from mri_noiselab._atomic import AtomicBatch, atomic_write, same_file
from mri_noiselab._kernels import _core
from mri_noiselab.derivation import PACKAGE, SOURCE_PURPOSE, Derivation, difference
from mri_noiselab.dicom.checks import frame_count, transfer_syntax
from mri_noiselab.dicom.eligibility import own_derivation
from mri_noiselab.dicom.pixels import decode, read_dataset
from mri_noiselab.dicom.read import DicomStack, check_image, hide_values
from mri_noiselab.errors import DicomError, without_values

SERIES_SUFFIX = " [Rician bias corrected]"
SERIES_NUMBER_OFFSET = 1000
_IS_MAX = 2**31 - 1
# The IODs whose ImageType and FrameType value 2 can only be PRIMARY (PS3.3 C.8.16.1.1, Common
# CT/MR Image Description): the class decides, as dciodvfy does, also for an object that lacks
# its functional groups (pydicom-data's emri_small).
_PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}  # PixelData, FloatPixelData, DoubleFloatPixelData
# The top-level elements derive_file sets by assignment (which changes an element's value in place).
_SET_TAGS = {
    tag_for_keyword(k) for k in (
        "SOPInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "InstanceCreationDate",
        "InstanceCreationTime", "ImageType", "LossyImageCompression", "DerivationDescription",
    )
}
_PRIMARY_ONLY_CLASSES = {pydicom.uid.EnhancedMRImageStorage, pydicom.uid.LegacyConvertedEnhancedMRImageStorage}
# Decoded output of these is never the original: the derived image must say it was lossy compressed.
_ALWAYS_LOSSY = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless}
_BYTE_SWAP_VRS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _purpose_item(concept: Code) -> Dataset:
    return _code_item(concept.value, concept.scheme_designator, concept.meaning)


def _now(ds: Dataset) -> _dt.datetime:
    """Now, in the dataset's TimezoneOffsetFromUTC when it holds a time zone (its dates and times use it).

    An offset that is no time zone ("+2400", "+0175") is left for a validator to
    report: the image is still an image, and its creation time is in local time.
    """
    offset = str(ds.get("TimezoneOffsetFromUTC", "") or "")
    if len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit() and int(offset[3:]) < 60:
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        try:
            tz = _dt.timezone(_dt.timedelta(minutes=minutes if offset[0] == "+" else -minutes))
        except ValueError:  # a day or more
            pass
        else:
            return _dt.datetime.now(tz)
    return _dt.datetime.now().astimezone()


def _swap_to_little_endian(ds: Dataset) -> None:
    """Byte-swap OW/OF/OL/OD/OV values read from a big-endian file (pydicom leaves them raw)."""

    def swap(dataset: Dataset, elem: Any) -> None:
        size = _BYTE_SWAP_VRS.get(elem.VR)
        if size and isinstance(elem.value, bytes) and elem.tag != 0x7FE00010 and len(elem.value) % size == 0:
            elem.value = np.frombuffer(elem.value, dtype=f">u{size}").astype(f"<u{size}").tobytes()

    ds.walk(swap)


def _set_pixel_value_element(ds: Dataset, keyword: str, value: int) -> None:
    vr = "SS" if int(ds.get("PixelRepresentation", 0)) == 1 else "US"
    if keyword in ds:
        del ds[keyword]
    ds.add_new(keyword, vr, int(value))


def _window(ds: Dataset, lo: float, hi: float) -> None:
    """Set a linear window that spans the real-world values [lo, hi] (a new image's default)."""
    # DICOM PS3.3 C.11.2.1.2.1: the linear window maps [c - 0.5 - (w-1)/2, c - 0.5 + (w-1)/2]
    # onto the output range, so w = hi - lo + 1 and c = (lo + hi + 1) / 2 span [lo, hi] exactly.
    ds.WindowCenter = f"{(lo + hi + 1) / 2:.6g}"
    ds.WindowWidth = f"{max(hi - lo + 1, 1):.6g}"


@hide_values
def derive_datasets(
    stack: DicomStack,
    stored: np.ndarray,
    derivation: Derivation,
    *,
    series_uid: str | None = None,
    series_number: int | None = None,
    uid_prefix: str | None = None,
) -> list[FileDataset]:
    """Build the derived objects: the source metadata with new pixels and derivation records.

    Parameters
    ----------
    stack : DicomStack
        The source.
    stored : numpy.ndarray
        New stored values, shape ``stack.shape``, the source dtype (see
        :meth:`DicomStack.to_stored`).
    derivation : Derivation
    series_uid : str, optional
        The new SeriesInstanceUID; give the same one to every stack of one
        source series. Generated when omitted.
    series_number : int, optional
        Default: the source SeriesNumber + 1000.
    uid_prefix : str, optional
        Root for generated UIDs (``"1.2.3."``). By default (None) every new UID
        is derived from a random UUID under the ``2.25.`` root, which needs no
        registered root (pydicom's ``generate_uid(prefix=None)``).

    Returns
    -------
    list of pydicom.dataset.FileDataset
        One per source dataset, encoded Explicit VR Little Endian.

    Notes
    -----
    Each copy keeps every attribute (overlays, private tags, patient, study,
    frame of reference, equipment, LossyImageCompression, the display window
    and VOI LUTs) except: new SOPInstanceUID (and MediaStorageSOPInstanceUID),
    new SeriesInstanceUID/SeriesNumber and a SeriesDescription suffix;
    ImageType ``DERIVED\\SECONDARY\\...`` (``DERIVED\\PRIMARY\\...``, and the
    same FrameType, for Enhanced and Legacy Converted Enhanced MR);
    DerivationDescription and DerivationCodeSequence (CID 7203) with
    SourceImageSequence (purpose 121322, DCM), in each frame's
    DerivationImageSequence when the object has functional groups;
    InstanceCreationDate/Time; Smallest/Largest image pixel values recomputed;
    the icon image (a thumbnail of the old pixels) dropped. A converter such
    as dcm2niix therefore reads the source's acquisition metadata from it.
    """
    stored = np.asarray(stored)
    if stored.shape != stack.shape:
        raise ValueError(f"stored shape {stored.shape} does not match the stack shape {stack.shape}")
    if stored.dtype != stack.stored.dtype:
        raise ValueError(f"stored dtype {stored.dtype} differs from the source dtype {stack.stored.dtype}")
    series_uid = series_uid or generate_uid(prefix=uid_prefix)
    if series_number is None:
        series_number = series_number_of(stack.datasets[0])
    per_file = [stored] if len(stack.datasets) == 1 else [stored[i : i + 1] for i in range(stack.shape[0])]
    return [
        derive_file(src, pixels, derivation, series_uid, series_number, uid_prefix)
        for src, pixels in zip(stack.datasets, per_file)
    ]


def series_number_of(src: Dataset) -> int:
    """The derived series' number: the source SeriesNumber + 1000; - 1000 where + 1000 would not fit an IS (a signed 32-bit
    integer, PS3.5 6.2); 1000 when the source has none (or none that is an integer)."""
    try:
        base = int(src.get("SeriesNumber"))
    except (TypeError, ValueError):
        base = 0
    number = base + SERIES_NUMBER_OFFSET
    return number if number <= _IS_MAX else base - SERIES_NUMBER_OFFSET


def _series_description(src: Dataset) -> str:
    """The source SeriesDescription with the suffix, at most 64 characters (LO).

    A description with a backslash is read as several values; they are joined
    back as they were written, never shown as a Python list.
    """
    value = src.get("SeriesDescription", "") or ""
    description = "\\".join(map(str, value)) if isinstance(value, MultiValue) else str(value)
    return (description[: 64 - len(SERIES_SUFFIX)] + SERIES_SUFFIX).strip()


def _new_pixels(ds: Dataset, pixels: np.ndarray) -> None:
    """Put ``pixels`` in place of the source's, uncompressed little endian, and drop what described the old ones."""
    # By hand rather than Dataset.set_pixel_data: that one takes 8- and 16-bit data only, and
    # drops NumberOfFrames from a one-frame Enhanced MR object, where it is Type 1.
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if int(ds.BitsAllocated) == 8 else "OW"
    ds["PixelData"].is_undefined_length = False
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths", "IconImageSequence"):
        if keyword in ds:
            del ds[keyword]
    if (0xFFFC, 0xFFFC) in ds:  # trailing padding describes the old encoding
        del ds[0xFFFC, 0xFFFC]
    if "SmallestImagePixelValue" in ds:
        _set_pixel_value_element(ds, "SmallestImagePixelValue", int(pixels.min()))
    if "LargestImagePixelValue" in ds:
        _set_pixel_value_element(ds, "LargestImagePixelValue", int(pixels.max()))
    for keyword in ("SmallestPixelValueInSeries", "LargestPixelValueInSeries"):
        # The series range spans files this call may not write; a stale value is worse than none.
        if keyword in ds:
            del ds[keyword]


def _source_reference(src: Dataset, frame: int | None = None) -> Dataset:
    """A SourceImageSequence item: the source instance (and frame), purpose 121322, locations preserved."""
    ref = Dataset()
    ref.ReferencedSOPClassUID = src.SOPClassUID
    ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
    if frame is not None:
        ref.ReferencedFrameNumber = frame
    ref.PurposeOfReferenceCodeSequence = DicomSequence([_purpose_item(SOURCE_PURPOSE)])
    ref.SpatialLocationsPreserved = "YES"
    return ref


@hide_values
def derive_file(
    src: Dataset,
    pixels: np.ndarray,
    derivation: Derivation,
    series_uid: str,
    series_number: int,
    uid_prefix: str | None,
) -> FileDataset:
    """The derived object of one source file: what :func:`derive_datasets` makes of each.

    ``pixels`` are the file's new stored values, ``(frames, rows, cols)`` in the
    source dtype; ``src`` is left unchanged.
    """
    source_ts = transfer_syntax(src)
    elements = {tag: elem for tag, elem in src.items() if tag not in _PIXEL_TAGS}  # the pixels are replaced
    functional = "PerFrameFunctionalGroupsSequence" in src or "SharedFunctionalGroupsSequence" in src
    if functional or (source_ts is not None and not source_ts.is_little_endian):
        # Sequences are changed in place (functional groups) or every value swapped: a whole copy.
        ds = copy.deepcopy(Dataset(elements))
        if source_ts is not None and not source_ts.is_little_endian:
            _swap_to_little_endian(ds)
    else:
        # Otherwise only top-level values change, each set through a copy of its element: the
        # source's elements and sequences are shared, never changed (a deepcopy cost 2x the write).
        ds = Dataset({tag: copy.copy(elem) if tag in _SET_TAGS else elem for tag, elem in elements.items()})
    now = _now(src)
    _new_pixels(ds, pixels)
    ds.SOPInstanceUID = generate_uid(prefix=uid_prefix)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.SeriesDescription = _series_description(src)
    if "InstanceCreatorUID" in ds:  # the source's creator did not create this instance
        del ds.InstanceCreatorUID
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S.%f")
    ds.ImageType = _derived_type(src.get("ImageType", []), str(src.SOPClassUID) in _PRIMARY_ONLY_CLASSES)
    # No ContributingEquipmentSequence item (Type 3) is added: its Manufacturer is Type 1, and
    # converters take nested attributes for the image's own. dcm2niix read the item's
    # SoftwareVersions (which its GE slice timing and vendor rules parse) and, when the source
    # had none, its Manufacturer, so the sidecar no longer described the acquisition. The
    # derivation records below, which DICOM requires anyway, name the software and version.
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        _derive_frames(ds, src, derivation)
    else:
        ds.update(_derivation_item(src, derivation.description(), derivation.code()))
    # The window, VOI LUTs and FrameVOILUTSequence stay the source's: the correction changes
    # mostly the dark end, so the output looks as its source did; a window over the whole stack
    # range made it darker (a GE width of 876 became 2544).
    if "LossyImageCompression" not in ds and source_ts in _ALWAYS_LOSSY:
        ds.LossyImageCompression = "01"
    return file_dataset(ds, implementation_version=f"MRINOISELAB{_core.__version__}", source=src)


def _derived_type(values: Any, primary_only: bool) -> list[str]:
    # Enhanced MR objects and every MR/CT frame type macro allow only PRIMARY as value 2 of
    # ImageType and FrameType (PS3.3 C.8.16.1.1); other images take DERIVED\SECONDARY.
    rest = [str(v) for v in list(values)[2:]]
    return ["DERIVED", "PRIMARY" if primary_only else "SECONDARY", *rest]


def _derivation_item(src: Dataset, description: str, code: tuple[str, str, str], frame: int | None = None) -> Dataset:
    """DerivationDescription, DerivationCodeSequence and SourceImageSequence (of one frame, or the whole source)."""
    item = Dataset()
    item.DerivationDescription = description
    item.DerivationCodeSequence = DicomSequence([_code_item(*code)])
    item.SourceImageSequence = DicomSequence([_source_reference(src, frame)])
    return item


def _derive_frames(ds: Dataset, src: Dataset, derivation: Derivation) -> None:
    """Enhanced (multi-frame) objects record derivation and FrameType in functional groups (PS3.3 C.7.6.16).

    Per frame where the source has one group per frame; otherwise once, shared, for
    the whole source instance: groups made up per frame would cost more than the
    pixels of small frames (100,000 frames of 2x2 became 50 MB of sequences).
    """
    frames = frame_count(ds)
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared is None or len(shared) == 0:
        ds.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence") or [])
    for group in [*ds.SharedFunctionalGroupsSequence, *per_frame]:
        for seq_keyword in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence"):
            for item in group.get(seq_keyword, []):
                if "FrameType" in item:
                    item.FrameType = _derived_type(item.FrameType, True)
        if "DerivationImageSequence" in group:  # the source's own derivation: this one replaces it
            del group.DerivationImageSequence
    description, code = derivation.description(), derivation.code()
    if len(per_frame) == frames:
        for i, group in enumerate(per_frame):
            group.DerivationImageSequence = DicomSequence([_derivation_item(src, description, code, i + 1)])
    else:
        ds.SharedFunctionalGroupsSequence[0].DerivationImageSequence = DicomSequence([_derivation_item(src, description, code)])
    # A derived enhanced image lists its sources in the evidence sequence (C.8.13.1, Type 1C).
    instance = Dataset()
    instance.ReferencedSOPClassUID = src.SOPClassUID
    instance.ReferencedSOPInstanceUID = src.SOPInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = src.SeriesInstanceUID
    series.ReferencedSOPSequence = DicomSequence([instance])
    study = Dataset()
    study.StudyInstanceUID = src.StudyInstanceUID
    study.ReferencedSeriesSequence = DicomSequence([series])
    ds.SourceImageEvidenceSequence = DicomSequence([study])


def file_dataset(ds: Dataset, *, implementation_version: str | None = None, source: Dataset | None = None) -> FileDataset:
    """``ds`` as a Part 10 file in Explicit VR Little Endian, ready for :func:`write_dataset`.

    The rest of the file meta (media storage UIDs, implementation UID) is filled
    from the dataset when it is written (``dcmwrite(enforce_file_format=True)``).
    With ``source``, the dataset ``ds`` was read from: elements of ``ds`` still as
    read are written as they are where the encodings match (an Explicit VR Little
    Endian source), and re-encoded otherwise.
    """
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if implementation_version is not None:
        meta.ImplementationVersionName = implementation_version[:16]
    out = FileDataset("", ds, file_meta=meta, preamble=b"\0" * 128)
    implicit, little = source.original_encoding if source is not None else (None, None)
    if implicit is not None and little is not None and source is not None:
        out.set_original_encoding(implicit, little, source.original_character_set)
    return out


@hide_values
def encode_dataset(ds: Dataset) -> bytes:
    """Return the Part 10 file bytes of ``ds`` (preamble, file meta, Explicit VR Little Endian)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def encode_checked(ds: Dataset, target: Path) -> bytes:
    """:func:`encode_dataset`, failing with a DicomError that names ``target`` and quotes no value."""
    try:
        return encode_dataset(ds)
    except Exception as e:  # pydicom raises many types for values it cannot encode
        raise DicomError(f"cannot write {target}: the dataset cannot be encoded ({without_values(e)})") from None


def write_dataset(
    ds: Dataset,
    path: str | os.PathLike[str],
    *,
    protected: Sequence[Path] = (),
    batch: AtomicBatch | None = None,
    mode: int | None = None,
    folder_mode: int | None = None,
) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    ds : pydicom.Dataset
        With its file meta (see :func:`file_dataset`).
    path : path-like
    protected : sequence of Path
        Files that must not be replaced (the inputs).
    batch : AtomicBatch, optional
        Write into this batch: the file appears when the batch commits (a series
        at once); alone by default.
    mode, folder_mode : int, optional
        Permission bits the file and new folders may have at most (the input's).

    Raises
    ------
    OSError
        If ``path`` is a protected file, a symbolic link or a folder, or cannot be written.
    DicomError
        If pydicom cannot encode ``ds`` (a value that does not fit its VR).
    """
    target = Path(path)
    if target.exists() and any(same_file(target, p) for p in protected):
        raise OSError(f"refusing to overwrite the input file {target}")
    data = encode_checked(ds, target)
    if batch is not None:
        return batch.write(target, lambda fh: fh.write(data), mode=mode, folder_mode=folder_mode)
    return atomic_write(target, lambda fh: fh.write(data), mode=mode, folder_mode=folder_mode)


def derived_series_uid(done: Sequence[tuple[Dataset, Path, Path, str]]) -> str | None:
    """The SeriesInstanceUID of a series' outputs that exist, after checking each one whole.

    An existing output is kept in place of a new one only when it is what this
    run would write: readable to its last pixel, derived from its input, and
    recording the same derivation (method, sigma, window, coils, version).

    Parameters
    ----------
    done : sequence of (source dataset, source path, output path, derivation description)
        The outputs that exist, each with the DerivationDescription this run
        would write into it.

    Returns
    -------
    str or None
        Their one SeriesInstanceUID; None when ``done`` is empty.

    Raises
    ------
    DicomError
        If an output cannot be read whole (a truncated file), does not
        reference its source, records another derivation, or the outputs
        belong to several series.
    """
    uids = set()
    for src, path, target, expected in done:
        try:
            written = read_dataset(target)
            check_image(written, target)
            decode(written, target)
        except DicomError as e:
            raise DicomError(
                f"{target}: exists but is damaged or incomplete ({str(e).removeprefix(f'{target}: ')}): "
                "remove it, or give --force to replace it"
            ) from None
        referenced = {str(e.value) for e in written.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
        if str(src.SOPInstanceUID) not in referenced:
            raise DicomError(
                f"{target}: exists but was not derived from its input {path.name}: remove it, or give --force to replace it"
            )
        recorded = own_derivation(written) or ""
        if recorded != expected:
            raise DicomError(
                f"{target}: exists from a run with other options ({difference(recorded, expected)}): "
                "resume with the options of that run, or give --force to replace it"
            )
        uids.add(str(written.get("SeriesInstanceUID", "")))
    if len(uids) > 1:
        raise DicomError(f"the existing outputs of one series ({done[0][2].name}, ...) belong to {len(uids)} different series")
    return uids.pop() if uids else None


# The attributes of a plausible 1.5 T spin-echo MR image of a phantom, with synthetic,
# non-identifying patient and study values (dates, times and UIDs are added when built).
_PHANTOM_ATTRIBUTES: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 100", "ImageType": ["ORIGINAL", "PRIMARY", "OTHER"],
    "SOPClassUID": pydicom.uid.MRImageStorage, "AccessionNumber": "", "Modality": "MR", "Manufacturer": PACKAGE,
    "ReferringPhysicianName": "", "StationName": "PHANTOM", "SeriesDescription": "Phantom SE T1",
    "ManufacturerModelName": "synthetic", "PatientName": "Phantom^Noise", "PatientID": "NOISELAB-PHANTOM",
    "PatientBirthDate": "", "PatientSex": "O", "ScanningSequence": "SE", "SequenceVariant": "NONE",
    "ScanOptions": "", "MRAcquisitionType": "2D", "SliceThickness": "5", "RepetitionTime": "500",
    "EchoTime": "15", "NumberOfAverages": "1", "ImagingFrequency": "63.8766", "ImagedNucleus": "1H",
    "EchoNumbers": "1", "MagneticFieldStrength": "1.5", "SpacingBetweenSlices": "5", "EchoTrainLength": "1",
    "SoftwareVersions": _core.__version__, "FlipAngle": "90", "PatientPosition": "HFS", "StudyID": "1",
    "SeriesNumber": "1", "AcquisitionNumber": "1", "InstanceNumber": "1",
    "ImagePositionPatient": [-96.0, -96.0, 0.0], "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
    "PositionReferenceIndicator": "", "Laterality": "", "SliceLocation": "0", "SamplesPerPixel": 1,
    "PhotometricInterpretation": "MONOCHROME2", "PixelSpacing": [1.5, 1.5], "LossyImageCompression": "00",
}


def synthetic_mr_image(pixels: np.ndarray, **attributes: Any) -> FileDataset:
    """Build an MR Image Storage object around a 2-D array of stored values.

    Parameters
    ----------
    pixels : numpy.ndarray
        2-D, uint8/int8/uint16/int16; PixelRepresentation follows the dtype.
    **attributes
        DICOM keywords overriding the defaults (for example ``BitsStored``,
        ``ImagePositionPatient``, ``InstanceNumber``, ``SeriesInstanceUID``,
        ``EchoTime``, ``RescaleIntercept``). HighBit follows BitsStored.

    Returns
    -------
    pydicom.dataset.FileDataset
        A plausible 1.5 T spin-echo image of a phantom, with synthetic
        (non-identifying) patient and study attributes, new UIDs unless given,
        and a display window over its values.
    """
    arr = np.asarray(pixels)
    if arr.ndim != 2 or arr.dtype.kind not in "iu" or arr.dtype.itemsize > 2:
        raise ValueError(f"pixels must be a 2-D array of 8- or 16-bit integers, got {arr.dtype} {arr.shape}")
    now = _dt.datetime.now()
    ds = Dataset()
    for keyword, value in _PHANTOM_ATTRIBUTES.items():
        setattr(ds, keyword, copy.copy(value))
    ds.InstanceCreationDate = ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = now.strftime("%H%M%S")
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        setattr(ds, keyword, generate_uid())
    ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated = ds.BitsStored = arr.dtype.itemsize * 8
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.HighBit = int(ds.BitsStored) - 1
    _set_pixel_value_element(ds, "SmallestImagePixelValue", int(arr.min()))
    _set_pixel_value_element(ds, "LargestImagePixelValue", int(arr.max()))
    slope = float(ds.get("RescaleSlope", 1))
    intercept = float(ds.get("RescaleIntercept", 0))
    _window(ds, int(arr.min()) * slope + intercept, int(arr.max()) * slope + intercept)
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if arr.dtype.itemsize == 1 else "OW"
    return file_dataset(ds)


__all__ = [
    "SERIES_NUMBER_OFFSET",
    "SERIES_SUFFIX",
    "derive_datasets",
    "derive_file",
    "derived_series_uid",
    "encode_checked",
    "encode_dataset",
    "file_dataset",
    "series_number_of",
    "synthetic_mr_image",
    "write_dataset",
]
