"""DICOM I/O: reading, pixel domains, back-conversion, derived-object metadata, safety, validators."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import lmmse_reference
from dicom_helpers import (
    assert_no_new_errors,
    dcentvfy_errors,
    enhanced_mr,
    needs_dicom3tools,
    phantom_volume,
    write_series,
)
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian
from scipy.ndimage import uniform_filter

import mri_noiselab
from mri_noiselab import dicom
from mri_noiselab.dicom import (
    CODECS_INSTALL,
    DecoderMissingError,
    Derivation,
    DicomError,
    NoBackgroundError,
    clean_source,
    clean_stack,
    derive_datasets,
    read_file,
    read_folder,
    synthetic_mr_image,
    write_dataset,
)
from mri_noiselab.roi import corner_rois, roi_mask

MR_VARIANTS = [
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_jp2klossless.dcm",
]


def moments_reference(magnitude: np.ndarray, sigma: float, window: tuple[int, ...], coils: int = 1) -> np.ndarray:
    """The seed's formula with scipy: sqrt(max(<M^2> - 2 N sigma^2, 0))."""
    local = uniform_filter(magnitude.astype(np.float64) ** 2, size=window, mode="reflect")
    return np.sqrt(np.maximum(local - 2 * coils * sigma**2, 0.0))


def stored_reference(values: np.ndarray, lo: int, hi: int, dtype: np.dtype) -> np.ndarray:
    return np.clip(np.floor(values + 0.5), lo, hi).astype(dtype)


def assert_close_to_rounded(actual: np.ndarray, expected: np.ndarray) -> None:
    # Rounding of values within float error of x.5 may differ by one; nothing else may.
    diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
    assert diff.max() <= 1
    assert np.count_nonzero(diff) <= max(2, diff.size // 1000)


# --------------------------------------------------------------------------- bundled files


@pytest.mark.parametrize("name", MR_VARIANTS)
def test_bundled_variants_decode_to_the_same_pixels(name):
    reference = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    stack = read_file(get_testdata_file(name))
    assert stack.shape == (1, 64, 64)
    assert stack.stored.dtype == np.int16 and stack.stored.dtype.isnative
    np.testing.assert_array_equal(stack.stored[0], reference)


@needs_dicom3tools
@pytest.mark.parametrize("name", MR_VARIANTS)
@pytest.mark.parametrize("method", ["moments", "pointwise", "lmmse"])
def test_bundled_variants_clean_to_the_formula_and_validate(tmp_path, name, method):
    source = Path(get_testdata_file(name))
    before = source.read_bytes()
    stack = read_file(source)
    sigma = 40.0
    result = clean_stack(stack, sigma=sigma, method=method, f_size=5)
    (ds,) = derive_datasets(stack, result.stored, result.derivation)
    out = write_dataset(ds, tmp_path / name, protected=[source])

    written = pydicom.dcmread(out)
    assert written.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert written.pixel_array.dtype == np.int16
    magnitude = stack.stored[0].astype(np.float64)
    if method == "pointwise":
        expected = np.sqrt(np.maximum(magnitude**2 - 2 * sigma**2, 0))
        assert_close_to_rounded(written.pixel_array, stored_reference(expected, -32768, 32767, np.int16))
    elif method == "moments":
        expected = moments_reference(magnitude, sigma, (5, 5))
        assert_close_to_rounded(written.pixel_array, stored_reference(expected, -32768, 32767, np.int16))
    else:
        expected = lmmse_reference(magnitude, sigma, (5, 5))
        assert_close_to_rounded(written.pixel_array, stored_reference(expected, -32768, 32767, np.int16))
    assert source.read_bytes() == before
    assert_no_new_errors(source, out)


# --------------------------------------------------------------------------- pixel domains


def test_back_conversion_rounds_to_nearest_and_clips_to_the_signed_range():
    stored = np.array([[[-5, 0], [100, 2000]]], dtype=np.int16)
    ds = synthetic_mr_image(stored[0], BitsStored=12)
    stack = dicom.DicomStack([ds], [Path("x.dcm")], stored, np.ones(1), np.zeros(1))
    assert dicom.stored_range(ds) == (-2048, 2047)
    out = stack.to_stored(np.array([[[2.7, -3000.2], [2.2, 5000.0]]]))
    np.testing.assert_array_equal(out, [[[3, -2048], [2, 2047]]])
    assert out.dtype == np.int16


def test_unsigned_range_follows_bits_stored():
    ds = synthetic_mr_image(np.zeros((2, 2), np.uint16), BitsStored=12)
    assert dicom.stored_range(ds) == (0, 4095)
    ds8 = synthetic_mr_image(np.zeros((2, 2), np.uint8))
    assert dicom.stored_range(ds8) == (0, 255)


def test_intercept_is_removed_for_the_noise_model_and_restored(tmp_path, rng):
    truth, noisy = phantom_volume(1, 48, 15.0, rng)
    intercept, slope = -1000.0, 2.0
    stored = np.rint((noisy - intercept) / slope).astype(np.uint16)  # so that slope*SV + b = noisy
    path = write_dataset(synthetic_mr_image(stored[0], RescaleIntercept=f"{intercept:g}", RescaleSlope=f"{slope:g}",
                                            RescaleType="US"), tmp_path / "a.dcm")
    stack = read_file(path)
    np.testing.assert_allclose(stack.magnitude(), stored + intercept / slope)
    np.testing.assert_array_equal(stack.to_stored(stack.magnitude()), stored)
    sigma_stored = 15.0 / slope
    result = clean_stack(stack, sigma=sigma_stored, method="pointwise")
    zero_based = stored + intercept / slope
    expected = np.sqrt(np.maximum(zero_based**2 - 2 * sigma_stored**2, 0)) - intercept / slope
    assert_close_to_rounded(result.stored, stored_reference(expected, 0, 65535, np.uint16))


def test_negative_signal_after_rescale_is_refused(tmp_path):
    path = write_dataset(synthetic_mr_image(np.full((8, 8), 10, np.uint16), RescaleIntercept="-100",
                                            RescaleSlope="1"), tmp_path / "a.dcm")
    with pytest.raises(ValueError, match="below zero signal"):
        clean_stack(read_file(path), sigma=1.0)


def test_all_zero_background_stops_and_never_guesses(tmp_path):
    image = np.zeros((32, 32), np.uint16)
    image[8:24, 8:24] = 500
    stack = read_file(write_dataset(synthetic_mr_image(image), tmp_path / "a.dcm"))
    with pytest.raises(NoBackgroundError, match="all zeros"):
        clean_stack(stack, mask=roi_mask(corner_rois(stack.shape, 4), stack.shape))


def test_sigma_from_a_synthetic_series_matches_the_truth(tmp_path, rng):
    _, noisy = phantom_volume(4, 96, 20.0, rng)
    write_series(tmp_path, np.rint(noisy).astype(np.uint16))
    (stack,) = read_folder(tmp_path).stacks
    estimate = dicom.background_sigma(stack, roi_mask(corner_rois(stack.shape, 16), stack.shape))
    # 4 slices x 4 corners x 256 pixels: MLE standard error ~ sigma / sqrt(4 n) ~ 0.16
    assert estimate.sigma == pytest.approx(20.0, abs=0.8)


# --------------------------------------------------------------------------- series folders


def test_folder_groups_by_series_and_echo_and_sorts_along_the_normal(tmp_path, rng):
    _, noisy = phantom_volume(4, 32, 10.0, rng)
    stored = np.rint(noisy).astype(np.uint16)
    uid = pydicom.uid.generate_uid()
    study = pydicom.uid.generate_uid()
    names = ["d.dcm", "b.dcm", "c.dcm", "a.dcm"]  # name order is not slice order
    write_series(tmp_path / "e1", stored, names, SeriesInstanceUID=uid, StudyInstanceUID=study, EchoNumbers="1", EchoTime="10")
    write_series(tmp_path / "e2", stored[::-1].copy(), names, SeriesInstanceUID=uid, StudyInstanceUID=study, EchoNumbers="2", EchoTime="40")
    write_series(tmp_path / "other", stored[:2].copy(), StudyInstanceUID=study)
    scan = read_folder(tmp_path)
    assert not scan.failures
    assert sorted(s.shape[0] for s in scan.stacks) == [2, 4, 4]
    echoes = {str(s.datasets[0].EchoNumbers): s for s in scan.stacks if s.series_uid == uid}
    np.testing.assert_array_equal(echoes["1"].stored, stored)
    np.testing.assert_array_equal(echoes["2"].stored, stored[::-1])
    z = [float(ds.ImagePositionPatient[2]) for ds in echoes["1"].datasets]
    assert z == sorted(z)


def test_slice_order_falls_back_to_instance_number(tmp_path):
    planes = np.stack([np.full((8, 8), k + 1, np.uint16) for k in range(3)])
    paths = write_series(tmp_path, planes, ["z.dcm", "x.dcm", "y.dcm"])
    for p in paths:
        ds = pydicom.dcmread(p)
        del ds.ImagePositionPatient
        ds.save_as(p)
    (stack,) = read_folder(tmp_path).stacks
    np.testing.assert_array_equal(stack.stored[:, 0, 0], [1, 2, 3])


def test_mixed_image_sizes_in_one_series_fail_clearly(tmp_path):
    uid = pydicom.uid.generate_uid()
    write_dataset(synthetic_mr_image(np.ones((8, 8), np.uint16), SeriesInstanceUID=uid), tmp_path / "a.dcm")
    write_dataset(synthetic_mr_image(np.ones((8, 10), np.uint16), SeriesInstanceUID=uid, InstanceNumber="2",
                                     ImagePositionPatient=[0, 0, 5]), tmp_path / "b.dcm")
    with pytest.raises(DicomError, match="Columns 10 differs from 8"):
        read_folder(tmp_path)


@needs_dicom3tools
def test_series_outputs_share_one_new_series_and_validate(tmp_path, rng):
    _, noisy = phantom_volume(3, 64, 12.0, rng)
    stored = np.rint(noisy).astype(np.uint16)
    uid, study = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    inputs = write_series(tmp_path / "in" / "echo1", stored, SeriesInstanceUID=uid, StudyInstanceUID=study,
                          EchoNumbers="1", EchoTime="10")
    inputs += write_series(tmp_path / "in" / "echo2", stored, SeriesInstanceUID=uid, StudyInstanceUID=study,
                           EchoNumbers="2", EchoTime="30")
    before = {p: p.read_bytes() for p in inputs}
    report = clean_source(tmp_path / "in", tmp_path / "out",
                          background=lambda s: roi_mask(corner_rois(s.shape, 10), s.shape), f_size=3)
    assert len(report.volumes) == 2 and not report.failures
    outputs = sorted(report.written)
    assert [p.relative_to(tmp_path / "out") for p in outputs] == sorted(p.relative_to(tmp_path / "in") for p in inputs)
    written = [pydicom.dcmread(p) for p in outputs]
    assert len({ds.SeriesInstanceUID for ds in written}) == 1
    assert written[0].SeriesInstanceUID != uid
    assert len({ds.SOPInstanceUID for ds in written}) == len(written)
    assert {p: p.read_bytes() for p in inputs} == before
    for source, out in zip(sorted(inputs), outputs):
        assert_no_new_errors(source, out)
    assert dcentvfy_errors(outputs) == []
    assert not list((tmp_path / "out").rglob(".*"))  # no temporary files left


# --------------------------------------------------------------------------- multi-frame


@needs_dicom3tools
def test_enhanced_mr_multiframe_derivation_per_frame(tmp_path, rng):
    _, noisy = phantom_volume(3, 48, 10.0, rng)
    stored = np.rint(noisy).astype(np.uint16)
    source = write_dataset(enhanced_mr(stored), tmp_path / "enhanced.dcm")
    stack = read_file(source)
    assert stack.shape == (3, 48, 48) and stack.is_multiframe
    result = clean_stack(stack, mask=roi_mask(corner_rois(stack.shape, 8), stack.shape), method="moments", f_size=5)
    assert result.derivation.f_size == (1, 5, 5)
    expected = moments_reference(stored, result.derivation.sigma, (1, 5, 5))
    assert_close_to_rounded(result.stored, stored_reference(expected, 0, 65535, np.uint16))
    (ds,) = derive_datasets(stack, result.stored, result.derivation)
    out = write_dataset(ds, tmp_path / "out" / "enhanced.dcm")
    written = pydicom.dcmread(out)
    np.testing.assert_array_equal(written.pixel_array, result.stored)
    assert list(written.ImageType[:2]) == ["DERIVED", "PRIMARY"]
    assert list(written.SharedFunctionalGroupsSequence[0].MRImageFrameTypeSequence[0].FrameType[:2]) == ["DERIVED", "PRIMARY"]
    for k, group in enumerate(written.PerFrameFunctionalGroupsSequence):
        (item,) = group.DerivationImageSequence
        assert item.DerivationCodeSequence[0].CodeValue == codes.DCM.Smoothing.value
        (ref,) = item.SourceImageSequence
        assert ref.ReferencedSOPInstanceUID == stack.datasets[0].SOPInstanceUID
        assert ref.ReferencedFrameNumber == k + 1
        assert ref.PurposeOfReferenceCodeSequence[0].CodeValue == "121322"
    voi = written.SharedFunctionalGroupsSequence[0].FrameVOILUTSequence[0]
    assert (voi.WindowCenter, voi.WindowWidth) == (500, 1000)  # the source's (dicom_helpers.enhanced_mr)
    assert_no_new_errors(source, out)


# --------------------------------------------------------------------------- metadata rules


@pytest.fixture
def derived_pair(tmp_path):
    source = Path(get_testdata_file("MR_small.dcm"))
    stack = read_file(source)
    stack.datasets[0].LossyImageCompression = "01"  # as if the source had been lossy compressed
    stack.datasets[0].add_new(0x00291010, "LO", "private value")
    stack.datasets[0].private_block(0x0029, "NOISELAB TEST", create=True).add_new(0x01, "LO", "kept")
    result = clean_stack(stack, sigma=30.0, method="moments", f_size=5, coils=2)
    (ds,) = derive_datasets(stack, result.stored, result.derivation, uid_prefix="1.2.826.0.1.3680043.10.999.")
    out = write_dataset(ds, tmp_path / "out.dcm")
    return stack.datasets[0], pydicom.dcmread(out), result


def test_derived_object_has_new_uids_and_keeps_study_and_patient(derived_pair):
    src, out, _ = derived_pair
    assert out.SOPInstanceUID != src.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPClassUID == out.SOPClassUID == src.SOPClassUID
    assert out.SOPInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")
    assert out.SeriesInstanceUID != src.SeriesInstanceUID
    assert out.SeriesInstanceUID.startswith("1.2.826.0.1.3680043.10.999.")
    assert int(out.SeriesNumber) == int(src.SeriesNumber) + 1000
    assert out.SeriesDescription.endswith(dicom.SERIES_SUFFIX.strip())
    for keyword in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientName", "PatientID", "StudyDate", "StudyID",
                    "ImagePositionPatient", "PixelSpacing", "EchoTime"):
        assert out.get(keyword) == src.get(keyword), keyword
    assert "InstanceCreatorUID" not in out


def test_derived_object_keeps_private_tags_and_lossy_flag(derived_pair):
    _, out, _ = derived_pair
    assert out[0x00291010].value == "private value"
    assert out.private_block(0x0029, "NOISELAB TEST")[0x01].value == "kept"
    assert out.LossyImageCompression == "01"


def test_image_type_and_derivation_records(derived_pair):
    src, out, result = derived_pair
    assert list(out.ImageType) == ["DERIVED", "SECONDARY", *list(src.ImageType)[2:]]
    text = out.DerivationDescription
    for piece in ("moments", "sigma=30", "f_size=1x5x5", "coils=2", mri_noiselab.__version__):
        assert piece in text
    (code,) = out.DerivationCodeSequence
    assert (code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning) == (
        codes.DCM.Smoothing.value, codes.DCM.Smoothing.scheme_designator, codes.DCM.Smoothing.meaning)
    (ref,) = out.SourceImageSequence
    assert ref.ReferencedSOPClassUID == src.SOPClassUID
    assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert ref.SpatialLocationsPreserved == "YES"
    purpose = codes.DCM.SourceImageForImageProcessingOperation
    (p,) = ref.PurposeOfReferenceCodeSequence
    assert (p.CodeValue, p.CodingSchemeDesignator, p.CodeMeaning) == (purpose.value, "DCM", purpose.meaning)


@pytest.mark.parametrize(("method", "concept"), [("moments", "Smoothing"), ("lmmse", "Smoothing"),
                                                  ("pointwise", "PixelByPixelSubtraction")])
def test_derivation_codes_come_from_the_dicom_concept_dictionary(method, concept):
    value, scheme, meaning = Derivation(method, 1.0, (1, 3, 3), 1).code()
    reference = getattr(codes.DCM, concept)
    assert (value, scheme, meaning) == (reference.value, reference.scheme_designator, reference.meaning)


def test_no_contributing_equipment_item_and_creation_time(derived_pair):
    _, out, _ = derived_pair
    # Its Type 1 Manufacturer and its SoftwareVersions would be read as the image's own (test_derive.py).
    assert "ContributingEquipmentSequence" not in out
    # MR_small.dcm says TimezoneOffsetFromUTC -0400: creation date and time are in that zone.
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=-4)))
    created = dt.datetime.strptime(out.InstanceCreationDate + out.InstanceCreationTime.split(".")[0], "%Y%m%d%H%M%S")
    assert abs((now.replace(tzinfo=None) - created).total_seconds()) < 120


def test_pixel_range_follows_the_new_data_and_the_window_is_the_sources(derived_pair):
    src, out, _ = derived_pair
    pixels = out.pixel_array
    assert out.SmallestImagePixelValue == pixels.min()
    assert out.LargestImagePixelValue == pixels.max()
    assert out["SmallestImagePixelValue"].VR == "SS"  # MR_small is signed
    assert (out.WindowCenter, out.WindowWidth) == (src.WindowCenter, src.WindowWidth)


def test_icon_and_trailing_padding_of_the_old_pixels_are_dropped(derived_pair):
    src, out, _ = derived_pair
    assert (0xFFFC, 0xFFFC) in src
    assert (0xFFFC, 0xFFFC) not in out


# --------------------------------------------------------------------------- bad input and safety


def test_compressed_input_without_decoder_names_the_extra(monkeypatch):
    from pydicom.pixels import get_decoder

    decoder = get_decoder(pydicom.uid.JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})
    with pytest.raises(DecoderMissingError, match="no decoder is installed") as info:
        read_file(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    assert CODECS_INSTALL in str(info.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "not a DICOM file"), (os.urandom(600), "not a DICOM file"), (b"hello, not an image\n" * 20, "not a DICOM file")],
)
def test_non_dicom_files_fail_clearly(tmp_path, content, words):
    path = tmp_path / "bad.dcm"
    path.write_bytes(content)
    with pytest.raises(DicomError, match=words):
        read_file(path)
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("name", "words"),
    [("MR_truncated.dcm", "cannot decode|damaged"), ("rtplan.dcm", "no PixelData"), ("SC_rgb_small_odd.dcm", "colour")],
)
def test_unusable_dicom_files_fail_clearly(name, words):
    with pytest.raises(DicomError, match=words):
        read_file(get_testdata_file(name))


def test_phase_images_are_refused(tmp_path):
    path = write_dataset(synthetic_mr_image(np.ones((4, 4), np.uint16), ImageType=["ORIGINAL", "PRIMARY", "P", "ND"]),
                         tmp_path / "p.dcm")
    with pytest.raises(DicomError, match="phase"):
        read_file(path)


def test_outputs_never_replace_inputs(tmp_path):
    source = write_dataset(synthetic_mr_image(np.ones((4, 4), np.uint16)), tmp_path / "a.dcm")
    before = source.read_bytes()
    with pytest.raises(ValueError, match="is an input file"):
        clean_source(source, source, sigma=1.0)
    with pytest.raises(ValueError, match="is the input folder"):
        clean_source(tmp_path, tmp_path, sigma=1.0)
    stack = read_file(source)
    (ds,) = derive_datasets(stack, stack.stored, Derivation("moments", 1.0, (1, 3, 3), 1))
    with pytest.raises(OSError, match="input file"):
        write_dataset(ds, tmp_path / "." / "a.dcm", protected=[source])
    assert source.read_bytes() == before


def test_failed_write_leaves_no_file(tmp_path):
    from mri_noiselab._atomic import atomic_write

    def explode(fh):
        fh.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.dcm", explode)
    assert list(tmp_path.iterdir()) == []


def test_symlinked_output_is_refused(tmp_path):
    target = tmp_path / "target.dcm"
    target.write_bytes(b"keep")
    (tmp_path / "link.dcm").symlink_to(target)
    stack = read_file(get_testdata_file("MR_small.dcm"))
    (ds,) = derive_datasets(stack, stack.stored, Derivation("moments", 1.0, (1, 3, 3), 1))
    with pytest.raises(OSError, match="symbolic link"):
        write_dataset(ds, tmp_path / "link.dcm")
    assert target.read_bytes() == b"keep"


def test_folder_batch_writes_good_files_and_leaves_other_files_alone(tmp_path, rng):
    _, noisy = phantom_volume(2, 32, 10.0, rng)
    inputs = write_series(tmp_path / "in", np.rint(noisy).astype(np.uint16))
    (tmp_path / "in" / "notes.txt").write_text("not DICOM")
    report = clean_source(tmp_path / "in", tmp_path / "out", sigma=10.0)
    assert len(report.written) == len(inputs)
    assert report.failures == []
    assert [(s.path.name, s.dicom) for s in report.ineligible] == [("notes.txt", False)]
    assert not (tmp_path / "out" / "notes.txt").exists()


def test_output_folder_inside_the_input_is_not_read_back(tmp_path, rng):
    _, noisy = phantom_volume(2, 32, 10.0, rng)
    write_series(tmp_path, np.rint(noisy).astype(np.uint16))
    first = clean_source(tmp_path, tmp_path / "clean", sigma=10.0)
    second = clean_source(tmp_path, tmp_path / "clean", sigma=10.0, force=True)  # its own outputs: replaced
    assert len(first.written) == len(second.written) == 2


def test_repeated_acquisitions_and_echo_time_spellings_split_and_merge_correctly(tmp_path, rng):
    from pydicom.uid import generate_uid

    from mri_noiselab.dicom import read_source

    stored = np.rint(phantom_volume(3, 32, 10.0, rng)[1]).astype(np.uint16)
    same = {"SeriesInstanceUID": generate_uid(), "StudyInstanceUID": generate_uid(), "FrameOfReferenceUID": generate_uid()}
    # Two acquisitions at the same positions in one series, echo time spelled two ways.
    write_series(tmp_path / "s", stored, names=["a1.dcm", "a2.dcm", "a3.dcm"], AcquisitionNumber=1, EchoTime="15", **same)
    write_series(tmp_path / "s", stored + 1000, names=["b1.dcm", "b2.dcm", "b3.dcm"], AcquisitionNumber=2,
                 EchoTime="15.0", **same)
    scan = read_source(tmp_path / "s")
    assert len(scan.stacks) == 2
    for stack in scan.stacks:
        assert np.all(stack.stored < 1000) or np.all(stack.stored >= 1000)  # never interleaved
    one = write_series(tmp_path / "t", stored, EchoTime="15", **{**same, "SeriesInstanceUID": generate_uid()})
    ds = pydicom.dcmread(one[1])
    ds.EchoTime = "15.0"
    ds.save_as(one[1])
    assert len(read_source(tmp_path / "t").stacks) == 1


@pytest.mark.parametrize(("second", "warned"), [(10.0, False), (10.0 / np.sqrt(3), True)])
def test_stacks_of_a_series_whose_noise_differs_are_warned_of(tmp_path, second, warned):
    """A diffusion series' trace images average three directions: their noise is sqrt(3) lower
    than that of its b = 0 images, and one pooled σ fits neither."""
    rng = np.random.default_rng(8)
    uids = {"SeriesInstanceUID": pydicom.uid.generate_uid(), "StudyInstanceUID": pydicom.uid.generate_uid(),
            "FrameOfReferenceUID": pydicom.uid.generate_uid()}
    for echo, sigma in ((1, 10.0), (2, second)):
        _, noisy = phantom_volume(6, 48, sigma, rng)
        write_series(tmp_path / "in", np.rint(noisy).astype(np.int16), [f"e{echo}_{k}.dcm" for k in range(6)],
                     EchoNumbers=echo, **uids)
    roi = lambda stack: roi_mask(["0:10,0:10"], stack.shape)  # noqa: E731
    report = clean_source(tmp_path / "in", tmp_path / "out", background=roi)
    assert len(report.volumes) == 2
    notes = [w for v in report.volumes for w in v.result.warnings]
    spread = [w for w in notes if "noise differs between the stacks" in w]
    assert bool(spread) == warned, notes
    if warned:
        assert "--sigma-per-volume" in spread[0] and "e1_0.dcm" in spread[0] and "e2_0.dcm" in spread[0]
        per_stack = clean_source(tmp_path / "in", tmp_path / "out2", background=roi, per_volume=True)
        sigmas = sorted(v.result.derivation.sigma for v in per_stack.volumes)
        assert sigmas == pytest.approx([second, 10.0], rel=0.1)
        assert not any("noise differs" in w for v in per_stack.volumes for w in v.result.warnings)
