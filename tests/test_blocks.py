"""A DICOM stack cleaned a few slices at a time gives the bits of the whole stack in float64."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from dicom_helpers import phantom_volume, write_series

import mri_noiselab as nl
from mri_noiselab import blocks
from mri_noiselab.dicom import read_source


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
    stored, corrected = blocks.corrected_stored(stack, run, stack.to_stored, across_slices=False)
    assert corrected is None and stored.dtype == whole.dtype
    np.testing.assert_array_equal(stored, whole)
    mask = np.zeros(stack.shape, bool)
    mask[:, :6, :6] = True
    np.testing.assert_array_equal(blocks.masked_values(stack, mask), stack.magnitude()[mask])
