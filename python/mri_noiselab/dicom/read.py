"""DICOM files to stacks: the slices or frames that share one σ, as stored values and magnitudes.

A :class:`DicomStack` holds the stored values of one file's frames, or the pixel references
of single-frame files that :mod:`mri_noiselab.dicom.series` grouped (decoded a block of
slices at a time); :mod:`mri_noiselab.dicom.eligibility` says what is corrected. pydicom
alone reads; compressed input needs the ``codecs`` extra.
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydicom.dataset import Dataset

from mri_noiselab.dicom.checks import functional_item
from mri_noiselab.dicom.eligibility import frame_reasons
from mri_noiselab.dicom.pixels import PixelRef, decode, read_dataset
from mri_noiselab.errors import DicomError, NotEligibleError

_F = TypeVar("_F", bound=Callable[..., Any])


def hide_values(func: _F) -> _F:
    """Silence pydicom's value warnings ("Invalid value for VR DA: '19800101'") in ``func``.

    They quote attribute values, patient name, ID and birth date included, and
    would reach the user's console or logs. Values are copied from the source
    as they are; judging them is a validator's job (dciodvfy), not this one's.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class DicomStack:
    """Slices (single-frame files) or frames (one multi-frame file) that share one σ.

    Meets :class:`mri_noiselab.clean.Volume`: its axes are ``(slices, rows, cols)``,
    slices never enter an int window, and it holds no volume axis.

    Parameters
    ----------
    datasets : list of pydicom.Dataset
        One per single-frame file, sorted along the slice normal; or one
        multi-frame dataset. Headers only: the pixel data is held by ``stored``
        or ``pixels``.
    paths : list of pathlib.Path
        The source file of each dataset.
    stored : numpy.ndarray or None
        Stored values, shape ``(slices, rows, cols)``, the source dtype in
        native byte order; None with ``pixels``.
    slope, intercept : numpy.ndarray
        Rescale slope and intercept per slice or frame (1 and 0 when absent).
    frames : numpy.ndarray of int or None
        When the stack holds only some frames of its multi-frame file (the
        magnitude frames of a MIXED file): their indices in the file. None
        when it holds them all.
    whole : DicomStack or None
        With ``frames``: the stack of every frame of the file, which the
        derived object is written from (see :meth:`file_pixels`).
    pixels : list of PixelRef, optional
        Single-frame files: where each file's pixel data lies, decoded when a
        block of slices is asked for (:meth:`stored_block`), never all at once
        unless :attr:`stored` is.
    dtype : numpy.dtype, optional
        With ``pixels``: the dtype the files decode to.
    """

    axes = (1, 2, 0)
    """The array axes of rows, columns and slices."""
    slice_axis = 0
    volume_axis = None

    def __init__(
        self,
        datasets: list[Dataset],
        paths: list[Path],
        stored: np.ndarray | None,
        slope: np.ndarray,
        intercept: np.ndarray,
        frames: np.ndarray | None = None,
        whole: DicomStack | None = None,
        *,
        pixels: list[PixelRef] | None = None,
        dtype: np.dtype[Any] | None = None,
    ) -> None:
        if (stored is None) == (pixels is None):
            raise ValueError("a stack holds its stored values or the references of its files' pixels: give one")
        if pixels is not None and (dtype is None or len(pixels) != len(datasets)):
            raise ValueError("pixel references need the dtype and one reference per dataset")
        self.datasets = datasets
        self.paths = paths
        self.slope = slope
        self.intercept = intercept
        self.frames = frames
        self.whole = whole
        self.pixels = pixels
        self._stored = stored
        self._dtype = np.dtype(dtype) if stored is None else stored.dtype
        first = datasets[0]
        self._shape = tuple(stored.shape) if stored is not None else (len(datasets), int(first.Rows), int(first.Columns))
        # magnitude() is needed by the background, σ, the correction and the QC figure of
        # one stack: computed once, read-only so that no caller can change the others' copy.
        self._magnitude: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"DicomStack({self.label})"

    @property
    def stored(self) -> np.ndarray:
        """Stored values of the whole stack, ``(slices, rows, cols)`` (decoded on first use with ``pixels``)."""
        if self._stored is None:
            self._stored = self.stored_block(slice(None))
        return self._stored

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the stored values."""
        return self._dtype

    def stored_block(self, block: slice, rows: slice = slice(None)) -> np.ndarray:
        """Stored values of slices ``block`` (and ``rows``, a range of rows): read from their
        files when the stack holds references, only the rows asked for where they lie uncompressed."""
        if self._stored is not None or self.pixels is None:
            return self.stored[block, rows]
        refs = self.pixels[block]
        start, stop, step = rows.indices(self._shape[1])
        if step != 1:
            raise ValueError("rows must be a range of consecutive rows")
        out = np.empty((len(refs), max(0, stop - start), self._shape[2]), dtype=self._dtype)
        for k, ref in enumerate(refs):
            ref.read_into(out[k : k + 1], start, self._shape[1])
        return out

    @property
    def is_multiframe(self) -> bool:
        """True when the stack's frames come from one multi-frame file."""
        return len(self.datasets) == 1 and self._shape[0] > 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, cols)``."""
        n, r, c = self._shape
        return (n, r, c)

    @property
    def series_uid(self) -> str:
        """The source SeriesInstanceUID."""
        return str(self.datasets[0].get("SeriesInstanceUID", ""))

    @property
    def group(self) -> str:
        """Stacks of one source series share one σ: the SeriesInstanceUID."""
        return self.series_uid

    @property
    def unit(self) -> float:
        """The real-world value of one unit of :meth:`magnitude`: the first slice's or frame's slope."""
        return float(self.slope[0])

    @property
    def mosaic(self) -> int:
        """Tiles per side of a Siemens mosaic (one image holding a grid of slices); 1 otherwise."""
        ds = self.datasets[0]
        if "MOSAIC" not in [str(v).upper() for v in ds.get("ImageType", [])]:
            return 1
        try:
            count = int(ds[0x0019, 0x100A].value)  # NumberOfImagesInMosaic (SIEMENS MR HEADER)
            side = math.ceil(math.sqrt(count))
        except (KeyError, TypeError, ValueError):
            matrix = [int(v) for v in ds.get("AcquisitionMatrix", []) or [] if int(v) > 0]
            side = int(ds.Rows) // max(matrix) if matrix else 1
        rows, cols = int(ds.Rows), int(ds.Columns)
        return side if side > 1 and rows % side == 0 and cols % side == 0 else 1

    @property
    def label(self) -> str:
        """The first file's name and the stack's extent, for messages: never a tag value."""
        n = self.shape[0]
        unit = "frames" if self.is_multiframe else "slices"
        more = f"+{len(self.paths) - 1} files, " if len(self.paths) > 1 else ""
        return f"{self.paths[0].name} ({more}{n} {unit})"

    def magnitude(self) -> np.ndarray:
        """Return the pixels as float64, zero where the signal is zero.

        Returns
        -------
        numpy.ndarray
            ``(stored * slope + intercept) / slope[0]``, shape ``(slices, rows, cols)``,
            read-only (computed once per stack).

        Notes
        -----
        With a zero intercept and one slope this is the stored values
        themselves, so the rescale slope and private scale factors of the
        output stay valid. A non-zero intercept is removed (zero signal must be
        zero for the noise model) and :meth:`to_stored` puts it back. Slices
        with different slopes are brought to the first slice's scale so that
        one σ holds for the whole stack.
        """
        if self._magnitude is None:
            magnitude = self.magnitude_block(slice(None))
            magnitude.flags.writeable = False
            self._magnitude = magnitude
        return self._magnitude

    def magnitude_block(self, block: slice, stored: np.ndarray | None = None) -> np.ndarray:
        """The :meth:`magnitude` of slices ``block``; of ``stored``, those slices' stored values, when given.

        A float64 array of the block alone: correcting a stack block by block
        (:mod:`mri_noiselab.blocks`) never holds the whole stack in float64.
        """
        if stored is None and self._magnitude is not None:
            return self._magnitude[block]
        values = (self.stored_block(block) if stored is None else stored).astype(np.float64)
        # One slope and no intercept (most MR) make this the stored values: x * 1 + 0 == x
        # exactly, so skipping the arithmetic changes no bit and two passes over the block.
        if not self._identity:
            values *= (self.slope[block] / self.unit)[:, None, None]
            values += (self.intercept[block] / self.unit)[:, None, None]
        return values

    def search_magnitude(self) -> np.ndarray:
        """:meth:`magnitude` as the background search reads it: float32 where that holds it exactly
        (8- and 16-bit values without a rescale), gathered a block at a time, not kept."""
        if self._magnitude is not None or not self._identity or self._dtype.itemsize > 2:
            return self.magnitude()
        out = np.empty(self._shape, dtype=np.float32)
        step = max(1, (1 << 21) // max(1, self._shape[1] * self._shape[2]))
        for start in range(0, self._shape[0], step):
            block = slice(start, start + step)
            out[block] = self.stored_block(block)
        return out

    def stored_rescale(self, block: slice) -> dict[str, Any]:
        """How :meth:`magnitude_block` and :meth:`to_stored_block` convert slices ``block``, as the
        arguments of :func:`mri_noiselab.stored.correct_stored` (which gives the same bits)."""
        lo, hi = stored_range(self.datasets[0])
        if self._identity:
            return {"lo": lo, "hi": hi}
        slope, intercept = self.slope[block], self.intercept[block]
        return {"scale": slope / self.unit, "offset": intercept / self.unit, "out_scale": self.unit / slope,
                "out_offset": intercept / slope, "lo": lo, "hi": hi}

    def masked_block(self, block: slice, mask: np.ndarray) -> np.ndarray:
        """``magnitude_block(block)[mask]``, the rescale applied to the chosen values only (the same bits)."""
        if mask.ndim == 3 and mask.strides[0] == 0:  # one plane on every slice (a ROI): indexed per plane, 20x faster
            used = np.flatnonzero(mask[0].any(axis=1))
            rows = slice(int(used[0]), int(used[-1]) + 1) if used.size else slice(0, 0)
            values: np.ndarray = self.stored_block(block, rows)[:, mask[0, rows]].reshape(-1).astype(np.float64)
        else:
            values = self.stored_block(block)[mask].astype(np.float64)
        if not self._identity:
            per_slice = np.count_nonzero(mask.reshape(mask.shape[0], -1), axis=1)
            values *= np.repeat(self.slope[block] / self.unit, per_slice)
            values += np.repeat(self.intercept[block] / self.unit, per_slice)
        return values

    def negative_block(self, block: slice, stored: np.ndarray | None = None) -> bool:
        """Whether any :meth:`magnitude` value of slices ``block`` (stored values ``stored``, when given) is below zero.

        The rescale is monotonic in the stored value, value by value in floating
        point too, so each slice's smallest and largest stored values decide; an
        unsigned stack without an intercept is never read for it.
        """
        if self._identity and self._dtype.kind == "u":
            return False
        if stored is None:
            stored = self.stored_block(block)
        if self._identity:
            return bool(stored.size and stored.min() < 0)
        flat = stored.reshape(len(stored), -1)
        ends = np.stack([flat.min(axis=1), flat.max(axis=1)], axis=1).astype(np.float64)
        ends *= (self.slope[block] / self.unit)[:, None]
        ends += (self.intercept[block] / self.unit)[:, None]
        return bool(np.any(ends < 0))

    @property
    def _identity(self) -> bool:
        return bool(np.all(self.slope == self.unit) and np.all(self.intercept == 0))

    def to_stored(self, magnitude: np.ndarray) -> np.ndarray:
        """Convert a magnitude in the domain of :meth:`magnitude` back to stored values.

        Values are rounded to nearest (ties to even), clipped to the range that
        BitsStored and PixelRepresentation allow (signed images have a signed
        range), and cast to the source dtype.
        """
        if np.shape(magnitude) != self.shape:
            raise ValueError(f"magnitude shape {np.shape(magnitude)} does not match the stack shape {self.shape}")
        return self.to_stored_block(magnitude, slice(None))

    def to_stored_block(self, magnitude: np.ndarray, block: slice) -> np.ndarray:
        """:meth:`to_stored` of the magnitude of slices ``block``."""
        mag = np.asarray(magnitude, dtype=np.float64)
        if self._identity:  # x * 1 - 0 == x: the same bits without two passes
            values = np.rint(mag)
        else:
            values = mag * (self.unit / self.slope[block])[:, None, None]
            values -= (self.intercept[block] / self.slope[block])[:, None, None]
            np.rint(values, out=values)
        lo, hi = stored_range(self.datasets[0])
        np.clip(values, lo, hi, out=values)
        return values.astype(self._dtype)

    def file_pixels(self, stored: np.ndarray) -> tuple[DicomStack, np.ndarray]:
        """The stack of the whole files and their stored values, with ``stored`` in this stack's frames.

        The frames a stack leaves out (the phase frames of a MIXED file) keep
        their stored values; a stack of whole files returns itself and ``stored``.
        """
        if self.whole is None or self.frames is None:
            return self, stored
        pixels = self.whole.stored.copy()
        pixels[self.frames] = stored
        return self.whole, pixels


def stored_range(ds: Dataset) -> tuple[int, int]:
    """Return the (min, max) stored value that BitsStored and PixelRepresentation allow."""
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def check_image(ds: Dataset, path: Path) -> None:
    """Refuse a dataset that holds no integer monochrome image the stack can take."""
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise DicomError(f"{path}: floating-point pixel data is not supported, only integer PixelData")
        raise DicomError(f"{path}: no PixelData: not an image")
    # The derived object references the source by these UIDs (SourceImageSequence, evidence).
    required = ("Rows", "Columns", "BitsAllocated", "BitsStored", "SOPClassUID", "SOPInstanceUID",
                "StudyInstanceUID", "SeriesInstanceUID")
    for keyword in required:
        if keyword not in ds:
            raise DicomError(f"{path}: dataset does not have required attribute '{keyword}'")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise DicomError(
            f"{path}: a colour image (SamplesPerPixel {ds.SamplesPerPixel}): only single-sample magnitude images"
        )
    if str(ds.get("PhotometricInterpretation", "MONOCHROME2")) not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomError(f"{path}: PhotometricInterpretation {ds.PhotometricInterpretation} is not monochrome")
    if int(ds.BitsAllocated) not in (8, 16, 32):
        raise DicomError(f"{path}: BitsAllocated {ds.BitsAllocated} is not supported (8, 16 or 32)")


def rescale(ds: Dataset, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Rescale slope and intercept of each frame: per frame, shared, or the top-level ones."""
    slope = np.ones(frames)
    intercept = np.zeros(frames)
    for i in range(frames):
        item = functional_item(ds, i, "PixelValueTransformationSequence")
        item = ds if item is None else item
        slope[i] = _number(item, "RescaleSlope", 1.0)
        intercept[i] = _number(item, "RescaleIntercept", 0.0)
    if np.any(slope == 0) or not np.all(np.isfinite(slope)) or not np.all(np.isfinite(intercept)):
        raise DicomError("RescaleSlope is zero or RescaleSlope/RescaleIntercept not finite")
    return slope, intercept


def _number(ds: Dataset, keyword: str, default: float) -> float:
    """A numeric attribute, ``default`` when absent or empty (a zero stays zero)."""
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DicomError(f"{keyword} is not a number") from None


@hide_values
def read_file(path: str | os.PathLike[str]) -> DicomStack:
    """Read one single-frame or multi-frame (e.g. Enhanced MR) file.

    This reads any magnitude image, derived ones and this package's outputs
    included: :func:`mri_noiselab.dicom.read_source` is what applies :func:`eligibility`.

    Parameters
    ----------
    path : path-like
        A DICOM file (Part 10, with the 'DICM' header).

    Returns
    -------
    DicomStack
        One slice, or the file's frames in stored order: the magnitude frames
        only of a MIXED file (see :meth:`DicomStack.file_pixels`).

    Raises
    ------
    DicomError
        If the file is not DICOM, holds no integer monochrome magnitude pixel
        data, or its pixel data cannot be decoded.
    DecoderMissingError
        If the pixel data is compressed and no decoder is installed: install
        the ``codecs`` extra (``pip install "mri-noiselab[codecs]"``).
    """
    p = Path(path)
    ds = read_dataset(p)
    check_image(ds, p)
    return stack_from_dataset(ds, p, include_derived=True)


def stack_from_dataset(ds: Dataset, path: Path, include_derived: bool) -> DicomStack:
    """The stack of one file's frames: its magnitude frames only when it also holds others."""
    stored = decode(ds, path)
    try:
        slope, intercept = rescale(ds, stored.shape[0])
    except DicomError as e:
        raise DicomError(f"{path}: {e}") from None
    stack = DicomStack([ds], [path], stored, slope, intercept)
    reasons = frame_reasons(ds, include_derived)
    if len(reasons) != stored.shape[0]:
        raise DicomError(f"{path}: NumberOfFrames does not match the {stored.shape[0]} frame(s) of the pixel data")
    frames = np.flatnonzero([reason is None for reason in reasons])
    if frames.size == 0:
        raise NotEligibleError(f"{path}: {reasons[0]}: only magnitude images are corrected")
    if frames.size == stored.shape[0]:
        return stack
    return DicomStack([ds], [path], stored[frames], slope[frames], intercept[frames], frames=frames, whole=stack)


__all__ = [
    "DicomStack",
    "check_image",
    "hide_values",
    "read_file",
    "rescale",
    "stack_from_dataset",
    "stored_range",
]
