"""DICOM input and output: read magnitude images, write derived, corrected objects.

The data flow is: files -> :class:`DicomStack` (stored values, sorted slices) ->
:meth:`DicomStack.magnitude` (a zero-based float array) -> σ and correction
(:mod:`mri_noiselab.noise`) -> :meth:`DicomStack.to_stored` -> :func:`derive_datasets`
-> :func:`write_dataset`. :func:`clean_source` runs the whole chain on a file or
a folder. pydicom alone reads and writes; compressed input needs the ``codecs``
extra.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import datetime as _dt
import functools
import io
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLSNearLossless,
    generate_uid,
)

from mri_noiselab._atomic import atomic_write, check_writable, same_file
from mri_noiselab._kernels import _core
from mri_noiselab.background import Background, find_background
from mri_noiselab.noise import NoBackgroundError, SigmaEstimate, correct, estimate_sigma, window_sizes

PACKAGE = "mri-noiselab"
CODECS_INSTALL = 'pip install "mri-noiselab[codecs]"'
SERIES_SUFFIX = " [Rician bias corrected]"
SERIES_NUMBER_OFFSET = 1000

# CID 7203 "Image Derivation" has no denoising concept: a windowed moment estimate
# is a smoothing of M^2, the pointwise method subtracts 2 N sigma^2 pixel by pixel.
_DERIVATION_CODES = {
    "moments": ("113087", "DCM", "Smoothing"),
    "lmmse": ("113087", "DCM", "Smoothing"),
    "pointwise": ("113062", "DCM", "Pixel by pixel subtraction"),
}
_SOURCE_PURPOSE = ("121322", "DCM", "Source image for image processing operation")
# The IODs whose ImageType and FrameType value 2 can only be PRIMARY (PS3.3 C.8.16.1.1, Common
# CT/MR Image Description): the class decides, as dciodvfy does, also for an object that lacks
# its functional groups (pydicom-data's emri_small).
_PRIMARY_ONLY_CLASSES = {pydicom.uid.EnhancedMRImageStorage, pydicom.uid.LegacyConvertedEnhancedMRImageStorage}

# Attributes whose different values split one series into stacks that are sorted separately.
# What separates the stacks of one series: echoes, repeated acquisitions, time points,
# inversion times, diffusion weightings. Numbers compare as numbers ("15" == "15.0").
_SPLIT_KEYWORDS = (
    "EchoNumbers", "EchoTime", "ImageType", "AcquisitionNumber", "TemporalPositionIdentifier", "TriggerTime",
    "InversionTime", "DiffusionBValue", "DiffusionGradientOrientation",
)

# What is corrected (see eligibility()). The noise model holds for magnitude MR data as the
# scanner reconstructed it; these SOP classes carry such data (Legacy Converted: classic MR
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
_OWN_DERIVATION = f"Rician noise bias removed by {PACKAGE}"
_OWN_OUTPUT = f"output of {PACKAGE}"
# Decoded output of these is never the original: the derived image must say it was lossy compressed.
_ALWAYS_LOSSY = {JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless}
_BYTE_SWAP_VRS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


_F = TypeVar("_F", bound=Callable[..., Any])


def _hide_values(func: _F) -> _F:
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


class DicomError(ValueError):
    """A file cannot be used: not DICOM, no pixels, not a magnitude image, unreadable."""


class DecoderMissingError(DicomError):
    """Compressed pixel data and no installed decoder for its transfer syntax."""


# --------------------------------------------------------------------------- reading


@dataclass
class DicomStack:
    """Slices (single-frame files) or frames (one multi-frame file) that share one σ.

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
    def reference_slope(self) -> float:
        """The slope of the first slice or frame: :meth:`magnitude` is real-world values over it."""
        return float(self.slope[0])

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
            scale = (self.slope / self.reference_slope)[:, None, None]
            offset = (self.intercept / self.reference_slope)[:, None, None]
            self._magnitude = self.stored.astype(np.float64) * scale + offset
            self._magnitude.flags.writeable = False
        return self._magnitude

    def to_stored(self, magnitude: np.ndarray) -> np.ndarray:
        """Convert a magnitude in the domain of :meth:`magnitude` back to stored values.

        Values are rounded to nearest (ties to even), clipped to the range that
        BitsStored and PixelRepresentation allow (signed images have a signed
        range), and cast to the source dtype.
        """
        mag = np.asarray(magnitude, dtype=np.float64)
        if mag.shape != self.shape:
            raise ValueError(f"magnitude shape {mag.shape} does not match the stack shape {self.shape}")
        scale = (self.reference_slope / self.slope)[:, None, None]
        offset = (self.intercept / self.slope)[:, None, None]
        values = np.rint(mag * scale - offset)
        lo, hi = stored_range(self.datasets[0])
        return np.clip(values, lo, hi).astype(self.stored.dtype)

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


# Returns a stack's background: a boolean mask (a ROI) or an automatic Background (mask,
# fitted coils, warnings).
BackgroundFunction = Callable[["DicomStack"], "np.ndarray | Background"]


@dataclass(frozen=True)
class Failure:
    """A file, or a source series, that could not be used or written, and why.

    Attributes
    ----------
    path : Path
        The file, or the first file of the series.
    message : str
    paths : tuple of Path
        Every file left unwritten because of it (a whole series); empty when
        it is ``path`` alone.
    """

    path: Path
    message: str
    paths: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        """The files left unwritten: ``paths``, or ``path`` alone."""
        return self.paths or (self.path,)


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


class NotEligibleError(DicomError):
    """Nothing to correct: the file (or every file of a folder) is not a magnitude MR image.

    ``derived`` is True when ``include_derived`` would have let it through.
    """

    def __init__(self, message: str, *, derived: bool = False) -> None:
        super().__init__(message)
        self.derived = derived


def _read_dataset(path: Path) -> Dataset:
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
        raise DicomError(f"{path}: damaged DICOM header ({_first_line(e)})") from None
    return ds


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _check_image(ds: Dataset, path: Path) -> None:
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
    if _OWN_DERIVATION in str(ds.get("DerivationDescription", "") or ""):
        return True
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for group in ds.get(groups) or []:
            for item in group.get("DerivationImageSequence") or []:
                if _OWN_DERIVATION in str(item.get("DerivationDescription", "") or ""):
                    return True
    return False


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
    reasons = _frame_reasons(ds, include_derived)
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


def _frame_reasons(ds: Dataset, include_derived: bool) -> list[str | None]:
    """The reason to leave each frame alone (None: correct it), from its FrameType and ComplexImageComponent.

    A frame's MRImageFrameTypeSequence item (per-frame, else shared) speaks for it;
    what it lacks comes from the top-level ImageType and ComplexImageComponent.
    """
    image_type = _upper_values(ds.get("ImageType"))
    component = str(ds.get("ComplexImageComponent", "") or "").strip().upper() or _ge_component(ds)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
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


def _decode(ds: Dataset, path: Path) -> np.ndarray:
    ts = _transfer_syntax(ds)
    if ts is not None and ts.is_compressed:
        from pydicom.pixels import get_decoder

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
    if arr.dtype.kind not in "iu":
        raise DicomError(f"{path}: pixel data decoded as {arr.dtype}, expected integers")
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DicomError(f"{path}: pixel data of shape {arr.shape} is not one or more 2-D frames")
    return arr


def _transfer_syntax(ds: Dataset) -> pydicom.uid.UID | None:
    meta = getattr(ds, "file_meta", None)
    return meta.get("TransferSyntaxUID") if meta is not None else None


def _functional_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The first item of functional group ``sequence`` for ``frame``: per-frame first, then shared."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        found = items[index].get(sequence) if items is not None and len(items) > index else None
        if found:
            return found[0]
    return None


def _rescale(ds: Dataset, frames: int) -> tuple[np.ndarray, np.ndarray]:
    slope = np.ones(frames)
    intercept = np.zeros(frames)
    for i in range(frames):
        item = _functional_item(ds, i, "PixelValueTransformationSequence")
        item = ds if item is None else item
        slope[i] = float(item.get("RescaleSlope", 1) or 1)
        intercept[i] = float(item.get("RescaleIntercept", 0) or 0)
    if np.any(slope == 0) or not np.all(np.isfinite(slope)) or not np.all(np.isfinite(intercept)):
        raise DicomError("RescaleSlope is zero or RescaleSlope/RescaleIntercept not finite")
    return slope, intercept


@_hide_values
def read_file(path: str | os.PathLike[str]) -> DicomStack:
    """Read one single-frame or multi-frame (e.g. Enhanced MR) file.

    This reads any magnitude image, derived ones and this package's outputs
    included: :func:`read_source` is what applies :func:`eligibility`.

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
    return read_stack([path], include_derived=True)


def _key_value(value: Any) -> Any:
    """A hashable, comparable form of an attribute value: numbers as rounded floats."""
    if value is None:
        return None
    items = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    out = []
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
        value = datasets[i].get("InstanceNumber")
        return float(value) if value not in (None, "") else float("inf")

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


def _dicom_files(folder: Path, exclude: Path | None) -> list[Path]:
    files = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or p.name.upper() == "DICOMDIR":
            continue
        if exclude is not None and _inside(p, exclude):
            continue
        if p.is_file():
            files.append(p)
    return files


@_hide_values
def read_folder(
    folder: str | os.PathLike[str],
    *,
    exclude: str | os.PathLike[str] | None = None,
    include_derived: bool = False,
) -> SourceScan:
    """Read every DICOM file under ``folder`` and group the slices into stacks.

    Single-frame files are grouped by SeriesInstanceUID, then split by echo
    (EchoNumbers, EchoTime), ImageType, TemporalPositionIdentifier,
    DiffusionBValue and ImageOrientationPatient, and each stack is sorted by
    ImagePositionPatient projected on the normal of ImageOrientationPatient
    (InstanceNumber when positions are missing). Each multi-frame file is a
    stack of its own.

    Parameters
    ----------
    folder : path-like
        Searched recursively; hidden files and DICOMDIR are skipped.
    exclude : path-like, optional
        A sub-folder to skip (the output folder, when it lies inside the input).
    include_derived : bool
        See :func:`eligibility`.

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
    excluded = Path(exclude).resolve() if exclude is not None else None
    failures: list[Failure] = []
    ineligible: list[Skip] = []
    groups: dict[tuple[Any, ...], list[tuple[Dataset, Path]]] = {}
    stacks: list[DicomStack] = []
    series_files: dict[str, list[Path]] = {}
    series_errors: dict[str, list[str]] = {}
    for path in _dicom_files(root, excluded):
        uid = None
        try:
            if not pydicom.misc.is_dicom(path):
                ineligible.append(Skip(path, "not a DICOM file (no 'DICM' file header)", dicom=False))
                continue
            ds = _read_dataset(path)
            skip = _judge(ds, path, include_derived)
            if skip is not None:
                ineligible.append(skip)
                continue
            uid = str(ds.get("SeriesInstanceUID", "")) if "SeriesInstanceUID" in ds else None
            if uid is not None:
                series_files.setdefault(uid, []).append(path)
            _check_image(ds, path)
            if int(ds.get("NumberOfFrames", 1) or 1) > 1:
                stacks.append(_stack_from_dataset(ds, path, include_derived))
            else:
                groups.setdefault(_split_key(ds), []).append((ds, path))
        except OSError as e:
            failures.append(Failure(path, f"{path}: cannot read: {e}"))
        except (ValueError, TypeError) as e:  # DicomError, or a value unlike its VR (BitsAllocated "x")
            message = str(e) if isinstance(e, DicomError) else f"{path}: damaged DICOM header ({_first_line(e)})"
            if uid is None:
                failures.append(Failure(path, message))
            else:
                series_errors.setdefault(uid, []).append(message)
    for members in groups.values():
        try:
            stacks.append(_stack_from_files([m[0] for m in members], [m[1] for m in members]))
        except DicomError as e:
            series_errors.setdefault(str(members[0][0].SeriesInstanceUID), []).append(str(e))
    # All or nothing per source series: a series with one unusable file or stack is not corrected.
    for uid, errors in series_errors.items():
        stacks = [s for s in stacks if s.series_uid != uid]
        more = f" (and {len(errors) - 1} more error(s) in the series)" if len(errors) > 1 else ""
        failures.append(series_failure(series_files[uid], errors[0] + more))
    if not stacks:
        _raise_nothing_found(root, failures, ineligible)
    stacks.sort(key=lambda s: str(s.paths[0]))
    return SourceScan(stacks, failures, ineligible)


def _judge(ds: Dataset, path: Path, include_derived: bool) -> Skip | None:
    """:func:`eligibility` of a file read from ``path``: None, or why it is skipped."""
    try:
        reason = eligibility(ds, include_derived=include_derived)
        if reason is None:
            return None
        return Skip(path, reason, derived=not include_derived and eligibility(ds, include_derived=True) is None)
    except (ValueError, TypeError) as e:  # a value that is not what its VR promises (NumberOfFrames "x")
        raise DicomError(f"{path}: damaged DICOM header ({_first_line(e)})") from None


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


def series_failure(paths: Sequence[Path], error: BaseException | str) -> Failure:
    """The failure of a source series none of whose files is written, naming its first file and size.

    Messages never quote attribute values (a series description may name the
    patient): the series is named by its first file (in name order) and its
    number of files.
    """
    message = str(error)
    paths = sorted(paths, key=str)
    first = paths[0]
    if len(paths) == 1:
        return Failure(first, message if message.startswith(str(first)) else f"{first}: {message}")
    return Failure(first, f"series of {first} ({len(paths)} files): {message}", tuple(paths))


def _inside(path: Path, folder: Path) -> bool:
    resolved = path.resolve()
    return resolved == folder or folder in resolved.parents


def _stack_from_dataset(ds: Dataset, path: Path, include_derived: bool) -> DicomStack:
    stored = _decode(ds, path)
    try:
        slope, intercept = _rescale(ds, stored.shape[0])
    except DicomError as e:
        raise DicomError(f"{path}: {e}") from None
    stack = DicomStack([ds], [path], stored, slope, intercept)
    reasons = _frame_reasons(ds, include_derived)
    if len(reasons) != stored.shape[0]:
        raise DicomError(f"{path}: NumberOfFrames does not match the {stored.shape[0]} frame(s) of the pixel data")
    frames = np.flatnonzero([reason is None for reason in reasons])
    if frames.size == 0:
        raise NotEligibleError(f"{path}: {reasons[0]}: only magnitude images are corrected")
    if frames.size == stored.shape[0]:
        return stack
    return DicomStack([ds], [path], stored[frames], slope[frames], intercept[frames], frames=frames, whole=stack)


def _stack_from_files(datasets: list[Dataset], paths: list[Path]) -> DicomStack:
    order = _slice_order(datasets, paths)
    datasets = [datasets[i] for i in order]
    paths = [paths[i] for i in order]
    first = datasets[0]
    for ds, p in zip(datasets, paths):
        for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation"):
            if ds.get(keyword) != first.get(keyword):
                raise DicomError(
                    f"{p}: {keyword} {ds.get(keyword)} differs from {first.get(keyword)} in {paths[0].name} "
                    "of the same series: one stack needs one image format"
                )
    slices = [_decode(ds, p) for ds, p in zip(datasets, paths)]
    rescale = []
    for ds, p in zip(datasets, paths):
        try:
            rescale.append(_rescale(ds, 1))
        except DicomError as e:
            raise DicomError(f"{p}: {e}") from None
    return DicomStack(
        datasets,
        paths,
        np.concatenate(slices, axis=0),
        np.concatenate([r[0] for r in rescale]),
        np.concatenate([r[1] for r in rescale]),
    )


@_hide_values
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
        ds = _read_dataset(p)
        _check_image(ds, p)
        datasets.append(ds)
    if len(files) == 1:
        return _stack_from_dataset(datasets[0], files[0], include_derived)
    return _stack_from_files(datasets, files)


@_hide_values
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
    ds = _read_dataset(p)
    skip = _judge(ds, p, include_derived)
    if skip is not None:
        raise NotEligibleError(f"{p}: not corrected: {skip.reason}", derived=skip.derived)
    _check_image(ds, p)
    return SourceScan([_stack_from_dataset(ds, p, include_derived)])


# --------------------------------------------------------------------------- σ and correction


def _mosaic_side(ds: Dataset) -> int:
    """Tiles per side of a Siemens mosaic (one image holding a grid of slices); 1 otherwise."""
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


def find_stack_background(stack: DicomStack, coils: int | None = None) -> Background:
    """:func:`mri_noiselab.background.find_background` on a stack, mosaics tile by tile.

    A Siemens mosaic packs a volume's slices into one image as a grid of tiles; the
    search needs the slices as slices (noise surrounds each head, windows must not
    straddle two tiles), so it runs on the tiles and its mask is put back in place.

    Parameters
    ----------
    stack : DicomStack
    coils : int, optional
        Receiver coils; None fits them.

    Returns
    -------
    Background
        With the mask in the shape of ``stack``.

    Raises
    ------
    NoBackgroundError
        When the stack has no pure-noise background (the reason is in the message).
    """
    side = _mosaic_side(stack.datasets[0])
    magnitude = stack.magnitude()
    if side == 1:
        return find_background(magnitude, coils)
    n, rows, cols = magnitude.shape
    th, tw = rows // side, cols // side
    tiles = magnitude.reshape(n, side, th, side, tw).transpose(0, 1, 3, 2, 4).reshape(-1, th, tw)
    used = tiles.reshape(len(tiles), -1).any(axis=1)  # the grid's unused tiles are all zero
    found = find_background(np.ascontiguousarray(tiles[used]), coils)
    mask = np.zeros(tiles.shape, dtype=bool)
    mask[used] = found.mask
    back = mask.reshape(n, side, side, th, tw).transpose(0, 1, 3, 2, 4).reshape(n, rows, cols)
    return dataclasses.replace(found, mask=back)


def background_sigma(
    stack: DicomStack,
    mask: np.ndarray,
    estimator: str = "mle",
    coils: int | None = 1,
) -> SigmaEstimate:
    """Estimate σ (in the units of :meth:`DicomStack.magnitude`) from a background mask.

    ``coils=None`` fits the coil count to the background values.

    The quality report of the sample (signal in the ROI, zero padding, ...)
    is in the estimate's ``warnings``; no RoiWarning is issued.

    Raises
    ------
    NoBackgroundError
        If the mask is empty or every pixel in it is exactly zero (a scanner
        that suppresses the background): σ must then be given, never guessed.
    ValueError
        For a mask of the wrong shape or bad values.
    """
    # The quality report travels in the estimate (warn=False); callers decide how to show it.
    # The quality report travels in the estimate (warn=False); callers decide how to show it.
    return estimate_sigma(_background_values(stack, mask), method=estimator, coils=coils, warn=False)  # type: ignore[arg-type]


def _background_values(stack: DicomStack, mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != stack.shape:
        raise ValueError(f"background mask shape {mask.shape} does not match the stack shape {stack.shape}")
    return stack.magnitude()[mask.astype(bool)]


def _pooled_sigma(
    stacks: Sequence[DicomStack], masks: Sequence[np.ndarray | None], estimator: str, coils: int | None
) -> SigmaEstimate:
    """One σ from the background values of several stacks (those with a mask), in ``stacks[0]``'s units.

    Each stack's magnitude is the real-world value (stored * slope + intercept)
    divided by its own reference slope; scaling by the ratio of reference slopes
    puts every value in one unit, the real-world value over ``stacks[0]``'s slope.
    """
    unit = stacks[0].reference_slope
    values = [_background_values(s, m) * (s.reference_slope / unit) for s, m in zip(stacks, masks) if m is not None]
    return estimate_sigma(np.concatenate(values), method=estimator, coils=coils, warn=False)  # type: ignore[arg-type]


def in_plane_window(f_size: int | Sequence[int]) -> tuple[int, int, int]:
    """Turn ``f_size`` into a window on ``(slices, rows, cols)``.

    An int ``f`` gives ``(1, f, f)``: each slice or frame is corrected on its
    own, because slices are thicker than pixels (often with gaps) and the frames
    of a multi-frame file may be echoes or time points, not neighbours in space.
    A 2-sequence is ``(rows, cols)``; a 3-sequence is used as given.
    """
    if isinstance(f_size, Sequence) and not isinstance(f_size, str) and len(f_size) == 2:
        f_size = (1, *f_size)
    elif not isinstance(f_size, Sequence):
        window = window_sizes(f_size, 1)
        f_size = (1, window[0], window[0])
    w = window_sizes(f_size, 3)
    return (w[0], w[1], w[2])


@dataclass(frozen=True)
class Derivation:
    """How a derived image was made; written into its metadata.

    Attributes
    ----------
    method : str
        ``"moments"``, ``"pointwise"`` or ``"lmmse"``.
    sigma : float
        σ in the units of :meth:`DicomStack.magnitude` (stored values unless
        the source has an intercept or varying slopes).
    f_size : tuple of int
        Window on ``(slices, rows, cols)``.
    coils : int
    estimator : str or None
        How σ was estimated, or None when it was given.
    """

    method: str
    sigma: float
    f_size: tuple[int, ...]
    coils: int
    estimator: str | None = None

    def description(self) -> str:
        """The DerivationDescription text (at most 1024 characters, the ST limit)."""
        origin = f"estimated ({self.estimator}) from the background" if self.estimator else "given"
        window = "none (pointwise)" if self.method == "pointwise" else "x".join(map(str, self.f_size))
        text = (
            f"{_OWN_DERIVATION} {_core.__version__}: method={self.method}, "
            f"sigma={self.sigma:.6g} stored units ({origin}), f_size={window} (slices x rows x cols), "
            f"coils={self.coils}"
        )
        return text[:1024]

    def code(self) -> tuple[str, str, str]:
        """(value, scheme, meaning) from CID 7203 for the method."""
        return _DERIVATION_CODES[self.method]


@dataclass
class CleanResult:
    """The outcome of :func:`clean_stack`.

    Attributes
    ----------
    stored : numpy.ndarray
        Corrected stored values, source dtype, ready for :func:`derive_datasets`.
    corrected : numpy.ndarray
        The corrected magnitude (float, before rounding).
    sigma : SigmaEstimate or None
        The estimate, or None when σ was given. In a batch it is the
        estimate of the whole source series (see :class:`SeriesSigma`), in the
        units of its first stack; ``derivation.sigma`` is this stack's σ.
    derivation : Derivation
    warnings : list of str
    """

    stored: np.ndarray
    corrected: np.ndarray
    sigma: SigmaEstimate | None
    derivation: Derivation
    warnings: list[str]


def clean_stack(
    stack: DicomStack,
    *,
    mask: np.ndarray | None = None,
    sigma: float | None = None,
    estimator: str = "mle",
    method: str = "lmmse",
    f_size: int | Sequence[int] = 9,
    coils: int | None = None,
    num_threads: int | None = None,
) -> CleanResult:
    """Estimate σ (unless given) and remove the noise bias of a stack.

    Parameters
    ----------
    stack : DicomStack
    mask : numpy.ndarray of bool, optional
        Background (noise-only) pixels, shape ``stack.shape``. Needed unless
        ``sigma`` is given.
    sigma : float, optional
        A known σ in the units of :meth:`DicomStack.magnitude`; skips estimation.
    estimator : {"mle", "std", "mean"}
    method : {"moments", "pointwise", "lmmse"}
    f_size : int or sequence of int
        See :func:`in_plane_window`: an int is an in-plane window.
    coils : int, optional
        Receiver coils; None fits them to the background (1 when ``sigma`` is given).
    num_threads : int, optional

    Raises
    ------
    NoBackgroundError
        If σ must be estimated and the background holds no noise.
    ValueError
        For bad arguments, or pixels below zero signal.
    """
    in_plane_window(f_size)
    _check_magnitude(stack)
    estimate: SigmaEstimate | None = None
    if sigma is None:
        if mask is None:
            raise ValueError("give a background mask or a known sigma")
        estimate = background_sigma(stack, mask, estimator, coils)
        value = estimate.sigma
    else:
        value = float(sigma)
    notes = list(estimate.warnings) if estimate is not None else []
    return _corrected(stack, value, estimate, notes, method=method, f_size=f_size, coils=coils, num_threads=num_threads)


def _check_magnitude(stack: DicomStack) -> None:
    if np.any(stack.magnitude() < 0):
        raise ValueError(
            "pixel values below zero signal (after rescale): not a magnitude image, or an intercept "
            "that does not mark zero signal"
        )


def _corrected(
    stack: DicomStack,
    sigma: float,
    estimate: SigmaEstimate | None,
    notes: list[str],
    *,
    method: str,
    f_size: int | Sequence[int],
    coils: int | None,
    num_threads: int | None,
) -> CleanResult:
    """Correct ``stack`` with ``sigma`` (its magnitude units), which ``estimate`` (None: given) gave.

    The coil count is the estimate's (fitted when ``coils`` is None), else ``coils`` or 1.
    """
    coils = estimate.coils if estimate is not None else (coils or 1)
    window = in_plane_window(f_size)
    corrected = correct(stack.magnitude(), sigma, f_size=window, method=method, coils=coils, num_threads=num_threads)  # type: ignore[arg-type]
    derivation = Derivation(method, sigma, window, coils, estimate.method if estimate is not None else None)
    return CleanResult(stack.to_stored(corrected), corrected, estimate, derivation, notes)


# --------------------------------------------------------------------------- writing


def _code_item(code: tuple[str, str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = code
    return item


def _now(ds: Dataset) -> _dt.datetime:
    """Now, in the dataset's TimezoneOffsetFromUTC when it has one (its dates and times use it)."""
    offset = str(ds.get("TimezoneOffsetFromUTC", "") or "")
    if len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit():
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        tz = _dt.timezone(_dt.timedelta(minutes=minutes if offset[0] == "+" else -minutes))
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


@_hide_values
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
        Root for generated UIDs (``"1.2.3."``); pydicom's root by default.

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
    source_number = stack.datasets[0].get("SeriesNumber")
    if series_number is None:
        base = int(source_number) if source_number not in (None, "") else 0
        series_number = base + SERIES_NUMBER_OFFSET
    per_file = [stored] if len(stack.datasets) == 1 else [stored[i : i + 1] for i in range(stack.shape[0])]
    return [
        _derive_one(src, pixels, derivation, series_uid, series_number, uid_prefix)
        for src, pixels in zip(stack.datasets, per_file)
    ]


def _derive_one(
    src: Dataset,
    pixels: np.ndarray,
    derivation: Derivation,
    series_uid: str,
    series_number: int,
    uid_prefix: str | None,
) -> FileDataset:
    ds = copy.deepcopy(src)
    source_ts = _transfer_syntax(src)
    if source_ts is not None and not source_ts.is_little_endian:
        _swap_to_little_endian(ds)
    now = _now(src)
    sop_uid = generate_uid(prefix=uid_prefix)

    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if int(ds.BitsAllocated) == 8 else "OW"
    ds["PixelData"].is_undefined_length = False
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths", "IconImageSequence"):
        if keyword in ds:
            del ds[keyword]
    if (0xFFFC, 0xFFFC) in ds:  # trailing padding describes the old encoding
        del ds[0xFFFC, 0xFFFC]

    ds.SOPInstanceUID = sop_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    description = str(src.get("SeriesDescription", "") or "")
    ds.SeriesDescription = (description[: 64 - len(SERIES_SUFFIX)] + SERIES_SUFFIX).strip()
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
    code = _code_item(derivation.code())
    purpose = _code_item(_SOURCE_PURPOSE)
    if "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds:
        _derive_frames(ds, src, derivation, code, purpose)
    else:
        ds.DerivationDescription = derivation.description()
        ds.DerivationCodeSequence = DicomSequence([code])
        ref = Dataset()
        ref.ReferencedSOPClassUID = src.SOPClassUID
        ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
        ref.PurposeOfReferenceCodeSequence = DicomSequence([copy.deepcopy(purpose)])
        ref.SpatialLocationsPreserved = "YES"
        ds.SourceImageSequence = DicomSequence([ref])

    if "SmallestImagePixelValue" in ds:
        _set_pixel_value_element(ds, "SmallestImagePixelValue", int(pixels.min()))
    if "LargestImagePixelValue" in ds:
        _set_pixel_value_element(ds, "LargestImagePixelValue", int(pixels.max()))
    for keyword in ("SmallestPixelValueInSeries", "LargestPixelValueInSeries"):
        # The series range spans files this call may not write; a stale value is worse than none.
        if keyword in ds:
            del ds[keyword]
    # The window, VOI LUTs and FrameVOILUTSequence stay the source's: the correction changes
    # mostly the dark end, so the output looks as its source did; a window over the whole stack
    # range made it darker (a GE width of 876 became 2544).
    if "LossyImageCompression" not in ds and source_ts in _ALWAYS_LOSSY:
        ds.LossyImageCompression = "01"

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"MRINOISELAB{_core.__version__}"[:16]
    out = FileDataset(None, ds, file_meta=meta, preamble=b"\0" * 128)
    return out


def _derived_type(values: Any, primary_only: bool) -> list[str]:
    # Enhanced MR objects and every MR/CT frame type macro allow only PRIMARY as value 2 of
    # ImageType and FrameType (PS3.3 C.8.16.1.1); other images take DERIVED\SECONDARY.
    rest = [str(v) for v in list(values)[2:]]
    return ["DERIVED", "PRIMARY" if primary_only else "SECONDARY", *rest]


def _derive_frames(ds: Dataset, src: Dataset, derivation: Derivation, code: Dataset, purpose: Dataset) -> None:
    """Enhanced (multi-frame) objects record derivation and FrameType per frame (PS3.3 C.7.6.16)."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared is None or len(shared) == 0:
        ds.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame is None or len(per_frame) != frames:
        ds.PerFrameFunctionalGroupsSequence = DicomSequence([Dataset() for _ in range(frames)])
    groups = list(ds.SharedFunctionalGroupsSequence) + list(ds.PerFrameFunctionalGroupsSequence)
    for group in groups:
        for seq_keyword in ("MRImageFrameTypeSequence", "CTImageFrameTypeSequence"):
            for item in group.get(seq_keyword, []):
                if "FrameType" in item:
                    item.FrameType = _derived_type(item.FrameType, True)
    for i, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ref = Dataset()
        ref.ReferencedSOPClassUID = src.SOPClassUID
        ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
        ref.ReferencedFrameNumber = i + 1
        ref.PurposeOfReferenceCodeSequence = DicomSequence([copy.deepcopy(purpose)])
        ref.SpatialLocationsPreserved = "YES"
        item = Dataset()
        item.DerivationDescription = derivation.description()
        item.DerivationCodeSequence = DicomSequence([copy.deepcopy(code)])
        item.SourceImageSequence = DicomSequence([ref])
        group.DerivationImageSequence = DicomSequence([item])
    for group in ds.SharedFunctionalGroupsSequence:
        if "DerivationImageSequence" in group:  # per-frame items now describe this derivation
            del group.DerivationImageSequence
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


@_hide_values
def encode_dataset(ds: FileDataset) -> bytes:
    """Return the Part 10 file bytes of ``ds`` (preamble, file meta, Explicit VR Little Endian)."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_dataset(ds: FileDataset, path: str | os.PathLike[str], *, protected: Sequence[Path] = ()) -> Path:
    """Write ``ds`` to ``path`` atomically (temporary file in the same folder, then rename).

    Parameters
    ----------
    ds : FileDataset
    path : path-like
    protected : sequence of Path
        Files that must not be replaced (the inputs).

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
    try:
        data = encode_dataset(ds)
    except Exception as e:  # pydicom raises many types for values it cannot encode
        raise DicomError(f"cannot write {target}: the dataset cannot be encoded ({_first_line(e)})") from None
    return atomic_write(target, lambda fh: fh.write(data))


# --------------------------------------------------------------------------- batch


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
    for p, out in mapping.items():
        if out.resolve() in resolved_inputs or (out.exists() and any(same_file(out, q) for q in inputs)):
            raise ValueError(f"the output {out} is an input file: choose another output (inputs are never overwritten)")
    return mapping


@dataclass
class SeriesSigma:
    """One σ of a source series, from the pooled backgrounds of all its stacks; or of one stack.

    Attributes
    ----------
    stacks : list of DicomStack
        The stacks it holds for: a whole series (echoes, b-values, time
        points, multi-frame files), or one stack (σ per volume).
    estimate : SigmaEstimate
        In the units of ``stacks[0].magnitude()`` (stored values of its first
        slice or frame, unless an intercept or several slopes); see :meth:`sigma_of`.
    warnings : list of str
        The estimate's warnings, and the stacks in which no background was found.
    """

    stacks: list[DicomStack]
    estimate: SigmaEstimate
    warnings: list[str]

    @property
    def paths(self) -> list[Path]:
        """Every file of the stacks, in stack order."""
        return [p for s in self.stacks for p in s.paths]

    def sigma_of(self, stack: DicomStack) -> float:
        """σ in the units of ``stack.magnitude()``: the same noise on that stack's rescale slope."""
        return self.estimate.sigma * self.stacks[0].reference_slope / stack.reference_slope


@dataclass
class SigmaReport:
    """What :func:`estimate_source_sigma` found."""

    series: list[SeriesSigma]
    failures: list[Failure]
    ineligible: list[Skip] = field(default_factory=list)


def _by_series(stacks: Sequence[DicomStack]) -> list[list[DicomStack]]:
    """The stacks grouped by source series, in order of each series' first stack."""
    groups: dict[str, list[DicomStack]] = {}
    for stack in stacks:
        groups.setdefault(stack.series_uid, []).append(stack)
    return list(groups.values())


def _series_masks(
    stacks: Sequence[DicomStack], background: BackgroundFunction, *, pooled: bool
) -> tuple[list[np.ndarray | None], list[str], bool]:
    """Each stack's background mask, notes (with the warnings of an automatic background),
    and whether the background was found automatically.

    With ``pooled`` σ, a stack in which ``background`` finds no background
    (NoBackgroundError) gets None and a note: the other stacks of the
    acquisition measure the same noise. Otherwise, or when no stack has one,
    the error is raised.
    """
    masks: list[np.ndarray | None] = []
    missing: list[NoBackgroundError] = []
    notes = []
    automatic = False
    for stack in stacks:
        try:
            found = background(stack)
        except NoBackgroundError as e:
            if not pooled:
                raise
            missing.append(e)
            masks.append(None)
            notes.append(f"no background found in {_stack_label(stack)}: its σ is the other stacks' of the series")
            continue
        if isinstance(found, Background):
            automatic = True
            masks.append(found.mask)
            notes.extend(w for w in found.warnings if w not in notes)
        else:
            masks.append(found)
    if missing and len(missing) == len(stacks):
        raise missing[0]
    return masks, notes, automatic


def _stack_label(stack: DicomStack) -> str:
    more = f" (+{len(stack.paths) - 1} files)" if len(stack.paths) > 1 else ""
    return f"{stack.paths[0].name}{more}"


def _series_sigmas(
    stacks: Sequence[DicomStack],
    masks: Sequence[np.ndarray | None],
    notes: Sequence[str],
    *,
    estimator: str,
    coils: int | None,
    per_volume: bool,
    automatic: bool = False,
) -> list[SeriesSigma]:
    # An automatic background has passed stricter tests of its noise than the ROI quality
    # report makes (whose advice is to pick another ROI): its own warnings stand instead.
    if all(m is None for m in masks):
        raise ValueError("give a background (mask function) or a known sigma")
    if per_volume:
        found = []
        for stack, mask in zip(stacks, masks):
            if mask is None:
                raise NoBackgroundError(f"no background found in {_stack_label(stack)}: σ per volume needs one in each")
            estimate = background_sigma(stack, mask, estimator, coils)
            found.append(SeriesSigma([stack], estimate, list(notes) if automatic else list(estimate.warnings)))
        return found
    estimate = _pooled_sigma(stacks, masks, estimator, coils)
    return [SeriesSigma(list(stacks), estimate, list(notes) if automatic else [*estimate.warnings, *notes])]


def estimate_source_sigma(
    source: str | os.PathLike[str],
    background: BackgroundFunction,
    *,
    estimator: str = "mle",
    coils: int | None = None,
    per_volume: bool = False,
    include_derived: bool = False,
) -> SigmaReport:
    """Estimate σ for every source series of a file or folder: one per series, or one per stack.

    Parameters
    ----------
    source : path-like
    background : callable
        Returns the boolean background mask of a stack. It is called on each
        stack of a series and the masked values are pooled; a stack in which
        it raises NoBackgroundError takes the σ of the others.
    estimator, coils
        See :func:`background_sigma`.
    per_volume : bool
        One σ per stack (echo, b-value, time point, multi-frame file) instead
        of one per series.
    include_derived : bool
        See :func:`eligibility`.

    Returns
    -------
    SigmaReport
        The estimates; the failures (a series whose background failed fails
        whole); the files left alone.

    Raises
    ------
    DicomError, NoBackgroundError, ValueError
        For a file source, or when no series of a folder gives an estimate.
    """
    src = Path(source)
    scan = read_source(src, include_derived=include_derived)
    found: list[SeriesSigma] = []
    failures = list(scan.failures)
    errors: list[Exception] = []
    for stacks in _by_series(scan.stacks):
        try:
            masks, notes, automatic = _series_masks(stacks, background, pooled=not per_volume)
            found.extend(_series_sigmas(stacks, masks, notes, estimator=estimator, coils=coils, per_volume=per_volume,
                                        automatic=automatic))
        except (ValueError, TypeError) as e:
            if not src.is_dir():
                raise
            errors.append(e)
            failures.append(series_failure([p for s in stacks for p in s.paths], e))
    if not found and errors:
        raise errors[0]
    return SigmaReport(found, failures, scan.ineligible)


@dataclass
class StackReport:
    """One processed stack: its files, σ and warnings.

    ``source_series`` is the SeriesInstanceUID of its source series (a UID,
    never shown): the stacks of one series share one σ estimate.
    """

    paths: list[Path]
    outputs: list[Path]
    result: CleanResult
    source_series: str = ""


@dataclass
class BatchReport:
    """What :func:`clean_source` did."""

    stacks: list[StackReport]
    failures: list[Failure]
    skipped: list[Path] = field(default_factory=list)
    """Outputs that already existed and were left alone (``skip_existing``)."""
    ineligible: list[Skip] = field(default_factory=list)
    """Inputs left alone: not DICOM, or not to be corrected (see :func:`eligibility`)."""

    @property
    def written(self) -> list[Path]:
        return [p for s in self.stacks for p in s.outputs]


def clean_and_write_series(
    stacks: Sequence[DicomStack],
    targets: Sequence[Sequence[Path]],
    *,
    series_uid: str,
    write: Sequence[Sequence[bool]] | None = None,
    background: BackgroundFunction | None = None,
    protected: Sequence[Path] = (),
    uid_prefix: str | None = None,
    qc: Sequence[Path | None] | None = None,
    per_volume: bool = False,
    sigma: float | None = None,
    estimator: str = "mle",
    method: str = "lmmse",
    f_size: int | Sequence[int] = 9,
    coils: int | None = None,
    num_threads: int | None = None,
) -> list[StackReport]:
    """Clean the stacks of one source series and write their derived objects: the unit of a batch.

    All or nothing: every stack is cleaned, and its QC figure drawn, before
    any file is written; if a write fails, the files this call wrote are
    removed again, so an error leaves none of the series (an interrupt leaves
    complete files, which ``skip_existing`` finishes).

    Parameters
    ----------
    stacks : sequence of DicomStack
        The stacks of one source series.
    targets : sequence of sequences of Path
        Per stack, one output path per file, in stack order.
    series_uid : str
        The new SeriesInstanceUID of all outputs of the series.
    write : sequence of sequences of bool, optional
        Per stack, which targets to write (``skip_existing`` leaves the others
        alone); all by default. A stack with nothing to write is not corrected
        but its background still counts for σ.
    background : callable, optional
        Returns the boolean background mask of a stack; see :func:`clean_source`.
    protected : sequence of Path
        Paths that must never be written (the inputs).
    uid_prefix : str, optional
        Root for the new UIDs.
    qc : sequence of Path or None, optional
        Per stack, where to write its QC figure.
    per_volume : bool
        One σ per stack instead of one for the series (see :class:`SeriesSigma`).
    sigma, estimator, method, f_size, coils, num_threads
        See :func:`clean_stack`; a given ``sigma`` holds for every stack.

    Returns
    -------
    list of StackReport
        One per stack that had something to write, with the outputs written.
    """
    flags = [[True] * len(t) for t in targets] if write is None else [list(w) for w in write]
    for stack in stacks:
        _check_magnitude(stack)
    masks: list[np.ndarray | None] = [None] * len(stacks)
    notes: list[str] = []
    automatic = False
    if background is not None:
        masks, notes, automatic = _series_masks(stacks, background, pooled=sigma is None and not per_volume)
    owner: dict[int, SeriesSigma] = {}
    if sigma is None:
        found = _series_sigmas(stacks, masks, notes, estimator=estimator, coils=coils, per_volume=per_volume,
                               automatic=automatic)
        owner = {id(s): series for series in found for s in series.stacks}
    results: list[CleanResult | None] = []
    figures: list[bytes | None] = []
    for i, stack in enumerate(stacks):
        if not any(flags[i]):
            results.append(None)
            figures.append(None)
            continue
        series = owner.get(id(stack))
        value = series.sigma_of(stack) if series is not None else float(sigma)  # type: ignore[arg-type]
        result = _corrected(stack, value, series.estimate if series is not None else None,
                            list(series.warnings) if series is not None else [], method=method, f_size=f_size,
                            coils=coils, num_threads=num_threads)
        results.append(result)
        figure = qc[i] if qc is not None else None
        if figure is None:
            figures.append(None)
            continue
        from mri_noiselab.qc import qc_png

        # Drawn before any write: a plotting error must not leave the DICOMs of a failed series.
        figures.append(qc_png(stack.magnitude(), result.corrected, masks[i], result.derivation.sigma,
                              coils=result.derivation.coils))
    written: list[Path] = []
    reports = []
    try:
        for i, (stack, result) in enumerate(zip(stacks, results)):
            if result is None:
                continue
            whole, pixels = stack.file_pixels(result.stored)
            datasets = derive_datasets(whole, pixels, result.derivation, series_uid=series_uid, uid_prefix=uid_prefix)
            outputs = []
            for ds, target, todo in zip(datasets, targets[i], flags[i]):
                if todo:
                    outputs.append(write_dataset(ds, target, protected=protected))
                    written.append(outputs[-1])
            reports.append(StackReport(list(stack.paths), outputs, result, stack.series_uid))
        for figure_path, png in zip(qc or [], figures):
            if figure_path is not None and png is not None:
                written.append(atomic_write(figure_path, lambda fh, data=png: fh.write(data)))
    except Exception:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return reports


def clean_source(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    background: BackgroundFunction | None = None,
    sigma: float | None = None,
    estimator: str = "mle",
    method: str = "lmmse",
    f_size: int | Sequence[int] = 9,
    coils: int | None = None,
    num_threads: int | None = None,
    uid_prefix: str | None = None,
    qc: str | os.PathLike[str] | None = None,
    skip_existing: bool = False,
    per_volume: bool = False,
    include_derived: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> BatchReport:
    """Clean a DICOM file or a folder of series and write the derived objects.

    Each source series (one SeriesInstanceUID: its echoes, b-values, time
    points and multi-frame files) gets one σ, estimated from the pooled
    background of all its stacks, and is written all or nothing: if one of
    its stacks fails, none of its files is written and one failure names it.

    Parameters
    ----------
    source : path-like
        A file, or a folder (searched recursively).
    destination : path-like
        The output file or folder (see :func:`output_paths`).
    background : callable, optional
        Returns the boolean background mask of a stack; needed unless ``sigma``
        is given (then it only marks the region in the QC figure).
    sigma, estimator, method, f_size, coils, num_threads
        See :func:`clean_stack`.
    uid_prefix : str, optional
        Root for the new UIDs.
    qc : path-like, optional
        A QC figure (PNG) of the first stack; with several stacks, ``_<n>`` is
        added to the name for the n-th.
    skip_existing : bool
        Leave outputs that already exist alone and write only the missing ones,
        to finish an interrupted run. Files written earlier are complete (writes
        are atomic); the new files of a partly written series join its existing
        SeriesInstanceUID, and σ is the whole series' again. An existing output
        that was not derived from its input is an error for that series.
    per_volume : bool
        One σ per stack instead of one per series (noise that differs between
        volumes, e.g. a receiver gain that changes with the b-value).
    include_derived : bool
        Also correct derived images, maps, projections and localizers (see
        :func:`eligibility`); never phase, real or imaginary images, other
        modalities or this package's own outputs.
    on_start : callable, optional
        Called once with the number of input files to correct.
    on_file : callable, optional
        Called with each input path once its output is written, skipped or has failed.

    Returns
    -------
    BatchReport
        Written stacks, failures (one per failed series or unreadable file),
        existing outputs left alone, and inputs left alone with the reason.

    Raises
    ------
    NotEligibleError
        For a file source that is not to be corrected, or a folder with none.
    DicomError, NoBackgroundError, ValueError, OSError
        For a file source, or when every series of a folder fails (first error);
        also, before anything is written, when an output or QC path is an input,
        a symbolic link, a folder, outside the output folder or not writable.
        Otherwise failures are collected in the report, and every good series
        is written.
    """
    src, dst, scan, inputs, mapping, figures = _prepare_batch(
        source, destination, background=background, sigma=sigma, per_volume=per_volume, qc=qc,
        include_derived=include_derived,
    )
    if on_start is not None:
        on_start(len(inputs))
    failures = list(scan.failures)
    reports: list[StackReport] = []
    skipped: list[Path] = []
    errors: list[BaseException] = []
    for stacks in _by_series(scan.stacks):
        paths = [p for s in stacks for p in s.paths]
        try:
            targets = [[mapping[p] for p in s.paths] for s in stacks]
            todo = [[not (skip_existing and t.exists()) for t in ts] for ts in targets]
            existing = _existing_series_uid(stacks, targets, todo)
            if any(any(flags) for flags in todo):
                uid = existing or generate_uid(prefix=uid_prefix)
                reports.extend(clean_and_write_series(
                    stacks, targets, series_uid=uid, write=todo, background=background, protected=inputs,
                    uid_prefix=uid_prefix, qc=[figures.get(id(s)) for s in stacks], per_volume=per_volume,
                    sigma=sigma, estimator=estimator, method=method, f_size=f_size, coils=coils,
                    num_threads=num_threads,
                ))
            skipped.extend(t for ts, flags in zip(targets, todo) for t, w in zip(ts, flags) if not w)
        except (ValueError, TypeError, OSError) as e:
            if not src.is_dir():
                raise
            errors.append(e)
            failures.append(series_failure(paths, e))
        if on_file is not None:
            for p in paths:
                on_file(p)
    if not reports and errors:
        raise errors[0]
    return BatchReport(reports, failures, skipped, scan.ineligible)


def _prepare_batch(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    background: BackgroundFunction | None,
    sigma: float | None,
    per_volume: bool,
    qc: str | os.PathLike[str] | None,
    include_derived: bool,
) -> tuple[Path, Path, SourceScan, list[Path], dict[Path, Path], dict[int, Path]]:
    """Check the arguments, read the source and check every output before anything is written.

    Returns the source and destination paths, the scan, the input files, the
    output of each input, and the QC figure of each stack (by ``id``).
    """
    if sigma is None and background is None:
        raise ValueError("give a background (mask function) or a known sigma")
    if sigma is not None and per_volume:
        raise ValueError("per_volume estimates σ for each stack: it cannot be combined with a given sigma")
    src = Path(source)
    dst = Path(destination)
    if src.is_dir() and dst.resolve() == src.resolve():
        raise ValueError(f"the output {dst} is the input folder, whose files are input files: choose another output")
    scan = read_source(src, exclude=dst if src.is_dir() else None, include_derived=include_derived)
    inputs = [p for s in scan.stacks for p in s.paths]
    mapping = output_paths(src, destination, inputs)
    figures = qc_paths(qc, len(scan.stacks))
    check_targets(list(mapping.values()), figures, inputs)
    return src, dst, scan, inputs, mapping, {id(s): f for s, f in zip(scan.stacks, figures)}


def qc_paths(qc: str | os.PathLike[str] | None, stacks: int) -> list[Path]:
    """The QC figure of each stack: ``qc`` itself for one stack, else ``<stem>_<n><suffix>``."""
    if qc is None:
        return []
    path = Path(qc)
    if stacks == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i + 1}{path.suffix}") for i in range(stacks)]


def check_targets(outputs: Sequence[Path], figures: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse, before anything is written, outputs (and QC figures) that would replace an input
    or cannot be written."""
    resolved_inputs = {p.resolve() for p in inputs}
    resolved_outputs = {p.resolve() for p in outputs}
    for path in figures:
        if path.resolve() in resolved_inputs or (path.exists() and any(same_file(path, q) for q in inputs)):
            raise ValueError(f"the QC figure {path} is an input file: choose another name (inputs are never overwritten)")
        if path.resolve() in resolved_outputs:
            raise ValueError(f"the QC figure {path} is also a DICOM output: choose another name")
    for path in [*outputs, *figures]:
        check_writable(path)


def _existing_series_uid(
    stacks: Sequence[DicomStack], targets: Sequence[Sequence[Path]], todo: Sequence[Sequence[bool]]
) -> str | None:
    """The SeriesInstanceUID of the series' outputs that exist (None: none does), after checking they derive from it."""
    uids = set()
    for stack, stack_targets, stack_todo in zip(stacks, targets, todo):
        for src, path, target, missing in zip(stack.datasets, stack.paths, stack_targets, stack_todo):
            if missing:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    done = pydicom.dcmread(target, stop_before_pixels=True)
                referenced = {str(e.value) for e in done.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
                uid = str(done.SeriesInstanceUID)
            except Exception as e:  # pydicom raises many types on damaged files
                raise DicomError(f"{target}: exists but cannot be read ({_first_line(e)}): remove it to rewrite it") from None
            if str(src.SOPInstanceUID) not in referenced:
                raise DicomError(
                    f"{target}: exists but was not derived from its input {path.name}: "
                    "remove it, or run without skipping existing outputs to replace it"
                )
            uids.add(uid)
    if len(uids) > 1:
        first = targets[0][0].name
        raise DicomError(f"the existing outputs of one series ({first}, ...) belong to {len(uids)} different series")
    return uids.pop() if uids else None


# --------------------------------------------------------------------------- example data


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
        (non-identifying) patient and study attributes, new UIDs unless given.
    """
    arr = np.asarray(pixels)
    if arr.ndim != 2 or arr.dtype.kind not in "iu" or arr.dtype.itemsize > 2:
        raise ValueError(f"pixels must be a 2-D array of 8- or 16-bit integers, got {arr.dtype} {arr.shape}")
    now = _dt.datetime.now()
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.SOPClassUID = pydicom.uid.MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.AccessionNumber = ""
    ds.Modality = "MR"
    ds.Manufacturer = PACKAGE
    ds.ReferringPhysicianName = ""
    ds.StationName = "PHANTOM"
    ds.SeriesDescription = "Phantom SE T1"
    ds.ManufacturerModelName = "synthetic"
    ds.PatientName = "Phantom^Noise"
    ds.PatientID = "NOISELAB-PHANTOM"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "NONE"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = "5"
    ds.RepetitionTime = "500"
    ds.EchoTime = "15"
    ds.NumberOfAverages = "1"
    ds.ImagingFrequency = "63.8766"
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = "1.5"
    ds.SpacingBetweenSlices = "5"
    ds.EchoTrainLength = "1"
    ds.SoftwareVersions = _core.__version__
    ds.FlipAngle = "90"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = "1"
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = "1"
    ds.ImagePositionPatient = [-96.0, -96.0, 0.0]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = generate_uid()
    ds.PositionReferenceIndicator = ""
    ds.Laterality = ""
    ds.SliceLocation = "0"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape
    ds.PixelSpacing = [1.5, 1.5]
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored = arr.dtype.itemsize * 8
    ds.PixelRepresentation = 1 if arr.dtype.kind == "i" else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.HighBit = int(ds.BitsStored) - 1
    vr = "SS" if ds.PixelRepresentation else "US"
    ds.add_new("SmallestImagePixelValue", vr, int(arr.min()))
    ds.add_new("LargestImagePixelValue", vr, int(arr.max()))
    slope = float(ds.get("RescaleSlope", 1))
    intercept = float(ds.get("RescaleIntercept", 0))
    lo, hi = int(arr.min()) * slope + intercept, int(arr.max()) * slope + intercept
    _window(ds, lo, hi)
    ds.LossyImageCompression = "00"
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if arr.dtype.itemsize == 1 else "OW"
    return file_dataset(ds)


def file_dataset(ds: Dataset) -> FileDataset:
    """``ds`` with the file meta of an Explicit VR Little Endian Part 10 file, ready to write."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return FileDataset(None, ds, file_meta=meta, preamble=b"\0" * 128)


def example_phantom(size: int = 128, sigma: float = 20.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A head-like phantom: the true magnitude and a Rician-noisy uint16 image of it.

    Parameters
    ----------
    size : int
        Rows and columns.
    sigma : float
        Noise standard deviation per channel, in stored units.
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    truth : numpy.ndarray of float64
        Nested ellipses (skull, brain, ventricles, lesions) in a noise-only
        background; the corners are air.
    noisy : numpy.ndarray of uint16
        ``|truth + n|`` with complex Gaussian n, rounded to 12-bit stored values.
    """
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    truth = np.zeros((size, size))
    # (centre y, centre x, semi-axis y, semi-axis x, value added)
    for cy, cx, ay, ax, value in (
        (0.0, 0.0, 0.80, 0.62, 600.0),
        (0.0, 0.0, 0.74, 0.56, -400.0),
        (-0.15, -0.18, 0.28, 0.10, -150.0),
        (-0.15, 0.18, 0.28, 0.10, -150.0),
        (0.35, 0.0, 0.10, 0.10, 250.0),
        (0.45, -0.25, 0.05, 0.05, 80.0),
        (0.45, 0.25, 0.04, 0.04, 40.0),
    ):
        truth[((y - cy) / ay) ** 2 + ((x - cx) / ax) ** 2 <= 1.0] += value
    rng = np.random.default_rng(seed)
    noisy = np.hypot(truth + rng.normal(0.0, sigma, truth.shape), rng.normal(0.0, sigma, truth.shape))
    return truth, np.clip(np.rint(noisy), 0, 4095).astype(np.uint16)


@dataclass
class ExampleReport:
    """What :func:`run_example` wrote and measured.

    Attributes
    ----------
    input, output, qc : pathlib.Path
    sigma_true, sigma_estimated : float
    air_before, air_after : float
        Mean magnitude in the corner boxes (air, true value 0) before and after:
        the Rician bias the correction removes.
    dark_true, dark_before, dark_after : float
        Mean true value, and mean magnitude before and after, in the cores of
        the two ventricles (true value 50, signal-to-noise 2.5 at σ = 20),
        away from edges that any window blurs.
    """

    input: Path
    output: Path
    qc: Path
    sigma_true: float
    sigma_estimated: float
    air_before: float
    air_after: float
    dark_true: float
    dark_before: float
    dark_after: float


def run_example(
    directory: str | os.PathLike[str],
    *,
    sigma: float = 20.0,
    f_size: int = 5,
    seed: int = 0,
    num_threads: int | None = None,
) -> ExampleReport:
    """Generate the example phantom as DICOM, clean it, and write the result and a QC figure.

    Writes ``input/phantom.dcm``, ``output/phantom.dcm`` and ``qc.png`` under
    ``directory``; a re-run replaces them (atomically), nothing else. The
    background is the four 16x16 corner boxes, which are air in the phantom.
    """
    from mri_noiselab.roi import corner_rois, roi_mask

    root = Path(directory)
    truth, noisy = example_phantom(sigma=sigma, seed=seed)
    source = write_dataset(synthetic_mr_image(noisy, BitsStored=12), root / "input" / "phantom.dcm")
    report = clean_source(
        source,
        root / "output" / "phantom.dcm",
        background=lambda stack: roi_mask(corner_rois(stack.shape, 16), stack.shape),
        f_size=f_size,
        num_threads=num_threads,
        qc=root / "qc.png",
    )
    (done,) = report.stacks
    estimate = done.result.sigma
    cleaned = read_file(done.outputs[0]).magnitude()[0]
    air = roi_mask(corner_rois(truth.shape, 16), truth.shape)
    y, x = np.mgrid[-1 : 1 : truth.shape[0] * 1j, -1 : 1 : truth.shape[1] * 1j]
    dark = ((y + 0.15) / 0.14) ** 2 + ((np.abs(x) - 0.18) / 0.05) ** 2 <= 1.0
    return ExampleReport(
        input=source,
        output=done.outputs[0],
        qc=root / "qc.png",
        sigma_true=sigma,
        sigma_estimated=estimate.sigma if estimate is not None else float("nan"),
        air_before=float(noisy[air].mean()),
        air_after=float(cleaned[air].mean()),
        dark_true=float(truth[dark].mean()),
        dark_before=float(noisy[dark].mean()),
        dark_after=float(cleaned[dark].mean()),
    )


__all__ = [
    "check_targets",
    "file_dataset",
    "clean_and_write_series",
    "qc_paths",
    "BatchReport",
    "CleanResult",
    "DecoderMissingError",
    "Derivation",
    "DicomError",
    "DicomStack",
    "ExampleReport",
    "Failure",
    "NoBackgroundError",
    "NotEligibleError",
    "SeriesSigma",
    "SigmaReport",
    "Skip",
    "SourceScan",
    "StackReport",
    "background_sigma",
    "clean_source",
    "clean_stack",
    "derive_datasets",
    "eligibility",
    "encode_dataset",
    "estimate_source_sigma",
    "example_phantom",
    "run_example",
    "synthetic_mr_image",
    "in_plane_window",
    "is_own_output",
    "output_paths",
    "read_file",
    "read_folder",
    "read_source",
    "read_stack",
    "series_failure",
    "stored_range",
    "write_dataset",
]
