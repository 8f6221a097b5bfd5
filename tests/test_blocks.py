"""A DICOM stack cleaned a few slices at a time gives the bits of the whole stack in float64."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_helpers import phantom_volume, write_series

import mri_noiselab as nl
from mri_noiselab import blocks
from mri_noiselab.dicom import DicomStack, read_source


@pytest.mark.parametrize(("slope", "intercept"), [(1.0, 0.0), (0.37, -12.5)])
@pytest.mark.parametrize("method", ["lmmse", "moments"])
def test_blocks_of_two_slices_give_the_whole_stacks_bits(tmp_path, monkeypatch, slope, intercept, method):
    _, noisy = phantom_volume(7, 48, 10.0, np.random.default_rng(5))
    write_series(tmp_path / "in", np.rint(noisy).astype(np.int16) + 40, RescaleSlope=slope, RescaleIntercept=intercept)
    (stack,) = read_source(tmp_path / "in").stacks
    assert float(stack.slope[0]) == slope and float(stack.intercept[0]) == intercept
    run = functools.partial(nl.correct, sigma=4.0, f_size=(1, 5, 5), method=method)
    whole = stack.to_stored(run(stack.magnitude_block(slice(None))))  # the reference: one float64 array
    monkeypatch.setattr(blocks, "blocks", functools.partial(blocks.blocks, voxels=2 * 48 * 48))
    assert len(blocks.blocks(stack)) == 4  # 2 + 2 + 2 + 1 slices
    stored = np.concatenate([blocks.stored_block(stack, b, name="in", sigma=4.0, f_size=(1, 5, 5), method=method)
                             for b in blocks.blocks(stack)])  # stored values in and out, in the kernel
    assert stored.dtype == whole.dtype
    np.testing.assert_array_equal(stored, whole)
    mask = np.zeros(stack.shape, bool)
    mask[:, :6, :6] = True
    np.testing.assert_array_equal(blocks.masked_values(stack, mask), stack.magnitude()[mask])


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32])
def test_negative_check_and_masked_values_match_the_magnitude(dtype):
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    stored = rng.integers(max(info.min, -300), 300, size=(6, 5, 4)).astype(dtype)
    for slope, intercept in [(np.ones(6), np.zeros(6)), (rng.uniform(0.1, 3, 6), rng.uniform(-50, 50, 6)),
                             (-rng.uniform(0.1, 3, 6), rng.uniform(0, 900, 6))]:
        stack = DicomStack([pydicom.Dataset()], [Path("x.dcm")], stored, slope, intercept)
        magnitude = stack.magnitude_block(slice(None))
        mask = rng.random(stored.shape) < 0.3
        for b in (slice(0, 2), slice(2, 6)):
            assert stack.negative_block(b) == bool(np.any(magnitude[b] < 0))
            np.testing.assert_array_equal(stack.masked_block(b, mask[b]), magnitude[b][mask[b]])


def test_masked_values_of_a_plane_repeated_on_every_slice():
    stored = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    stack = DicomStack([pydicom.Dataset()], [Path("x.dcm")], stored, np.full(4, 0.5), np.arange(4.0))
    plane = np.zeros((5, 6), bool)
    plane[1:3, 2:5] = True
    view = np.broadcast_to(plane, stored.shape)  # what roi_mask gives for boxes without slices
    np.testing.assert_array_equal(stack.masked_block(slice(1, 4), view[1:4]),
                                  stack.magnitude_block(slice(1, 4))[np.ascontiguousarray(view[1:4])])


@pytest.mark.parametrize("limit", [None, 10_000, 1000, 7, 1])
def test_a_limited_sample_is_every_kth_value_of_the_whole(monkeypatch, limit):
    rng = np.random.default_rng(2)
    stored = rng.integers(0, 500, size=(9, 20, 30)).astype(np.int16)
    stack = DicomStack([pydicom.Dataset()], [Path("x.dcm")], stored, np.full(9, 2.0), np.zeros(9))
    mask = rng.random(stored.shape) < 0.4
    whole = stack.magnitude()[mask]
    monkeypatch.setattr(blocks, "blocks", functools.partial(blocks.blocks, voxels=2 * 20 * 30))
    got = blocks.masked_values(stack, mask, limit)
    step = 1 if limit is None or whole.size <= limit else -(-whole.size // limit)
    np.testing.assert_array_equal(got, whole[::step])
    assert limit is None or got.size <= limit


def test_halo_exact_needs_unscaled_small_integers_and_a_window_whose_sums_stay_exact(tmp_path):
    _, noisy = phantom_volume(6, 24, 10.0, np.random.default_rng(2))
    write_series(tmp_path / "u16", np.rint(noisy).astype(np.uint16))
    write_series(tmp_path / "scaled", np.rint(noisy).astype(np.int16), RescaleSlope=0.5, RescaleIntercept=-3)
    (plain,) = read_source(tmp_path / "u16").stacks
    (scaled,) = read_source(tmp_path / "scaled").stacks
    assert blocks.halo_exact(plain, (5, 9, 9)) and blocks.halo_exact(plain, (6, 1, 1))
    assert not blocks.halo_exact(plain, (7, 3, 3))  # longer than the 6 slices
    assert not blocks.halo_exact(plain, (3, 900, 900))  # 65535^2 x 2.4 million voxels passes 2^53
    assert not blocks.halo_exact(scaled, (3, 3, 3))  # magnitudes are not the stored integers
