"""Atomic writes: permissions never wider than the input's, non-regular targets refused,
batches all or nothing, stale temporary files of killed runs removed."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from mri_noiselab._atomic import (
    PART_SUFFIX,
    TEMP_PREFIX,
    AtomicBatch,
    atomic_write,
    check_writable,
    remove_stale_parts,
)


def _bits(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_output_takes_the_inputs_permissions_never_wider(tmp_path: Path, umask_022: None) -> None:
    out = atomic_write(tmp_path / "private.dcm", lambda fh: fh.write(b"x"), mode=0o600)
    assert _bits(out) == 0o600
    public = atomic_write(tmp_path / "public.dcm", lambda fh: fh.write(b"x"), mode=0o666)
    assert _bits(public) == 0o644  # the umask still applies: never wider than a normal new file


def test_new_folders_are_no_more_open_than_the_input_folder(tmp_path: Path, umask_022: None) -> None:
    out = atomic_write(tmp_path / "a" / "b" / "x.dcm", lambda fh: fh.write(b"x"), mode=0o600, folder_mode=0o700)
    assert _bits(out.parent) == 0o700 and _bits(out.parent.parent) == 0o700


def test_rewriting_keeps_an_existing_outputs_narrower_permissions(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "x.dcm"
    target.write_bytes(b"old")
    target.chmod(0o600)
    atomic_write(target, lambda fh: fh.write(b"new"))
    assert target.read_bytes() == b"new" and _bits(target) == 0o600


def test_the_process_umask_is_never_changed(tmp_path: Path, umask_022: None) -> None:
    atomic_write(tmp_path / "x.dcm", lambda fh: fh.write(b"x"), mode=0o600)
    current = os.umask(0o022)
    assert current == 0o022


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_non_regular_targets_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write(fifo, lambda fh: fh.write(b"patient data"))
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    if Path("/dev/null").exists():
        with pytest.raises(OSError, match="not a regular file"):
            check_writable("/dev/null")


def test_long_target_names_are_written(tmp_path: Path) -> None:
    name = "n" * 250 + ".dcm"  # the temporary name no longer grows with the target's
    assert atomic_write(tmp_path / name, lambda fh: fh.write(b"x")).read_bytes() == b"x"


def test_a_failed_batch_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with AtomicBatch() as batch:
            batch.write(tmp_path / "a.dcm", lambda fh: fh.write(b"a"))
            batch.write(tmp_path / "b.dcm", lambda fh: fh.write(b"b"))
            raise RuntimeError("the third file could not be encoded")
    assert list(tmp_path.iterdir()) == []


def test_a_batch_appears_only_at_commit(tmp_path: Path) -> None:
    batch = AtomicBatch()
    batch.write(tmp_path / "a.dcm", lambda fh: fh.write(b"a"))
    assert not (tmp_path / "a.dcm").exists()
    assert batch.commit() == [tmp_path / "a.dcm"]
    assert (tmp_path / "a.dcm").read_bytes() == b"a"
    assert [p.name for p in tmp_path.iterdir()] == ["a.dcm"]


def test_stale_parts_of_a_killed_run_are_removed_and_nothing_else(tmp_path: Path) -> None:
    stale = tmp_path / f"{TEMP_PREFIX}123-abcdef{PART_SUFFIX}"
    stale.write_bytes(b"patient data")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / f"{TEMP_PREFIX}456-abcdef{PART_SUFFIX}"  # another write of this very run
    fresh.write_bytes(b"")
    foreign = tmp_path / ".other.part"
    foreign.write_bytes(b"")
    os.utime(foreign, (old, old))
    assert remove_stale_parts([tmp_path]) == [stale]
    assert not stale.exists() and fresh.exists() and foreign.exists()


def test_a_private_series_gives_private_outputs_in_a_private_folder(tmp_path: Path, umask_022: None) -> None:
    """Through the CLI: 0600 inputs in a 0700 folder give 0600 outputs (and QC) in a new 0700 folder."""
    import io

    import numpy as np
    from dicom_helpers import phantom_volume, write_series

    from mri_noiselab.cli import main

    src = tmp_path / "in"
    _, noisy = phantom_volume(3, 64, 5.0, np.random.default_rng(0))
    paths = write_series(src, np.rint(noisy).astype(np.uint16))
    src.chmod(0o700)
    for p in paths:
        p.chmod(0o600)
    out = tmp_path / "out" / "series"
    code = main(["clean", str(src), "-o", str(out), "--sigma", "5", "--qc", str(tmp_path / "out" / "qc.png")],
                out=io.StringIO(), err=io.StringIO())
    assert code == 0
    written = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert len(written) == len(paths) + 1
    assert all(_bits(p) == 0o600 for p in written)
    assert _bits(out) == 0o700
