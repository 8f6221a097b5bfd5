"""Cleaning a volume a few slices at a time, where its format gives slice blocks (a DICOM stack).

A series of 200 slices of 512 x 512 int16 is 100 MiB stored but 400 MiB as a float64
magnitude. The background values and the check for negative values go through blocks of
about 2 million voxels, and the correction takes stored values and gives stored values
(:func:`mri_noiselab.stored.correct_stored`), a block at a time where the window keeps
slices apart: the kernel gives the same bits for a block as for the whole volume (a window
of 1 on the outermost axis restarts every sum at each slice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mri_noiselab.stored import correct_stored

BLOCK_VOXELS = 1 << 21
"""Voxels per block: 16 MiB of float64, 8 slices of 512 x 512."""


@runtime_checkable
class SliceBlocks(Protocol):
    """A volume of shape ``(slices, ...)`` that converts blocks of slices between stored values and magnitude."""

    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the stored values."""
        ...
    def magnitude_block(self, block: slice, stored: np.ndarray | None = None) -> np.ndarray:
        """The magnitude of slices ``block`` (of ``stored``, slices ``block`` of another array, when given)."""
        ...
    def masked_block(self, block: slice, mask: np.ndarray) -> np.ndarray:
        """``magnitude_block(block)[mask]``, ``mask`` being the block's part of a mask of the volume."""
        ...
    def negative_block(self, block: slice, stored: np.ndarray | None = None) -> bool:
        """Whether any magnitude value of slices ``block`` (whose stored values are ``stored``, when given) is below zero."""
        ...
    def stored_block(self, block: slice) -> np.ndarray:
        """The stored values of slices ``block``."""
        ...
    def stored_rescale(self, block: slice) -> dict[str, Any]:
        """The rescale of slices ``block`` as :func:`mri_noiselab.stored.correct_stored` takes it."""
        ...


@runtime_checkable
class WholeStored(Protocol):
    """A volume corrected whole from its stored values to stored values (a NIfTI image)."""

    @property
    def stored(self) -> np.ndarray: ...
    def whole_rescale(self) -> dict[str, Any]:
        """Its rescale as :func:`mri_noiselab.stored.correct_stored` takes it."""
        ...


def blocks(volume: SliceBlocks, voxels: int = BLOCK_VOXELS) -> list[slice]:
    """Consecutive blocks of whole slices covering the volume, each about ``voxels`` voxels."""
    n = volume.shape[0]
    per = max(1, voxels // max(1, int(np.prod(volume.shape[1:]))))
    return [slice(i, min(i + per, n)) for i in range(0, n, per)]


class Magnitude(Protocol):
    """Any volume: a shape and a magnitude."""

    @property
    def shape(self) -> tuple[int, ...]: ...
    def magnitude(self) -> np.ndarray: ...


def masked_values(volume: Magnitude, mask: np.ndarray, limit: int | None = None) -> np.ndarray:
    """``volume.magnitude()[mask]``, block by block where the volume gives blocks.

    With ``limit``, every k-th of those values, k the smallest step that keeps at most
    ``limit`` of them (``values[::k]``, gathered without holding the others).
    """
    if not isinstance(volume, SliceBlocks):
        return every_kth(np.asarray(volume.magnitude()[mask]), limit)
    # Filled in place: a list of parts and their concatenation would hold the sample twice.
    chosen = [(b, int(np.count_nonzero(mask[b]))) for b in blocks(volume)]
    total = sum(n for _, n in chosen)
    step = _step(total, limit)
    out = np.empty(-(-total // step))
    start = filled = 0  # the index in the whole sample where this block starts; values kept so far
    for b, n in chosen:
        if n:
            kept = volume.masked_block(b, mask[b])[-start % step :: step]
            out[filled : filled + kept.size] = kept
            filled += kept.size
            start += n
    return out


def _step(total: int, limit: int | None) -> int:
    return 1 if limit is None or total <= limit else -(-total // limit)


def every_kth(values: np.ndarray, limit: int | None) -> np.ndarray:
    """``values[::k]``, k the smallest step that keeps at most ``limit`` of them: :func:`masked_values`'s sample."""
    return values[:: _step(values.size, limit)]


def any_negative(volume: Magnitude) -> bool:
    """Whether any magnitude value is below zero."""
    if not isinstance(volume, SliceBlocks):
        return bool(np.any(volume.magnitude() < 0))
    return any(volume.negative_block(b) for b in blocks(volume))


def below_zero(name: str) -> ValueError:
    """The error for an image with values below zero signal, which no magnitude image has."""
    return ValueError(f"{name}: values below zero signal (after the rescale intercept): not a magnitude image, "
                      "or an intercept that does not mark zero signal")


def halo_exact(volume: SliceBlocks, window: Sequence[int]) -> bool:
    """Whether slices corrected with ``window[0] // 2`` slices on each side (a halo) get the bits of the
    whole volume's correction with ``window`` (slices first).

    They do where the magnitudes are the stored 8- or 16-bit integers (no rescale) and the
    window holds few enough of them: the kernel's window sums of their squares are then
    exact (below 2^53, a sufficient bound whichever axis is summed first), those of their
    fourth powers compensated to the exact sum (TwoSum's errors of integers are integers),
    so no sum depends on the slice where its running sums start, and the halo holds every
    slice the windows of a block's slices reach. A window longer than the volume is
    corrected whole: rare, and a halo would then be most of the volume.
    """
    if volume.dtype.kind not in "iu" or volume.dtype.itemsize > 2:
        return False
    largest = float(max(abs(np.iinfo(volume.dtype).min), np.iinfo(volume.dtype).max))
    unscaled = set(volume.stored_rescale(slice(0, 1))) <= {"lo", "hi"}  # correct_stored gets no rescale
    return unscaled and window[0] <= volume.shape[0] and largest**2 * math.prod(window) < 2.0**53


def stored_block(volume: SliceBlocks, block: slice, threads: int | None = None, *, name: str, halo: int = 0,
                 **correction: Any) -> np.ndarray:
    """Stored values of slices ``block`` corrected in the kernel: stored values in, stored values out.

    ``correction`` holds :func:`mri_noiselab.stored.correct_stored`'s sigma, f_size,
    method, coils and num_threads; ``threads``, when given, replaces num_threads.
    ``halo`` slices on each side are read and corrected with the block, where the window
    spans slices (see :func:`halo_exact`), and left out of the result. The slices read
    are checked for values below zero signal (``name`` in the error): a streamed series
    is read once for its correction, not once more for the check.
    """
    if threads is not None:
        correction["num_threads"] = threads
    start, stop, _ = block.indices(volume.shape[0])
    read = slice(max(0, start - halo), min(volume.shape[0], stop + halo))
    stored = volume.stored_block(read)
    if volume.negative_block(read, stored):
        raise below_zero(name)
    out: np.ndarray = correct_stored(stored, **correction, **volume.stored_rescale(read))
    return out[start - read.start : stop - read.start]


__all__ = [
    "BLOCK_VOXELS", "Magnitude", "SliceBlocks", "WholeStored", "any_negative", "below_zero", "blocks", "every_kth",
    "halo_exact", "masked_values", "stored_block",
]
