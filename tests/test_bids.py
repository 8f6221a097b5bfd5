"""BIDS: a derivative dataset from a BIDS source (desc- names, sidecars carried, dataset_description.json),
--mask, --sigma-file and --sigma-map-out, each bad input a one-line error."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

from mri_noiselab import __version__  # noqa: E402
from mri_noiselab.bids import CORRECTION_KEY, dataset_root, parse_name, with_desc  # noqa: E402
from mri_noiselab.cli import main  # noqa: E402
from mri_noiselab.dicom import synthetic_mr_image, write_dataset  # noqa: E402
from tests.conftest import rician  # noqa: E402

AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2.0, 0, -120], [0, 0, 3.0, -60], [0, 0, 0, 1]])
ROI = "0:10,0:12"  # air: x 0..9, y 0..11 (asymmetric, so that swapped axes would pick other voxels)
DWI_SIGMAS = (8.0, 16.0, 24.0)
DESC = "desc-riciancorrected"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mri-noiselab: error:"), err
    for word in words:
        assert word in lines[0], (word, err)


def phantom(rng: np.random.Generator, sigmas: tuple[float, ...], shape: tuple[int, ...] = (32, 36, 4)) -> np.ndarray:
    truth = np.zeros(shape)
    truth[12:26, 14:30] = 300.0
    vols = [rician(truth, s, rng) for s in sigmas]
    return vols[0] if len(vols) == 1 else np.stack(vols, axis=-1)


def save(path: Path, data: np.ndarray, dtype: type = np.float32, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(dtype), affine), path)
    return path


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def bids(tmp_path, rng) -> Path:
    """A BIDS dataset: a DWI with sidecars (one inherited from the top level), a T1w, and files outside the subjects."""
    root = tmp_path / "bids"
    write_json(root / "dataset_description.json", {"Name": "Phantom", "BIDSVersion": "1.9.0", "License": "CC0",
                                                   "DatasetDOI": "doi:10.0000/phantom"})
    write_json(root / "dwi.json", {"PhaseEncodingDirection": "j", "TotalReadoutTime": 0.05})
    dwi = root / "sub-01" / "dwi"
    save(dwi / "sub-01_dwi.nii.gz", phantom(rng, DWI_SIGMAS))
    write_json(dwi / "sub-01_dwi.json", {"EchoTime": 0.08, "TotalReadoutTime": 0.06})
    (dwi / "sub-01_dwi.bval").write_text("0 1000 1000\n")
    (dwi / "sub-01_dwi.bvec").write_text("0 1 0\n0 0 1\n0 0 0\n")
    anat = root / "sub-01" / "anat"
    save(anat / "sub-01_T1w.nii.gz", np.rint(phantom(rng, (10.0,))), np.int16)
    write_json(anat / "sub-01_T1w.json", {"RepetitionTime": 2.3})
    # Not inputs: an earlier derivative, and the DICOM files the dataset was converted from.
    save(root / "derivatives" / "old" / "sub-01" / "anat" / "sub-01_T1w.nii.gz", phantom(rng, (10.0,)))
    (root / "sourcedata").mkdir()
    write_dataset(synthetic_mr_image(np.zeros((8, 8), np.uint16)), root / "sourcedata" / "IM0001.dcm")
    return root


def digest(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def outputs(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_names_get_a_desc_entity_before_the_suffix():
    assert with_desc("sub-01_ses-2_run-1_dwi.nii.gz", "riciancorrected") == "sub-01_ses-2_run-1_desc-riciancorrected_dwi.nii.gz"
    assert with_desc("sub-01_desc-preproc_T1w.nii", "denoised") == "sub-01_desc-preprocDenoised_T1w.nii"
    assert with_desc("scan.nii.gz", "x") == "scan.nii.gz"  # not a BIDS name: unchanged
    assert parse_name("sub-01_task-rest_bold.json") == ([("sub", "01"), ("task", "rest")], "bold")
    assert parse_name("sub-01_task-re_st_bold.nii") is None


def test_bids_tree_gives_a_derivative_dataset(bids, tmp_path):
    os.chmod(bids / "sub-01" / "dwi" / "sub-01_dwi.nii.gz", 0o640)
    os.chmod(bids / "sub-01" / "anat" / "sub-01_T1w.json", 0o600)
    before = digest(bids)
    out = tmp_path / "deriv"
    code, stdout, err = run("clean", str(bids), "-o", str(out), "--roi", ROI, "--sigma-per-volume", "--json")
    assert code == 0, err
    assert digest(bids) == before  # inputs untouched
    assert outputs(out) == sorted([
        "dataset_description.json",
        f"sub-01/anat/sub-01_{DESC}_T1w.json", f"sub-01/anat/sub-01_{DESC}_T1w.nii.gz",
        f"sub-01/dwi/sub-01_{DESC}_dwi.bval", f"sub-01/dwi/sub-01_{DESC}_dwi.bvec",
        f"sub-01/dwi/sub-01_{DESC}_dwi.json", f"sub-01/dwi/sub-01_{DESC}_dwi.nii.gz",
    ])  # nothing of derivatives/ or sourcedata/
    dwi = out / "sub-01" / "dwi"
    for ext in (".bval", ".bvec"):
        assert (dwi / f"sub-01_{DESC}_dwi{ext}").read_bytes() == (bids / "sub-01" / "dwi" / f"sub-01_dwi{ext}").read_bytes()
    sidecar = json.loads((dwi / f"sub-01_{DESC}_dwi.json").read_text())
    # Inherited metadata joins the sidecar's own, which wins: the derivative has no top-level dwi.json.
    assert sidecar["PhaseEncodingDirection"] == "j" and sidecar["TotalReadoutTime"] == 0.06 and sidecar["EchoTime"] == 0.08
    assert sidecar["Sources"] == ["bids:raw:sub-01/dwi/sub-01_dwi.nii.gz"]
    row = next(r for r in json.loads(stdout)["outputs"] if r["source"][0].endswith("dwi.nii.gz"))
    record = sidecar[CORRECTION_KEY]
    assert record == {"Software": "mri-noiselab", "Version": __version__, "Method": "lmmse", "Sigma": row["sigma"],
                      "SigmaEstimator": "mle", "Window": row["f_size"], "Coils": row["coils"]}
    assert record["Sigma"] == pytest.approx(DWI_SIGMAS, rel=0.1)
    t1 = json.loads((out / "sub-01" / "anat" / f"sub-01_{DESC}_T1w.json").read_text())
    assert t1["RepetitionTime"] == 2.3 and CORRECTION_KEY in t1
    # Permission bits: no more open than the image and, for a sidecar, its source.
    assert (dwi / f"sub-01_{DESC}_dwi.bval").stat().st_mode & 0o777 & ~0o640 == 0
    assert (out / "sub-01" / "anat" / f"sub-01_{DESC}_T1w.json").stat().st_mode & 0o777 & ~0o600 == 0
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["BIDSVersion"]
    assert description["Name"].startswith("Phantom")
    assert description["GeneratedBy"][0]["Name"] == "mri-noiselab" and description["GeneratedBy"][0]["Version"] == __version__
    assert description["SourceDatasets"] == [{"DOI": "doi:10.0000/phantom"}] and description["License"] == "CC0"
    assert (out / description["DatasetLinks"]["raw"]).resolve() == bids.resolve()


def test_a_subject_folder_keeps_its_place_in_the_dataset(bids, tmp_path):
    out = tmp_path / "deriv"
    code, _, err = run("clean", str(bids / "sub-01" / "anat"), "-o", str(out), "--roi", ROI, "--bids-desc", "unbiased")
    assert code == 0, err
    assert outputs(out) == ["dataset_description.json", "sub-01/anat/sub-01_desc-unbiased_T1w.json",
                            "sub-01/anat/sub-01_desc-unbiased_T1w.nii.gz"]
    code, _, err = run("clean", str(bids / "sub-01" / "anat"), "-o", str(tmp_path / "plain"), "--roi", ROI, "--no-bids")
    assert code == 0, err
    assert outputs(tmp_path / "plain") == ["sub-01_T1w.nii.gz"]
    # A file of the dataset into a folder: its place in the dataset too; into a file name: that name alone.
    t1 = bids / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    code, _, err = run("clean", str(t1), "-o", f"{tmp_path / 'one'}/", "--roi", ROI)
    assert code == 0, err
    assert outputs(tmp_path / "one") == ["dataset_description.json", f"sub-01/anat/sub-01_{DESC}_T1w.json",
                                         f"sub-01/anat/sub-01_{DESC}_T1w.nii.gz"]
    code, _, err = run("clean", str(t1), "-o", str(tmp_path / "file" / "t1.nii.gz"), "--roi", ROI)
    assert code == 0, err
    assert outputs(tmp_path / "file") == ["t1.nii.gz"]


def test_second_run_refuses_skip_existing_completes_force_replaces(bids, tmp_path):
    out = tmp_path / "deriv"
    assert run("clean", str(bids), "-o", str(out), "--roi", ROI)[0] == 0
    first = digest(out)
    code, _, err = run("clean", str(bids), "-o", str(out), "--roi", ROI)
    assert code == 2
    assert_one_line_error(err, "exists", "--force", "--skip-existing")
    assert digest(out) == first
    bvec = out / "sub-01" / "dwi" / f"sub-01_{DESC}_dwi.bvec"
    sidecar = out / "sub-01" / "anat" / f"sub-01_{DESC}_T1w.json"
    bvec.unlink()
    sidecar.unlink()
    code, stdout, err = run("clean", str(bids), "-o", str(out), "--roi", ROI, "--skip-existing")
    assert code == 0, err
    assert digest(out) == first  # the missing files again, the same bytes; the others left alone
    # A kept sidecar must be what this run would write: another σ makes its image's group fail.
    code, _, err = run("clean", str(bids), "-o", str(out), "--sigma", "5", "--skip-existing")
    assert code == 2 and "--force" in err
    code, _, err = run("clean", str(bids), "-o", str(out), "--sigma", "5", "--force")
    assert code == 0, err
    assert json.loads(sidecar.read_text())[CORRECTION_KEY]["Sigma"] == 5.0


def test_a_failed_image_leaves_none_of_its_files(bids, tmp_path):
    anat = bids / "sub-01" / "anat"
    save(anat / "sub-01_T1w.nii.gz", phantom(np.random.default_rng(1), (10.0,)) - 50)  # below zero: not a magnitude
    (bids / "sub-01" / "dwi" / "sub-01_dwi.json").write_text("{not json")
    save(bids / "sub-02" / "anat" / "sub-02_T1w.nii", phantom(np.random.default_rng(2), (10.0,)))
    out = tmp_path / "deriv"
    code, _, err = run("clean", str(bids), "-o", str(out), "--roi", ROI)
    assert code == 1, err
    assert "sub-01_dwi.json" in err and "below zero" in err
    # Nothing of either failed image, not even the sidecars that could be written.
    assert outputs(out) == ["dataset_description.json", f"sub-02/anat/sub-02_{DESC}_T1w.json",
                            f"sub-02/anat/sub-02_{DESC}_T1w.nii"]


def test_description_of_another_dataset_is_never_replaced(bids, tmp_path):
    out = tmp_path / "deriv"
    write_json(out / "dataset_description.json", {"Name": "other", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                                                  "GeneratedBy": [{"Name": "fmriprep"}]})
    before = digest(out)
    for extra in ([], ["--force"], ["--skip-existing"]):
        code, _, err = run("clean", str(bids), "-o", str(out), "--roi", ROI, *extra)
        assert code == 2
        assert_one_line_error(err, "not written by mri-noiselab")
        assert digest(out) == before


@pytest.mark.parametrize(("args", "words"), [
    (["--bids-desc", "no_good"], ["letters and digits"]),
    (["--bids-desc", "x", "--no-bids"], ["not allowed with"]),
])
def test_bad_bids_options_are_one_line_errors(bids, tmp_path, args, words):
    code, _, err = run("clean", str(bids), "-o", str(tmp_path / "deriv"), "--roi", ROI, *args)
    assert code == 2
    assert_one_line_error(err, *words)
    assert not (tmp_path / "deriv").exists()


def test_bids_desc_needs_a_bids_source(tmp_path, rng):
    src = save(tmp_path / "t1.nii.gz", phantom(rng, (10.0,)))
    code, _, err = run("clean", str(src), "-o", str(tmp_path / "out") + "/", "--roi", ROI, "--bids-desc", "x")
    assert code == 2
    assert_one_line_error(err, "not in a BIDS dataset")
    assert dataset_root(src) is None


def test_sigma_command_reads_only_the_subjects(bids):
    code, out, err = run("sigma", str(bids), "--roi", ROI, "--json")
    assert code == 0, err
    assert sorted(Path(r["source"][0]).name for r in json.loads(out)) == ["sub-01_T1w.nii.gz", "sub-01_dwi.nii.gz"]


# --------------------------------------------------------------------------- --mask


def test_mask_gives_the_sigma_of_the_same_voxels_as_a_roi(tmp_path, rng):
    data = phantom(rng, DWI_SIGMAS)
    src = save(tmp_path / "dwi.nii.gz", data)
    mask = np.zeros(data.shape[:3], dtype=np.uint8)
    mask[0:10, 0:12] = 1
    save(tmp_path / "air.nii.gz", mask, np.uint8)
    sigmas = {}
    for how in (["--roi", ROI], ["--mask", str(tmp_path / "air.nii.gz")]):
        code, out, err = run("sigma", str(src), "--sigma-per-volume", "--json", *how)
        assert code == 0, err
        sigmas[how[0]] = [r["sigma"] for r in json.loads(out)]
    assert sigmas["--mask"] == sigmas["--roi"]
    # The noise of each volume, as simulated (the estimate's own error is about 1/sqrt(2n) = 2 %).
    assert sigmas["--mask"] == pytest.approx(DWI_SIGMAS, rel=0.08)
    code, _, err = run("clean", str(src), "-o", str(tmp_path / "out.nii.gz"), "--mask", str(tmp_path / "air.nii.gz"))
    assert code == 0, err


def _bad_mask(tmp_path: Path, kind: str) -> Path:
    mask = np.zeros((32, 36, 4), dtype=np.uint8)
    mask[:5, :5] = 1
    if kind == "shape":
        return save(tmp_path / "m.nii.gz", mask[:, :30], np.uint8)
    if kind == "grid":
        return save(tmp_path / "m.nii.gz", mask, np.uint8, affine=np.diag([1.0, 1.0, 1.0, 1.0]))
    if kind == "empty":
        return save(tmp_path / "m.nii.gz", mask * 0, np.uint8)
    return tmp_path / "missing.nii.gz"


@pytest.mark.parametrize(("kind", "words"), [
    ("shape", ["shape (32, 30, 4)", "(32, 36, 4)"]),
    ("grid", ["another grid", "resample"]),
    ("empty", ["no non-zero voxel"]),
    ("missing", ["no such file"]),
])
def test_bad_mask_is_a_one_line_error_and_writes_nothing(tmp_path, rng, kind, words):
    src = save(tmp_path / "t1.nii.gz", phantom(rng, (10.0,)))
    mask = _bad_mask(tmp_path, kind)
    code, _, err = run("clean", str(src), "-o", str(tmp_path / "out.nii.gz"), "--mask", str(mask))
    assert code == 2
    assert_one_line_error(err, *words)
    assert not (tmp_path / "out.nii.gz").exists()


def test_mask_excludes_roi_and_dicom(tmp_path, rng):
    src = save(tmp_path / "t1.nii.gz", phantom(rng, (10.0,)))
    code, _, err = run("clean", str(src), "-o", str(tmp_path / "o.nii"), "--mask", str(src), "--roi", ROI)
    assert code == 2
    assert_one_line_error(err, "not allowed with")
    dcm = tmp_path / "IM0001.dcm"
    write_dataset(synthetic_mr_image(np.zeros((8, 8), np.uint16)), dcm)
    code, _, err = run("clean", str(dcm), "-o", str(tmp_path / "o.dcm"), "--mask", str(src))
    assert code == 2
    assert_one_line_error(err, "for NIfTI inputs")


# --------------------------------------------------------------------------- --sigma-file and --sigma-map-out


def test_sigma_file_gives_each_volume_its_sigma(tmp_path, rng):
    data = phantom(rng, DWI_SIGMAS)
    src = save(tmp_path / "dwi.nii", data)
    sigmas = tmp_path / "sigma.txt"
    sigmas.write_text("# σ per volume\n8\n16, 24\n")
    out = tmp_path / "out.nii"
    code, _, err = run("clean", str(src), "-o", str(out), "--sigma-file", str(sigmas), "--method", "pointwise")
    assert code == 0, err
    # Pointwise: A = sqrt(max(M² - 2σ², 0)) voxel by voxel, with each volume's σ.
    stored = data.astype(np.float32).astype(np.float64)
    expected = np.sqrt(np.maximum(stored**2 - 2 * np.asarray(DWI_SIGMAS) ** 2, 0))
    np.testing.assert_allclose(np.asarray(nib.load(out).dataobj), expected, rtol=1e-5, atol=1e-3)
    # What `sigma --json --sigma-per-volume` prints is a σ file too.
    code, printed, err = run("sigma", str(src), "--roi", ROI, "--sigma-per-volume", "--json")
    (tmp_path / "sigma.json").write_text(printed)
    code, report, err = run("clean", str(src), "-o", str(tmp_path / "o2.nii"), "--sigma-file", str(tmp_path / "sigma.json"),
                            "--json")
    assert code == 0, err
    assert json.loads(report)["outputs"][0]["sigma"] == [r["sigma"] for r in json.loads(printed)]



def test_json_gives_each_sigma_its_standard_error_in_its_units(tmp_path, rng):
    src = tmp_path / "dwi.nii.gz"
    img = nib.Nifti1Image(np.rint(phantom(rng, DWI_SIGMAS) / 2).astype(np.int16), AFFINE)
    img.header.set_slope_inter(2.0, 0.0)  # σ and its standard error in stored units: half the real ones
    nib.save(img, src)
    how = ("--roi", ROI, "--coils", "1", "--sigma-per-volume", "--json")
    code, printed, err = run("sigma", str(src), *how)
    assert code == 0, err
    rows = json.loads(printed)
    code, report, err = run("clean", str(src), "-o", str(tmp_path / "out.nii.gz"), *how)
    assert code == 0, err
    (row,) = json.loads(report)["outputs"]
    # mle with one coil: the Cramer-Rao bound, σ / (2 sqrt(n)), n the ROI's non-zero voxels of each volume.
    n = np.array([r["n"] for r in rows])
    assert np.all((n > 400) & (n <= 10 * 12 * 4))
    assert [r["sigma_se"] for r in rows] == pytest.approx([r["sigma"] / (2 * np.sqrt(r["n"])) for r in rows], rel=1e-12)
    assert row["sigma"] == pytest.approx([r["sigma"] for r in rows], rel=1e-12)
    assert 2 * np.array(row["sigma"]) == pytest.approx(DWI_SIGMAS, rel=0.1)
    assert row["sigma_se"] == pytest.approx(np.array(row["sigma"]) / (2 * np.sqrt(n)), rel=1e-12)
    # A σ given has no standard error.
    code, report, err = run("clean", str(src), "-o", str(tmp_path / "o2.nii.gz"), "--sigma", "5", "--json")
    assert code == 0, err
    assert json.loads(report)["outputs"][0]["sigma_se"] is None

@pytest.mark.parametrize(("text", "words"), [
    ("", ["holds no value"]),
    ("8 abc", ["not a list of sigma values"]),
    ("8 -1 3", ["finite and > 0"]),
    ("8 16", ["2 sigma values given", "shape (32, 36, 4, 3)"]),
    ('[{"source": ["a"], "sigma": 1}, {"source": ["b"], "sigma": 2}]', ["2 sources"]),
])
def test_bad_sigma_file_is_a_one_line_error(tmp_path, rng, text, words):
    src = save(tmp_path / "dwi.nii", phantom(rng, DWI_SIGMAS))
    (tmp_path / "s.txt").write_text(text)
    code, _, err = run("clean", str(src), "-o", str(tmp_path / "out.nii"), "--sigma-file", str(tmp_path / "s.txt"))
    assert code == 2
    assert_one_line_error(err, *words)
    assert not (tmp_path / "out.nii").exists()


def test_sigma_map_holds_the_sigma_of_each_volume(tmp_path, rng):
    src = tmp_path / "dwi.nii.gz"
    img = nib.Nifti1Image(np.rint(phantom(rng, DWI_SIGMAS) / 2).astype(np.int16), AFFINE)
    img.header.set_slope_inter(2.0, 0.0)  # stored values are half the real ones
    nib.save(img, src)
    code, report, err = run("clean", str(src), "-o", str(tmp_path / "out.nii.gz"), "--roi", ROI, "--sigma-per-volume",
                            "--sigma-map-out", str(tmp_path / "noise.nii.gz"), "--json")
    assert code == 0, err
    sigma = json.loads(report)["outputs"][0]["sigma"]  # stored units
    noise = nib.load(tmp_path / "noise.nii.gz")
    assert noise.shape == (32, 36, 4, 3) and noise.get_data_dtype() == np.float32
    np.testing.assert_allclose(noise.affine, AFFINE)
    values = np.asarray(noise.dataobj)
    for t in range(3):  # real-world units, as the image's scaled values
        np.testing.assert_allclose(values[..., t], np.float32(2 * sigma[t]))
    assert 2 * np.asarray(sigma) == pytest.approx(DWI_SIGMAS, rel=0.1)
    # One σ fills the map, which has the image's shape whatever σ there is.
    code, _, err = run("clean", str(src), "-o", str(tmp_path / "o1.nii.gz"), "--sigma", "5",
                       "--sigma-map-out", str(tmp_path / "one.nii"))
    assert code == 0, err
    one = nib.load(tmp_path / "one.nii")
    assert one.shape == (32, 36, 4, 3)
    np.testing.assert_array_equal(np.asarray(one.dataobj), np.float32(10))


def test_sigma_maps_of_a_folder_mirror_the_outputs(bids, tmp_path):
    out = tmp_path / "deriv"
    code, _, err = run("clean", str(bids), "-o", str(out), "--roi", ROI, "--sigma-map-out", f"{out}/")
    assert code == 0, err
    names = outputs(out)
    assert "sub-01/dwi/sub-01_desc-noise_dwi.nii.gz" in names and "sub-01/anat/sub-01_desc-noise_T1w.nii.gz" in names
    sidecar = json.loads((out / "sub-01" / "dwi" / "sub-01_desc-noise_dwi.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-01/dwi/sub-01_dwi.nii.gz"] and CORRECTION_KEY in sidecar
    assert sidecar["SkullStripped"] is False and "EchoTime" not in sidecar  # a map, not an acquisition
    # A DWI's map has its volumes, and so its gradients.
    for ext in (".bval", ".bvec"):
        assert (out / "sub-01" / "dwi" / f"sub-01_desc-noise_dwi{ext}").read_bytes() == \
            (bids / "sub-01" / "dwi" / f"sub-01_dwi{ext}").read_bytes()
    # A σ map in a source folder is an output of this package, never an input.
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("sub-01_desc-noise_dwi.nii.gz", "sub-01_dwi.nii.gz"):
        (mixed / name).write_bytes(((out if "noise" in name else bids) / "sub-01" / "dwi" / name).read_bytes())
    code, _, err = run("clean", str(mixed), "-o", str(tmp_path / "again"), "--roi", ROI)
    assert code == 0, err
    assert outputs(tmp_path / "again") == ["sub-01_dwi.nii.gz"]
    # Not BIDS: "_noise" names.
    code, _, err = run("clean", str(bids / "sub-01"), "-o", str(tmp_path / "plain"), "--roi", ROI, "--no-bids",
                       "--sigma-map-out", str(tmp_path / "maps") + "/")
    assert code == 0, err
    assert outputs(tmp_path / "maps") == ["anat/sub-01_T1w_noise.nii.gz", "dwi/sub-01_dwi_noise.nii.gz"]


def test_bad_sigma_map_out_is_a_one_line_error(bids, tmp_path):
    code, _, err = run("clean", str(bids), "-o", str(tmp_path / "d"), "--roi", ROI, "--sigma-map-out", str(tmp_path / "n.nii"))
    assert code == 2
    assert_one_line_error(err, "2 images", "folder")
    dcm = tmp_path / "IM0001.dcm"
    write_dataset(synthetic_mr_image(np.zeros((8, 8), np.uint16)), dcm)
    code, _, err = run("clean", str(dcm), "-o", str(tmp_path / "o.dcm"), "--sigma", "3", "--sigma-map-out", str(tmp_path / "n.nii"))
    assert code == 2
    assert_one_line_error(err, "NIfTI inputs")
    assert not (tmp_path / "d").exists() and not (tmp_path / "o.dcm").exists()


def test_two_files_of_a_run_with_one_name_are_refused(bids, tmp_path):
    out = tmp_path / "deriv"
    code, _, err = run("clean", str(bids), "-o", str(out), "--roi", ROI, "--bids-desc", "noise", "--sigma-map-out", f"{out}/")
    assert code == 2
    assert_one_line_error(err, "two files of this run", "desc-noise")
    assert not out.exists()
