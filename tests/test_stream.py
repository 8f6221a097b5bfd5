"""A series streamed through worker processes: the bits of the whole-volume correction, all or nothing."""

from __future__ import annotations

import functools
import os

import numpy as np
import pydicom
import pytest
from dicom_helpers import phantom_volume, snapshot, write_series

from mri_noiselab import _atomic, stream
from mri_noiselab.blocks import blocks
from mri_noiselab.clean import CleanOptions, clean_group
from mri_noiselab.dicom import clean_source
from mri_noiselab.dicom.series import read_stack
from mri_noiselab.roi import roi_mask

ROI = functools.partial(lambda s: roi_mask(["0:6,0:6"], s.shape))


def _series(folder, slopes=None, dtype=np.int16, slices=9, size=40):
    """A phantom series; with ``slopes``, one RescaleSlope (and an intercept) per slice."""
    _, noisy = phantom_volume(slices, size, 8.0, np.random.default_rng(3))
    paths = write_series(folder, np.rint(noisy).astype(dtype))
    if slopes is not None:
        for path, slope in zip(paths, slopes):
            ds = pydicom.dcmread(path)
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", "2"
            ds.save_as(path, enforce_file_format=True)
    return paths


def _whole(paths, **options):
    """The reference: the stack read whole and corrected as one float64 array."""
    stack = read_stack(paths)
    (result,) = clean_group([stack], CleanOptions(**options), ROI)
    assert result is not None and result.stored is not None
    return result.stored


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize(("slopes", "dtype"), [(None, np.int16), (None, np.uint16), ([1.5, 0.5, 2, 1, 1, 3, 0.25, 1, 2], np.uint16)])
def test_streamed_series_has_the_whole_volumes_bits(tmp_path, monkeypatch, processes, slopes, dtype):
    paths = _series(tmp_path / "in", slopes, dtype)
    expected = _whole(paths, method="lmmse", f_size=5)
    monkeypatch.setattr(stream, "blocks", functools.partial(blocks, voxels=2 * 40 * 40))  # 5 blocks
    seen = []
    report = clean_source(tmp_path / "in", tmp_path / "out", background=ROI, f_size=5, num_threads=processes,
                          on_file=seen.append)
    assert not report.failures and len(report.written) == len(paths)
    assert sorted(seen) == sorted(paths)  # each file reported once, as it was written
    written = np.stack([pydicom.dcmread(tmp_path / "out" / p.name).pixel_array for p in paths])
    assert written.dtype == expected.dtype
    np.testing.assert_array_equal(written, expected)


def _fail_third(task, start, stop, threads):
    if start == 4:
        raise ValueError("block 3 cannot be written")
    return stream._write_block.__wrapped__(task, start, stop, threads)  # type: ignore[attr-defined]


def _die_third(task, start, stop, threads):
    if start == 4:
        os._exit(3)  # a worker killed (out of memory)
    return stream._write_block.__wrapped__(task, start, stop, threads)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("processes", "fault", "message"), [
    (1, _fail_third, "block 3 cannot be written"),
    (2, _fail_third, "block 3 cannot be written"),
    (2, _die_third, "a worker process died"),
])
def test_a_failed_block_leaves_no_output_and_no_temporary_file(tmp_path, monkeypatch, processes, fault, message):
    paths = _series(tmp_path / "in")
    before = snapshot(tmp_path / "in")
    monkeypatch.setattr(stream, "blocks", functools.partial(blocks, voxels=2 * 40 * 40))
    original = stream._write_block
    fault.__wrapped__ = original  # type: ignore[attr-defined]
    monkeypatch.setattr(stream, "_write_block", fault)
    with pytest.raises(Exception, match=message):
        clean_source(paths[0].parent, tmp_path / "out", background=ROI, num_threads=processes)
    assert snapshot(tmp_path / "in") == before
    left = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert left == []  # neither outputs nor temporary files


def test_many_files_are_flushed_by_one_syncfs(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(_atomic, "_syncfs", lambda: lambda fd: calls.append(fd) or 0)
    synced = []
    monkeypatch.setattr(_atomic, "_sync", lambda path, flags=os.O_RDONLY: synced.append(path))
    with _atomic.AtomicBatch() as batch:
        for i in range(10):
            batch.write(tmp_path / f"f{i}", lambda fh: fh.write(b"x"))
    assert len(calls) == 1  # one file system
    assert synced == [tmp_path]  # then the folder, once
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"f{i}" for i in range(10))


def test_without_syncfs_each_file_is_flushed(tmp_path, monkeypatch):
    monkeypatch.setattr(_atomic, "_syncfs", lambda: lambda fd: -1)  # an old kernel: each file then
    synced = []
    monkeypatch.setattr(_atomic, "_sync", lambda path, flags=os.O_RDONLY: synced.append(path))
    with _atomic.AtomicBatch() as batch:
        for i in range(10):
            batch.write(tmp_path / f"f{i}", lambda fh: fh.write(b"x"))
    assert len(synced) == 11 and synced[-1] == tmp_path
