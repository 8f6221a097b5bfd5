"""Which inputs are corrected, which are skipped and why, and one σ per source series written all or nothing."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import rounded_noise_sigma
from dicom_helpers import enhanced_mr, phantom_volume, write_series
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import MRSpectroscopyStorage, generate_uid

import mri_noiselab as nl
from mri_noiselab.cli import main
from mri_noiselab.dicom import (
    NotEligibleError,
    clean_source,
    eligibility,
    read_file,
    read_source,
    synthetic_mr_image,
    write_dataset,
)
from mri_noiselab.roi import roi_mask

REALDATA = Path(__file__).parents[1].parent / "shared" / "realdata"
SIGMA = 12.0
# Two corner boxes of a 64 x 64 phantom slice: pure noise (the disc reaches 18 px from the centre).
ROIS = ["0:12,0:12", "52:64,52:64"]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def roi_args() -> list[str]:
    return [a for roi in ROIS for a in ("--roi", roi)]


def noisy(rng: np.random.Generator, slices: int = 3, size: int = 64, level: float = 400.0) -> np.ndarray:
    return np.rint(phantom_volume(slices, size, SIGMA, rng, level)[1]).astype(np.uint16)


def plane(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    return noisy(rng, 1, size)[0]


def mle(values: np.ndarray) -> tuple[float, int]:
    """σ from the non-zero values (exact zeros are left out), and n. They are integers, so σ is
    the one whose rounded noise has their mean square (σ² = ΣM²/(2n) but for rounding)."""
    v = values[values != 0].astype(np.float64)
    return rounded_noise_sigma(v), int(v.size)


def pointwise(m: np.ndarray, sigma: float) -> np.ndarray:
    return np.sqrt(np.maximum(m.astype(np.float64) ** 2 - 2 * sigma**2, 0.0))


def assert_rounds(actual: np.ndarray, expected: np.ndarray) -> None:
    """``actual`` is ``expected`` rounded to nearest (ties within float error may go either way)."""
    assert np.all(np.abs(actual.astype(np.float64) - expected) <= 0.5 + 1e-9)


def b_value_series(folder: Path, rng: np.random.Generator, *, uid: str | None = None, slope: float = 1.0) -> dict[str, list[Path]]:
    """One series, two diffusion weightings (b = 0 bright, b = 1000 dim), 3 slices each, σ = SIGMA in real-world units.

    With ``slope``, the b = 1000 slices store the values divided by it and say RescaleSlope = ``slope``.
    """
    same = {"SeriesInstanceUID": uid or generate_uid(), "StudyInstanceUID": generate_uid(),
            "FrameOfReferenceUID": generate_uid()}
    b0 = write_series(folder, noisy(rng), names=[f"b0_{k}.dcm" for k in range(3)], DiffusionBValue=0.0, **same)
    dim = phantom_volume(3, 64, SIGMA, rng, 100.0)[1] / slope
    b1000 = write_series(folder, np.rint(dim).astype(np.uint16), names=[f"b1000_{k}.dcm" for k in range(3)],
                         DiffusionBValue=1000.0, RescaleSlope=f"{slope:g}", **same)
    return {"b0": b0, "b1000": b1000}


def roi_values(paths: list[Path]) -> np.ndarray:
    """Real-world values (stored * slope) in ROIS, read with pydicom alone."""
    values = []
    for p in paths:
        ds = pydicom.dcmread(p)
        real = ds.pixel_array.astype(np.float64) * float(ds.get("RescaleSlope", 1))
        values.append(real[roi_mask(ROIS, real.shape)])
    return np.concatenate(values)


def derivation_sigma(path: Path) -> float:
    text = pydicom.dcmread(path).DerivationDescription
    return float(text.split("sigma=")[1].split()[0])


# --------------------------------------------------------------------------- what is skipped, and why


def _mr(rng: np.random.Generator, folder: Path, name: str, **attributes: object) -> Path:
    return write_dataset(synthetic_mr_image(plane(rng), **attributes), folder / name)


@pytest.fixture
def mixed_folder(tmp_path, rng):
    """A good series, and one input of every kind that must be skipped, in one folder."""
    folder = tmp_path / "in"
    good = write_series(folder / "good", noisy(rng, 2, 32))
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    _mr(rng, folder, "adc.dcm", ImageType=["DERIVED", "SECONDARY", "ADC"])
    _mr(rng, folder, "localizer.dcm", ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    _mr(rng, folder, "phase.dcm", ImageType=["ORIGINAL", "PRIMARY", "P", "ND"])
    _mr(rng, folder, "spectro.dcm", SOPClassUID=MRSpectroscopyStorage)
    (folder / "README.txt").write_text("scanned at the front desk")
    (folder / "data.zip").write_bytes(b"PK\x03\x04" + bytes(200))
    # An earlier run's output in another sub-folder of the input.
    clean_source(folder / "good", folder / "old_out", sigma=SIGMA)
    return folder, good


REASONS = {
    "adc.dcm": "a computed image, not an acquisition (ImageType ADC)",
    "ct.dcm": "not an MR magnitude image (CT Image Storage)",
    "localizer.dcm": "a localizer (ImageType LOCALIZER)",
    "old_out/slice000.dcm": "output of mri-noiselab",
    "old_out/slice001.dcm": "output of mri-noiselab",
    "phase.dcm": "a phase, real or imaginary image (ImageType P), not a magnitude",
    "spectro.dcm": "not an MR magnitude image (MR Spectroscopy Storage)",
}


def test_every_kind_of_non_magnitude_input_is_skipped_with_its_reason_and_is_no_failure(tmp_path, mixed_folder):
    folder, good = mixed_folder
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", str(SIGMA))
    assert code == 0, err
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file()) == \
        [f"good/{p.name}" for p in good]
    lines = err.strip().splitlines()
    assert lines == [f"mri-noiselab: skipped {folder / name}: {reason}" for name, reason in REASONS.items()] + [
        "mri-noiselab: skipped 7 file(s) (not magnitude MR images; --include-derived corrects derived images too)"
    ]
    assert "README.txt" not in err and "data.zip" not in err  # not DICOM: silent
    assert "wrote 2 file(s)" in out

    code, _, err = run("clean", str(folder), "-o", str(tmp_path / "out2"), "--sigma", str(SIGMA), "-v")
    assert code == 0
    assert f"mri-noiselab: skipped {folder / 'README.txt'}: not a DICOM file" in err
    assert f"mri-noiselab: skipped {folder / 'data.zip'}: not a DICOM file" in err


def test_the_library_reports_the_same_skips(mixed_folder):
    folder, good = mixed_folder
    scan = read_source(folder)
    assert [p for s in scan.stacks for p in s.paths] == good and scan.failures == []
    dicom = {str(s.path.relative_to(folder)): s.reason for s in scan.ineligible if s.dicom}
    assert dicom == REASONS
    assert sorted(s.path.name for s in scan.ineligible if not s.dicom) == ["README.txt", "data.zip"]
    assert {str(s.path.relative_to(folder)) for s in scan.ineligible if s.derived} == {"adc.dcm", "localizer.dcm"}


def test_include_derived_lets_the_adc_image_through_and_nothing_else(tmp_path, mixed_folder):
    folder, good = mixed_folder
    code, _, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", str(SIGMA),
                       "--method", "pointwise", "--include-derived")
    assert code == 0, err
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["adc.dcm", "good/slice000.dcm", "good/slice001.dcm", "localizer.dcm"]
    source = pydicom.dcmread(folder / "adc.dcm").pixel_array
    assert_rounds(pydicom.dcmread(tmp_path / "out" / "adc.dcm").pixel_array, pointwise(source, SIGMA))
    for name in ("ct.dcm", "phase.dcm", "spectro.dcm", "old_out/slice000.dcm"):
        assert f"skipped {folder / name}: {REASONS[name]}" in err
    assert "skipped 5 file(s) (not magnitude MR images)" in err


@pytest.mark.parametrize(
    ("image_type", "extra", "reason"),
    [
        (["ORIGINAL", "PRIMARY", "M", "ND"], {}, None),
        (["ORIGINAL", "PRIMARY", "DIFFUSION", "NONE", "ND", "MOSAIC"], {}, None),  # Siemens raw DWI
        (["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"], {}, None),  # Philips magnitude
        (["ORIGINAL", "PRIMARY", "PHASE MAP", "P", "FFE"], {}, "ImageType PHASE MAP"),  # Philips phase
        (["ORIGINAL", "PRIMARY", "R_IR", "R", "IR"], {}, "ImageType R_..."),  # Philips real
        (["ORIGINAL", "PRIMARY", "OTHER"], {"ge": 1}, "a phase image"),  # GE private image type
        (["ORIGINAL", "PRIMARY", "OTHER"], {"ge": 0}, None),
        (["DERIVED", "PRIMARY", "MPR"], {}, "ImageType MPR"),
        (["ORIGINAL", "PRIMARY", "M", "ND"], {"Modality": "CT"}, "Modality is not MR"),
    ],
)
def test_eligibility_of_vendor_image_types(rng, image_type, extra, reason):
    ds = synthetic_mr_image(plane(rng, 8), ImageType=image_type,
                            **{k: v for k, v in extra.items() if k != "ge"})
    if "ge" in extra:
        ds.private_block(0x0043, "GEMS_PARM_01", create=True).add_new(0x2F, "SS", extra["ge"])
    found = eligibility(ds)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_philips_magnitude_and_phase_of_one_series_phase_skipped_magnitude_corrected(tmp_path, rng):
    same = {"SeriesInstanceUID": generate_uid(), "StudyInstanceUID": generate_uid(), "FrameOfReferenceUID": generate_uid()}
    magnitude = write_series(tmp_path / "in", noisy(rng, 3, 32), names=[f"m{k}.dcm" for k in range(3)],
                             ImageType=["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"], **same)
    phase = write_series(tmp_path / "in", rng.integers(0, 4096, (3, 32, 32)).astype(np.uint16),
                         names=[f"p{k}.dcm" for k in range(3)],
                         ImageType=["ORIGINAL", "PRIMARY", "PHASE MAP", "P", "FFE"], **same)
    report = clean_source(tmp_path / "in", tmp_path / "out", sigma=SIGMA)
    assert report.failures == []
    assert sorted(p.name for p in report.written) == [p.name for p in magnitude]
    assert [(s.path, s.reason) for s in report.ineligible] == \
        [(p, "a phase, real or imaginary image (ImageType PHASE MAP), not a magnitude") for p in phase]


def test_many_skips_are_counted_per_reason_and_listed_with_verbose(tmp_path, rng):
    write_series(tmp_path / "in" / "good", noisy(rng, 1, 32))
    phase = write_series(tmp_path / "in" / "phase", rng.integers(0, 4096, (12, 16, 16)).astype(np.uint16),
                         ImageType=["ORIGINAL", "PRIMARY", "P", "ND"])
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "5")
    assert code == 0
    reason = "a phase, real or imaginary image (ImageType P), not a magnitude"
    assert err.strip().splitlines() == [
        f"mri-noiselab: skipped 12 file(s): {reason} (first: {phase[0]}; -v lists each)",
        "mri-noiselab: skipped 12 file(s) (not magnitude MR images)",
    ]
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out2"), "--sigma", "5", "-v")
    assert [line for line in err.splitlines() if line.startswith("mri-noiselab: skipped /")] == \
        [f"mri-noiselab: skipped {p}: {reason}" for p in phase]


def test_nothing_to_correct_is_one_line_exit_2(tmp_path, rng):
    phase = _mr(rng, tmp_path / "in", "phase.dcm", ImageType=["ORIGINAL", "PRIMARY", "P"])
    adc = _mr(rng, tmp_path / "adc", "adc.dcm", ImageType=["DERIVED", "PRIMARY", "ADC"])
    (tmp_path / "notes.txt").write_text("not DICOM")
    cases = [
        (["clean", str(phase), "-o", str(tmp_path / "o.dcm"), "--sigma", "5"],
         f"{phase}: not corrected: a phase, real or imaginary image (ImageType P), not a magnitude"),
        (["clean", str(adc), "-o", str(tmp_path / "o.dcm"), "--sigma", "5"],
         f"{adc}: not corrected: a computed image, not an acquisition (ImageType ADC) "
         "(--include-derived corrects derived images too)"),
        (["sigma", str(tmp_path / "in"), "--roi", "0:4,0:4"],
         f"{tmp_path / 'in'}: nothing to correct: none of its 1 DICOM file(s) is a magnitude MR image (first: {phase}:"),
        (["clean", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "o.dcm"), "--sigma", "5"],
         f"{tmp_path / 'notes.txt'}: not a DICOM file"),
    ]
    for argv, words in cases:
        code, out, err = run(*argv)
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith(f"mri-noiselab: error: {words}"), err
    assert not (tmp_path / "o.dcm").exists()
    with pytest.raises(NotEligibleError) as info:
        read_source(adc)
    assert info.value.derived


# --------------------------------------------------------------------------- MIXED multi-frame files


def mixed_enhanced(magnitude: np.ndarray, phase: np.ndarray) -> pydicom.dataset.FileDataset:
    """Enhanced MR whose frames alternate magnitude and phase (ComplexImageComponent MIXED, per-frame components)."""
    stored = np.empty((2 * len(magnitude), *magnitude.shape[1:]), np.uint16)
    stored[0::2], stored[1::2] = magnitude, phase
    ds = enhanced_mr(stored)
    ds.ComplexImageComponent = "MIXED"
    del ds.SharedFunctionalGroupsSequence[0].MRImageFrameTypeSequence
    for k, group in enumerate(ds.PerFrameFunctionalGroupsSequence):
        item = Dataset()
        item.FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
        item.ComplexImageComponent = "MAGNITUDE" if k % 2 == 0 else "PHASE"
        group.MRImageFrameTypeSequence = Sequence([item])
    return ds


def test_mixed_file_is_corrected_on_its_magnitude_frames_and_keeps_its_phase_frames(tmp_path, rng):
    magnitude = noisy(rng, 3, 64)
    phase = rng.integers(0, 4096, magnitude.shape).astype(np.uint16)
    source = write_dataset(mixed_enhanced(magnitude, phase), tmp_path / "mixed.dcm")

    code, out, err = run("sigma", str(source), *roi_args(), "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    expected, n = mle(np.concatenate([m[roi_mask(ROIS, m.shape)] for m in magnitude]))
    assert row["n"] == n and row["sigma"] == pytest.approx(expected, rel=1e-12)  # phase frames left out

    code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma", str(SIGMA), "--method", "pointwise")
    assert code == 0, err
    out_ds = pydicom.dcmread(tmp_path / "out.dcm")
    frames = out_ds.pixel_array
    assert frames.shape == (6, 64, 64)
    assert frames[1::2].tobytes() == phase.tobytes()  # byte-identical
    assert_rounds(frames[0::2], pointwise(magnitude, SIGMA))
    assert "Rician noise bias removed" in out_ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].DerivationDescription

    # The file just written is this package's output: never corrected again.
    code, _, err = run("clean", str(tmp_path / "out.dcm"), "-o", str(tmp_path / "again.dcm"), "--sigma", "5",
                       "--include-derived")
    assert code == 2 and "not corrected: output of mri-noiselab" in err


# --------------------------------------------------------------------------- one σ per series


def test_two_b_values_of_one_series_get_one_pooled_sigma(tmp_path, rng):
    files = b_value_series(tmp_path / "in", rng)
    code, out, err = run("sigma", str(tmp_path / "in"), *roi_args(), "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert sorted(row["source"]) == sorted(str(p) for p in files["b0"] + files["b1000"])
    expected, n = mle(roi_values(files["b0"] + files["b1000"]))
    assert row["n"] == n and row["sigma"] == pytest.approx(expected, rel=1e-12)
    # MLE of σ from n Rayleigh values: standard error σ / (2 √n) (Fisher information 4n/σ²).
    assert abs(row["sigma"] - SIGMA) < 3 * SIGMA / (2 * np.sqrt(n))
    assert [s["sigma"] for s in row["stacks"]] == [row["sigma"], row["sigma"]]

    code, out, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), *roi_args())
    assert code == 0, err
    sigma_lines = [line for line in out.splitlines() if "σ =" in line]
    assert sigma_lines == [f"b0_0.dcm (+5 files, 2 stacks): σ = {row['sigma']:.4g} (mle, coils=1 (fitted), n={n} background pixels)"]
    sigmas = {p.name: derivation_sigma(tmp_path / "out" / p.name) for p in files["b0"] + files["b1000"]}
    assert set(sigmas.values()) == {float(f"{row['sigma']:.6g}")}

    code, out, err = run("sigma", str(tmp_path / "in"), *roi_args(), "--json", "--sigma-per-volume")
    assert code == 0, err
    rows = json.loads(out)
    for key, row in zip(("b0", "b1000"), rows):
        assert row["source"] == [str(p) for p in files[key]]
        assert row["sigma"] == pytest.approx(mle(roi_values(files[key]))[0], rel=1e-12)


def test_pooled_sigma_is_converted_to_each_stacks_rescale_slope(tmp_path, rng):
    files = b_value_series(tmp_path / "in", rng, slope=2.0)
    report = clean_source(tmp_path / "in", tmp_path / "out", background=lambda s: roi_mask(ROIS, s.shape))
    expected, _ = mle(roi_values(files["b0"] + files["b1000"]))  # real-world values; b0 has slope 1
    by_stack = {s.paths[0].name: s.result.derivation.sigma for s in report.volumes}
    assert by_stack["b0_0.dcm"] == pytest.approx(expected, rel=1e-12)
    assert by_stack["b1000_0.dcm"] == pytest.approx(expected / 2.0, rel=1e-12)  # the same noise in stored units


def test_skip_existing_finishes_a_series_with_the_whole_series_sigma(tmp_path, rng):
    files = b_value_series(tmp_path / "in", rng)
    background = lambda s: roi_mask(ROIS, s.shape)  # noqa: E731
    first = clean_source(tmp_path / "in", tmp_path / "out", background=background)
    kept = {p.name: pydicom.dcmread(tmp_path / "out" / p.name).pixel_array for p in files["b1000"]}
    for p in files["b1000"]:
        (tmp_path / "out" / p.name).unlink()
    second = clean_source(tmp_path / "in", tmp_path / "out", background=background, skip_existing=True)
    assert sorted(p.name for p in second.written) == sorted(kept)
    for name, pixels in kept.items():
        assert np.array_equal(pydicom.dcmread(tmp_path / "out" / name).pixel_array, pixels)
    assert {s.result.derivation.sigma for s in second.volumes} == {first.volumes[0].result.derivation.sigma}


# --------------------------------------------------------------------------- all or nothing per series


def failing_series_folder(folder: Path, rng: np.random.Generator, how: str) -> tuple[list[Path], list[Path]]:
    """Series A (two b-values) with one bad stack, series B good. Returns (A's files, B's files)."""
    same = {"SeriesInstanceUID": generate_uid(), "StudyInstanceUID": generate_uid(), "FrameOfReferenceUID": generate_uid()}
    a = write_series(folder, noisy(rng, 3, 32), names=[f"a_b0_{k}.dcm" for k in range(3)], DiffusionBValue=0.0, **same)
    rows = 24 if how == "rows" else 32  # the ROI 26:32 does not fit 24 rows: that stack fails when cleaned
    dim = np.rint(phantom_volume(3, 32, SIGMA, rng, 100.0)[1][:, :rows]).astype(np.uint16)
    a += write_series(folder, dim, names=[f"a_b1000_{k}.dcm" for k in range(3)], DiffusionBValue=1000.0, **same)
    if how == "pixels":  # fails when read
        ds = pydicom.dcmread(a[4])
        ds.PixelData = ds.PixelData[:100]
        ds.save_as(a[4])
    b = write_series(folder, noisy(rng, 3, 32), names=[f"b_{k}.dcm" for k in range(3)])
    return a, b


@pytest.mark.parametrize(("how", "words"), [("rows", "out of bounds"), ("pixels", "cannot decode the pixel data")])
def test_a_series_with_one_failing_stack_writes_none_of_its_files(tmp_path, rng, how, words):
    a, b = failing_series_folder(tmp_path / "in", rng, how)
    code, out, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--roi", "26:32,0:4", "-v")
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in b]
    failed = [line for line in err.splitlines() if line.startswith("mri-noiselab: failed:")]
    assert len(failed) == 1
    assert failed[0].startswith(f"mri-noiselab: failed: series of {a[0]} (6 files): ") and words in failed[0]
    assert [line for line in err.splitlines() if "not written:" in line] == \
        [f"mri-noiselab:   not written: {p}" for p in sorted(a)]
    assert err.strip().splitlines()[-1] == "mri-noiselab: 6 of 9 file(s) failed; the others were written"


def test_the_dask_run_writes_what_the_serial_run_writes(tmp_path, rng):
    pytest.importorskip("distributed")
    a, b = failing_series_folder(tmp_path / "in", rng, "rows")
    files = b_value_series(tmp_path / "in" / "dwi", rng)
    background = lambda s: roi_mask(["26:32,0:4"], s.shape)  # noqa: E731
    serial = clean_source(tmp_path / "in", tmp_path / "serial", background=background)
    parallel = clean_source(tmp_path / "in", tmp_path / "par", background=background, workers=2)
    assert [(f.path, f.message, f.files) for f in parallel.failures] == \
        [(f.path, f.message, f.files) for f in serial.failures]
    assert serial.failures[0].files == tuple(sorted(a))
    names = sorted(str(p.relative_to(tmp_path / "serial")) for p in serial.written)
    assert names == sorted(str(p.relative_to(tmp_path / "par")) for p in parallel.written)
    assert len(names) == len(b) + 6 and len(files["b0"]) == 3
    for name in names:
        assert np.array_equal(read_file(tmp_path / "par" / name).stored, read_file(tmp_path / "serial" / name).stored)
    assert sorted(s.result.derivation.sigma for s in parallel.volumes) == sorted(s.result.derivation.sigma for s in serial.volumes)


# --------------------------------------------------------------------------- real scanner data


@pytest.mark.parametrize("name", ["siemens_xa30/8_gre_field_mapping", "ge/01_Ax_DWI_TENSOR_R2"])
def test_real_magnitude_series_are_not_skipped(name):
    folder = REALDATA / name
    if not folder.is_dir():
        pytest.skip(f"real scanner data not available at {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    scan = read_source(folder)
    assert scan.ineligible == [] and scan.failures == []
    assert sorted(p for s in scan.stacks for p in s.paths) == files
    code, out, err = run("sigma", str(folder), "--json")
    assert "skipped" not in err and "not corrected" not in err
    if code == 0:  # the automatic background may refuse the image; σ is not judged here
        (row,) = json.loads(out)  # one source series, one σ
        assert sorted(row["source"]) == [str(p) for p in files]
    else:
        assert code == 2 and err.startswith("mri-noiselab: error:")


# --------------------------------------------------------------------------- image objects given to the library


class _FakeSimpleITKImage:
    """Stands for SimpleITK.Image (not installed): it iterates over its pixels, as SimpleITK's does."""

    def __init__(self, values: np.ndarray) -> None:
        self._values = values.ravel()

    def __len__(self) -> int:
        return self._values.size

    def __getitem__(self, i: int) -> float:
        return float(self._values[i])


_FakeSimpleITKImage.__module__, _FakeSimpleITKImage.__name__ = "SimpleITK.SimpleITK", "Image"


def _noise_volume(rng: np.random.Generator) -> np.ndarray:
    return np.hypot(rng.normal(0, SIGMA, (24, 24, 4)), rng.normal(0, SIGMA, (24, 24, 4)))


def test_a_nibabel_image_is_refused_with_the_array_to_pass_and_its_axes(rng):
    nib = pytest.importorskip("nibabel")
    volume = _noise_volume(rng)
    img = nib.Nifti1Image(volume.astype(np.float32), np.eye(4))
    assert np.asarray(img).dtype == object  # what numpy makes of it: no voxels
    for call in (lambda: nl.correct(img, SIGMA), lambda: nl.estimate_sigma(img),
                 lambda: nl.estimate_sigma(img, mask="auto")):
        with pytest.raises(TypeError, match=r"nibabel Nifti1Image.*get_fdata\(\).*\(x, y, z\[, t\]\).*slice_axis=2"):
            call()
    # What the message says to pass works, and gives the σ of the voxels.
    assert nl.estimate_sigma(img.get_fdata(), coils=1).sigma == pytest.approx(SIGMA, rel=0.05)
    assert nl.correct(img.get_fdata(), SIGMA, slice_axis=2).shape == volume.shape


def test_a_file_backed_nibabel_array_proxy_is_an_array(tmp_path, rng):
    nib = pytest.importorskip("nibabel")
    volume = _noise_volume(rng).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "noise.nii")
    proxy = nib.load(tmp_path / "noise.nii").dataobj
    assert type(proxy).__module__.startswith("nibabel")
    assert nl.estimate_sigma(proxy, coils=1).sigma == nl.estimate_sigma(volume, coils=1).sigma


def test_a_simpleitk_image_is_refused_instead_of_flattened(rng):
    volume = _noise_volume(rng)
    img = _FakeSimpleITKImage(volume)
    assert np.asarray(img).shape == (volume.size,)  # what numpy makes of it: a 1-D image
    for call in (lambda: nl.correct(img, SIGMA), lambda: nl.estimate_sigma(img),
                 lambda: nl.estimate_sigma(img, mask="auto")):
        with pytest.raises(TypeError, match=r"SimpleITK Image.*GetArrayFromImage\(img\).*\(z, y, x\): slice_axis=0.*"
                                            r"\(t, z, y, x\) array needs volume_axis=0"):
            call()


def test_a_real_simpleitk_image_is_refused_and_its_array_corrected_in_the_axis_order_the_message_gives(rng):
    sitk = pytest.importorskip("SimpleITK")
    volume = _noise_volume(rng)  # (x, y, z)
    img = sitk.GetImageFromArray(np.ascontiguousarray(volume.transpose(2, 1, 0)))
    assert img.GetSize() == volume.shape and np.asarray(img).shape == (volume.size,)  # numpy flattens it
    with pytest.raises(TypeError, match=r"SimpleITK Image.*GetArrayFromImage\(img\).*\(z, y, x\): slice_axis=0"):
        nl.correct(img, SIGMA)
    # The array is (z, y, x): slice_axis=0 gives the in-plane window of slice_axis=2 on (x, y, z).
    arr = sitk.GetArrayFromImage(img)
    np.testing.assert_allclose(nl.correct(arr, SIGMA, slice_axis=0),
                               nl.correct(volume, SIGMA, slice_axis=2).transpose(2, 1, 0), rtol=1e-12)

@pytest.mark.parametrize("value", [[1.0, None, 3.0], {"voxels": [1.0, 2.0]}, object()], ids=["list with None", "dict", "object"])
def test_an_object_numpy_holds_as_objects_is_refused_naming_its_type(value):
    for call in (lambda: nl.correct(value, SIGMA), lambda: nl.estimate_sigma(value)):
        with pytest.raises(TypeError, match=rf"must be an array of numbers, got '{type(value).__name__}'.*dtype object"):
            call()
