"""Synthetic DICOM inputs for the DICOM, CLI and QC tests, and the dicom3tools checks."""

from __future__ import annotations

import io

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileDataset
from pydicom.sequence import Sequence
from pydicom.uid import EnhancedMRImageStorage, generate_uid

from mri_noiselab.dicom import file_dataset, synthetic_mr_image, write_dataset

needs_dicom3tools = pytest.mark.skipif(
    shutil.which("dciodvfy") is None or shutil.which("dcentvfy") is None,
    reason="dicom3tools (dciodvfy, dcentvfy) not installed",
)


def phantom_volume(slices: int, size: int, sigma: float, rng: np.random.Generator, level: float = 400.0) -> tuple[np.ndarray, np.ndarray]:
    """A disc of ``level`` in air per slice (radius changing with the slice) and its Rician magnitude."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    truth = np.zeros((slices, size, size))
    for k in range(slices):
        truth[k][np.hypot(y, x) < size * (0.25 + 0.02 * k)] = level
    noisy = np.hypot(truth + rng.normal(0, sigma, truth.shape), rng.normal(0, sigma, truth.shape))
    return truth, noisy


def write_series(folder: Path, stored: np.ndarray, names: list[str] | None = None, **attributes: object) -> list[Path]:
    """Write a (slices, rows, cols) stack as single-frame files of one series, 4 mm apart along z."""
    # One study date and time for every slice: files written across a second boundary must not
    # disagree on their study's attributes (dcentvfy checks that).
    common = {"SeriesInstanceUID": generate_uid(), "StudyInstanceUID": generate_uid(),
              "FrameOfReferenceUID": generate_uid(), "StudyDate": "20260101", "StudyTime": "120000",
              "SeriesDate": "20260101", "SeriesTime": "120000"}
    common.update(attributes)
    paths = []
    for k, plane in enumerate(stored):
        name = names[k] if names else f"slice{k:03d}.dcm"
        ds = synthetic_mr_image(plane, InstanceNumber=k + 1, ImagePositionPatient=[-50.0, -50.0, 4.0 * k],
                                SliceLocation=f"{4.0 * k:g}", **common)
        paths.append(write_dataset(ds, folder / name))
    return paths


def enhanced_mr(stored: np.ndarray, *, frame_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "VOLUME", "NONE")) -> FileDataset:
    """An Enhanced MR Image Storage object with one frame per plane of ``stored``."""
    frames, rows, cols = stored.shape
    base = synthetic_mr_image(stored[0])
    ds = Dataset()
    for keyword in ("SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "Modality",
                    "Manufacturer", "ReferringPhysicianName", "SeriesDescription", "ManufacturerModelName",
                    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                    "SeriesInstanceUID", "StudyID", "SeriesNumber", "FrameOfReferenceUID",
                    "PositionReferenceIndicator", "SoftwareVersions", "DeviceSerialNumber",
                    "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated", "BitsStored",
                    "HighBit", "PixelRepresentation", "LossyImageCompression"):
        if keyword in base:
            setattr(ds, keyword, base.get(keyword))
    ds.DeviceSerialNumber = "0001"
    ds.SoftwareVersions = "1"
    ds.SOPClassUID = EnhancedMRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.ImageType = list(frame_type)
    ds.InstanceNumber = "1"
    ds.ContentDate, ds.ContentTime = base.StudyDate, base.StudyTime
    ds.AcquisitionDateTime = base.StudyDate + base.StudyTime
    ds.AcquisitionNumber = "1"
    ds.ContentQualification = "PRODUCT"
    ds.ResonantNucleus = "1H"
    ds.KSpaceFiltering = "NONE"
    ds.MagneticFieldStrength = "1.5"
    ds.ApplicableSafetyStandardAgency = "IEC"
    ds.ImageComments = "synthetic"
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    ds.ComplexImageComponent = "MAGNITUDE"
    ds.AcquisitionContrast = "T1"
    ds.BurnedInAnnotation = "NO"
    ds.PresentationLUTShape = "IDENTITY"
    ds.Rows, ds.Columns = rows, cols
    ds.NumberOfFrames = frames
    ds.InstanceCreationDate, ds.InstanceCreationTime = base.StudyDate, base.StudyTime

    dim_uid = generate_uid()
    ds.DimensionOrganizationSequence = Sequence([Dataset()])
    ds.DimensionOrganizationSequence[0].DimensionOrganizationUID = dim_uid
    index = Dataset()
    index.DimensionOrganizationUID = dim_uid
    index.DimensionIndexPointer = 0x00209057  # InStackPositionNumber
    index.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
    ds.DimensionIndexSequence = Sequence([index])

    shared = Dataset()
    measures = Dataset()
    measures.PixelSpacing = [1.0, 1.0]
    measures.SliceThickness = "4"
    shared.PixelMeasuresSequence = Sequence([measures])
    orientation = Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    shared.PlaneOrientationSequence = Sequence([orientation])
    frame_type_item = Dataset()
    frame_type_item.FrameType = list(frame_type)
    frame_type_item.PixelPresentation = "MONOCHROME"
    frame_type_item.VolumetricProperties = "VOLUME"
    frame_type_item.VolumeBasedCalculationTechnique = "NONE"
    frame_type_item.ComplexImageComponent = "MAGNITUDE"
    frame_type_item.AcquisitionContrast = "T1"
    shared.MRImageFrameTypeSequence = Sequence([frame_type_item])
    transform = Dataset()
    transform.RescaleIntercept = "0"
    transform.RescaleSlope = "1"
    transform.RescaleType = "US"
    shared.PixelValueTransformationSequence = Sequence([transform])
    voi = Dataset()
    voi.WindowCenter = "500"
    voi.WindowWidth = "1000"
    shared.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])

    per_frame = []
    for k in range(frames):
        group = Dataset()
        content = Dataset()
        content.StackID = "1"
        content.InStackPositionNumber = k + 1
        content.DimensionIndexValues = [k + 1]
        group.FrameContentSequence = Sequence([content])
        position = Dataset()
        position.ImagePositionPatient = [-50.0, -50.0, 4.0 * k]
        group.PlanePositionSequence = Sequence([position])
        per_frame.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per_frame)
    ds.PixelData = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW"

    return file_dataset(ds)


def dciodvfy_errors(path: Path) -> set[str]:
    """The "Error" lines dciodvfy reports for one file."""
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return {line.strip() for line in lines if line.strip().startswith("Error")}


def assert_no_new_errors(source: Path, output: Path) -> None:
    """dciodvfy finds no error in ``output`` that ``source`` did not have."""
    new = dciodvfy_errors(output) - dciodvfy_errors(source)
    assert not new, f"dciodvfy errors new in {output.name}: {sorted(new)}"


def dcentvfy_errors(paths: list[Path]) -> list[str]:
    """dcentvfy's "Error" lines for files that should form consistent entities (patient/study/series)."""
    run = subprocess.run(["dcentvfy", *map(str, paths)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if "Error" in line]


def run(*argv: str) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr)."""
    from mri_noiselab.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
