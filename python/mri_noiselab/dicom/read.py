"""DICOM Part 10 files to stacks: reading, decoding, and which images are corrected.

A :class:`DicomStack` holds the stored values of one file's frames, or of single-frame
files that :mod:`mri_noiselab.dicom.series` grouped; :func:`eligibility` is the one
policy of what is corrected. pydicom alone reads; compressed input needs the
``codecs`` extra.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.decoders.base import get_decoder

from mri_noiselab.derivation import OWN_DERIVATION, PACKAGE
from mri_noiselab.dicom.checks import check_deflated, check_pixel_data, frame_count, transfer_syntax
from mri_noiselab.errors import CODECS_INSTALL, DecoderMissingError, DicomError, NotEligibleError, without_values

# images re-encoded as one object). MR Spectroscopy, Enhanced MR Color, Parametric Map (float
# maps with Modality MR), Secondary Capture and every non-MR class are left alone.
_MR_IMAGE_CLASSES = {
    pydicom.uid.MRImageStorage,
    pydicom.uid.EnhancedMRImageStorage,
    pydicom.uid.LegacyConvertedEnhancedMRImageStorage,
}
# Values 3 and later of ImageType (PS3.3 C.7.6.1.1.2) and of FrameType (value 3 Image Flavor,
# value 4 Derived Pixel Contrast, C.8.16.1) that mark the pixel values as something other than
# a magnitude. Vendors spell the complex component in classic ImageType: Siemens M/P/R/I,
# Philips M/P/R/I beside M_SE, P_FFE, R_IR ... (prefix checked separately), PHASE MAP.
_NOT_MAGNITUDE = {"P", "PHASE", "PHASE MAP", "PHASE_MAP", "R", "REAL", "I", "IMAGINARY"}
_NOT_MAGNITUDE_PREFIXES = ("P_", "R_", "I_")
# Images that are magnitudes but not the scanner's noisy reconstruction: maps computed from
# several images (diffusion ADC/FA/trace, relaxometry, perfusion, velocity), projections and
# reformats (their pixels are maxima, minima or interpolations, whose noise is not Rician),
# subtractions (signed), localizers and screen captures. DICOM marks them DERIVED in value 1
# (always in Enhanced MR, whose value 4 then names the contrast: ADC, FA, TRACEW, T1_MAP, MAXIMUM,
# SUBTRACTION, ...); classic objects from some scanners keep ORIGINAL and say it only in
# values 3+, with Siemens, GE and Philips words (MIP, MNIP, MPR, PROJECTION IMAGE, TRACEW, EADC,
# RELCBF, T2 MAP). Words that raw acquisitions carry too (DIFFUSION, PERFUSION, ASL, FMRI,
# MOSAIC, NORM) are not in the list.
_NOT_ACQUIRED = {
    "ADC", "EADC", "FA", "TRACE", "TRACEW", "EXP", "DIFFUSION_ANISO", "DIFFUSION_ATTN",
    "T1 MAP", "T2 MAP", "T2* MAP", "T1_MAP", "T2_MAP", "T2_STAR_MAP", "R2_STAR_MAP", "PROTON_DENSITY_MAP",
    "CBF", "CBV", "MTT", "TTP", "RCBF", "RCBV", "RELCBF", "RELCBV", "RELMTT", "PBP", "GBP",
    "VELOCITY", "VELOCITY MAP", "FIELD_MAP", "FAT_FRACTION", "WATER_FRACTION",
    "MIP", "MINIP", "MNIP", "MAXIMUM", "MINIMUM", "MPR", "CPR", "PROJECTION IMAGE",
    "SUBTRACTION", "SUB", "LOCALIZER", "SCREEN SAVE",
}
# Every derived object this package writes says so in DerivationDescription, at the top level or
# (Enhanced MR) in each frame's DerivationImageSequence; ContributingEquipmentSequence may be
# stripped by other tools, the derivation text is part of what the image is.
_OWN_OUTPUT = f"output of {PACKAGE}"

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


@dataclass
class DicomStack:
    """Slices (single-frame files) or frames (one multi-frame file) that share one σ.

    Meets :class:`mri_noiselab.clean.Volume`: its axes are ``(slices, rows, cols)``,
    slices never enter an int window, and it holds no volume axis.

    Attributes
    ----------
    datasets : list of pydicom.Dataset
        One per single-frame file, sorted along the slice normal; or one
        multi-frame dataset.
    paths : list of pathlib.Path
        The source file of each dataset.
    stored : numpy.ndarray
        Stored values, shape ``(slices, rows, cols)``, the source dtype in
        native byte order.
    slope, intercept : numpy.ndarray
        Rescale slope and intercept per slice or frame (1 and 0 when absent).
    frames : numpy.ndarray of int or None
        When the stack holds only some frames of its multi-frame file (the
        magnitude frames of a MIXED file): their indices in the file. None
        when it holds them all.
    whole : DicomStack or None
        With ``frames``: the stack of every frame of the file, which the
        derived object is written from (see :meth:`file_pixels`).
    """

    datasets: list[Dataset]
    paths: list[Path]
    stored: np.ndarray
    slope: np.ndarray
    intercept: np.ndarray
    frames: np.ndarray | None = None
    whole: DicomStack | None = field(default=None, repr=False)
    # magnitude() is needed by the background, σ, the correction and the QC figure of
    # one stack: computed once, read-only so that no caller can change the others' copy.
    _magnitude: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_multiframe(self) -> bool:
        """True when the stack's frames come from one multi-frame file."""
        return len(self.datasets) == 1 and self.stored.shape[0] > 1

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slices, rows, cols)``."""
        n, r, c = self.stored.shape
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

    axes = (1, 2, 0)
    """The array axes of rows, columns and slices."""
    slice_axis = 0
    volume_axis = None

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
        values = (self.stored[block] if stored is None else stored).astype(np.float64)
        # One slope and no intercept (most MR) make this the stored values: x * 1 + 0 == x
        # exactly, so skipping the arithmetic changes no bit and two passes over the block.
        if not self._identity:
            values *= (self.slope[block] / self.unit)[:, None, None]
            values += (self.intercept[block] / self.unit)[:, None, None]
        return values

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
        return values.astype(self.stored.dtype)

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


def read_dataset(path: Path) -> Dataset:
    """The dataset of a Part 10 file, every element converted: a damaged one fails here."""
    check_deflated(path)
    try:
        with warnings.catch_warnings():
            # Reading must not depend on the caller's warning filters; the checks after it decide.
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path)
            # pydicom converts elements on first access: a damaged one must fail here, not when writing.
            for _ in ds.iterall():
                pass
    except InvalidDicomError:
        raise DicomError(f"{path}: not a DICOM file (no 'DICM' file header)") from None
    except (OSError, EOFError) as e:
        raise DicomError(f"{path}: cannot read: {e}") from None
    except Exception as e:  # pydicom raises many types on damaged headers
        raise DicomError(f"{path}: damaged DICOM header ({without_values(e)})") from None
    return ds


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


def is_own_output(ds: Dataset) -> bool:
    """True when ``ds`` is an object this package wrote (its DerivationDescription says so).

    The text is at the top level of single-frame objects and in each frame's
    DerivationImageSequence of Enhanced MR objects.
    """
    return own_derivation(ds) is not None


def own_derivation(ds: Dataset) -> str | None:
    """The DerivationDescription this package wrote into ``ds`` (top level, shared or first frame's), or None."""
    items = [ds]
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(groups) or []:
            items.extend(group.get("DerivationImageSequence") or [])
    for item in items:
        text = str(item.get("DerivationDescription", "") or "")
        if OWN_DERIVATION in text:
            return text
    return None


def eligibility(ds: Dataset, *, include_derived: bool = False) -> str | None:
    """Why ``ds`` is not corrected, or None when it is: the one policy of every batch and σ report.

    Corrected are MR Image, Enhanced MR and Legacy Converted Enhanced MR
    objects of Modality MR whose pixels are magnitudes as the scanner
    reconstructed them. Left alone, with the reason returned:

    - the output of this package (its DerivationDescription), always;
    - other SOP classes (MR spectroscopy, colour, parametric maps, secondary
      capture, CT, ...) and other modalities, always;
    - phase, real and imaginary images (ComplexImageComponent, ImageType
      values such as P, R, I, PHASE MAP, the GE private image type), always;
    - derived images (ImageType value 1 DERIVED), computed maps and
      projections (ADC, FA, TRACEW, MIP, MPR, T2 MAP, ...) and localizers,
      unless ``include_derived``.

    A multi-frame object is judged frame by frame (FrameType and
    ComplexImageComponent of its functional groups): a MIXED file whose
    magnitude frames pass is corrected on those frames only.

    Parameters
    ----------
    ds : pydicom.Dataset
    include_derived : bool
        Let derived images, maps, projections and localizers through.

    Returns
    -------
    str or None
        A short reason that quotes no attribute value beyond the ImageType
        word it matched, or None.
    """
    if is_own_output(ds):
        return _OWN_OUTPUT
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class and sop_class not in _MR_IMAGE_CLASSES:
        name = pydicom.uid.UID(sop_class).name
        return f"not an MR magnitude image ({name if name != sop_class else 'an unknown SOP class'})"
    if str(ds.get("Modality", "") or "MR").strip().upper() != "MR":
        return "not an MR image (Modality is not MR)"
    reasons = frame_reasons(ds, include_derived)
    if any(reason is None for reason in reasons):
        return None
    return collections.Counter(reasons).most_common(1)[0][0]


def _upper_values(value: Any) -> list[str]:
    values = [value] if isinstance(value, str) else list(value or [])
    return [str(v).strip().upper() for v in values]


def _ge_component(ds: Dataset) -> str | None:
    """GE's private image type (0043,102F): 0 magnitude, 1 phase, 2 real, 3 imaginary."""
    try:
        value = int(ds.private_block(0x0043, "GEMS_PARM_01")[0x2F].value)
    except (KeyError, TypeError, ValueError):
        return None
    return {1: "PHASE", 2: "REAL", 3: "IMAGINARY"}.get(value)


def frame_reasons(ds: Dataset, include_derived: bool) -> list[str | None]:
    """The reason to leave each frame alone (None: correct it), from its FrameType and ComplexImageComponent.

    A frame's MRImageFrameTypeSequence item (per-frame, else shared) speaks for it;
    what it lacks comes from the top-level ImageType and ComplexImageComponent.
    """
    image_type = _upper_values(ds.get("ImageType"))
    component = str(ds.get("ComplexImageComponent", "") or "").strip().upper() or _ge_component(ds)
    frames = frame_count(ds)
    reasons = []
    for frame in range(frames):
        item = _functional_item(ds, frame, "MRImageFrameTypeSequence")
        values = _upper_values(item.get("FrameType")) if item is not None and "FrameType" in item else image_type
        own = str(item.get("ComplexImageComponent", "") or "").strip().upper() if item is not None else ""
        reasons.append(_image_reason(values, own or component, include_derived))
    return reasons


def _image_reason(values: Sequence[str], component: str | None, include_derived: bool) -> str | None:
    if component == "MIXED":
        return "mixed complex components (ComplexImageComponent MIXED) with no per-frame component"
    if component in ("PHASE", "REAL", "IMAGINARY"):
        return f"a {component.lower()} image (ComplexImageComponent), not a magnitude"
    for value in values[2:]:
        if value in _NOT_MAGNITUDE:
            return f"a phase, real or imaginary image (ImageType {value}), not a magnitude"
        if value.startswith(_NOT_MAGNITUDE_PREFIXES):
            return f"a phase, real or imaginary image (ImageType {value[:2]}...), not a magnitude"
    if include_derived:
        return None
    for value in values[2:]:
        if value == "LOCALIZER":
            return "a localizer (ImageType LOCALIZER)"
        if value in _NOT_ACQUIRED:
            return f"a computed image, not an acquisition (ImageType {value})"
    if values[:1] == ["DERIVED"]:
        return "a derived image (ImageType DERIVED)"
    return None


def decode(ds: Dataset, path: Path) -> np.ndarray:
    """The stored values of ``ds`` as ``(frames, rows, cols)`` integers in native byte order.

    The pixel data is removed from ``ds``, which keeps its header.
    """
    check_pixel_data(ds, path)
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


def _functional_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The first item of functional group ``sequence`` for ``frame``: per-frame first, then shared."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        found = items[index].get(sequence) if items is not None and len(items) > index else None
        if found:
            item: Dataset = found[0]
            return item
    return None


def rescale(ds: Dataset, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Rescale slope and intercept of each frame: per frame, shared, or the top-level ones."""
    slope = np.ones(frames)
    intercept = np.zeros(frames)
    for i in range(frames):
        item = _functional_item(ds, i, "PixelValueTransformationSequence")
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
    "check_deflated",
    "check_image",
    "check_pixel_data",
    "decode",
    "eligibility",
    "frame_count",
    "frame_reasons",
    "hide_values",
    "is_own_output",
    "own_derivation",
    "read_dataset",
    "read_file",
    "rescale",
    "stack_from_dataset",
    "stored_range",
    "transfer_syntax",
]
