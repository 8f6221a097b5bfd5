"""Derived objects that clients read as their source: dcm2niix sidecars, display window, ImageType."""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import assert_no_new_errors, enhanced_mr, needs_dicom3tools
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import EnhancedMRImageStorage, LegacyConvertedEnhancedMRImageStorage

from mri_noiselab.dicom import clean_source, clean_stack, derive_datasets, read_file, synthetic_mr_image, write_dataset

REALDATA = Path(__file__).parents[1].parent / "shared" / "realdata"
needs_dcm2niix = pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
# A known σ skips the background estimate, which is not what these tests are about.
SIGMA = 5.0
OWN_TEXT = "Rician noise bias removed by mri-noiselab"

# The sidecar keys that truly change between a source series and its derived series:
#  - ImageType: DERIVED in value 1 (and SECONDARY in value 2 for classic MR);
#  - RawImage: dcm2niix writes "RawImage": false for any ImageType DERIVED, the same change;
#  - SeriesDescription, SeriesNumber, SeriesInstanceUID: a derived series is a new series;
#  - ConversionSoftware, ConversionSoftwareVersion: they describe dcm2niix (one binary runs both).
CHANGED_KEYS = {"ImageType", "RawImage", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
                "ConversionSoftware", "ConversionSoftwareVersion"}
# What changed before and must not: acquisition timing and the equipment that acquired the images.
KEPT_KEYS = ("SliceTiming", "RepetitionTime", "EchoTime", "Manufacturer", "SoftwareVersions")

SERIES = [
    "ge/01_Ax_DWI_TENSOR_R2",
    "ge/05_3D_Ax_T1_MP_RAGE_R22",
    "siemens_xa30/8_gre_field_mapping",
    "siemens_xa30/7_func-bold_task-fa_run-1",
    "enhanced/Siemens/XA10",
]


def realdata(name: str) -> Path:
    folder = REALDATA / name
    if not folder.is_dir():
        pytest.skip(f"real scanner data not found at {folder} (../shared/realdata from the project root)")
    return folder


def sidecars(source: Path, out: Path) -> dict[str, dict[str, object]]:
    """dcm2niix's BIDS sidecars of ``source`` by file name: one fixed stem, dcm2niix's echo suffixes.

    ``-ba n`` keeps the fields that anonymisation would drop (SoftwareVersions, serial, times).
    """
    out.mkdir(parents=True)
    run = subprocess.run(["dcm2niix", "-b", "y", "-ba", "n", "-z", "n", "-f", "x", "-o", str(out), str(source)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return {p.name: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def cleaned(source: Path, tmp_path: Path) -> Path:
    report = clean_source(source, tmp_path / "derived", sigma=SIGMA)
    assert not report.failures
    return tmp_path / "derived"


def changed_keys(before: dict[str, object], after: dict[str, object]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k, "<absent>") != after.get(k, "<absent>")}


# --------------------------------------------------------------------------- dcm2niix sidecars


@needs_dcm2niix
@pytest.mark.parametrize("name", SERIES)
def test_dcm2niix_sidecar_of_the_output_is_the_sources(name, tmp_path):
    source = realdata(name)
    before = sidecars(source, tmp_path / "nii_in")
    after = sidecars(cleaned(source, tmp_path), tmp_path / "nii_out")
    assert before and list(after) == list(before)
    for file, sidecar in before.items():
        assert changed_keys(sidecar, after[file]) <= CHANGED_KEYS, file
        for key in KEPT_KEYS:
            assert after[file].get(key) == sidecar.get(key), (file, key)
        assert after[file]["ImageType"][0] == "DERIVED"


def relabel_ge_as_fmri(source: Path, target: Path) -> None:
    """Copy a GE diffusion series re-labelled as fMRI in its protocol block and pulse sequence name.

    dcm2niix 1.0.20220720 computes no SliceTiming for GE diffusion; for GE fMRI it computes it
    from the protocol block (0025,101B: a 4-byte length, then gzip), TR and SoftwareVersions.
    The pixels and every other attribute stay as they are.
    """
    target.mkdir()
    diffusion, fmri = b'IOPT "EDR, EPI, DIFF, Asset"', b'IOPT "EDR, EPI, FMRI, Asset"'
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        text = gzip.decompress(ds[0x0025101B].value[4:])
        assert diffusion in text
        text = text.replace(diffusion, fmri)
        block = struct.pack("<I", len(text)) + gzip.compress(text)
        ds[0x0025101B].value = block + b"\0" * (len(block) % 2)
        ds[0x0019109E].value = "EPI"  # Internal Pulse Sequence Name; EPI2 is GE's diffusion EPI
        ds.save_as(target / path.name)


@needs_dcm2niix
@pytest.mark.parametrize("as_fmri", [False, True], ids=["dwi", "dwi_relabelled_fmri"])
def test_ge_slice_timing_is_kept(as_fmri, tmp_path):
    source = realdata("ge/01_Ax_DWI_TENSOR_R2")
    if as_fmri:
        relabel_ge_as_fmri(source, tmp_path / "fmri")
        source = tmp_path / "fmri"
    (before,) = sidecars(source, tmp_path / "nii_in").values()
    if "SliceTiming" not in before:
        version = before.get("ConversionSoftwareVersion", "?")
        pytest.skip(f"dcm2niix {version} computes no SliceTiming for this GE diffusion series (its input)")
    (after,) = sidecars(cleaned(source, tmp_path), tmp_path / "nii_out").values()
    assert after.get("SliceTiming") == before["SliceTiming"]
    assert len(before["SliceTiming"]) == 2  # the series has two slice locations


# --------------------------------------------------------------------------- what is written


def occurrences(ds: Dataset, keyword: str) -> list[str]:
    """Every value of ``keyword`` in ``ds``, at any depth: what a reader of nested items sees."""
    return [str(elem.value) for elem in ds.iterall() if elem.keyword == keyword]


@pytest.mark.parametrize("manufacturer", ["SIEMENS", None], ids=["source_has_one", "source_has_none"])
def test_no_equipment_attribute_is_added_at_any_depth(manufacturer, tmp_path):
    source = synthetic_mr_image(np.arange(64, dtype=np.uint16).reshape(8, 8), SoftwareVersions="syngo MR XA30")
    if manufacturer is None:
        del source.Manufacturer
    else:
        source.Manufacturer = manufacturer
    stack = read_file(write_dataset(source, tmp_path / "in.dcm"))
    result = clean_stack(stack, sigma=SIGMA, f_size=3)
    (out,) = derive_datasets(stack, result.stored, result.derivation)
    for keyword in ("Manufacturer", "SoftwareVersions", "ManufacturerModelName", "DeviceSerialNumber"):
        assert occurrences(out, keyword) == occurrences(source, keyword), keyword
    assert "ContributingEquipmentSequence" not in out
    assert OWN_TEXT in out.DerivationDescription


def test_window_and_voi_are_the_sources_and_pixel_range_is_new(tmp_path):
    source = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    source.WindowCenter, source.WindowWidth = ["600", "900"], ["1600", "800"]
    source.WindowCenterWidthExplanation = ["SOFT", "BRAIN"]
    source.VOILUTFunction = "SIGMOID"
    lut = Dataset()
    lut.add_new("LUTDescriptor", "US", [4, 0, 16])
    lut.add_new("LUTData", "US", [0, 100, 1000, 4095])
    source.VOILUTSequence = Sequence([lut])
    stack = read_file(write_dataset(source, tmp_path / "in.dcm"))
    result = clean_stack(stack, sigma=30.0, f_size=5)
    assert not np.array_equal(result.stored, stack.stored)
    (ds,) = derive_datasets(stack, result.stored, result.derivation)
    out = pydicom.dcmread(write_dataset(ds, tmp_path / "out.dcm"))
    for keyword in ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction", "VOILUTSequence"):
        assert out[keyword].value == source[keyword].value, keyword
    pixels = out.pixel_array
    assert (out.SmallestImagePixelValue, out.LargestImagePixelValue) == (pixels.min(), pixels.max())
    assert (pixels.min(), pixels.max()) != (source.SmallestImagePixelValue, source.LargestImagePixelValue)


def test_frame_voi_of_an_enhanced_object_is_the_sources(tmp_path):
    stored = np.tile(np.arange(0, 400, 25, dtype=np.uint16), (3, 16, 1))
    source = enhanced_mr(stored)
    for k, group in enumerate(source.PerFrameFunctionalGroupsSequence):
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = f"{100 + k}", f"{200 + k}"
        group.FrameVOILUTSequence = Sequence([voi])
    stack = read_file(write_dataset(source, tmp_path / "in.dcm"))
    result = clean_stack(stack, sigma=SIGMA, f_size=3)
    (out,) = derive_datasets(stack, result.stored, result.derivation)
    (shared,) = out.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence
    assert (shared.WindowCenter, shared.WindowWidth) == (500, 1000)  # dicom_helpers.enhanced_mr's
    for k, group in enumerate(out.PerFrameFunctionalGroupsSequence):
        (voi,) = group.FrameVOILUTSequence
        assert (voi.WindowCenter, voi.WindowWidth) == (100 + k, 200 + k)


def test_real_ge_window_is_kept(tmp_path):
    source = realdata("ge/01_Ax_DWI_TENSOR_R2")
    report = clean_source(source, tmp_path / "derived", sigma=SIGMA)
    pairs = [(p, o) for stack in report.volumes for p, o in zip(stack.paths, stack.outputs)]
    assert len(pairs) == len(list(source.iterdir()))
    for src_path, out_path in pairs:
        src, out = pydicom.dcmread(src_path), pydicom.dcmread(out_path)
        assert (out.WindowCenter, out.WindowWidth) == (src.WindowCenter, src.WindowWidth)


# --------------------------------------------------------------------------- ImageType of enhanced objects


def derive_file(source: Path, tmp_path: Path) -> Path:
    stack = read_file(source)
    result = clean_stack(stack, sigma=SIGMA, f_size=3)
    (ds,) = derive_datasets(stack, result.stored, result.derivation)
    return write_dataset(ds, tmp_path / "out" / source.name)


@needs_dicom3tools
@pytest.mark.parametrize("sop_class", [EnhancedMRImageStorage, LegacyConvertedEnhancedMRImageStorage],
                         ids=["enhanced", "legacy_converted"])
def test_enhanced_mr_without_functional_groups_stays_primary(sop_class, tmp_path):
    # PS3.3 C.8.16.1.1: value 2 of ImageType is PRIMARY in these IODs, functional groups or not.
    source = enhanced_mr(np.tile(np.arange(0, 400, 25, dtype=np.uint16), (3, 16, 1)))
    source.SOPClassUID = source.file_meta.MediaStorageSOPClassUID = sop_class
    del source.SharedFunctionalGroupsSequence, source.PerFrameFunctionalGroupsSequence
    path = write_dataset(source, tmp_path / "in.dcm")
    out_path = derive_file(path, tmp_path)
    out = pydicom.dcmread(out_path)
    assert list(out.ImageType) == ["DERIVED", "PRIMARY", *list(source.ImageType)[2:]]
    assert OWN_TEXT in out.DerivationDescription
    assert out.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert_no_new_errors(path, out_path)


@needs_dicom3tools
def test_emri_small_stays_primary(tmp_path):
    # pydicom-data's files come from a download, which a machine without it cannot make.
    name = get_testdata_file("emri_small.dcm", download=False)
    if name is None:
        pytest.skip("pydicom-data's emri_small.dcm is not in pydicom's local data store (it is downloaded)")
    source = Path(name)
    out = derive_file(source, tmp_path)
    assert pydicom.dcmread(out).ImageType[1] == "PRIMARY"
    assert_no_new_errors(source, out)
