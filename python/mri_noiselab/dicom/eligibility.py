"""Which DICOM images are corrected: :func:`eligibility`, the one policy of every batch and σ report.

Magnitude MR images as the scanner reconstructed them are; phase, real and imaginary
images, derived maps, projections and localizers, other SOP classes and modalities, and this
package's own outputs are left alone, each with a reason that quotes no attribute value.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from mri_noiselab.derivation import OWN_DERIVATION, PACKAGE
from mri_noiselab.dicom.checks import frame_count, functional_item

# Corrected: MR Image, Enhanced MR and Legacy Converted Enhanced MR (a series of single-frame
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
        item = functional_item(ds, frame, "MRImageFrameTypeSequence")
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


__all__ = ["eligibility", "frame_reasons", "is_own_output", "own_derivation"]
