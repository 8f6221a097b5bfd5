"""Bias correction of stored values: integers (or floats) in, the same type out, in one pass.

A DICOM or NIfTI image holds stored values v and a rescale to the magnitude M the noise
model needs. :func:`correct_stored` converts, corrects and converts back inside the
kernel, with the bits of the numpy sequence it replaces and no float64 copy of the image.
"""

from __future__ import annotations

from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    FSize,
    Method,
    check_axis,
    check_coils,
    check_image,
    check_mask,
    check_method,
    default_volume_axis,
    threads,
    window,
)
from mri_noiselab._kernels import _core
from mri_noiselab.correction import CorrectionReport, _check_report, _sigma_argument
from mri_noiselab.noise import SigmaEstimate

STORED_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64)
)
"""The types :func:`correct_stored` reads and writes."""


def _stored_array(stored: npt.ArrayLike) -> np.ndarray:
    """``stored`` as an aligned array in native byte order of one of STORED_DTYPES (a copy only when it is not)."""
    arr = np.asarray(stored)
    target = arr.dtype.newbyteorder("=")
    if target not in STORED_DTYPES:
        names = ", ".join(str(d) for d in STORED_DTYPES)
        raise TypeError(f"stored values must be one of {names}, got dtype {arr.dtype}")
    if arr.dtype != target or not arr.flags.aligned:
        arr = arr.astype(target)
    return check_image(arr, "stored")


def _rescale(values: npt.ArrayLike | None, name: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """One finite value, or one per index of the first axis, as a 1-D float64 array (None stays None)."""
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    per_slice = arr.ndim == 1 and arr.shape[0] == shape[0] and len(shape) >= 2
    if arr.ndim != 1 or not (arr.shape[0] == 1 or per_slice):
        raise ValueError(
            f"{name} must be one value, or one per index of the first axis of a 2-D to 4-D image "
            f"({shape[0]} for shape {shape}), got shape {np.shape(values)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr if arr.size <= 8 else 'an array with NaN or inf'}")
    return arr


def _bounds(dtype: np.dtype, lo: int | None, hi: int | None) -> tuple[float, float]:
    """The kernel's clip bounds: the given integers, by default the type's range; infinite for floats."""
    if dtype.kind == "f":
        if lo is not None or hi is not None:
            raise ValueError(f"{dtype} stored values are neither rounded nor clipped: leave lo and hi None")
        return -np.inf, np.inf
    info = np.iinfo(dtype)
    lo = info.min if lo is None else lo
    hi = info.max if hi is None else hi
    for name, b in (("lo", lo), ("hi", hi)):
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not info.min <= int(b) <= info.max:
            raise ValueError(f"{name} must be an integer in the range of {dtype} ({info.min} to {info.max}), got {b!r}")
    if lo > hi:
        raise ValueError(f"lo must be at most hi, got lo = {lo}, hi = {hi}")
    return float(lo), float(hi)


@overload
def correct_stored(
    stored: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    scale: npt.ArrayLike | None = None,
    offset: npt.ArrayLike | None = None,
    out_scale: npt.ArrayLike | None = None,
    out_offset: npt.ArrayLike | None = None,
    lo: int | None = None,
    hi: int | None = None,
    single: bool = False,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: Literal[False] = False,
) -> np.ndarray: ...


@overload
def correct_stored(
    stored: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    scale: npt.ArrayLike | None = None,
    offset: npt.ArrayLike | None = None,
    out_scale: npt.ArrayLike | None = None,
    out_offset: npt.ArrayLike | None = None,
    lo: int | None = None,
    hi: int | None = None,
    single: bool = False,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: Literal[True],
) -> tuple[np.ndarray, CorrectionReport]: ...


def correct_stored(
    stored: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    scale: npt.ArrayLike | None = None,
    offset: npt.ArrayLike | None = None,
    out_scale: npt.ArrayLike | None = None,
    out_offset: npt.ArrayLike | None = None,
    lo: int | None = None,
    hi: int | None = None,
    single: bool = False,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, CorrectionReport]:
    """Correct the magnitude of stored values and return it as stored values of the same type.

    The same bits as converting to float64, :func:`mri_noiselab.correct` and converting back
    in numpy (see Notes), in one pass and without a float64 copy of the image.

    Parameters
    ----------
    stored : array_like
        Stored values, 1-D to 4-D: int8, uint8, int16, uint16, int32, uint32,
        float32 or float64 (any byte order; strided views are read in place).
    sigma, f_size, method, coils
        As in :func:`mri_noiselab.correct`, in the units of the magnitude.
    scale, offset : array_like, optional
        The magnitude of stored value v in slice s (index s of the first axis):
        ``v * scale[s] + offset[s]``. One value for every voxel, or one per
        slice (2-D to 4-D images). None leaves v as it is.
    out_scale, out_offset : array_like, optional
        The stored value of corrected magnitude y: ``y * out_scale[s] - out_offset[s]``,
        shaped as ``scale``. None leaves y as it is.
    lo, hi : int, optional
        Integer types: the range the rounded values are clipped to (DICOM's
        BitsStored range); the type's range by default. Not for float types,
        which are neither rounded nor clipped.
    single : bool
        Correct as :func:`mri_noiselab.correct` does a float32 magnitude (its
        result rounded to float32): for the types float32 holds exactly (8- and
        16-bit integers, float32) without ``scale`` and ``offset``.
    mask, volume_axis, slice_axis, num_threads, return_report
        As in :func:`mri_noiselab.correct`; voxels outside the mask keep their
        magnitude, converted back like the others.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, CorrectionReport)
        Stored values of ``stored``'s dtype (native byte order) and shape; the
        report describes the magnitudes.

    Raises
    ------
    ValueError
        As :func:`mri_noiselab.correct` for the magnitudes (NaN/inf, negative,
        too large), sigma, f_size, coils, method or axes; for rescales that are
        not finite or not one value or one per slice; for bounds outside the
        type or lo > hi, bounds for a float type, and ``single`` where it does
        not apply.
    TypeError
        For other dtypes.

    Notes
    -----
    With ``s`` indexing the first axis and each step skipped when its argument is None::

        m = stored.astype(np.float64)          # np.float32 with single=True
        m *= scale[s]; m += offset[s]
        y = correct(m, sigma, f_size, method, coils, ...).astype(np.float64)
        y *= out_scale[s]; y -= out_offset[s]
        y = np.clip(np.rint(y), lo, hi)        # integer types only
        out = y.astype(stored.dtype)

    Each product and sum is rounded on its own, as in numpy (no fused multiply-add).

    Examples
    --------
    >>> from mri_noiselab.stored import correct_stored
    >>> rng = np.random.default_rng(0)
    >>> truth = np.full((4, 64, 64), 20.0)  # SNR 2 in stored units
    >>> v = np.rint(np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))).astype(np.int16)
    >>> out = correct_stored(v, 20.0, scale=[2.0], out_scale=[0.5])  # magnitude 2 v: sigma 20
    >>> out.dtype, round(float(v.mean()), 1), round(float(out.mean()), 1)
    (dtype('int16'), 22.8, 20.0)
    """
    method = check_method(method)
    coils = check_coils(coils)
    arr = _stored_array(stored)
    volumes = default_volume_axis(arr.ndim, volume_axis)
    slices = check_axis(slice_axis, arr.ndim, "slice_axis")
    sizes = window(1 if method == "pointwise" else f_size, arr.shape, volume_axis=volumes, slice_axis=slices, coils=coils)
    scalar, sigma_map = _sigma_argument(sigma, arr.shape, coils, volumes)
    into = (_rescale(scale, "scale", arr.shape), _rescale(offset, "offset", arr.shape))
    back = (_rescale(out_scale, "out_scale", arr.shape), _rescale(out_offset, "out_offset", arr.shape))
    low, high = _bounds(arr.dtype, lo, hi)
    if single and (arr.dtype.itemsize > 2 and arr.dtype != np.float32 or scale is not None or offset is not None):
        raise ValueError(
            f"single precision is for types float32 holds exactly (8- and 16-bit integers, float32) and no scale "
            f"or offset, got {arr.dtype}{' with a rescale' if scale is not None or offset is not None else ''}"
        )
    mask_arr = None if mask is None else check_mask(mask, arr.shape).view(np.uint8)
    kernel: Literal["moments", "lmmse"] = "lmmse" if method == "lmmse" else "moments"
    out, rep = _core.correct_stored(arr, scalar, list(sizes), kernel, coils, mask_arr, sigma_map, threads(num_threads),
                                    *into, *back, low, high, bool(single))
    report = _check_report(rep, kernel, "magnitude")
    return (out, report) if return_report else out


__all__ = ["STORED_DTYPES", "correct_stored"]
