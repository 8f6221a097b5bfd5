"""The mri-noiselab command: clean, sigma, demo; one-line errors with exit codes; inputs untouched."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import phantom_volume, write_series
from pydicom.data import get_testdata_file

from mri_noiselab import __version__
from mri_noiselab.cli import main
from mri_noiselab.dicom import synthetic_mr_image, write_dataset


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mri-noiselab: error:")
    assert "Traceback" not in err


@pytest.fixture
def series(tmp_path, rng):
    _, noisy = phantom_volume(3, 64, 15.0, rng)
    paths = write_series(tmp_path / "in", np.rint(noisy).astype(np.uint16))
    return tmp_path / "in", paths


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    code, out, err = run(flag)
    assert (code, out, err) == (0, f"mri-noiselab {__version__}\n", "")


def test_python_m_runs_the_same_command(tmp_path):
    source = get_testdata_file("MR_small.dcm")
    args = ["sigma", source, "--roi", "0:8,0:8", "--include-derived", "--json"]
    proc = subprocess.run([sys.executable, "-m", "mri_noiselab", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(run(*args)[1])
    proc = subprocess.run([sys.executable, "-m", "mri_noiselab", "-V"], capture_output=True, text=True, check=False)
    assert (proc.returncode, proc.stdout) == (0, f"mri-noiselab {__version__}\n")
    proc = subprocess.run([sys.executable, "-m", "mri_noiselab", "clean", source, "-o", str(tmp_path / "o.dcm"),
                           "--roi", "0:9999,0:8"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and not (tmp_path / "o.dcm").exists()


def test_clean_file_with_merged_rois(tmp_path):
    source = get_testdata_file("MR_small.dcm")
    before = Path(source).read_bytes()
    code, out, err = run("clean", source, "-o", str(tmp_path / "out") + "/", "--roi", "0:8,0:8", "--roi", "56:64,56:64",
                         "--f-size", "3", "--method", "lmmse", "--qc", str(tmp_path / "qc.png"), "--include-derived")
    assert code == 0, err
    written = pydicom.dcmread(tmp_path / "out" / "MR_small.dcm")
    assert "method=lmmse" in written.DerivationDescription and "n=128 background pixels" in out
    assert (tmp_path / "qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(source).read_bytes() == before


def test_clean_folder_writes_one_file_per_input_with_input_names(tmp_path, series):
    folder, paths = series
    before = {p: p.read_bytes() for p in paths}
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--roi", "0:10,0:10,0:3",
                         "--estimator", "mean", "--threads", "1", "-v")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    assert "done: slice000.dcm" in err  # --verbose names files, nothing else
    assert {p: p.read_bytes() for p in paths} == before


def test_clean_with_known_sigma_needs_no_roi(tmp_path, series):
    folder, _ = series
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", "-q")
    assert code == 0 and out == "" and err == ""
    ds = pydicom.dcmread(tmp_path / "out" / "slice000.dcm")
    assert "sigma=15 stored units (given)" in ds.DerivationDescription


def test_sigma_json_reports_each_stack(series):
    folder, _ = series
    code, out, _ = run("sigma", str(folder), "--roi", "0:12,0:12", "--roi", "52:64,52:64", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["n"] == 3 * 2 * 144 - row["zeros_excluded"]
    assert row["sigma"] == pytest.approx(15.0, rel=0.1)
    # Of rounded noise without its zeros (stored integers): within 0.1% of Rayleigh's 1.9131 at sigma 15.
    assert row["expected_ratio"] == pytest.approx(1.9131, rel=1e-3)
    assert isinstance(row["warnings"], list)


def test_demo_prints_sigma_against_the_truth(tmp_path):
    code, out, err = run("demo", "-o", str(tmp_path / "demo"))
    assert code == 0, err
    assert "truth 20.000" in out
    for name in ("input/phantom.dcm", "output/phantom.dcm", "qc.png"):
        assert (tmp_path / "demo" / name).is_file()
    estimated = float(out.split("σ estimated ")[1].split(",")[0])
    assert estimated == pytest.approx(20.0, rel=0.05)
    assert run("demo", "-o", str(tmp_path / "demo"), "-q")[0] == 0  # re-run replaces its own files


def test_all_zero_background_suggests_sigma(tmp_path):
    image = np.zeros((32, 32), np.uint16)
    image[8:24, 8:24] = 300
    source = write_dataset(synthetic_mr_image(image), tmp_path / "a.dcm")
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "b.dcm"), "--roi", "0:4,0:4")
    assert code == 2
    assert_one_line_error(err)
    assert "--sigma" in err and "all zeros" in err
    assert not (tmp_path / "b.dcm").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--roi", "0:80,0:8"], "out of bounds"),
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--roi", "8:0,0:8"], "reversed"),
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--roi", "zero:8,0:8"], "malformed"),
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--sigma", "-1"], "finite number > 0"),
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--sigma", "2", "--estimator", "std"], "not allowed"),
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--sigma", "2", "--method", "koay"], "invalid choice"),
        (["clean", "{mr}", "-o", "{tmp}/x.dcm", "--sigma", "2", "--f-size", "0"], "positive integer"),
        (["clean", "{mr}", "-o", "{mr}", "--sigma", "2"], "is an input file"),
        (["clean", "{tmp}/missing.dcm", "-o", "{tmp}/x.dcm", "--sigma", "2"], "no such file"),
        (["clean", "{tmp}/empty.dcm", "-o", "{tmp}/x.dcm", "--sigma", "2"], "not a DICOM file"),
        (["sigma", "{tmp}/empty.dcm", "--roi", "0:2,0:2"], "not a DICOM file"),
        (["clean"], "required"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, words):
    mr = get_testdata_file("MR_small.dcm")
    before = Path(mr).read_bytes()
    (tmp_path / "empty.dcm").write_bytes(b"")
    argv = [a.format(mr=mr, tmp=tmp_path) for a in args]
    if "{mr}" in args:  # MR_small.dcm is a DERIVED image: only corrected when asked
        argv.append("--include-derived")
    code, out, err = run(*argv)
    assert code == 2
    assert_one_line_error(err)
    assert words in err
    assert not (tmp_path / "x.dcm").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.dcm"]
    assert Path(mr).read_bytes() == before


def test_partial_batch_exits_1_and_names_the_bad_file(tmp_path, series):
    folder, paths = series
    (folder / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(300))  # DICOM, damaged
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15")
    assert code == 1
    assert "junk.dcm" in err and "1 of 4 file(s) failed" in err
    assert "Traceback" not in err
    assert len(list((tmp_path / "out").iterdir())) == len(paths)


def test_console_script_runs_without_traceback(tmp_path):
    code = ("import sys; from mri_noiselab.cli import main; "
            "sys.exit(main(['clean', sys.argv[1], '-o', sys.argv[2], '--roi', '0:9999,0:8', '--include-derived']))")
    proc = subprocess.run([sys.executable, "-c", code, get_testdata_file("MR_small.dcm"), str(tmp_path / "o.dcm")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_skip_existing_finishes_an_interrupted_folder_run(tmp_path, series):
    folder, paths = series
    out_dir = tmp_path / "out"
    code, _, err = run("clean", str(folder), "-o", str(out_dir), "--roi", "0:8,0:8")
    assert code == 0, err
    outputs = sorted(out_dir.glob("*.dcm"))
    assert len(outputs) == len(paths)
    kept = {p: p.read_bytes() for p in outputs[1:]}
    outputs[0].unlink()  # as if the run had stopped before writing it
    code, out, err = run("clean", str(folder), "-o", str(out_dir), "--roi", "0:8,0:8", "--skip-existing")
    assert code == 0, err
    assert f"skipped {len(kept)} existing file(s)" in out
    assert outputs[0].exists()
    assert all(p.read_bytes() == data for p, data in kept.items())
    series_uids = {pydicom.dcmread(p).SeriesInstanceUID for p in outputs}
    assert len(series_uids) == 1  # the finished file joins the series already written


def test_a_folder_with_both_nifti_and_dicom_is_refused(tmp_path, series):
    pytest.importorskip("nibabel")
    import nibabel as nib

    folder, _ = series
    nib.save(nib.Nifti1Image(np.ones((4, 4, 2), np.float32), np.eye(4)), folder / "converted.nii")
    for command in (["clean", str(folder), "-o", str(tmp_path / "out"), "--roi", "0:8,0:8"],
                    ["sigma", str(folder), "--roi", "0:8,0:8"]):
        code, _, err = run(*command)
        assert code == 2
        assert_one_line_error(err)
        assert "both NIfTI and DICOM" in err
    assert not (tmp_path / "out").exists()


def test_qc_on_an_input_is_refused_with_workers_too(tmp_path):
    pytest.importorskip("distributed")
    source = tmp_path / "a.dcm"
    source.write_bytes(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    before = source.read_bytes()
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"), "--roi", "0:10,0:10",
                       "--qc", str(source), "--workers", "1", "--include-derived")
    assert code == 2
    assert_one_line_error(err)
    assert source.read_bytes() == before and not (tmp_path / "out.dcm").exists()


def _nifti_file(path: Path, rng) -> Path:
    import nibabel as nib

    data = np.hypot(rng.normal(0, 5, (20, 20, 3)) + 40, rng.normal(0, 5, (20, 20, 3))).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    return path


def test_nifti_qc_on_the_input_is_refused_and_nothing_is_written(tmp_path, rng):
    pytest.importorskip("nibabel")
    source = _nifti_file(tmp_path / "a.nii", rng)
    before = source.read_bytes()
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "b.nii"), "--roi", "0:6,0:6", "--qc", str(source))
    assert code == 2
    assert_one_line_error(err)
    assert source.read_bytes() == before and not (tmp_path / "b.nii").exists()


def test_nifti_qc_that_cannot_be_written_leaves_no_output(tmp_path, rng):
    pytest.importorskip("nibabel")
    source = _nifti_file(tmp_path / "a.nii", rng)
    (tmp_path / "blocker").write_text("a file where the QC folder should be")
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "b.nii"), "--roi", "0:6,0:6",
                       "--qc", str(tmp_path / "blocker" / "qc.png"))
    assert code == 2
    assert_one_line_error(err)
    assert not (tmp_path / "b.nii").exists()


# --------------------------------------------------------------------------- clean --json

ROIS = ["0:12,0:12", "52:64,52:64"]  # the corners of the 64 x 64 phantom: noise only


def _roi_values(paths: list[Path]) -> np.ndarray:
    """The stored values in ROIS, read with pydicom alone."""
    planes = [pydicom.dcmread(p).pixel_array.astype(np.float64) for p in paths]
    return np.concatenate([np.concatenate([a[:12, :12].ravel(), a[52:, 52:].ravel()]) for a in planes])


def test_clean_json_reports_each_output_its_sigma_and_its_series(tmp_path, series):
    folder, paths = series
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--json", *[a for r in ROIS for a in ("--roi", r)])
    assert code == 0 and err == ""
    report = json.loads(out)  # stdout is the JSON document and nothing else
    assert report["version"] == __version__
    assert (report["existing"], report["skipped"], report["failures"]) == ([], [], [])
    (row,) = report["outputs"]
    assert row["source"] == [str(p) for p in paths]
    outputs = [Path(p) for p in row["output"]]
    assert sorted(outputs) == sorted((tmp_path / "out").iterdir()) and len(outputs) == len(paths)
    # σ: the truth (15) within 4 standard errors; the standard error of mle with one coil, 1 / (2 sqrt(n)).
    n = np.count_nonzero(_roi_values(paths))
    assert (row["estimator"], row["coils"], row["coils_fitted"]) == ("mle", 1, True)
    assert row["sigma_se"] == pytest.approx(row["sigma"] / (2 * np.sqrt(n)), rel=1e-9)
    assert abs(row["sigma"] - 15.0) < 4 * row["sigma_se"]
    # The default window: 9 x 9 in each slice, in array order (slices, rows, cols).
    assert (row["method"], row["f_size"]) == ("lmmse", [1, 9, 9])
    assert row["warnings"] == []
    assert row["source_series_uid"] == pydicom.dcmread(paths[0]).SeriesInstanceUID
    assert {pydicom.dcmread(p).SeriesInstanceUID for p in outputs} == {row["series_uid"]}
    assert row["series_uid"] != row["source_series_uid"]


def test_clean_json_lists_skips_and_failures_and_keeps_the_exit_code(tmp_path, series):
    folder, paths = series
    (folder / "junk.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(300))  # DICOM, damaged
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", "--method", "pointwise",
                         "--json")
    assert code == 1 and "junk.dcm" in err  # the one-line failure stays on stderr
    report = json.loads(out)
    (failure,) = report["failures"]
    assert failure["files"] == [str(folder / "junk.dcm")] and "junk.dcm" in failure["message"]
    assert report["skipped"] == [{"path": str(folder / "ct.dcm"), "reason": "not an MR magnitude image (CT Image Storage)",
                                  "dicom": True}]
    (row,) = report["outputs"]
    assert (row["sigma"], row["sigma_se"], row["estimator"], row["coils"], row["coils_fitted"]) == (15.0, None, None, 1, False)
    assert row["f_size"] == [1, 1, 1]  # pointwise: no window
    assert all(Path(p).is_file() for p in row["output"]) and len(row["output"]) == len(paths)


def test_clean_json_on_nifti_has_no_uids(tmp_path, rng):
    nib = pytest.importorskip("nibabel")
    truth = np.zeros((32, 32, 4))
    truth[12:28, 12:28] = 200.0
    data = np.hypot(truth + rng.normal(0, 5, truth.shape), rng.normal(0, 5, truth.shape)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "a.nii")
    code, out, err = run("clean", str(tmp_path / "a.nii"), "-o", str(tmp_path / "b.nii.gz"), "--roi", "0:8,0:8",
                         "--coils", "1", "--json", "-q")
    assert code == 0 and err == ""
    (row,) = json.loads(out)["outputs"]
    assert (row["source"], row["output"]) == ([str(tmp_path / "a.nii")], [str(tmp_path / "b.nii.gz")])
    assert nib.load(tmp_path / "b.nii.gz").shape == data.shape
    assert (row["coils"], row["coils_fitted"]) == (1, False)
    assert abs(row["sigma"] - 5.0) < 4 * 5.0 / (2 * np.sqrt(8 * 8 * 4))
    assert row["f_size"] == [9, 9, 1]  # array order (x, y, z): the slices are left alone
    assert (row["source_series_uid"], row["series_uid"]) == (None, None)
