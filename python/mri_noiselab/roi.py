"""Background regions of interest: boxes given as text, boolean masks, corner boxes.

A box is written ``"R0:R1,C0:C1"`` (rows, columns; in-plane, applied to every
slice) or ``"R0:R1,C0:C1,S0:S1"`` (adds a slice or frame range). Ranges are
zero-based and half-open like Python slices: ``"0:10"`` holds rows 0 to 9.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

_RANGE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
_AXIS_NAMES = ("rows", "columns", "slices")


@dataclass(frozen=True)
class Roi:
    """A box: a row range and a column range, optionally a slice range.

    Attributes
    ----------
    rows, cols : tuple of int
        Half-open ``(start, stop)`` ranges, ``start < stop``.
    slices : tuple of int or None
        Half-open slice (frame) range; None means every slice.
    """

    rows: tuple[int, int]
    cols: tuple[int, int]
    slices: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for name, rng in zip(_AXIS_NAMES, (self.rows, self.cols, self.slices)):
            if rng is None:
                continue
            start, stop = rng
            if start < 0:
                raise ValueError(f"ROI {name} range {start}:{stop} starts below 0")
            if stop < start:
                raise ValueError(f"ROI {name} range {start}:{stop} is reversed: write {stop}:{start}")
            if stop == start:
                raise ValueError(f"ROI {name} range {start}:{stop} is empty: the stop index is excluded")

    def __str__(self) -> str:
        parts = [self.rows, self.cols] + ([self.slices] if self.slices is not None else [])
        return ",".join(f"{a}:{b}" for a, b in parts)

    def index(self, shape: tuple[int, ...]) -> tuple[slice, ...]:
        """Return the index of this box in an array of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, cols)`` or ``(slices, rows, cols)``.

        Raises
        ------
        ValueError
            If the box leaves the array, or has a slice range and ``shape`` is 2-D.
        """
        if len(shape) not in (2, 3):
            raise ValueError(f"an ROI applies to a 2-D image or a 3-D stack (slices, rows, cols), got shape {shape}")
        if len(shape) == 2 and self.slices is not None:
            raise ValueError(f"ROI {self} has a slice range but the image is 2-D")
        in_plane = shape[-2:]
        for name, (start, stop), size in zip(_AXIS_NAMES, (self.rows, self.cols), in_plane):
            if stop > size:
                raise ValueError(f"ROI {name} range {start}:{stop} is out of bounds: the image has {size} {name}")
        plane = (slice(*self.rows), slice(*self.cols))
        if len(shape) == 2:
            return plane
        if self.slices is None:
            return (slice(None), *plane)
        start, stop = self.slices
        if stop > shape[0]:
            raise ValueError(f"ROI slices range {start}:{stop} is out of bounds: the stack has {shape[0]} slices")
        return (slice(start, stop), *plane)

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Return a boolean mask of ``shape``, True inside the box (see :meth:`index`)."""
        out = np.zeros(shape, dtype=bool)
        out[self.index(shape)] = True
        return out


def parse_roi(text: str) -> Roi:
    """Parse ``"R0:R1,C0:C1"`` or ``"R0:R1,C0:C1,S0:S1"`` into a :class:`Roi`.

    Raises
    ------
    ValueError
        For malformed text, negative, reversed or empty ranges.

    Examples
    --------
    >>> from mri_noiselab.roi import parse_roi
    >>> roi = parse_roi("0:20,236:256")
    >>> roi
    Roi(rows=(0, 20), cols=(236, 256), slices=None)
    >>> roi.index((3, 256, 256))  # on every slice of a (slices, rows, cols) stack
    (slice(None, None, None), slice(0, 20, None), slice(236, 256, None))
    """
    if not isinstance(text, str):
        raise TypeError(f"an ROI is given as text like '0:20,0:20', got {type(text).__name__}")
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise ValueError(
            f"malformed ROI {text!r}: expected R0:R1,C0:C1 or R0:R1,C0:C1,S0:S1 (zero-based, stop excluded)"
        )
    ranges: list[tuple[int, int]] = []
    for name, part in zip(_AXIS_NAMES, parts):
        m = _RANGE.match(part)
        if m is None:
            raise ValueError(
                f"malformed ROI {text!r}: the {name} range {part.strip()!r} is not START:STOP "
                "with non-negative integers"
            )
        ranges.append((int(m.group(1)), int(m.group(2))))
    return Roi(ranges[0], ranges[1], ranges[2] if len(ranges) == 3 else None)


def roi_mask(rois: Iterable[Roi | str], shape: Sequence[int], axes: Sequence[int] | None = None) -> np.ndarray:
    """Return the union of several boxes as a boolean mask of ``shape``.

    Parameters
    ----------
    rois : iterable of Roi or str
        Boxes, or their text form (see :func:`parse_roi`).
    shape : tuple of int
        ``(rows, cols)`` or ``(slices, rows, cols)``; with ``axes``, any image.
    axes : sequence of int, optional
        The array axes of rows, columns (and slices) in an image of ``shape``,
        e.g. ``(0, 1, 2)`` for NIfTI's ``(x, y, z[, t])``; the boxes cover every
        other axis (volumes) whole.

    Returns
    -------
    numpy.ndarray of bool
        Read-only when the boxes are the same on every slice or volume (a view
        of one plane).

    Raises
    ------
    ValueError
        If no box is given or one leaves the array.

    Examples
    --------
    >>> from mri_noiselab.roi import roi_mask
    >>> mask = roi_mask(["0:20,0:20", "0:20,236:256"], (3, 256, 256))  # two boxes on every slice
    >>> mask.shape, int(mask.sum())
    ((3, 256, 256), 2400)
    >>> roi_mask(["0:2,0:3,1:2"], (3, 4, 5)).sum(axis=(1, 2))  # rows 0-1, columns 0-2, slice 1 only
    array([0, 6, 0])
    >>> int(roi_mask(["0:20,0:20"], (64, 64, 30, 5), axes=(0, 1, 2)).sum())  # NIfTI (x, y, z, t)
    60000
    """
    shape = tuple(shape)
    if axes is not None:
        rows, cols, *slices = axes
        inner = (*(shape[a] for a in slices), shape[rows], shape[cols])
        placed = roi_mask(rois, inner).reshape(inner + (1,) * (len(shape) - len(inner)))
        placed = np.moveaxis(placed, list(range(len(inner))), [*slices, rows, cols])
        return np.broadcast_to(placed, shape)
    boxes = [parse_roi(roi) if isinstance(roi, str) else roi for roi in rois]
    if not boxes:
        raise ValueError("no ROI given: give at least one box like '0:20,0:20'")
    if len(shape) == 3 and all(box.slices is None for box in boxes):
        # The same boxes on every slice: one plane seen as a stack, read-only, without a copy
        # (a mask of 1000 slices of 512 x 512 would hold 262 MB).
        return np.broadcast_to(roi_mask(boxes, shape[1:]), shape)
    out = np.zeros(shape, dtype=bool)
    for box in boxes:
        out[box.index(shape)] = True
    return out


def corner_rois(shape: tuple[int, ...], size: int | None = None) -> list[Roi]:
    """Return the four in-plane corner boxes of an image, a quick manual background.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, cols)`` or ``(slices, rows, cols)``; only the last two axes count.
    size : int, optional
        Side of each square box; by default an eighth of the shorter side (at least 2).

    Notes
    -----
    The corners of an MR field of view are usually air, hence noise only. Check
    the boxes in a QC figure: wrap-around or a tight field of view puts anatomy
    there, and zero-padded images have no noise there at all.

    Examples
    --------
    >>> from mri_noiselab.roi import corner_rois
    >>> [str(roi) for roi in corner_rois((256, 256))]
    ['0:32,0:32', '0:32,224:256', '224:256,0:32', '224:256,224:256']
    """
    if len(shape) < 2:
        raise ValueError(f"corner boxes need an image with rows and columns, got shape {shape}")
    rows, cols = shape[-2:]
    side = max(2, min(rows, cols) // 8) if size is None else int(size)
    if side < 1 or 2 * side > min(rows, cols):
        raise ValueError(f"corner box size {side} does not fit twice in a {rows}x{cols} image")
    return [
        Roi((r0, r0 + side), (c0, c0 + side))
        for r0 in (0, rows - side)
        for c0 in (0, cols - side)
    ]


__all__ = ["Roi", "corner_rois", "parse_roi", "roi_mask"]
