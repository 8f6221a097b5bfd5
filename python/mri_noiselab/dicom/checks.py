"""What a DICOM header declares, checked before anything is allocated for it.

A small file must not make the reader inflate, allocate or loop over more than the file
could hold: a deflated dataset is inflated in counted chunks first, pixel data must be
as long as Rows x Columns x NumberOfFrames x BitsAllocated declare (and within the
image limit of :func:`mri_noiselab._files.image_limit`), and NumberOfFrames must be a
positive integer. Messages name the attribute, never its value.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from mri_noiselab._files import image_size_problem
from mri_noiselab.errors import DicomError

# Explicit VR elements whose length takes 4 bytes after 2 reserved ones (PS3.5 7.1.2).
_LONG_LENGTH_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
_INFLATE_CHUNK = 1 << 20
_DEFLATED = pydicom.uid.DeflatedExplicitVRLittleEndian.encode("ascii")


def frame_count(ds: Dataset) -> int:
    """NumberOfFrames, 1 when absent.

    Raises
    ------
    DicomError
        If it is not a positive integer (the message does not quote it).
    """
    value = ds.get("NumberOfFrames")
    if value is None or value == "":
        return 1
    try:
        frames = int(value)
    except (TypeError, ValueError):
        frames = 0
    if frames < 1:
        raise DicomError("NumberOfFrames is not a positive integer")
    return frames


def _deflated_offset(fh: BinaryIO) -> int | None:
    """Where the dataset starts when the file meta group (explicit VR little endian, after the
    preamble) names the Deflated transfer syntax; None for any other file."""
    fh.seek(128)
    if fh.read(4) != b"DICM":
        return None
    deflated = False
    while True:
        start = fh.tell()
        head = fh.read(8)
        if len(head) < 8:
            return None
        if int.from_bytes(head[:2], "little") != 2:
            return start if deflated else None
        if head[4:6] in _LONG_LENGTH_VRS:
            length = int.from_bytes(fh.read(4), "little")
        else:
            length = int.from_bytes(head[6:8], "little")
        if head[2:4] == b"\x10\x00":  # (0002,0010) TransferSyntaxUID
            deflated = fh.read(length).rstrip(b"\0 ") == _DEFLATED
        else:
            fh.seek(length, os.SEEK_CUR)


def check_deflated(path: Path) -> None:
    """Refuse a Deflated Explicit VR file whose dataset inflates beyond the image limit.

    pydicom inflates the whole dataset in memory when it opens such a file: this
    inflates it in chunks first, counting, and stops at the limit.

    Raises
    ------
    DicomError
        If the dataset inflates to more than the image limit (:func:`mri_noiselab._files.image_limit`)
        (plus room for the header), or far more than its compressed size.
    """
    try:
        fh = open(path, "rb")
    except OSError:  # pydicom's own reading says why
        return
    with fh:
        offset = _deflated_offset(fh)
        if offset is None:  # not deflated, or not DICOM: pydicom's own reading decides
            return
        compressed = os.fstat(fh.fileno()).st_size - offset
        fh.seek(offset)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        total = 0
        try:
            while chunk := fh.read(_INFLATE_CHUNK):
                while chunk:
                    total += len(inflater.decompress(chunk, _INFLATE_CHUNK))
                    chunk = inflater.unconsumed_tail
                    # The header is small next to the pixels; the limit is on the pixels.
                    problem = image_size_problem(max(total - _INFLATE_CHUNK, 0), compressed)
                    if problem is not None:
                        raise DicomError(f"{path}: the deflated dataset inflates to at least {problem}")
        except zlib.error:
            raise DicomError(f"{path}: the deflated dataset is damaged (it cannot be inflated)") from None


def check_pixel_data(ds: Dataset, path: Path) -> None:
    """Refuse pixel data larger than the image limit, or whose length the header contradicts.

    Uncompressed pixel data must hold no more than Rows x Columns x NumberOfFrames
    x SamplesPerPixel values of BitsAllocated (and one pad byte): the rest would be
    pixels no header describes. Compressed pixel data must not declare far more
    than it holds (a decompression bomb).

    Raises
    ------
    DicomError
    """
    try:
        values = int(ds.Rows) * int(ds.Columns) * frame_count(ds) * int(ds.get("SamplesPerPixel", 1) or 1)
        declared = values * (int(ds.BitsAllocated) // 8)
    except DicomError as e:
        raise DicomError(f"{path}: {e}") from None
    except (AttributeError, TypeError, ValueError):
        raise DicomError(f"{path}: Rows, Columns, SamplesPerPixel or BitsAllocated is not a number") from None
    # A deferred element (read_dataset(defer_pixels=True)) is measured without reading it.
    elem = ds.get_item("PixelData", keep_deferred=True)
    value = elem.value if elem is not None else None
    if isinstance(elem, RawDataElement) and value is None and elem.length != 0xFFFFFFFF:
        held: int | None = int(elem.length)
    else:
        held = len(value) if isinstance(value, (bytes, bytearray)) else None
    ts = transfer_syntax(ds)
    if ts is not None and ts.is_compressed:
        problem = image_size_problem(declared, held)
    else:
        # Too short fails when decoded, with the decoder's account of the lengths.
        if held is not None and held > declared + 1:
            raise DicomError(
                f"{path}: PixelData holds {held} bytes, more than the {declared} that Rows, Columns, NumberOfFrames "
                "and BitsAllocated declare: a damaged file, or a header that does not describe its pixels"
            )
        problem = image_size_problem(declared)
    if problem is not None:
        raise DicomError(f"{path}: declares {problem}")


def functional_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The first item of functional group ``sequence`` for ``frame``: per-frame first, then shared."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        found = items[index].get(sequence) if items is not None and len(items) > index else None
        if found:
            item: Dataset = found[0]
            return item
    return None


def transfer_syntax(ds: Dataset) -> pydicom.uid.UID | None:
    """The transfer syntax the dataset was read in, None for a dataset built in memory."""
    meta = getattr(ds, "file_meta", None)
    return meta.get("TransferSyntaxUID") if meta is not None else None


__all__ = ["check_deflated", "check_pixel_data", "frame_count", "functional_item", "transfer_syntax"]
