"""Bad input gets one clear error and loses nothing; batches survive bad files and Ctrl-C; no patient data leaks.

Complements test_dicom.py, test_cli.py, test_noise.py and test_compat.py, which
already cover the empty file, reversed/malformed ROIs, NaN/negative arrays and
most argument errors of ``correct``.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import run, snapshot, phantom_volume, write_series
from pydicom.data import get_testdata_file
from scipy.ndimage import uniform_filter

import mri_noiselab as nl
from mri_noiselab import _core
from mri_noiselab.cli import main
from mri_noiselab.compat import subtract_noise
from mri_noiselab.dicom import (
    DicomError,
    NoBackgroundError,
    clean_source,
    clean_stack,
    read_file,
    synthetic_mr_image,
    write_dataset,
)
from mri_noiselab.roi import roi_mask

MR = get_testdata_file("MR_small.dcm")


def assert_one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mri-noiselab: error: "), err
    assert "Traceback" not in err


def noisy_series(folder: Path, rng: np.random.Generator, slices: int = 3, size: int = 32, **attributes: object) -> list[Path]:
    _, noisy = phantom_volume(slices, size, 10.0, rng)
    return write_series(folder, np.rint(noisy).astype(np.uint16), **attributes)


# --------------------------------------------------------------------------- bad files through the CLI


def _bad_random(d: Path) -> Path:
    (d / "random.dcm").write_bytes(np.random.default_rng(3).bytes(2000))
    return d / "random.dcm"


def _bad_text(d: Path) -> Path:
    (d / "notes.dcm").write_text("PatientName: nobody\n" * 40)
    return d / "notes.dcm"


def _bundled(name: str):  # noqa: ANN202
    def make(d: Path) -> Path:
        return Path(shutil.copy(get_testdata_file(name), d / name))

    return make


def _no_dicom_folder(d: Path) -> Path:
    (d / "series").mkdir()
    (d / "series" / "readme.txt").write_text("no images here")
    (d / "series" / "empty.dcm").write_bytes(b"")
    return d / "series"


def _empty_folder(d: Path) -> Path:
    (d / "series").mkdir()
    return d / "series"


def _mixed_sizes(d: Path) -> Path:
    uid = pydicom.uid.generate_uid()
    write_dataset(synthetic_mr_image(np.ones((16, 16), np.uint16), SeriesInstanceUID=uid), d / "series" / "a.dcm")
    write_dataset(synthetic_mr_image(np.ones((16, 20), np.uint16), SeriesInstanceUID=uid, InstanceNumber="2"),
                  d / "series" / "b.dcm")
    return d / "series"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_bad_random, "not a DICOM file"),
        (_bad_text, "not a DICOM file"),
        (_bundled("MR_truncated.dcm"), "cannot decode the pixel data"),
        (_bundled("rtplan.dcm"), "not an MR magnitude image (RT Plan Storage)"),
        (_bundled("SC_rgb_small_odd.dcm"), "not an MR magnitude image (Secondary Capture Image Storage)"),
        (_no_dicom_folder, "no usable DICOM image found (2 non-DICOM file(s))"),
        (_empty_folder, "no usable DICOM image found"),
        (_mixed_sizes, "Columns 20 differs from 16"),
    ],
)
@pytest.mark.parametrize("command", ["clean", "sigma"])
def test_bad_file_is_one_line_exit_2_and_nothing_is_written(tmp_path, make, words, command):
    source = make(tmp_path)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    argv = ["clean", str(source), "-o", str(out / "x.dcm"), "--sigma", "5"] if command == "clean" else \
        ["sigma", str(source), "--roi", "0:4,0:4"]
    argv.append("--include-derived")  # MR_truncated.dcm is a DERIVED image
    code, _, err = run(*argv)
    assert_one_line_exit_2(code, err)
    assert words in err
    assert snapshot(tmp_path) == before  # inputs byte-identical, no output, no temporary file
    assert not out.exists()


_BLOCK_DECODERS = """
import sys
BLOCKED = {"pylibjpeg", "libjpeg", "openjpeg", "rle", "jpeg_ls", "_CharLS", "gdcm", "PIL"}
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} hidden by the test")
sys.meta_path.insert(0, Block())
from mri_noiselab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("name", ["MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_compressed_input_without_any_decoder_installed(tmp_path, name):
    """The decoder plugins are hidden from a fresh interpreter, as if the codecs extra were not installed."""
    source = Path(shutil.copy(get_testdata_file(name), tmp_path / name))
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCK_DECODERS, "clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma", "5",
         "--include-derived"],
        capture_output=True, text=True, check=False, timeout=120,
    )
    assert_one_line_exit_2(proc.returncode, proc.stderr)
    assert "no decoder is installed" in proc.stderr and 'pip install "mri-noiselab[codecs]"' in proc.stderr
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    ("array", "exc", "match"),
    [
        (np.ones(3, complex), TypeError, "real numbers"),
        (np.ones(3, bool), TypeError, "real numbers"),
        (np.array([1.0, 2.0], dtype=object), TypeError, "real numbers"),
        (np.array([1.0, np.inf]), ValueError, "NaN or infinite"),
        (np.zeros((0, 4)), ValueError, "empty"),
    ],
)
def test_estimate_sigma_rejects_what_correct_rejects(array, exc, match):
    with pytest.raises(exc, match=match):
        nl.estimate_sigma(array)


def test_correct_rejects_object_arrays_and_absurd_windows():
    with pytest.raises(TypeError, match="real numbers"):
        nl.correct(np.array([[1.0, 2.0]], dtype=object), 1.0)
    with pytest.raises(ValueError, match="at most 2\\*\\*63 - 1"):
        nl.correct(np.ones((4, 4)), 1.0, f_size=10**30)
    with pytest.raises(ValueError, match="at most 2\\*\\*63 - 1"):
        subtract_noise(np.ones((4, 4)), np.arange(9.0), f_size=2**64)


def test_all_zero_image_is_a_valid_magnitude_but_not_a_background():
    assert np.array_equal(nl.correct(np.zeros((6, 6)), 1.0, f_size=3), np.zeros((6, 6)))
    with pytest.raises(ValueError, match="totally dark"):
        nl.estimate_sigma(np.zeros((6, 6)))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"f_size": 0}, ValueError, "f_size must be >= 1"),
        ({"f_size": -3}, ValueError, "f_size must be >= 1"),
        ({"f_size": 2.5}, TypeError, "f_size must be an int"),
        ({"f_size": (3, 3, 3)}, ValueError, "one per axis"),
    ],
)
def test_drop_in_window_errors(kwargs, exc, match, rng):
    with pytest.raises(exc, match=match):
        subtract_noise(rng.rayleigh(2.0, (8, 8)), rng.rayleigh(2.0, 50), **kwargs)


def test_drop_in_rejects_non_real_dtypes(rng):
    bg = rng.rayleigh(2.0, 50)
    for image in (np.ones(4, complex), np.ones(4, bool), np.ones(4, object)):
        with pytest.raises(TypeError, match="real numbers"):
            subtract_noise(image, bg)
    with pytest.raises(TypeError, match="real numbers"):
        subtract_noise(np.ones(4), bg.astype(complex))


def test_drop_in_accepts_views_big_endian_and_read_only_arrays(rng):
    image = rng.rayleigh(3.0, (20, 24)) + 5.0
    bg = rng.rayleigh(3.0, (10, 10))
    ref = subtract_noise(image, bg, b_tol=10.0, f_size=5, np_type=np.float64)
    base = np.ascontiguousarray(image[::-1, ::-1])
    frozen = image.copy()
    frozen.flags.writeable = False
    padded = np.zeros((40, 48))
    padded[::2, ::2] = image
    for variant in (base[::-1, ::-1], image.astype(">f8"), frozen, padded[::2, ::2], np.asfortranarray(image)):
        assert np.array_equal(subtract_noise(variant, bg, b_tol=10.0, f_size=5, np_type=np.float64), ref)
    # A reversed background sums in another order: equal up to rounding.
    flipped_bg = subtract_noise(image, bg.astype(">f8")[::-1, ::-1], b_tol=10.0, f_size=5, np_type=np.float64)
    np.testing.assert_allclose(flipped_bg, ref, rtol=1e-12)


def _reflect_box_weights(n: int, w: int) -> np.ndarray:
    """Weights of a length-``w`` box mean with scipy's reflect boundary, by exact counting.

    The reflected signal is periodic with period 2n (d c b a | a b c d | d c b a);
    position t maps to sample t mod 2n or 2n - 1 - (t mod 2n). scipy's window at
    i spans [i - w // 2, i - w // 2 + w - 1]. Python integers keep the counts
    exact for any w.
    """
    m = 2 * n

    def count(lo: int, hi: int, r: int) -> int:  # integers t in [lo, hi] with t = r (mod m)
        return (hi - r) // m - (lo - 1 - r) // m

    weights = np.zeros((n, n))
    for i in range(n):
        lo = i - w // 2
        hi = lo + w - 1
        for j in range(n):
            weights[i, j] = (count(lo, hi, j) + count(lo, hi, m - 1 - j)) / w
    return weights


def test_reflect_weights_reproduce_scipy():
    x = np.random.default_rng(1).uniform(0, 10, 7)
    for w in (1, 4, 13, 14, 37):
        np.testing.assert_allclose(_reflect_box_weights(7, w) @ x, uniform_filter(x, w, mode="reflect"), rtol=1e-12)


def test_window_of_a_billion_is_exact_and_needs_no_big_buffer(rng):
    """f_size 10**9 on a 12x10 image: the box mean is computed in O(n), and equals exact counting."""
    image = rng.rayleigh(2.0, (12, 10)) + np.arange(10.0)
    w = 10**9
    mean_m2 = _reflect_box_weights(12, w) @ image**2 @ _reflect_box_weights(10, w).T
    expected = np.sqrt(np.maximum(mean_m2 - 2 * 1.5**2, 0))
    np.testing.assert_allclose(nl.correct(image, 1.5, f_size=w, method="moments"), expected, rtol=1e-9)
    # A kernel that allocated a padded line of the window's length would need 8 GB here.
    limited = (
        "import resource, numpy as np, mri_noiselab as nl\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "out = nl.correct(np.ones((64, 64)), 0.5, f_size=10**9, method='moments')\n"
        "assert np.allclose(out, np.sqrt(0.5))\n"
    )
    proc = subprocess.run([sys.executable, "-c", limited], capture_output=True, text=True, check=False, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr


def test_huge_broadcast_views_fail_at_once_without_touching_memory():
    """Size arithmetic: a 2**59-voxel view (no memory behind it) must not be walked or overflow.

    numpy already refuses shapes whose byte size passes 2**63, so the C++
    std::overflow_error of ArrayView::size() cannot be reached from Python; the
    largest views numpy allows must fail on the output allocation, before any work.
    """
    huge = np.broadcast_to(np.float64(1.0), (2**20, 2**20, 2**19))
    with pytest.raises(MemoryError):
        _core.box_moments(huge, [1, 1, 1])
    with pytest.raises(MemoryError):
        nl.correct(huge, 1.0, f_size=1)
    with pytest.raises(MemoryError):
        nl.correct(np.broadcast_to(np.float32(1.0), huge.shape), 1.0)
    with pytest.raises(ValueError, match="too big|too large"):
        np.broadcast_to(np.float64(1.0), (2**32, 2**32))


# --------------------------------------------------------------------------- ROIs and masks


def test_mask_of_the_wrong_shape_is_refused_for_a_stack():
    stack = read_file(MR)
    with pytest.raises(ValueError, match="mask shape"):
        clean_stack(stack, mask=np.ones((64, 64), bool))


def test_background_function_with_a_bad_roi_fails_before_writing(tmp_path):
    with pytest.raises(ValueError, match="out of bounds"):
        clean_source(MR, tmp_path / "o.dcm", background=lambda s: roi_mask(["0:4,60:70"], s.shape),
                     include_derived=True)
    with pytest.raises(NoBackgroundError, match="empty"):
        clean_source(MR, tmp_path / "o.dcm", background=lambda s: np.zeros(s.shape, bool), include_derived=True)
    assert list(tmp_path.iterdir()) == []


def test_empty_roi_on_the_command_line(tmp_path):
    code, _, err = run("clean", MR, "-o", str(tmp_path / "o.dcm"), "--roi", "4:4,0:8", "--include-derived")
    assert_one_line_exit_2(code, err)
    assert "is empty" in err and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- output paths


def test_missing_output_folders_are_created(tmp_path):
    code, _, err = run("clean", MR, "-o", str(tmp_path / "a" / "b" / "c.dcm"), "--sigma", "5", "-q", "--include-derived")
    assert code == 0, err
    assert read_file(tmp_path / "a" / "b" / "c.dcm").shape == (1, 64, 64)


@pytest.mark.parametrize(
    ("output", "qc", "words"),
    [
        ("blocker/out.dcm", None, "blocker is a file, not a folder"),
        ("blocker/deeper/out.dcm", None, "blocker is a file, not a folder"),
        ("out.dcm", "blocker/qc.png", "blocker is a file, not a folder"),
        ("link.dcm", None, "symbolic link"),
        ("out.dcm", "in.dcm", "QC figure"),
        ("out.dcm", "out.dcm", "is also an output"),
        ("folder", None, "folder/in.dcm: it is a folder"),
    ],
)
def test_unwritable_or_dangerous_outputs_fail_before_anything_is_written(tmp_path, output, qc, words):
    """Runs as root too: a path under a regular file fails for every user."""
    shutil.copy(MR, tmp_path / "in.dcm")
    (tmp_path / "blocker").write_bytes(b"a file")
    (tmp_path / "kept.dcm").write_bytes(b"kept")
    (tmp_path / "link.dcm").symlink_to(tmp_path / "kept.dcm")
    (tmp_path / "folder" / "in.dcm").mkdir(parents=True)
    before = snapshot(tmp_path)
    argv = ["clean", str(tmp_path / "in.dcm"), "-o", str(tmp_path / output), "--roi", "0:8,0:8", "--include-derived"]
    if qc is not None:
        argv += ["--qc", str(tmp_path / qc)]
    code, _, err = run(*argv)
    assert_one_line_exit_2(code, err)
    assert words in err
    assert snapshot(tmp_path) == before


def test_read_only_folder_is_a_clear_error_for_a_normal_user(tmp_path, monkeypatch):
    """Root ignores permission bits; check_writable asks the kernel (os.access) like a normal user's open would."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    code, _, err = run("clean", MR, "-o", str(tmp_path / "out.dcm"), "--sigma", "5", "--include-derived")
    assert_one_line_exit_2(code, err)
    assert f"the folder {tmp_path} is not writable" in err


def test_folder_source_refuses_a_file_output_and_escaping_links(tmp_path, rng):
    noisy_series(tmp_path / "in" / "sub", rng, slices=2)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "file.dcm").write_bytes(b"x")
    before = snapshot(tmp_path)
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "5")
    assert_one_line_exit_2(code, err)
    assert "outside the output folder" in err
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "file.dcm"), "--sigma", "5")
    assert_one_line_exit_2(code, err)
    assert "a folder source needs an output folder" in err
    assert snapshot(tmp_path) == before and list((tmp_path / "elsewhere").iterdir()) == []


# --------------------------------------------------------------------------- batches


def test_batch_with_every_kind_of_bad_file_names_each_one(tmp_path, rng):
    good = noisy_series(tmp_path / "in", rng, slices=3)
    for make in (_bad_random, _bad_text, _bundled("MR_truncated.dcm"), _bundled("rtplan.dcm"),
                 _bundled("SC_rgb_small_odd.dcm")):
        make(tmp_path / "in")
    (tmp_path / "in" / "empty.dcm").write_bytes(b"")
    before = snapshot(tmp_path / "in")
    # MR_truncated.dcm is a DERIVED image: corrected (and failing) only when derived images are asked for.
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10", "--include-derived")
    assert code == 1
    lines = err.strip().splitlines()
    folder = tmp_path / "in"
    # Not MR: skipped with the reason, not failures; not DICOM at all (empty, notes, random): silent.
    assert lines[:3] == [
        f"mri-noiselab: skipped {folder / 'SC_rgb_small_odd.dcm'}: not an MR magnitude image (Secondary Capture Image Storage)",
        f"mri-noiselab: skipped {folder / 'rtplan.dcm'}: not an MR magnitude image (RT Plan Storage)",
        "mri-noiselab: skipped 2 file(s) (not magnitude MR images)",
    ]
    assert lines[3].startswith(f"mri-noiselab: failed: {folder / 'MR_truncated.dcm'}: cannot decode the pixel data")
    assert lines[4:] == [f"mri-noiselab: 1 of {1 + len(good)} file(s) failed; the others were written"]
    assert sorted(snapshot(tmp_path / "out")) == sorted(p.name for p in good)
    for p in good:
        assert read_file(tmp_path / "out" / p.name).shape == (1, 32, 32)
    assert snapshot(tmp_path / "in") == before


def test_skip_existing_finishes_a_series_in_the_same_series(tmp_path, rng):
    inputs = noisy_series(tmp_path / "in", rng, slices=4)
    first = clean_source(tmp_path / "in", tmp_path / "out", sigma=10.0)
    kept = {p: p.stat().st_mtime_ns for p in first.written[:2]}
    kept_bytes = {p: p.read_bytes() for p in first.written[:2]}
    for p in first.written[2:]:
        p.unlink()  # as if the run had been interrupted after two files
    second = clean_source(tmp_path / "in", tmp_path / "out", sigma=10.0, skip_existing=True)
    assert second.skipped == first.written[:2] and second.written == first.written[2:]
    assert {p: p.read_bytes() for p in kept} == kept_bytes and {p: p.stat().st_mtime_ns for p in kept} == kept
    outputs = [pydicom.dcmread(tmp_path / "out" / p.name) for p in inputs]
    assert len({ds.SeriesInstanceUID for ds in outputs}) == 1
    assert len({ds.SOPInstanceUID for ds in outputs}) == 4
    fresh = clean_source(tmp_path / "in", tmp_path / "fresh", sigma=10.0)
    for p in inputs:  # the finished run has the pixels a single run has
        assert np.array_equal(read_file(tmp_path / "out" / p.name).stored, read_file(fresh.written[inputs.index(p)]).stored)
    third = clean_source(tmp_path / "in", tmp_path / "out", sigma=10.0, skip_existing=True)
    assert third.written == [] and len(third.skipped) == 4 and third.failures == []


def test_skip_existing_refuses_a_stranger_in_the_output(tmp_path, rng):
    noisy_series(tmp_path / "in", rng, slices=2)
    clean_source(tmp_path / "in", tmp_path / "out", sigma=10.0)
    shutil.copy(MR, tmp_path / "out" / "slice000.dcm")  # not derived from in/slice000.dcm
    (tmp_path / "out" / "slice001.dcm").unlink()
    with pytest.raises(DicomError, match="was not derived from its input slice000.dcm"):
        clean_source(tmp_path / "in", tmp_path / "out", sigma=10.0, skip_existing=True)
    assert not (tmp_path / "out" / "slice001.dcm").exists()


def test_ctrl_c_leaves_only_complete_files_and_skip_existing_finishes(tmp_path, rng):
    """A real SIGINT to a CLI process in the middle of a folder of single-file series."""
    n = 60
    _, noisy = phantom_volume(1, 256, 10.0, rng)
    plane = np.rint(noisy[0]).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in range(n):  # one series per file: each output is written as soon as its file is done
            write_dataset(synthetic_mr_image(plane), tmp_path / "in" / f"im{k:03d}.dcm")
    before = snapshot(tmp_path / "in")
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "import sys; from mri_noiselab.cli import main; sys.exit(main(sys.argv[1:]))",
           "clean", str(tmp_path / "in"), "-o", str(out), "--roi", "0:20,0:20", "--method", "lmmse",
           "--f-size", "15", "--threads", "1", "-v"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.suffix == ".dcm" for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "mri-noiselab: interrupted; only complete files were written"
    assert "Traceback" not in stderr
    names = sorted(p.name for p in out.iterdir())
    assert 0 < len(names) < n, "the run finished before the signal: make it longer"
    assert not [name for name in names if name.startswith(".") or name.endswith(".part")]
    for name in names:
        ds = pydicom.dcmread(out / name)
        assert ds.pixel_array.shape == (256, 256) and "DERIVED" in ds.ImageType
    report = clean_source(tmp_path / "in", out, background=lambda s: roi_mask(["0:20,0:20"], s.shape),
                          method="lmmse", f_size=15, skip_existing=True)
    assert sorted(p.name for p in report.skipped) == names
    assert len(report.written) == n - len(names) and report.failures == []
    assert sorted(p.name for p in out.iterdir()) == sorted(before)
    assert snapshot(tmp_path / "in") == before


# --------------------------------------------------------------------------- privacy


SECRETS = {"PatientName": "Quixotic^Zebulon", "PatientID": "PID-4242-XQZ", "PatientBirthDate": "19230817"}


def _secret_inputs(folder: Path, rng: np.random.Generator) -> None:
    noisy_series(folder / "good", rng, slices=2, **SECRETS)
    # Failing inputs that carry the same identity, one per error path.
    phase = synthetic_mr_image(np.ones((8, 8), np.uint16), ImageType=["ORIGINAL", "PRIMARY", "P"], **SECRETS)
    write_dataset(phase, folder / "bad" / "phase.dcm")
    negative = synthetic_mr_image(np.ones((8, 8), np.uint16), RescaleIntercept="-100", **SECRETS)
    write_dataset(negative, folder / "neg" / "negative.dcm")
    zero = synthetic_mr_image(np.zeros((8, 8), np.uint16), **SECRETS)
    write_dataset(zero, folder / "zero" / "zero.dcm")
    # Noise, not a constant: a background of one value is refused before anything is written.
    odd = synthetic_mr_image(np.round(rng.rayleigh(5.0, (8, 8))).astype(np.uint16), **SECRETS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        odd.add_new("PatientBirthDate", "DA", "NOT-A-DATE-XQZ")  # invalid values make pydicom quote them
        odd.add_new("OtherPatientIDs", "LO", "PID-4242-XQZ-" + "9" * 80)
        write_dataset(odd, folder / "odd" / "odd.dcm")


def test_no_patient_data_in_any_output_stream_or_qc_figure(tmp_path, rng, recwarn):
    _secret_inputs(tmp_path, rng)
    recwarn.clear()
    runs = [
        ["clean", str(tmp_path), "-o", str(tmp_path / "out"), "--roi", "0:4,0:4", "-v", "--qc", str(tmp_path / "qc.png")],
        ["clean", str(tmp_path / "odd" / "odd.dcm"), "-o", str(tmp_path / "o.dcm"), "--roi", "0:8,0:8", "-v"],
        ["clean", str(tmp_path / "bad" / "phase.dcm"), "-o", str(tmp_path / "p.dcm"), "--sigma", "3", "-v"],
        ["clean", str(tmp_path / "neg" / "negative.dcm"), "-o", str(tmp_path / "n.dcm"), "--sigma", "3", "-v"],
        ["clean", str(tmp_path / "zero" / "zero.dcm"), "-o", str(tmp_path / "z.dcm"), "--roi", "0:4,0:4", "-v"],
        ["sigma", str(tmp_path), "--roi", "0:4,0:4", "-v"],
        ["sigma", str(tmp_path), "--roi", "0:4,0:4", "--json"],
    ]
    codes = []
    for argv in runs:
        code, out, err = run(*argv)
        codes.append(code)
        text = out + err + "".join(str(w.message) for w in recwarn)
        for value in ("Quixotic", "Zebulon", "4242", "XQZ", "19230817"):
            assert value not in text, (argv, text)
    assert codes == [1, 0, 2, 2, 2, 1, 1]
    png = (tmp_path / "qc_1.png").read_bytes() if (tmp_path / "qc_1.png").exists() else (tmp_path / "qc.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not any(chunk in png for chunk in (b"tEXt", b"iTXt", b"zTXt"))
    for value in (b"Quixotic", b"4242", b"19230817"):
        assert value not in png


def test_verbose_lists_file_names_only(tmp_path, rng):
    paths = noisy_series(tmp_path / "in", rng, slices=3, **SECRETS)
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10", "-v")
    assert code == 0
    assert err.splitlines() == [f"done: {p.name}" for p in paths]
