"""A DICOM file's dataset and pixel data: read, checked, decoded, and found again.

:func:`read_dataset` reads a Part 10 file (its pixel data left in the file when asked);
:func:`decode` gives the stored values; a :class:`PixelRef` decodes one file's pixel data
again from where it lies, without its header (a series is decoded a block of slices at a time).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.valuerep import VR
from pydicom.pixels.decoders.base import get_decoder

from mri_noiselab.dicom.checks import check_deflated, check_pixel_data, transfer_syntax
from mri_noiselab.errors import CODECS_INSTALL, DecoderMissingError, DicomError, without_values

# Elements longer than this are left in the file when a header is read for its pixels' sake
# (read_dataset(defer_pixels=True)): the pixel data, read again a block of slices at a time.
_DEFER_BYTES = 1 << 16
_PIXEL_TAG = 0x7FE00010
_KNOWN_VRS = {str(vr.value) for vr in VR}
_NATIVE_LE = {pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian}
# What pydicom's pixel_array reads besides the pixel data, copied into a PixelRef.
_PIXEL_KEYWORDS = (
    "Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "PhotometricInterpretation", "PlanarConfiguration", "NumberOfFrames", "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
)


@dataclass(frozen=True)
class PixelRef:
    """Where a file's pixel data lies and what describes it, to decode it again without its header.

    A stack of single-frame files keeps one per file instead of their stored values,
    so that a series is decoded a block of slices at a time (see :mod:`mri_noiselab.blocks`).
    """

    path: Path
    offset: int | None  # None: read the file again (deflated, or encapsulated pixel data left in the file)
    length: int
    undefined_length: bool
    pixels: Dataset = field(repr=False)  # the file meta and the attributes pixel_array reads

    def decode(self) -> np.ndarray:
        """The stored values, as :func:`decode` gives them from the whole file."""
        if self.offset is None:
            return decode(read_dataset(self.path), self.path)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read(self.length)
        except OSError as e:
            raise DicomError(f"{self.path}: cannot read: {e}") from None
        if len(data) != self.length:
            raise DicomError(f"{self.path}: the file is shorter than when it was read (changed during the run?)")
        native = self._native_dtype()
        if native is not None:
            return self._native(data, native)
        ds = Dataset({tag: elem for tag, elem in self.pixels.items()})
        ds.file_meta = self.pixels.file_meta
        vr = "OB" if self.undefined_length or int(ds.BitsAllocated) <= 8 else "OW"
        ds.add(DataElement(_PIXEL_TAG, vr, data, is_undefined_length=self.undefined_length))
        return decode(ds, self.path)

    def read_into(self, out: np.ndarray, start: int, height: int) -> None:
        """Fill ``out``, of shape ``(1, k, columns)``, with rows ``start:start + k`` of the stored
        values of a slice of ``height`` rows and ``columns`` columns (its stack's shape).

        Where the pixels lie uncompressed in the machine's byte order, only those rows' bytes
        are read, straight into ``out`` (a background ROI above the head is a tenth of each
        slice; a whole slice is read without a copy); otherwise the file is decoded.

        Raises
        ------
        DicomError
            If the pixel data does not decode to ``out``'s dtype and that shape.
        """
        native = self._native_dtype() if self.offset is not None else None
        rows, cols = int(self.pixels.Rows), int(self.pixels.Columns)
        stop = start + out.shape[1]
        whole = None
        if native is None or self.offset is None or native != out.dtype or not out.flags.c_contiguous:
            whole = self.decode()
            shape, dtype = whole.shape[1:], whole.dtype
        else:
            shape, dtype = (rows, cols), native
        if shape != (height, out.shape[2]) or dtype != out.dtype:
            raise DicomError(f"{self.path}: pixel data decoded as {dtype} {shape}, "
                             f"unlike the {out.dtype} {(height, out.shape[2])} its header and series declare")
        if whole is not None:
            out[...] = whole[:, start:stop]
            return
        assert native is not None and self.offset is not None  # read as they lie
        line = cols * native.itemsize
        if height * line > self.length:
            raise DicomError(f"{self.path}: cannot decode the pixel data: it holds {self.length} bytes, fewer than "
                             f"the {height * line} that Rows, Columns and BitsAllocated declare")
        if out.size == 0:
            return
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset + start * line)
                got = fh.readinto(out.data.cast("B"))
        except OSError as e:
            raise DicomError(f"{self.path}: cannot read: {e}") from None
        if got != (stop - start) * line:
            raise DicomError(f"{self.path}: the file is shorter than when it was read (changed during the run?)")

    def _native_dtype(self) -> np.dtype[Any] | None:
        """The dtype of uncompressed little-endian monochrome pixels, which pydicom reads as they lie; else None."""
        px = self.pixels
        if transfer_syntax(px) not in _NATIVE_LE or self.undefined_length:
            return None
        try:
            if int(px.get("SamplesPerPixel", 1)) != 1 or int(px.get("NumberOfFrames", 1) or 1) != 1:
                return None
            bits, signed = int(px.BitsAllocated), int(px.get("PixelRepresentation", 0)) == 1
        except (AttributeError, TypeError, ValueError):
            return None
        if bits not in (8, 16, 32) or str(px.get("PhotometricInterpretation", "")) not in ("MONOCHROME1", "MONOCHROME2"):
            return None
        return np.dtype(f"<{'i' if signed else 'u'}{bits // 8}")

    def _native(self, data: bytes, dtype: np.dtype[Any]) -> np.ndarray:
        """What pydicom's native decoder gives (the values as they lie, reshaped), without its setup per file."""
        rows, cols = int(self.pixels.Rows), int(self.pixels.Columns)
        need = rows * cols * dtype.itemsize
        if len(data) < need:
            raise DicomError(f"{self.path}: cannot decode the pixel data: it holds {len(data)} bytes, fewer than "
                             f"the {need} that Rows, Columns and BitsAllocated declare")
        values = np.frombuffer(data, dtype=dtype, count=rows * cols).reshape(1, rows, cols)
        return values.astype(dtype.newbyteorder("="))


def pixel_ref(ds: Dataset, path: Path) -> PixelRef:
    """The :class:`PixelRef` of a dataset read with ``defer_pixels``; its pixel data is removed from it.

    Checks what :func:`decode` would check before decoding (sizes, a decoder), so that
    a file that cannot be decoded fails where its header is read.
    """
    check_pixel_data(ds, path)
    check_decoder(ds, path)
    raw = ds.get_item(_PIXEL_TAG, keep_deferred=True)
    pixels = Dataset()
    for keyword in _PIXEL_KEYWORDS:
        if keyword in ds:
            pixels.add(ds[keyword])
    pixels.file_meta = getattr(ds, "file_meta", FileMetaDataset())
    value = raw.value if raw is not None else None
    offset = raw.value_tell if isinstance(raw, RawDataElement) else None  # None: read the file again
    undefined = isinstance(raw, RawDataElement) and raw.length == 0xFFFFFFFF
    length = len(value) if isinstance(value, (bytes, bytearray)) else int(raw.length) if isinstance(raw, RawDataElement) else 0
    if transfer_syntax(ds) == pydicom.uid.DeflatedExplicitVRLittleEndian or (undefined and not isinstance(value, bytes)):
        offset = None  # offsets into the inflated stream; an encapsulated value whose end is not known yet
    del ds[_PIXEL_TAG]
    return PixelRef(path, offset, length, undefined, pixels)


def _check_structure(ds: Dataset) -> None:
    """Parse every sequence of ``ds``, nested ones too, and check every element's VR: a damaged
    header fails here, whatever is read of it later.

    Other values are converted where they are used; the writer copies the rest as read
    (converting every value of a GE header cost 4x reading it), so an odd value elsewhere
    never fails a file.
    """
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if tag == _PIXEL_TAG or raw is None:
            continue
        if raw.VR is not None and raw.VR not in _KNOWN_VRS:
            raise ValueError(f"element {tag} has an unknown VR")
        if raw.VR == "SQ" or (raw.VR is None and isinstance(raw, RawDataElement) and ds[tag].VR == "SQ"):
            for item in ds[tag].value:
                _check_structure(item)


def _load_deferred(ds: Dataset) -> None:
    """Read the values of the elements other than the pixel data that ``defer_size`` left in the file."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag, keep_deferred=True)
        if tag != _PIXEL_TAG and isinstance(raw, RawDataElement) and raw.value is None and raw.length:
            ds[tag]  # pydicom reads a deferred value when the element is got


def read_dataset(path: Path, *, defer_pixels: bool = False) -> Dataset:
    """The dataset of a Part 10 file, its structure checked: a damaged header or sequence fails here.

    The dataset keeps its elements as read (sequences are parsed in a copy), and
    pydicom writes them back as they are: re-encoding the 300 elements of a GE
    header cost 8 ms a file. With ``defer_pixels`` the pixel data stays in the
    file until asked for: :func:`pixel_ref` tells where it lies.
    """
    check_deflated(path)
    try:
        with warnings.catch_warnings():
            # Reading must not depend on the caller's warning filters; the checks after it decide.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=_DEFER_BYTES if defer_pixels else None)
            _load_deferred(ds)
            _check_structure(Dataset(dict(ds.items())))
    except InvalidDicomError:
        raise DicomError(f"{path}: not a DICOM file (no 'DICM' file header)") from None
    except (OSError, EOFError) as e:
        raise DicomError(f"{path}: cannot read: {e}") from None
    except Exception as e:  # pydicom raises many types on damaged headers
        raise DicomError(f"{path}: damaged DICOM header ({without_values(e)})") from None
    return ds


def check_decoder(ds: Dataset, path: Path) -> pydicom.uid.UID | None:
    """The transfer syntax of ``ds``, once it is known that pydicom can decode its pixel data.

    Raises
    ------
    DicomError
        If no pydicom decoder exists for it.
    DecoderMissingError
        If the decoder needs a package that is not installed.
    """
    ts = transfer_syntax(ds)
    if ts is not None and ts.is_compressed:
        try:
            decoder = get_decoder(ts)
        except NotImplementedError:
            raise DicomError(f"{path}: pixel data compressed as {ts.name}, which pydicom cannot decode") from None
        if not decoder.is_available:
            needs = "; ".join(decoder.missing_dependencies)
            raise DecoderMissingError(
                f"{path}: pixel data compressed as {ts.name} and no decoder is installed: {CODECS_INSTALL}"
                + (f" (pydicom's plugins for it need: {needs})" if needs else "")
            )
    return ts


def decode(ds: Dataset, path: Path) -> np.ndarray:
    """The stored values of ``ds`` as ``(frames, rows, cols)`` integers in native byte order.

    The pixel data is removed from ``ds``, which keeps its header.
    """
    check_pixel_data(ds, path)
    ts = check_decoder(ds, path)
    if ts == pydicom.uid.RLELossless:
        # pydicom's own RLE decoder checks segment bounds; the Rust plugin panics on damaged
        # segments and prints a backtrace to stderr, which a caller cannot silence.
        ds.pixel_array_options(decoding_plugin="pydicom")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = ds.pixel_array
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # decoders raise many types on damaged data; Rust ones (pyo3) a BaseException "PanicException"
        # All of it on one line: pydicom puts what each plugin lacks on the lines after the first.
        raise DicomError(f"{path}: cannot decode the pixel data ({' '.join(str(e).split()) or type(e).__name__})") from None
    arr = np.asarray(arr)
    # The stack keeps the stored values; the dataset keeps its header only: its PixelData bytes and
    # pydicom's decoded copy (cleared with them) would hold the series twice more.
    del ds.PixelData
    if arr.dtype.kind not in "iu":
        raise DicomError(f"{path}: pixel data decoded as {arr.dtype}, expected integers")
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DicomError(f"{path}: pixel data of shape {arr.shape} is not one or more 2-D frames")
    return arr


__all__ = ["PixelRef", "check_decoder", "decode", "pixel_ref", "read_dataset"]
