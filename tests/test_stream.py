"""A series streamed through worker processes: the bits of the whole-volume correction, all or nothing."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from dicom_helpers import phantom_volume, snapshot, write_series

import mri_noiselab as nl
from mri_noiselab import _atomic, stream
from mri_noiselab.blocks import blocks
from mri_noiselab.clean import CleanOptions, clean_group
from mri_noiselab.dicom import DicomStack, clean_source
from mri_noiselab.dicom.series import read_stack
from mri_noiselab.dicom.pixels import pixel_ref, read_dataset
from mri_noiselab.errors import DicomError
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


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize("given", [{"background": ROI}, {"sigma": 8.0}])  # found in the ROI, or while correcting
def test_a_slice_below_zero_signal_fails_the_series_with_nothing_written(tmp_path, monkeypatch, processes, given):
    """A streamed series is checked for values below zero as each block is read, for sigma or its correction."""
    paths = _series(tmp_path / "in", dtype=np.uint16)
    ds = pydicom.dcmread(paths[6])
    ds.RescaleIntercept, ds.RescaleSlope = "-100", "1"  # slice 6 only: the check must reach the last blocks
    ds.save_as(paths[6], enforce_file_format=True)
    before = snapshot(tmp_path / "in")
    monkeypatch.setattr(stream, "blocks", functools.partial(blocks, voxels=2 * 40 * 40))
    with pytest.raises(ValueError, match=rf"{paths[0].name} \(\+8 files\): values below zero signal"):
        clean_source(paths[0].parent, tmp_path / "out", num_threads=processes, **given)
    assert snapshot(tmp_path / "in") == before
    left = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else []
    assert left == []


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


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm"])
@pytest.mark.parametrize("rows", [slice(None), slice(0, 5), slice(30, 64), slice(7, 7)])
def test_rows_of_a_slice_are_what_pydicom_decodes(name, rows):
    """A ROI's rows are read alone where the pixels lie uncompressed, decoded whole otherwise:
    either way the values pydicom's pixel_array gives for those rows."""
    path = Path(get_testdata_file(name))
    expected = pydicom.dcmread(path).pixel_array[rows]
    ref = pixel_ref(read_dataset(path, defer_pixels=True), path)
    got = np.full((1, *expected.shape), -1, dtype=expected.dtype.newbyteorder("="))  # stacks hold native order
    ref.read_into(got, rows.start or 0, 64)
    np.testing.assert_array_equal(got[0], expected)


def test_roi_values_are_those_of_the_whole_slices(tmp_path):
    paths = _series(tmp_path / "in", [1.5, 0.5, 2, 1, 1, 3, 0.25, 1, 2], np.uint16)
    stack = read_stack(paths)
    mask = np.broadcast_to(roi_mask(["3:9,5:30"], stack.shape[1:]), stack.shape)
    expected = stack.magnitude()[mask]  # the rescale applied to whole slices
    np.testing.assert_array_equal(stack.masked_block(slice(None), mask), expected)


def test_a_file_cut_short_after_its_header_was_read_fails_by_name(tmp_path):
    paths = _series(tmp_path / "in")
    stack = read_stack(paths)
    head = [pydicom.dcmread(p).pixel_array[:2] for p in paths[3:6]]
    with open(paths[4], "r+b") as fh:
        fh.truncate(os.path.getsize(paths[4]) - 100)
    with pytest.raises(DicomError, match=f"{paths[4].name}: the file is shorter than when it was read"):
        stack.stored_block(slice(3, 6))
    with pytest.raises(DicomError, match=f"{paths[4].name}: the file is shorter"):
        stack.stored_block(slice(3, 6), slice(35, 40))
    np.testing.assert_array_equal(stack.stored_block(slice(3, 6), slice(0, 2)), head)  # the rows that are there


@pytest.mark.parametrize("processes", [1, 2])
@pytest.mark.parametrize(("dtype", "gain", "window", "slopes", "streamed"), [
    (np.int16, 1, (3, 3, 5), None, True),
    (np.uint16, 100, (5, 5, 4), None, True),  # values to 40,000: M^4 beyond 2^53, where only compensated sums are exact
    (np.uint8, 0.5, (3, 3, 9), None, True),  # the window spans the whole stack
    (np.int16, 1, (3, 3, 11), None, False),  # longer than the stack
    (np.uint16, 1, (3, 3, 5), [1.5, 0.5, 2, 1, 1, 3, 0.25, 1, 2], False),  # rescaled: not integers
])
def test_a_window_across_slices_streams_with_a_halo_and_keeps_the_whole_volumes_bits(
        tmp_path, monkeypatch, processes, dtype, gain, window, slopes, streamed):
    _, noisy = phantom_volume(9, 40, 8.0, np.random.default_rng(3))
    paths = write_series(tmp_path / "in", np.rint(noisy * gain).astype(dtype))
    for path, slope in zip(paths, slopes or []):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", "2"
        ds.save_as(path, enforce_file_format=True)
    stack = read_stack(paths)
    sizes = {"f_size": window[2:] + window[:2], "method": "lmmse", "sigma": 8.0 * gain}
    expected = stack.to_stored(nl.correct(stack.magnitude_block(slice(None)), **sizes))  # whole, in float64
    read: list[int] = []
    stored_block = DicomStack.stored_block
    monkeypatch.setattr(DicomStack, "stored_block", lambda self, block, rows=slice(None): (
        read.append(len(range(*block.indices(self.shape[0])))) or stored_block(self, block, rows)))
    monkeypatch.setattr(stream, "blocks", functools.partial(blocks, voxels=2 * 40 * 40))  # 5 blocks
    report = clean_source(tmp_path / "in", tmp_path / "out", sigma=8.0 * gain, f_size=window,
                          num_threads=processes, method="lmmse")
    assert not report.failures and len(report.written) == len(paths)
    written = np.stack([pydicom.dcmread(tmp_path / "out" / p.name).pixel_array for p in paths])
    np.testing.assert_array_equal(written, expected)
    if processes == 1:  # (workers read in their own processes): blocks of 2 slices and their halos, or all 9
        assert max(read) == (min(9, 2 + 2 * (window[2] // 2)) if streamed else 9)
        assert (min(read) < 9) == streamed
