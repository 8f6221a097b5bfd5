"""NIfTI input/output: header, affine, dtype and scaling kept; pixels against the formula; CLI."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

nib = pytest.importorskip("nibabel")

import mri_noiselab as nl  # noqa: E402
from mri_noiselab.cli import main  # noqa: E402
from mri_noiselab.dicom import NoBackgroundError  # noqa: E402
from mri_noiselab.nifti import NiftiError, nifti_window, read_nifti, roi_mask_xyz  # noqa: E402
from mri_noiselab.noise import sigma_per_volume  # noqa: E402
from mri_noiselab.pipeline import VolumeReport, clean_source  # noqa: E402
from tests.conftest import rician, rounded_noise_sigma  # noqa: E402

AFFINE = np.array([[-1.5, 0, 0, 90], [0, 1.5, 0, -120], [0, 0, 4.0, -60], [0, 0, 0, 1]])


def phantom(rng: np.random.Generator, sigmas: tuple[float, ...] = (12.0,), shape: tuple[int, int, int] = (40, 44, 6)) -> tuple[np.ndarray, np.ndarray]:
    """A box of signal 300 in air; one Rician volume per sigma, stacked on the last axis."""
    truth = np.zeros(shape)
    truth[12:30, 14:34] = 300.0
    vols = [rician(truth, s, rng) for s in sigmas]
    return truth, (vols[0] if len(vols) == 1 else np.stack(vols, axis=-1))


def save(path: Path, data: np.ndarray, dtype: type, slope: float | None = None, inter: float = 0.0) -> Path:
    img = nib.Nifti1Image(data.astype(dtype), AFFINE)
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"source"
    img.header.set_dim_info(slice=2)
    nib.save(img, path)
    return path


def unscaled(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj.get_unscaled())


def clean_nifti(source: Path, destination: Path, **kwargs) -> VolumeReport:
    """One NIfTI file through the pipeline that serves every format: its one volume's report."""
    (volume,) = clean_source(source, destination, **kwargs).volumes
    return volume


def test_int16_scaled_keeps_header_and_matches_formula(tmp_path, rng):
    _, noisy = phantom(rng)
    stored = np.rint(noisy / 2.0)  # the file stores value / slope
    src = save(tmp_path / "t1.nii.gz", stored, np.int16, slope=2.0)
    r = clean_nifti(src, tmp_path / "out" / "t1.nii", background=roi_mask_xyz(["0:10,0:10"], stored.shape), f_size=5,
                    method="moments")
    out = nib.load(r.outputs[0])
    assert out.get_data_dtype() == np.int16
    np.testing.assert_array_equal(out.affine, nib.load(src).affine)
    assert (out.dataobj.slope, out.dataobj.inter) == (2.0, 0.0)
    assert out.header.get_xyzt_units() == ("mm", "sec") and out.header.get_dim_info() == (None, None, 2)
    # σ from the ROI, in stored units: integers there, so the MLE of rounded noise (zeros left out).
    # The window is in-plane (5, 5, 1).
    bg = stored[:10, :10, :]
    sigma = rounded_noise_sigma(bg[bg != 0])
    assert r.result.derivation.sigma == pytest.approx(sigma, rel=1e-9) and r.result.derivation.f_size == (5, 5, 1)
    from scipy.ndimage import uniform_filter

    a2 = uniform_filter(stored**2, size=(5, 5, 1), mode="reflect") - 2 * sigma**2
    expected = np.rint(np.sqrt(np.clip(a2, 0, None)))
    got = unscaled(r.outputs[0]).astype(float)
    assert np.mean(got != expected) < 1e-3  # float32 kernel vs float64 scipy: ties only
    assert np.max(np.abs(got - expected)) <= 1
    descrip = out.header["descrip"].item().decode()
    assert descrip.startswith("Rician bias removed: moments") and f"s={r.result.derivation.sigma:.4g}" in descrip and nl.__version__ in descrip
    assert len(descrip) <= 79
    assert nib.load(src).header["descrip"].item() == b"source"  # input untouched


def test_intercept_removed_and_restored_and_clipped(tmp_path, rng):
    _, noisy = phantom(rng)
    # uint8 with intercept -20: zero signal is stored as 20. Bright values clip at 255.
    stored = np.clip(np.rint(noisy / 2.0) + 10, 0, 255)
    src = save(tmp_path / "u8.nii", stored, np.uint8, slope=2.0, inter=-20.0)
    vol = read_nifti(src)
    np.testing.assert_array_equal(vol.magnitude(), stored - 10)
    r = clean_nifti(src, tmp_path / "u8_out.nii.gz", sigma=6.0, method="pointwise")
    got = unscaled(r.outputs[0])
    assert got.dtype == np.uint8
    expected = np.clip(np.rint(np.sqrt(np.clip((stored - 10) ** 2 - 2 * 36.0, 0, None)) + 10), 0, 255)
    np.testing.assert_array_equal(got, expected)
    assert nib.load(r.outputs[0]).dataobj.inter == -20.0
    with gzip.open(r.outputs[0]) as fh:  # .nii.gz output is really gzip
        assert len(fh.read(348)) == 348


def test_float_output_not_rounded(tmp_path, rng):
    _, noisy = phantom(rng)
    src = save(tmp_path / "f.nii", noisy, np.float32)
    r = clean_nifti(src, tmp_path / "f_out.nii", sigma=12.0, f_size=(3, 3, 3))
    np.testing.assert_array_equal(unscaled(r.outputs[0]), nl.correct(noisy.astype(np.float32), 12.0, f_size=(3, 3, 3)))


def test_4d_window_does_not_mix_volumes_and_sigma_per_volume(tmp_path, rng):
    sigmas = (8.0, 16.0, 24.0)
    _, noisy = phantom(rng, sigmas)
    assert nifti_window(10, noisy.shape) == (10, 10, 1, 1)
    assert nifti_window((3, 3, 3), noisy.shape) == (3, 3, 3, 1)
    src = save(tmp_path / "dwi.nii.gz", np.rint(noisy), np.int16)
    est = sigma_per_volume(read_nifti(src).magnitude(), roi_mask_xyz(["0:10,0:12"], noisy.shape[:3]))
    assert [e.sigma for e in est] == pytest.approx(sigmas, rel=0.08)
    r = clean_nifti(src, tmp_path / "dwi_out.nii.gz", per_volume=True, f_size=5,
                    background=roi_mask_xyz(["0:10,0:12"], noisy.shape))
    np.testing.assert_allclose(r.result.derivation.sigma, [e.sigma for e in est], rtol=1e-12)
    got = unscaled(r.outputs[0])
    # Each volume on its own, with its own σ, gives the same voxels: no window crosses volumes.
    for t in range(3):
        alone = nl.correct(np.rint(noisy[..., t]).astype(np.float32), r.result.derivation.sigma[t], f_size=(5, 5, 1))
        np.testing.assert_array_equal(got[..., t], np.rint(alone).astype(np.int16))
    # Corrected background is near 0 in every volume, while raw air has mean ~1.25 σ.
    assert all(got[:10, :10, :, t].mean() < 0.5 * sigmas[t] for t in range(3))


def test_bad_inputs_raise_and_write_nothing(tmp_path, rng):
    _, noisy = phantom(rng)
    src = save(tmp_path / "a.nii", np.rint(noisy), np.int16)
    with pytest.raises(ValueError, match="is an input file"):
        clean_nifti(src, src, sigma=5.0)
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti file at all")
    with pytest.raises(NiftiError, match="cannot read as NIfTI"):
        clean_nifti(tmp_path / "junk.nii.gz", tmp_path / "x.nii", sigma=5.0)
    zero = np.zeros((20, 20, 3))
    zero[5:15, 5:15] = 100
    zsrc = save(tmp_path / "z.nii", zero, np.int16)
    with pytest.raises(NoBackgroundError, match="all zeros"):
        clean_nifti(zsrc, tmp_path / "z_out.nii", background=roi_mask_xyz(["0:4,0:4"], zero.shape))
    neg = save(tmp_path / "neg.nii", np.rint(noisy) - 50, np.int16)
    with pytest.raises(ValueError, match="below zero signal"):
        clean_nifti(neg, tmp_path / "neg_out.nii", sigma=5.0)
    with pytest.raises(ValueError, match="one per volume"):
        clean_nifti(src, tmp_path / "b.nii", sigma=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"\.nii or \.nii\.gz"):
        clean_nifti(src, tmp_path / "b.img", sigma=5.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii", "junk.nii.gz", "neg.nii", "z.nii"]


def test_folder_batch_collects_failures(tmp_path, rng):
    _, noisy = phantom(rng)
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "a.nii.gz", np.rint(noisy), np.int16)
    (folder / "b.nii").write_bytes(b"broken")
    (folder / "sub").mkdir()
    save(folder / "sub" / "c.nii", np.rint(noisy), np.int16)
    seen = []
    report = clean_source(folder, tmp_path / "out", sigma=12.0, on_file=seen.append)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == ["a.nii.gz", "sub/c.nii"]
    assert [f.path.name for f in report.failures] == ["b.nii"]
    assert sorted(p.name for p in seen) == ["a.nii.gz", "b.nii", "c.nii"]


def test_cli_clean_nifti(tmp_path, rng, capsys):
    _, noisy = phantom(rng, (8.0, 16.0))
    src = save(tmp_path / "s.nii.gz", np.rint(noisy), np.int16)
    assert main(["clean", str(src), "-o", str(tmp_path / "o.nii.gz"), "--sigma-per-volume", "--roi", "0:10,0:12", "-q"]) == 0
    assert nib.load(tmp_path / "o.nii.gz").shape == noisy.shape
    assert main(["clean", str(src), "-o", str(tmp_path / "p.nii"), "--uid-prefix", "1.2."]) == 2
    assert main(["clean", str(src), "-o", str(src), "--sigma", "3"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 2 and "input file" in err


def test_folder_batch_on_local_cluster_equals_serial(tmp_path, rng):
    pytest.importorskip("distributed")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.nii.gz", "b.nii", "c.nii.gz"):
        save(folder / name, np.rint(phantom(rng)[1]), np.int16)
    (folder / "bad.nii").write_bytes(b"broken")
    mask = roi_mask_xyz(["0:10,0:10"], (40, 44, 6))
    serial = clean_source(folder, tmp_path / "serial", background=mask, f_size=5)
    parallel = clean_source(folder, tmp_path / "par", background=mask, f_size=5, workers=2)
    assert [f.path.name for f in parallel.failures] == [f.path.name for f in serial.failures] == ["bad.nii"]
    assert [r.result.derivation.sigma for r in parallel.volumes] == [r.result.derivation.sigma for r in serial.volumes]
    for r in serial.volumes:
        np.testing.assert_array_equal(unscaled(tmp_path / "par" / r.outputs[0].name), unscaled(r.outputs[0]))


def test_cli_sigma_nifti_per_volume(tmp_path, rng, capsys):
    import json

    _, noisy = phantom(rng, (8.0, 16.0))
    src = save(tmp_path / "s.nii.gz", np.rint(noisy), np.int16)
    assert main(["sigma", str(src), "--sigma-per-volume", "--roi", "0:10,0:12", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["volume"] for r in rows] == [0, 1]
    bg = np.rint(noisy[:10, :12])
    for t, row in enumerate(rows):
        values = bg[..., t][bg[..., t] != 0]
        assert row["sigma"] == pytest.approx(rounded_noise_sigma(values), rel=1e-9)
    assert main(["sigma", str(src)]) == 0
    assert "s.nii.gz (40x44x6x2)" in capsys.readouterr().out


def _dwi_like(rng: np.random.Generator, sigmas: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Volumes whose signal falls (as with the b-value) and whose noise is ``sigmas``; and the air far from
    the object (no window of 9 reaches it), where each volume's σ is known independently."""
    truth = np.zeros((40, 44, 6))
    truth[12:30, 14:34] = 300.0
    noisy = np.stack([rician(truth * (1.0 - 0.25 * t), s, rng) for t, s in enumerate(sigmas)], axis=-1)
    air = np.ones(truth.shape, dtype=bool)
    air[12 - 5 : 30 + 5, 14 - 5 : 34 + 5] = False
    return np.rint(noisy), air


def _air_sigma(volume: np.ndarray, air: np.ndarray) -> float:
    """The maximum-likelihood σ of Rayleigh noise, sqrt(<M²> / 2), over the air."""
    return float(np.sqrt(np.mean(volume[air] ** 2) / 2))


def test_one_sigma_for_a_4d_image_warns_when_its_volumes_differ_in_noise(tmp_path, rng, capsys):
    import json
    import re

    noisy, air = _dwi_like(rng, (10.0, 15.0, 20.0))
    src = save(tmp_path / "dwi.nii.gz", noisy, np.int16)
    r = clean_nifti(src, tmp_path / "dwi_out.nii.gz")
    # One search at one noise level keeps the quietest volume's background only: σ is its σ.
    assert r.result.derivation.sigma == pytest.approx(_air_sigma(noisy[..., 0], air), rel=0.03)
    (warning,) = r.result.warnings
    assert "--sigma-per-volume" in warning and "per_volume=True" in warning
    low, t_low, high, t_high = re.search(r"σ ([\d.]+) \(volume (\d)\) to ([\d.]+) \(volume (\d)\)", warning).groups()
    assert (int(t_low), int(t_high)) == (0, 2)
    assert float(low) == pytest.approx(_air_sigma(noisy[..., 0], air), rel=0.04)
    assert float(high) == pytest.approx(_air_sigma(noisy[..., 2], air), rel=0.04)
    # A ROI over every volume gives their average σ, with the same warning.
    roi = clean_nifti(src, tmp_path / "roi_out.nii.gz", background=roi_mask_xyz(["0:6,0:44"], noisy.shape[:3]))
    assert any("--sigma-per-volume" in w for w in roi.result.warnings)
    # The warning reaches clean --json.
    assert main(["clean", str(src), "-o", str(tmp_path / "cli.nii.gz"), "--json"]) == 0
    (out,) = json.loads(capsys.readouterr().out)["outputs"]
    assert out["warnings"] == [warning]


@pytest.mark.parametrize("coils", [1, 4])
def test_one_sigma_for_a_4d_image_of_one_noise_does_not_warn(tmp_path, rng, coils):
    truth = np.zeros((40, 44, 6))
    truth[12:30, 14:34] = 300.0
    # Signal that changes between volumes (as with the b-value) under the same noise: no spread.
    noisy = np.stack([rician(truth * (1.0 - 0.3 * t), 12.0, rng, coils) for t in range(4)], axis=-1)
    r = clean_nifti(save(tmp_path / "same.nii.gz", np.rint(noisy), np.int16), tmp_path / "same_out.nii.gz")
    assert r.result.warnings == []
    assert r.result.derivation.sigma == pytest.approx(12.0, rel=0.03)


def test_sigma_per_volume_on_a_folder_of_3d_and_4d_images(tmp_path, rng):
    noisy, air = _dwi_like(rng, (10.0, 15.0, 20.0))
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "dwi.nii.gz", noisy, np.int16)
    t1 = np.rint(rician(np.where(air, 0.0, 300.0), 12.0, rng))
    save(folder / "t1.nii.gz", t1, np.int16)
    report = clean_source(folder, tmp_path / "out", per_volume=True)
    assert report.failures == []
    assert sorted(p.name for p in report.written) == ["dwi.nii.gz", "t1.nii.gz"]
    by_name = {v.paths[0].name: v.result for v in report.volumes}
    # The 4-D image: one σ per volume, each that of the volume's own background (its air).
    sigma = by_name["dwi.nii.gz"].derivation.sigma
    assert isinstance(sigma, tuple) and len(sigma) == 3
    np.testing.assert_allclose(sigma, [_air_sigma(noisy[..., t], air) for t in range(3)], rtol=0.03)
    assert by_name["dwi.nii.gz"].warnings == []
    assert "/vol" in nib.load(tmp_path / "out" / "dwi.nii.gz").header["descrip"].tobytes().decode()
    # The 3-D image: one σ.
    assert isinstance(by_name["t1.nii.gz"].derivation.sigma, float)
    assert by_name["t1.nii.gz"].derivation.sigma == pytest.approx(_air_sigma(t1, air), rel=0.03)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64])
@pytest.mark.parametrize(("inter", "volumes"), [(0.0, 1), (-20.0, 1), (0.0, 2)])
def test_every_data_type_gets_the_bits_of_the_float_sequence(tmp_path, rng, dtype, inter, volumes):
    """Stored values in, stored values out (the kernel converts): the bits of converting the file's
    values to their magnitude, correcting it as floats and converting back in numpy."""
    _, noisy = phantom(rng, (12.0, 20.0)[:volumes])
    big = np.issubdtype(dtype, np.integer) and np.iinfo(dtype).max > 255
    scale = 1.0 if big or not np.issubdtype(dtype, np.integer) else 3.0  # 8-bit types: the phantom fits them
    stored = noisy / scale - inter / 2.0
    if np.issubdtype(dtype, np.integer):
        stored = np.clip(np.rint(stored), np.iinfo(dtype).min, np.iinfo(dtype).max)
    src = save(tmp_path / "in.nii", stored, dtype, slope=2.0, inter=inter)
    sigma = (4.0, 7.0)[:volumes]
    r = clean_nifti(src, tmp_path / "out.nii", sigma=sigma if volumes > 1 else sigma[0], f_size=3)
    held = stored.astype(dtype)
    single = held.dtype.itemsize <= 2 or held.dtype == np.float32
    magnitude = held.astype(np.float32 if single and inter == 0 else np.float64) + (inter / 2.0 if inter else 0)
    y = nl.correct(magnitude, np.array(sigma) if volumes > 1 else sigma[0], f_size=r.result.derivation.f_size,
                   volume_axis=3 if volumes > 1 else None).astype(np.float64) - (inter / 2.0 if inter else 0)
    if np.issubdtype(dtype, np.integer):
        y = np.clip(np.rint(y), np.iinfo(dtype).min, np.iinfo(dtype).max)
    got = unscaled(r.outputs[0])
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, y.astype(dtype))
