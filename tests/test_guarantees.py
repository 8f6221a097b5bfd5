"""Never lose a file, never fall over (issue 13): one test per point, run as a user runs the tool.

Each test names the point it proves (the README's "Guarantees" table lists them). Files are
synthesised here; outcomes are checked against what a user can observe: exit codes, the
one-line messages, the bytes and permissions of every file, DICOM tags read back by pydicom.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import run, snapshot, enhanced_mr, phantom_volume, write_series
from pydicom.uid import DeflatedExplicitVRLittleEndian

from mri_noiselab._atomic import PART_SUFFIX, TEMP_PREFIX, AtomicBatch
from mri_noiselab.cli import main
from mri_noiselab.dicom import synthetic_mr_image, write_dataset
from mri_noiselab.pipeline import clean_source

CLI = "import sys; from mri_noiselab.cli import main; sys.exit(main(sys.argv[1:]))"


def one_error_line(code: int, err: str) -> str:
    """The single "error:" line of a run that wrote nothing (exit 2)."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mri-noiselab: error: "), err
    return lines[0]


def series(folder: Path, rng: np.random.Generator, slices: int = 3, size: int = 32, **attributes: object) -> list[Path]:
    _, noisy = phantom_volume(slices, size, 10.0, rng)
    return write_series(folder, np.rint(noisy).astype(np.uint16), **attributes)


def single(path: Path, rng: np.random.Generator, **attributes: object) -> Path:
    """One MR image: a disc in Rayleigh noise (sigma 10)."""
    _, noisy = phantom_volume(1, 32, 10.0, rng)
    return write_dataset(synthetic_mr_image(np.rint(noisy[0]).astype(np.uint16), **attributes), path)


def nifti(path: Path, rng: np.random.Generator) -> Path:
    nib = pytest.importorskip("nibabel")
    _, noisy = phantom_volume(4, 32, 10.0, rng)
    nib.save(nib.Nifti1Image(np.rint(noisy).astype(np.int16).transpose(1, 2, 0), np.eye(4)), path)
    return path


def patch_value(path: Path, keyword: str, raw: bytes) -> None:
    """Give ``keyword`` the raw value ``raw`` in the file, as a damaged or hostile file would hold it."""
    original = pydicom.dcmread(path)
    # A run of one digit stands in for the value; generated UIDs or noise pixels may hold one
    # run by chance, so take a digit whose run appears exactly once.
    for digit in b"7395":
        placeholder = bytes([digit]) * len(raw)
        ds = original.copy()
        setattr(ds, keyword, placeholder.decode())
        ds.save_as(path)
        data = path.read_bytes()
        if data.count(placeholder) == 1:
            path.write_bytes(data.replace(placeholder, raw))
            return
    raise AssertionError(f"no unique placeholder for {keyword} in {path.name}")


# --------------------------------------------------------------------------- 1, 2: never replace a file unasked


@pytest.mark.parametrize("kind", ["dicom", "nifti"])
def test_1_an_output_folder_inside_the_input_never_replaces_a_file_this_tool_did_not_write(tmp_path, rng, kind):
    src = tmp_path / "in"
    if kind == "dicom":
        series(src, rng)
        names = ["slice000.dcm", "slice001.dcm"]
    else:
        src.mkdir()
        nifti(src / "a.nii", rng)
        nifti(src / "b.nii.gz", rng)
        names = ["a.nii", "b.nii.gz"]
    (src / "sub").mkdir()
    (src / "sub" / names[0]).write_bytes(b"the user's own file, not an output")
    before = snapshot(tmp_path)
    for extra in ([], ["--force"]):
        code, _, err = run("clean", str(src), "-o", str(src / "sub"), "--sigma", "10", *extra)
        line = one_error_line(code, err)
        assert str(src / "sub" / names[0]) in line and ("--force" in line or "was not written by" in line)
        assert snapshot(tmp_path) == before
    # Its own earlier outputs there are replaced with --force.
    (src / "sub" / names[0]).unlink()
    assert run("clean", str(src), "-o", str(src / "sub"), "--sigma", "10")[0] == 0
    assert run("clean", str(src), "-o", str(src / "sub"), "--sigma", "10", "--force")[0] == 0


def test_2_an_existing_output_is_replaced_only_with_force(tmp_path, rng):
    a = single(tmp_path / "a.dcm", rng)
    b = tmp_path / "b.dcm"
    b.write_bytes(b"an unrelated file")
    code, _, err = run("clean", str(a), "-o", str(b), "--sigma", "10")
    line = one_error_line(code, err)
    assert f"the output {b} exists" in line and "--force" in line and "--skip-existing" in line
    assert b.read_bytes() == b"an unrelated file"
    code, _, err = run("clean", str(a), "-o", str(b), "--sigma", "10", "--force")
    assert code == 0, err
    assert "DERIVED" in pydicom.dcmread(b).ImageType


def test_2_unrelated_dicoms_of_the_same_names_in_the_output_folder_are_kept(tmp_path, rng):
    series(tmp_path / "in", rng)
    strangers = series(tmp_path / "out", rng)  # another series, same file names
    before = snapshot(tmp_path / "out")
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10")
    assert "exists" in one_error_line(code, err)
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10", "--skip-existing")
    assert "was not derived from its input" in one_error_line(code, err)
    assert snapshot(tmp_path / "out") == before and len(strangers) == 3


# --------------------------------------------------------------------------- 3: only regular files are replaced


@pytest.mark.parametrize("which", ["output", "qc"])
def test_3_a_fifo_as_output_or_qc_figure_is_refused_even_with_force(tmp_path, rng, which):
    source = single(tmp_path / "in.dcm", rng)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = fifo if which == "output" else tmp_path / "out.dcm"
    argv = ["clean", str(source), "-o", str(target), "--sigma", "10", "--force"]
    if which == "qc":
        argv += ["--qc", str(fifo)]
    line = one_error_line(*run(*argv)[::2])
    assert "not a regular file" in line
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and not (tmp_path / "out.dcm").exists()


# --------------------------------------------------------------------------- 4: one run at a time per output folder


def test_4_a_second_run_into_the_same_output_folder_is_refused_and_the_series_keeps_one_uid(tmp_path, rng):
    series(tmp_path / "in", rng, slices=6)
    ready = tmp_path / "first-run-is-writing"
    # The first run, in another process, holds the output folder while its background is found.
    first = subprocess.Popen(
        [sys.executable, "-c", f"""
import time
from pathlib import Path
from mri_noiselab.pipeline import clean_source
from mri_noiselab.roi import roi_mask
def background(volume):
    Path({str(ready)!r}).touch()
    time.sleep(4)
    return roi_mask(["0:8,0:8"], volume.shape)
clean_source({str(tmp_path / 'in')!r}, {str(tmp_path / 'out')!r}, background=background)
"""],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.01)
        code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10", "--force")
        assert "another mri-noiselab run is writing into" in one_error_line(code, err)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, stderr
    outputs = [pydicom.dcmread(p) for p in sorted((tmp_path / "out").iterdir())]
    assert len(outputs) == 6 and len({ds.SeriesInstanceUID for ds in outputs}) == 1


# --------------------------------------------------------------------------- 5: resume only what this run would write


def test_5_skip_existing_refuses_to_complete_a_series_with_other_options(tmp_path, rng):
    series(tmp_path / "in", rng, slices=4)
    out = tmp_path / "out"
    assert run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10")[0] == 0
    (out / "slice003.dcm").unlink()
    before = snapshot(out)
    for other in (["--sigma", "12"], ["--sigma", "10", "--method", "moments"], ["--sigma", "10", "--f-size", "5"]):
        code, _, err = run("clean", str(tmp_path / "in"), "-o", str(out), *other, "--skip-existing")
        line = one_error_line(code, err)
        assert "exists from a run with other options" in line and "this run:" in line
        assert snapshot(out) == before
    code, out_text, err = run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10", "--skip-existing")
    assert code == 0 and "wrote 1 file(s)" in out_text and "skipped 3 existing file(s)" in out_text, err


def test_5_a_truncated_existing_output_is_not_kept(tmp_path, rng):
    series(tmp_path / "in", rng, slices=3)
    out = tmp_path / "out"
    assert run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10")[0] == 0
    damaged = out / "slice001.dcm"
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) - 32 * 32])  # half its pixel bytes
    (out / "slice002.dcm").unlink()
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10", "--skip-existing")
    line = one_error_line(code, err)
    assert f"{damaged}: exists but is damaged or incomplete" in line
    assert not (out / "slice002.dcm").exists()


def test_5_nifti_resume_checks_the_whole_file_and_its_options(tmp_path, rng):
    pytest.importorskip("nibabel")
    (tmp_path / "in").mkdir()
    for name in ("a.nii.gz", "b.nii.gz"):
        nifti(tmp_path / "in" / name, rng)
    out = tmp_path / "out"
    assert run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10")[0] == 0
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "11", "--skip-existing")
    assert code == 2 and "exists from a run with other options" in err
    data = (out / "a.nii.gz").read_bytes()
    (out / "a.nii.gz").write_bytes(data[: len(data) // 2])
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10", "--skip-existing")
    assert f"{out / 'a.nii.gz'}: exists but is damaged or incomplete" in one_error_line(code, err)


# --------------------------------------------------------------------------- 6: SIGTERM, SIGKILL and their temporary files


def _many_single_file_series(folder: Path, rng: np.random.Generator, n: int = 60) -> None:
    _, noisy = phantom_volume(1, 256, 10.0, rng)
    plane = np.rint(noisy[0]).astype(np.uint16)
    for k in range(n):
        write_dataset(synthetic_mr_image(plane), folder / f"im{k:03d}.dcm")


def test_6_sigterm_is_handled_like_ctrl_c(tmp_path, rng):
    _many_single_file_series(tmp_path / "in", rng)
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", CLI, "clean", str(tmp_path / "in"), "-o", str(out), "--roi", "0:20,0:20",
           "--f-size", "15", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out.is_dir() and any(p.suffix == ".dcm" for p in out.iterdir())):
        assert proc.poll() is None and time.monotonic() < deadline, "no output appeared"
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "mri-noiselab: terminated; only complete files were written"
    assert "Traceback" not in stderr
    names = [p.name for p in out.iterdir()]
    assert 0 < len(names) < 60 and not [n for n in names if n.startswith(".") or n.endswith(PART_SUFFIX)]


def test_6_temporary_files_a_killed_run_left_are_removed_by_the_next_run(tmp_path, rng):
    series(tmp_path / "in", rng, slices=2)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f"{TEMP_PREFIX}4242-0123456789ab{PART_SUFFIX}"  # what SIGKILL leaves: patient data, 0600
    stale.write_bytes(b"DICM half a file with a patient's name")
    os.chmod(stale, 0o600)
    other = out / ".user-notes.part"
    other.write_bytes(b"not ours")
    an_hour_ago = time.time() - 3600
    for path in (stale, other):
        os.utime(path, (an_hour_ago, an_hour_ago))
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(out), "--sigma", "10")
    assert code == 0, err
    assert not stale.exists() and other.read_bytes() == b"not ours"


# --------------------------------------------------------------------------- 7: permissions never wider than the input's


def test_7_outputs_and_new_folders_are_no_more_open_than_their_input(tmp_path, rng):
    private = tmp_path / "private"
    series(private / "scan", rng, slices=2)
    for path in (private / "scan", *(private / "scan").iterdir()):
        os.chmod(path, 0o700 if path.is_dir() else 0o600)
    wide = single(tmp_path / "wide.dcm", rng)
    os.chmod(wide, 0o644)
    old = os.umask(0o022)
    try:
        assert run("clean", str(private / "scan"), "-o", str(tmp_path / "new" / "out"), "--sigma", "10")[0] == 0
        assert run("clean", str(wide), "-o", str(tmp_path / "one.dcm"), "--sigma", "10")[0] == 0
        os.chmod(tmp_path / "one.dcm", 0o600)  # narrowed by its owner: a rewrite keeps it so
        assert run("clean", str(wide), "-o", str(tmp_path / "one.dcm"), "--sigma", "10", "--force")[0] == 0
    finally:
        os.umask(old)
    bits = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [tmp_path / "new", tmp_path / "new" / "out",
                                                             *(tmp_path / "new" / "out").iterdir(), tmp_path / "one.dcm"]}
    assert bits == {"new": 0o700, "out": 0o700, "slice000.dcm": 0o600, "slice001.dcm": 0o600, "one.dcm": 0o600}


# --------------------------------------------------------------------------- 8: earlier outputs are never inputs


@pytest.mark.parametrize("kind", ["dicom", "nifti"])
def test_8_earlier_outputs_inside_the_input_are_not_corrected_again(tmp_path, rng, kind):
    src = tmp_path / "in"
    if kind == "dicom":
        series(src, rng, slices=2)
        inputs = ["slice000.dcm", "slice001.dcm"]
    else:
        src.mkdir()
        nifti(src / "a.nii.gz", rng)
        inputs = ["a.nii.gz"]
    assert run("clean", str(src), "-o", str(src / "first"), "--sigma", "10")[0] == 0
    code, out, err = run("clean", str(src), "-o", str(src / "second"), "--sigma", "10", "-v")
    assert code == 0, err
    assert sorted(str(p.relative_to(src / "second")) for p in (src / "second").rglob("*") if p.is_file()) == inputs
    assert err.count("output of mri-noiselab") == len(inputs)


# --------------------------------------------------------------------------- 9: one file must not stop a batch


def test_9_a_flat_image_and_odd_values_fail_alone_named_without_their_values(tmp_path, rng):
    good = series(tmp_path / "in" / "good", rng)
    write_dataset(synthetic_mr_image(np.full((32, 32), 7, np.uint16)), tmp_path / "in" / "flat.dcm")
    write_dataset(synthetic_mr_image((rng.random((32, 32)) > 0.5).astype(np.uint16)), tmp_path / "in" / "binary.dcm")
    frames = single(tmp_path / "in" / "frames.dcm", rng, PatientName="DOE^JOHN")
    patch_value(frames, "NumberOfFrames", b"DOE^")
    slope = series(tmp_path / "in" / "slope", rng, slices=2, PatientName="DOE^JOHN")
    patch_value(slope[0], "RescaleSlope", b"DOE^")
    code, out, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert code == 1, err
    assert sorted(p.name for p in (tmp_path / "out" / "good").iterdir()) == [p.name for p in good]
    failed = [line for line in err.splitlines() if line.startswith("mri-noiselab: failed: ")]
    assert len(failed) == 4 and "DOE" not in err + out and "Traceback" not in err
    for name in ("flat.dcm", "binary.dcm", "frames.dcm", "slope"):
        assert sum(name in line for line in failed) == 1, (name, failed)
    assert any("NumberOfFrames" in line for line in failed) and any("RescaleSlope" in line for line in failed)


def test_9_symbolic_link_loops_are_walked_once(tmp_path, rng):
    good = series(tmp_path / "in" / "good", rng)
    (tmp_path / "in" / "self").symlink_to(tmp_path / "in" / "self")
    (tmp_path / "in" / "good" / "up").symlink_to(tmp_path / "in")
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out" / "good").iterdir()) == [p.name for p in good]


def test_9_unreadable_folders_are_failures_not_silence(tmp_path, rng, monkeypatch):
    """Root reads every folder, so the kernel's refusal is played by os.scandir."""
    good = series(tmp_path / "in" / "good", rng)
    series(tmp_path / "in" / "locked", rng)
    real = os.scandir

    def scandir(path: object = ".") -> object:
        if Path(str(path)).name in ("locked", "top"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "scandir", scandir)
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10")
    assert code == 1
    assert f"failed: {tmp_path / 'in' / 'locked'}: cannot read the folder (Permission denied)" in err
    assert sorted(p.name for p in (tmp_path / "out" / "good").iterdir()) == [p.name for p in good]
    (tmp_path / "in").rename(tmp_path / "top")
    code, _, err = run("clean", str(tmp_path / "top"), "-o", str(tmp_path / "out2"), "--sigma", "10")
    assert "cannot read the folder (Permission denied)" in one_error_line(code, err)


def test_9_an_internal_error_in_one_series_fails_that_series_only(tmp_path, rng, monkeypatch):
    import mri_noiselab.background as background

    series(tmp_path / "in" / "a", rng)
    good = series(tmp_path / "in" / "b", rng, size=40)
    real = background.find_background

    def broken_for_32(image: np.ndarray, *args: object, **kwargs: object) -> object:
        if image.shape[-1] == 32:
            raise IndexError("index 0 is out of bounds for axis 0 with size 0")
        return real(image, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(background, "find_background", broken_for_32)
    code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"))
    assert code == 1, err
    assert f"series of {tmp_path / 'in' / 'a' / 'slice000.dcm'} (3 files): internal error (IndexError" in err
    assert sorted(p.name for p in (tmp_path / "out" / "b").iterdir()) == [p.name for p in good]


# --------------------------------------------------------------------------- 10: workers that raise or die


def test_10_a_worker_that_raises_or_dies_fails_only_its_files(tmp_path, rng):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    from mri_noiselab.roi import roi_mask

    for name in ("a", "b", "c"):
        single(tmp_path / "in" / f"{name}.dcm", rng)

    def background(volume: object) -> np.ndarray:
        name = volume.paths[0].name  # type: ignore[attr-defined]
        if name == "b.dcm":
            raise IndexError("a bug in one series")
        if name == "c.dcm":
            # The worker process dies, once a.dcm is written: a worker that dies takes the
            # tasks it holds with it. A worker each (three for three files): with two, a.dcm's
            # task could wait behind this one on its worker, and die with it (seen with dask 2023.1).
            deadline = time.monotonic() + 60
            while not (tmp_path / "out" / "a.dcm").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            os._exit(1)
        return roi_mask(["0:8,0:8"], volume.shape)  # type: ignore[attr-defined]

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        report = clean_source(tmp_path / "in", tmp_path / "out", background=background, workers=3)
    assert [p.name for p in report.written] == ["a.dcm"]
    messages = {f.path.name: f.message for f in report.failures}
    assert set(messages) == {"b.dcm", "c.dcm"}
    assert "internal error (IndexError: a bug in one series)" in messages["b.dcm"]
    assert "the worker processing it died" in messages["c.dcm"]


# --------------------------------------------------------------------------- 11: exit codes say what happened


def test_11_a_closed_stdout_does_not_turn_a_written_run_into_a_failure(tmp_path, rng):
    source = single(tmp_path / "in.dcm", rng)
    proc = subprocess.Popen([sys.executable, "-c", CLI, "clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma",
                             "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone, as after | head -0
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert stderr == b"" and (tmp_path / "out.dcm").exists()


def test_11_a_console_that_cannot_show_sigma_still_gets_every_line(tmp_path, rng):
    source = single(tmp_path / "in.dcm", rng)
    proc = subprocess.run([sys.executable, "-c", CLI, "clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma",
                           "10"], capture_output=True, env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("ascii").splitlines() == ["in.dcm: sigma = 10 (given)", f"wrote 1 file(s) to {tmp_path / 'out.dcm'}"]


@pytest.mark.parametrize("folder", [False, True])
def test_11_a_disk_that_fills_at_the_qc_figure_leaves_no_output_and_says_which(tmp_path, rng, monkeypatch, folder):
    pytest.importorskip("matplotlib")
    if folder:
        single(tmp_path / "in" / "a.dcm", rng)
        single(tmp_path / "in" / "b.dcm", rng)
        source, out = tmp_path / "in", tmp_path / "out"
    else:
        source, out = single(tmp_path / "in.dcm", rng), tmp_path / "out.dcm"
    write = AtomicBatch.write

    def full_at_the_second_figure(self: AtomicBatch, path: object, *args: object, **kwargs: object) -> Path:
        if str(path).endswith(("qc.png", "qc_2.png")):
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(AtomicBatch, "write", full_at_the_second_figure)
    code, _, err = run("clean", str(source), "-o", str(out), "--sigma", "10", "--qc", str(tmp_path / "qc.png"))
    if folder:
        assert code == 1 and f"failed: {tmp_path / 'in' / 'b.dcm'}: [Errno 28] No space left on device" in err
        assert sorted(p.name for p in out.iterdir()) == ["a.dcm"]
    else:
        assert f"{source}: [Errno 28] No space left on device" in one_error_line(code, err)
        assert not out.exists()


def test_11_the_demo_runs_without_matplotlib_and_leaves_complete_files(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    code, out, err = run("demo", "-o", str(tmp_path / "demo"))
    assert code == 0, err
    assert "QC:     not drawn (it needs matplotlib: pip install" in out
    assert sorted(str(p.relative_to(tmp_path / "demo")) for p in (tmp_path / "demo").rglob("*.dcm")) == [
        "input/phantom.dcm", "output/phantom.dcm"]


def test_11_errors_found_after_reading_name_their_file(tmp_path, rng):
    dark = write_dataset(synthetic_mr_image(np.zeros((32, 32), np.uint16)), tmp_path / "dark.dcm")
    negative = single(tmp_path / "negative.dcm", rng, RescaleIntercept="-100")
    for source in (dark, negative):
        code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"))
        assert str(source) in one_error_line(code, err)


# --------------------------------------------------------------------------- 12: bounded memory and time for any input


def _deflated_bomb(path: Path, frames: int, size: int = 1024) -> Path:
    """A Deflated Explicit VR file whose pixel data (frames x size x size, 16 bits) are zeros:
    a few hundred KB that inflate to frames x 2 MiB."""
    ds = synthetic_mr_image(np.zeros((size, size), np.uint16), NumberOfFrames=frames)
    del ds.PixelData
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    data = buffer.getvalue()
    start = 132 + 12 + int(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).file_meta.FileMetaInformationGroupLength)
    header = zlib.decompress(data[start:], -zlib.MAX_WBITS)
    length = frames * size * size * 2
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [data[:start], deflate.compress(header + b"\xe0\x7f\x10\x00OW\x00\x00" + length.to_bytes(4, "little"))]
    zeros = bytes(1 << 20)
    for _ in range(length >> 20):
        parts.append(deflate.compress(zeros))
    parts.append(deflate.flush())
    path.write_bytes(b"".join(parts))
    return path


def _peak_traced(argv: list[str]) -> tuple[int, str, int]:
    tracemalloc.start()
    try:
        code, _, err = run(*argv)
        return code, err, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_12_a_deflate_bomb_is_refused_before_it_is_inflated_in_memory(tmp_path):
    bomb = _deflated_bomb(tmp_path / "bomb.dcm", frames=256)  # 512 MiB of pixels in ~500 KB
    assert bomb.stat().st_size < 1 << 20
    code, err, peak = _peak_traced(["clean", str(bomb), "-o", str(tmp_path / "out.dcm"), "--sigma", "10"])
    assert "the deflated dataset inflates to at least" in one_error_line(code, err) and "decompression bomb" in err
    assert peak < 64 << 20 and not (tmp_path / "out.dcm").exists()
    small = _deflated_bomb(tmp_path / "small.dcm", frames=16)  # 32 MiB: below the ratio check, above this limit
    code, err, peak = _peak_traced(["sigma", str(small), "--max-image-size", "16M"])
    assert "more than the limit of 16 MiB (raise it with --max-image-size" in one_error_line(code, err)
    assert peak < 16 << 20


def test_12_a_nifti_header_that_lies_about_its_size_is_refused_before_allocating(tmp_path):
    nib = pytest.importorskip("nibabel")
    header = nib.Nifti1Header()
    header.set_data_shape((1024, 1024, 128))  # 256 MiB of int16 declared
    header.set_data_dtype(np.int16)
    liar = tmp_path / "liar.nii.gz"
    with gzip.open(liar, "wb") as fh:
        fh.write(header.binaryblock + b"\0" * 4)
    assert liar.stat().st_size < 200
    code, err, peak = _peak_traced(["clean", str(liar), "-o", str(tmp_path / "out.nii.gz"), "--sigma", "10"])
    assert "the header declares 256 MiB but the file holds 352 bytes" in one_error_line(code, err)
    assert peak < 32 << 20
    header.set_data_shape((4096, 4096, 64))  # 2 GiB: beyond the limit
    with gzip.open(liar, "wb") as fh:
        fh.write(header.binaryblock + b"\0" * 4)
    code, err, peak = _peak_traced(["clean", str(liar), "-o", str(tmp_path / "out.nii.gz"), "--sigma", "10"])
    assert "more than the limit of 1 GiB" in one_error_line(code, err) and peak < 32 << 20


def test_12_many_tiny_frames_cost_in_proportion_to_the_file(tmp_path, rng):
    frames = np.round(rng.rayleigh(10.0, (20000, 2, 2))).astype(np.uint16)
    ds = enhanced_mr(frames)
    del ds.PerFrameFunctionalGroupsSequence  # one shared group for every frame: nothing per frame
    source = write_dataset(ds, tmp_path / "tiny_frames.dcm")
    start = time.monotonic()
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma", "10")
    assert code == 0, err
    assert time.monotonic() - start < 20
    assert (tmp_path / "out.dcm").stat().st_size < 2 * source.stat().st_size
    written = pydicom.dcmread(tmp_path / "out.dcm")
    (item,) = written.SharedFunctionalGroupsSequence[0].DerivationImageSequence
    assert item.DerivationDescription.startswith("Rician noise bias removed by mri-noiselab")


# --------------------------------------------------------------------------- 13, 14: ranges and extreme values


def test_13_14_ranges_and_extremes_are_one_line_with_no_numpy_warning(tmp_path, rng):
    source = single(tmp_path / "in.dcm", rng)
    cases = [
        (["--coils", "10000000", "--roi", "0:8,0:8"], 0, None),
        (["--threads", "2147483648", "--sigma", "3"], 2, "num_threads must be a positive integer"),
        (["--sigma", "1e200"], 2, "too large"),
    ]
    for k, (extra, expected, words) in enumerate(cases):
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-W", "default", "-c", CLI, "clean", str(source), "-o",
                               str(tmp_path / f"out{k}.dcm"), *extra], capture_output=True, text=True, timeout=120)
        assert proc.returncode == expected, proc.stderr
        assert time.monotonic() - start < 30 and "Warning" not in proc.stderr and "Traceback" not in proc.stderr
        if words is not None:
            assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr


# --------------------------------------------------------------------------- 15: odd tag values and odd sources


def test_15_odd_but_usable_tag_values_give_valid_outputs(tmp_path, rng):
    source = single(tmp_path / "in.dcm", rng, SeriesNumber="2147483647", TimezoneOffsetFromUTC="+2400")
    patch_value(source, "SeriesDescription", b"T1\\axial")
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma", "10")
    assert code == 0, err
    ds = pydicom.dcmread(tmp_path / "out.dcm")
    assert ds.SeriesNumber == 2147483647 - 1000  # + 1000 would not fit an IS
    assert list(ds.SeriesDescription) == ["T1", "axial [Rician bias corrected]"]  # the source's two values, suffixed


@pytest.mark.parametrize(
    ("keyword", "words"),
    [("RescaleSlope", "RescaleSlope is zero"), ("NumberOfFrames", "NumberOfFrames is not a positive integer")],
)
def test_15_a_zero_slope_or_frame_count_is_refused(tmp_path, rng, keyword, words):
    source = single(tmp_path / "in.dcm", rng, **{keyword: "0"})
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma", "10")
    assert words in one_error_line(code, err) and not (tmp_path / "out.dcm").exists()


def test_15_pixel_data_longer_than_declared_is_refused(tmp_path, rng):
    source = single(tmp_path / "in.dcm", rng)
    ds = pydicom.dcmread(source)
    ds.PixelData = ds.PixelData * 2
    ds.save_as(source)
    code, _, err = run("clean", str(source), "-o", str(tmp_path / "out.dcm"), "--sigma", "10")
    assert "PixelData holds 4096 bytes, more than the 2048" in one_error_line(code, err)


def test_15_a_long_input_name_is_written(tmp_path, rng):
    source = single(tmp_path / ("x" * 245 + ".dcm"), rng)
    code, _, err = run("clean", str(tmp_path), "-o", str(tmp_path / "out"), "--sigma", "10")
    assert code == 0, err
    assert (tmp_path / "out" / source.name).is_file()


def test_15_a_fifo_as_source_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "fifo.dcm")
    for command in (["clean", str(tmp_path / "fifo.dcm"), "-o", str(tmp_path / "out.dcm")],
                    ["sigma", str(tmp_path / "fifo.dcm")]):
        proc = subprocess.run([sys.executable, "-c", CLI, *command], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "not a regular file or a folder (a FIFO, device or socket)" in proc.stderr


def test_15_a_scheduler_address_that_is_no_dask_scheduler_is_one_line(tmp_path, rng):
    pytest.importorskip("distributed")
    single(tmp_path / "in" / "a.dcm", rng)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def banner() -> None:  # another protocol's server: it speaks first (SSH, SMTP, ...)
        with contextlib.suppress(OSError):  # until the socket is closed
            while True:
                conn, _ = server.accept()
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")

    threading.Thread(target=banner, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
        code, _, err = run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10", "--scheduler", address)
    finally:
        server.close()
    line = one_error_line(code, err)
    # How the failure reads depends on the distributed version (a protocol error, or a handshake
    # time-out at the declared floor): one line naming the address either way.
    assert f"no Dask scheduler answers at {address} (" in line
    assert not (tmp_path / "out").exists()


def test_15_dask_correct_refuses_empty_chunks():
    pytest.importorskip("dask")
    from mri_noiselab.dask import correct

    for chunks in (0, (0, 8), (8,)):
        with pytest.raises(ValueError, match="chunks must be a size such as '64MiB' or one block length"):
            correct(np.ones((8, 8)), 1.0, chunks=chunks)


def test_15_a_nifti_gz_whose_crc_fails_is_refused(tmp_path, rng):
    pytest.importorskip("nibabel")
    path = nifti(tmp_path / "in.nii.gz", rng)
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the gzip trailer's CRC32
    path.write_bytes(bytes(data))
    code, _, err = run("clean", str(path), "-o", str(tmp_path / "out.nii.gz"), "--sigma", "10")
    assert "damaged gzip data" in one_error_line(code, err) and not (tmp_path / "out.nii.gz").exists()
