"""Big volumes on Dask (optional ``dask`` extra): :func:`correct`, lazily, block by block.

On a dask array of any chunking the correction runs through
:func:`dask.array.map_overlap`; a memory map, zarr or h5py array is read block by
block, each block fetching its own halo, so that a volume larger than memory is
processed with bounded memory. Batches of files run through :mod:`mri_noiselab.batch`.
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    FSize,
    Method,
    as_kernel_array,
    check_axis,
    check_coils,
    check_shape,
    check_method,
    check_sigma_values,
    default_volume_axis,
    sigma_shape,
    window,
)
from mri_noiselab.correction import correct as _correct
from mri_noiselab.errors import DASK_INSTALL
from mri_noiselab.noise import SigmaEstimate

if TYPE_CHECKING:
    import dask.array


def _dask_array() -> Any:
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(f"this needs dask: {DASK_INSTALL}") from None
    return da


def overlap_depth(window: Sequence[int]) -> tuple[int, ...]:
    """Halo each block needs on each side, per axis, for a box window of ``window``.

    scipy's window for output i covers ``i - w//2 .. i - w//2 + w - 1``: it
    reaches ``w//2`` back and ``w - 1 - w//2`` forward, so ``w//2`` on both
    sides is enough (one more than needed forward when ``w`` is even).
    """
    return tuple(int(w) // 2 for w in window)


def _plan_chunks(chunks: tuple[tuple[int, ...], ...], shape: tuple[int, ...], depth: tuple[int, ...]) -> tuple[tuple[tuple[int, ...], ...], dict[int, int]]:
    """Chunks that give every block its halo, and the depth actually needed per axis.

    An axis in one chunk needs no halo: the kernel sees all of it and applies
    the reflect boundary itself, however long the window. A halo longer than
    the axis would need several reflections, which dask's padding cannot do,
    so such an axis is put in one chunk. Otherwise chunks shorter than the
    halo are merged with their neighbours.
    """
    da = _dask_array()
    new: list[tuple[int, ...]] = []
    needed: dict[int, int] = {}
    for axis, (c, n, d) in enumerate(zip(chunks, shape, depth)):
        if d == 0 or len(c) == 1:
            new.append(c)
        elif d > n:
            new.append((n,))
        else:
            c = da.overlap.ensure_minimum_chunksize(d, c)
            new.append(c)
            if len(c) > 1:
                needed[axis] = d
    return tuple(new), needed


def _sigma(sigma: Any, shape: tuple[int, ...], volume_axis: int | None, da: Any) -> Any:
    """sigma as a block operand: a float, or an array (NumPy or dask) shaped to broadcast to ``shape``."""
    if isinstance(sigma, SigmaEstimate):
        sigma = sigma.sigma
    if not isinstance(sigma, da.Array) and np.ndim(sigma) == 0:
        return float(check_sigma_values(np.asarray(sigma, dtype=np.float64)))
    values = sigma if isinstance(sigma, da.Array) else check_sigma_values(np.asarray(sigma, dtype=np.float64))
    return values.reshape(sigma_shape(tuple(values.shape), shape, volume_axis))


def correct(
    darr: dask.array.Array | npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike | dask.array.Array,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | dask.array.Array | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    chunks: str | Sequence[int] = "64MiB",
    num_threads: int | None = 1,
) -> dask.array.Array:
    """Lazy :func:`mri_noiselab.correct` of a volume in blocks, for volumes larger than memory.

    Parameters
    ----------
    darr : dask.array.Array, or an array read by slicing
        Magnitude image, 1-D to 4-D: a dask array of any chunking; or a NumPy
        array, ``numpy.memmap`` (``np.load(path, mmap_mode="r")``), zarr or
        h5py array, from which each block reads its own region and halo.
    sigma, f_size, method, coils, mask, volume_axis, slice_axis
        As in :func:`mri_noiselab.correct`; sigma and mask may be dask arrays.
    chunks : str or tuple of int
        Block shape when ``darr`` is not a dask array: a size such as the
        default ``"64MiB"`` (dask's blocks of about that size), or one length
        >= 1 per axis (-1: the whole axis); a dask array keeps its own chunks.
    num_threads : int, optional
        Kernel threads per block (default 1: dask already runs blocks in
        parallel). None uses :func:`mri_noiselab.set_num_threads`'s setting.

    Returns
    -------
    dask.array.Array
        The corrected magnitude, float32 (float64 for float64 input). Nothing
        is computed until asked (``.compute()``, ``.to_zarr()``,
        ``dask.array.store``); bad voxels (NaN, negative) raise ValueError then.

    Raises
    ------
    ImportError
        Without dask.
    ValueError, TypeError
        For bad sigma, f_size, coils, method, axes, shape, dtype or chunks.

    Notes
    -----
    Each block is extended by a halo of ``w // 2`` voxels per axis
    (:func:`overlap_depth`), corrected, and trimmed back; beyond the volume's
    edges the halo is mirrored (``d c b a | a b c d``: NumPy's ``"symmetric"``,
    dask's ``"reflect"``), the kernel's scipy ``mode="reflect"``. A dask array
    goes through :func:`dask.array.map_overlap`, whose memory grows with the
    volume; any other array is read block by block with bounded memory. The
    result equals :func:`mri_noiselab.correct` bit for bit for ``"pointwise"``,
    and for ``"moments"`` on integer-valued data; otherwise the running sums
    start at another voxel in each block and may differ in the last bit.

    Examples
    --------
    >>> import numpy as np
    >>> import mri_noiselab as nl
    >>> import mri_noiselab.dask as nld
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((64, 64, 32))
    >>> truth[16:48, 16:48] = 100.0
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape)).astype(np.float32)
    >>> lazy = nld.correct(image, 10.0, chunks=(32, 32, 32))  # e.g. np.load(path, mmap_mode="r")
    >>> lazy.numblocks, lazy.dtype
    ((2, 2, 1), dtype('float32'))
    >>> bool(np.allclose(lazy.compute(), nl.correct(image, 10.0), rtol=1e-6))
    True
    """
    da = _dask_array()
    method = check_method(method)
    coils = check_coils(coils)
    source = darr if hasattr(darr, "shape") and hasattr(darr, "dtype") else np.asarray(darr)
    shape = check_shape(tuple(int(n) for n in source.shape))
    _check_chunks(chunks, len(shape))
    out_dtype = as_kernel_array(np.zeros(1, dtype=source.dtype), "image").dtype
    volumes = default_volume_axis(len(shape), volume_axis)
    sizes = window(1 if method == "pointwise" else f_size, shape, volume_axis=volumes,
                   slice_axis=check_axis(slice_axis, len(shape), "slice_axis"), coils=coils)
    sigma_arg = _sigma(sigma, shape, volumes, da)
    if mask is not None and tuple(mask.shape if hasattr(mask, "shape") else np.shape(mask)) != shape:
        raise ValueError(f"mask shape {np.shape(mask)} does not match image shape {shape}")
    kernel = functools.partial(_correct, f_size=sizes, method=method, coils=coils, num_threads=num_threads)
    if any(isinstance(a, da.Array) for a in (darr, sigma, mask)):
        arr = darr if isinstance(darr, da.Array) else da.from_array(source, chunks=chunks)
        graph: dask.array.Array = _overlap_graph(da, arr, sigma_arg, mask, sizes, kernel, out_dtype)
        return graph
    blocks = da.core.normalize_chunks(chunks, shape, dtype=source.dtype)
    depth = tuple(d if len(c) > 1 else 0 for d, c in zip(overlap_depth(sizes), blocks))
    mask_arg = None if mask is None else np.asarray(mask, dtype=bool)
    blocks_graph: dask.array.Array = da.map_blocks(
        _direct_block, chunks=blocks, dtype=out_dtype, meta=np.empty((0,) * len(shape), dtype=out_dtype),
        source=source, depth=depth, sigma=sigma_arg, mask=mask_arg, kernel=kernel,
    )
    return blocks_graph


def _check_chunks(chunks: object, ndim: int) -> None:
    """A block shape dask can cut: a size string, or one length >= 1 (or -1, the whole axis) per axis."""
    if isinstance(chunks, str):
        return
    lengths = chunks if isinstance(chunks, Sequence) else [chunks] * ndim  # dask takes one int for every axis
    if (len(lengths) != ndim
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and (int(n) >= 1 or int(n) == -1)
                       for n in lengths)):
        raise ValueError(
            f"chunks must be a size such as '64MiB' or one block length >= 1 (or -1 for the whole axis) "
            f"per axis of the {ndim}-D image, got {chunks!r}"
        )


def _direct_block(
    *,
    source: Any,
    depth: tuple[int, ...],
    sigma: float | np.ndarray,
    mask: np.ndarray | None,
    kernel: Callable[..., np.ndarray],
    block_info: dict[Any, Any],
) -> np.ndarray:
    """Read one block and its halo from the source, mirror it beyond the edges, correct, trim."""
    location = block_info[None]["array-location"]
    shape = block_info[None]["shape"]
    region, pads, keep = [], [], []
    for (start, stop), d, n in zip(location, depth, shape):
        lo, hi = max(start - d, 0), min(stop + d, n)
        region.append(slice(lo, hi))
        pads.append((d - (start - lo), d - (hi - stop)))
        keep.append(slice(d, d + stop - start))
    index = tuple(region)

    def read(a: Any) -> np.ndarray:
        values = np.asarray(a[index])
        # NumPy's "symmetric" is scipy's "reflect", and repeats itself for halos longer than the axis.
        return np.pad(values, pads, mode="symmetric") if any(p != (0, 0) for p in pads) else values

    s = read(np.broadcast_to(sigma, shape)) if isinstance(sigma, np.ndarray) else sigma
    m = read(mask) if mask is not None else None
    return kernel(read(source), s, mask=m)[tuple(keep)]


def _overlap_graph(
    da: Any,
    arr: Any,
    sigma: float | Any,
    mask: Any,
    window: tuple[int, ...],
    kernel: Callable[..., np.ndarray],
    out_dtype: np.dtype[Any],
) -> Any:
    chunks, depth = _plan_chunks(arr.chunks, arr.shape, overlap_depth(window))
    arr = arr.rechunk(chunks)
    operands = [arr]
    scalar = isinstance(sigma, float)
    if not scalar:
        sig = sigma if isinstance(sigma, da.Array) else da.from_array(sigma)
        operands.append(da.broadcast_to(sig, arr.shape).rechunk(chunks))
    if mask is not None:
        m = mask if isinstance(mask, da.Array) else da.from_array(np.asarray(mask))
        operands.append(m.astype(bool).rechunk(chunks))

    def block(image: np.ndarray, *rest: np.ndarray) -> np.ndarray:
        it = iter(rest)
        s = sigma if scalar else next(it)
        return kernel(image, s, mask=next(it) if mask is not None else None)

    return da.map_overlap(
        block,
        *operands,
        depth={axis: depth.get(axis, 0) for axis in range(arr.ndim)},
        boundary={axis: "reflect" if axis in depth else "none" for axis in range(arr.ndim)},
        trim=True,
        align_arrays=False,
        allow_rechunk=False,
        dtype=out_dtype,
        meta=np.empty((0,) * arr.ndim, dtype=out_dtype),
    )


__all__ = ["correct", "overlap_depth"]
