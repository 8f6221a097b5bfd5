"""Big volumes and many files on Dask (optional ``dask`` extra: dask[array], distributed).

:func:`correct` runs the correction block by block: on a dask array of any
chunking through :func:`dask.array.map_overlap`, or straight from a memory map,
zarr or h5py array, each block reading its own halo, so that a volume larger
than memory is processed with bounded memory. :func:`run_batch` runs one
function per file (or per DICOM series) on a ``dask.distributed`` cluster, a
local one or an existing one, and collects per-item failures instead of
stopping; :func:`clean_dicom_source` uses it for DICOM folders.
"""

from __future__ import annotations

import functools
import logging
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
from pydicom.uid import generate_uid

from mri_noiselab.dicom import (
    BatchReport,
    DicomStack,
    Failure,
    StackReport,
    _by_series,
    _prepare_batch,
    clean_and_write_series,
    read_stack,
    series_failure,
)
from mri_noiselab.noise import (
    CORRECTION_METHODS,
    MAX_NDIM,
    CorrectionMethod,
    SigmaEstimate,
    _check_coils,
    as_kernel_array,
    window_sizes,
)
from mri_noiselab.noise import correct as _correct

if TYPE_CHECKING:
    import dask.array

DASK_INSTALL = 'pip install "mri-noiselab[dask]"'
# The errors a bad input file raises (see the DICOM and NIfTI readers); anything else is a bug and stops the batch.
_INPUT_ERRORS = (ValueError, TypeError, OSError)

T = TypeVar("T")
R = TypeVar("R")


def _dask_array() -> Any:
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(f"this needs dask: {DASK_INSTALL}") from None
    return da


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"running on a Dask cluster needs dask.distributed: {DASK_INSTALL}") from None
    return distributed


# ------------------------------------------------------------------------------ one big volume


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


def correct(
    darr: dask.array.Array | npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike | dask.array.Array,
    f_size: int | Sequence[int] = 9,
    method: CorrectionMethod = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | dask.array.Array | None = None,
    chunks: str | Sequence[int] = "64MiB",
    num_threads: int | None = 1,
) -> dask.array.Array:
    """Lazy :func:`mri_noiselab.correct` of a volume in blocks, for volumes larger than memory.

    Parameters
    ----------
    darr : dask.array.Array, or an array read by slicing
        Magnitude image, 1-D to 4-D (a 4-D input is ``(x, y, z, t)``). A dask
        array of any chunking; or a NumPy array, ``numpy.memmap``
        (``np.load(path, mmap_mode="r")``), zarr or h5py array, from which each
        block reads its own region and halo directly (see Notes).
    sigma : float, SigmaEstimate or array_like
        As in :func:`mri_noiselab.correct`: one value, one per volume
        (shape ``(t,)``), or one per voxel (a NumPy or dask array).
    f_size, method, coils
        As in :func:`mri_noiselab.correct`; an int window never spans the
        volume axis of a 4-D input.
    mask : array_like or dask.array.Array of bool, optional
        As in :func:`mri_noiselab.correct`.
    chunks : str or tuple of int
        Block shape when ``darr`` is not a dask array (default: blocks of
        about 64 MiB); a dask array keeps its own chunks.
    num_threads : int, optional
        Kernel threads per block (default 1: dask already runs blocks in
        parallel). None uses :func:`mri_noiselab.set_num_threads`'s setting.

    Returns
    -------
    dask.array.Array
        The corrected magnitude, float32 (float64 for float64 input). Nothing
        is computed until you ask for it (``.compute()``, ``.to_zarr()``,
        ``dask.array.store``). Bad voxels (NaN, negative) raise ValueError
        then, from the block that holds them.

    Raises
    ------
    ImportError
        Without dask.
    ValueError, TypeError
        For bad sigma, f_size, coils, method, shape or dtype.

    Notes
    -----
    Each block is extended by a halo of ``w // 2`` voxels per axis (see
    :func:`overlap_depth`), corrected, and trimmed back. Inside the volume the
    halo holds the neighbouring voxels; beyond its edges, their mirror image
    with the edge repeated (``d c b a | a b c d``, NumPy's ``"symmetric"``,
    dask's ``"reflect"``), which is the scipy ``mode="reflect"`` boundary of
    the kernel. Every output voxel thus sees the window values
    :func:`mri_noiselab.correct` sees.

    A dask array goes through :func:`dask.array.map_overlap`, whose blocks
    depend on their neighbours; an axis whose chunks are shorter than the halo
    gets merged chunks, and one shorter than the halo becomes a single chunk.
    Dask may then hold many blocks at once: peak memory grows with the volume
    (about 1.5 GiB for 2 GiB in 16 MiB blocks). Any other array is read block
    by block, halo included, by independent tasks, so peak memory is a few
    blocks per thread whatever the volume's size; use this for volumes larger
    than memory.

    What is guaranteed: the result equals :func:`mri_noiselab.correct` on the
    same data bit for bit for ``"pointwise"``, and for ``"moments"`` on
    integer-valued data (all DICOM and integer NIfTI), whose window sums are
    exact in double precision. Otherwise the kernel's running sums start at
    another voxel in each block and may round differently: on float64 output,
    about 1e-15 relative, and up to ~1e-11 sigma absolute where the result is
    near 0 (the square root magnifies rounding there); float32 output (the
    default for non-float64 input) may differ in the last bit on a few
    voxels (16 thousand of 537 million in ``benchmarks/scale.py``, at most
    5e-7 absolute with sigma 10).
    """
    da = _dask_array()
    if method not in CORRECTION_METHODS:
        raise ValueError(f"unknown correction {method!r}: choose one of {', '.join(CORRECTION_METHODS)}")
    coils = _check_coils(coils)
    source = darr if hasattr(darr, "shape") and hasattr(darr, "dtype") else np.asarray(darr)
    shape = tuple(int(n) for n in source.shape)
    out_dtype = as_kernel_array(np.zeros(1, dtype=source.dtype), "image").dtype
    if not 1 <= len(shape) <= MAX_NDIM:
        raise ValueError(f"images of 1 to {MAX_NDIM} dimensions are supported, got {len(shape)}")
    if 0 in shape:
        raise ValueError("image is empty (an axis has length 0)")
    window = window_sizes(1 if method == "pointwise" else f_size, len(shape), volumes_last=True)
    if isinstance(sigma, SigmaEstimate):
        sigma = sigma.sigma
    lazy_operands = any(isinstance(a, da.Array) for a in (darr, sigma, mask))
    if isinstance(sigma, da.Array) or np.ndim(sigma) > 0:
        sigma_arg: Any = sigma if isinstance(sigma, da.Array) else _checked_sigma(np.asarray(sigma, dtype=np.float64))
        try:
            if np.broadcast_shapes(sigma_arg.shape, shape) != shape:
                raise ValueError
        except ValueError:
            raise ValueError(
                f"a sigma array of shape {sigma_arg.shape} does not broadcast to the image shape {shape}: "
                "give one value per volume (last axis) or one per voxel"
            ) from None
    else:
        sigma_arg = float(_checked_sigma(np.asarray(sigma, dtype=np.float64)))
    if mask is not None and tuple(mask.shape if hasattr(mask, "shape") else np.shape(mask)) != shape:
        raise ValueError(f"mask shape {np.shape(mask)} does not match image shape {shape}")
    kernel = functools.partial(_correct, f_size=window, method=method, coils=coils, num_threads=num_threads)
    if lazy_operands:
        arr = darr if isinstance(darr, da.Array) else da.from_array(source, chunks=chunks)
        return _overlap_graph(da, arr, sigma_arg, mask, window, kernel, out_dtype)
    blocks = da.core.normalize_chunks(chunks, shape, dtype=source.dtype)
    depth = tuple(d if len(c) > 1 else 0 for d, c in zip(overlap_depth(window), blocks))
    mask_arg = None if mask is None else np.asarray(mask, dtype=bool)
    return da.map_blocks(
        _direct_block,
        chunks=blocks,
        dtype=out_dtype,
        meta=np.empty((0,) * len(shape), dtype=out_dtype),
        source=source,
        depth=depth,
        sigma=sigma_arg,
        mask=mask_arg,
        kernel=kernel,
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


def _checked_sigma(s: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sigma must be finite and > 0, got {s if s.ndim == 0 else 'an array with bad values'}")
    return s


# ------------------------------------------------------------------------------ many files


@dataclass
class BatchOutcome(Generic[T, R]):
    """What :func:`run_batch` did.

    Attributes
    ----------
    results : list of (item, result)
        The items that succeeded, in input order.
    failures : list of Failure
        One per path of each item that failed, with the error message.
    errors : list of BaseException
        The exception of each item that failed, in input order, so that a caller
        whose every item failed can raise the first one itself.
    """

    results: list[tuple[T, R]]
    failures: list[Failure]
    errors: list[BaseException]


def _paths(item: object) -> list[Path]:
    if isinstance(item, (str, Path)):
        return [Path(item)]
    paths = getattr(item, "paths", None)
    if paths is not None:
        return [Path(p) for p in paths]
    raise TypeError(f"cannot tell the file(s) of batch item {item!r}: give paths_of=")


def run_batch(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_done: Callable[[T], None] | None = None,
    paths_of: Callable[[T], Iterable[Path]] = _paths,
) -> BatchOutcome[T, R]:
    """Run ``func`` on every item, in parallel on a Dask cluster, collecting failures.

    Parameters
    ----------
    func : callable
        Processes one item (reads, corrects, writes). It runs in worker
        processes, so it and the items must be picklable (module-level
        functions, ``functools.partial`` of them, paths, datasets).
    items : sequence
        Files (paths), or objects with a ``paths`` attribute (a DICOM series),
        or anything with ``paths_of``.
    workers : int, optional
        Start a ``LocalCluster`` of this many single-threaded worker processes
        for the run. Without ``workers`` or ``scheduler`` the items run one
        after the other in this process (no dask needed).
    scheduler : str, optional
        Address of an existing scheduler (``"tcp://host:8786"``) to send the
        work to instead. Its workers must have mri-noiselab installed and see
        the same file paths.
    on_done : callable, optional
        Called in this process with each item as it finishes or fails (in
        completion order): drive a progress bar with it.
    paths_of : callable, optional
        The file(s) an item stands for, for the failure list.

    Returns
    -------
    BatchOutcome

    Raises
    ------
    ValueError
        If both ``workers`` and ``scheduler`` are given, or workers < 1.
    ImportError
        If a cluster is asked for and dask.distributed is missing.
    Exception
        An error other than ValueError, TypeError or OSError (a bug, not a bad
        file) stops the batch; KeyboardInterrupt cancels the pending items.

    Notes
    -----
    Each worker runs the kernels on one thread, so ``workers`` processes use
    ``workers`` cores; a worker that dies (out of memory, a crash) fails only
    the items it held, after dask's retries.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers (a local cluster) or scheduler (an existing one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    done: dict[int, R] = {}
    failures: dict[int, list[Failure]] = {}
    errors: dict[int, BaseException] = {}

    def record(index: int, error: BaseException | None, result: Any = None) -> None:
        if error is None:
            done[index] = result
        else:
            failures[index] = [Failure(p, str(error)) for p in paths_of(items[index])]
            errors[index] = error
        if on_done is not None:
            on_done(items[index])

    if workers is None and scheduler is None:
        for i, item in enumerate(items):
            try:
                result = func(item)
            except _INPUT_ERRORS as e:
                record(i, e)
            else:
                record(i, None, result)
    else:
        _run_on_cluster(func, items, workers, scheduler, record)
    return BatchOutcome(
        [(items[i], done[i]) for i in sorted(done)],
        [f for i in sorted(failures) for f in failures[i]],
        [errors[i] for i in sorted(errors)],
    )


def _run_on_cluster(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    workers: int | None,
    scheduler: str | None,
    record: Callable[..., None],
) -> None:
    distributed = _distributed()
    cluster = None
    if scheduler is None:
        # Silent workers: a failing file is reported once, as one line, by the caller; the
        # workers' own "Compute Failed" logs would add tracebacks.
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.CRITICAL,
        )
    client = None
    try:
        try:
            client = distributed.Client(cluster if cluster is not None else scheduler, timeout="20s")
        except OSError as e:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        # Items go in groups: each task costs a few ms of scheduling and messages, as much as
        # correcting a small file, so one task per file would spend the cores on overhead.
        # Eight groups per worker thread still balance the load and keep the progress moving.
        threads = sum(client.nthreads().values()) or 1
        size = max(1, len(items) // (8 * threads))
        groups = [list(range(i, min(i + size, len(items)))) for i in range(0, len(items), size)]
        futures = [client.submit(_run_group, func, [items[i] for i in g], pure=False) for g in groups]
        members = {future.key: g for future, g in zip(futures, groups)}
        try:
            for future, outcome in distributed.as_completed(futures, with_results=True, raise_errors=False):
                group = members[future.key]
                if future.status == "error":
                    if not isinstance(outcome, distributed.KilledWorker):
                        raise outcome  # a bug, not a bad file: _run_group keeps those
                    for index in group:
                        record(index, OSError(f"the worker processing it died ({outcome})"))
                    continue
                for index, (error, result) in zip(group, outcome):
                    record(index, error, result)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _run_group(func: Callable[[Any], Any], items: Sequence[Any]) -> list[tuple[BaseException | None, Any]]:
    """Run func on each item (in a worker); a bad input fails only its own item."""
    out: list[tuple[BaseException | None, Any]] = []
    for item in items:
        try:
            out.append((None, func(item)))
        except _INPUT_ERRORS as e:
            out.append((e, None))
    return out


# ------------------------------------------------------------------------------ DICOM batches


def clean_dicom_source(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    background: Callable[[DicomStack], np.ndarray] | None = None,
    sigma: float | None = None,
    estimator: str = "mle",
    method: str = "lmmse",
    f_size: int | Sequence[int] = 9,
    coils: int | None = None,
    num_threads: int | None = 1,
    uid_prefix: str | None = None,
    qc: str | os.PathLike[str] | None = None,
    per_volume: bool = False,
    include_derived: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> BatchReport:
    """:func:`mri_noiselab.dicom.clean_source` with the series run in parallel on a Dask cluster.

    The files are read and grouped into series and stacks here; each worker
    then reads the files of one source series again (shipping file names is
    cheaper than shipping pixels), estimates its σ, corrects and writes it,
    all or nothing, as the serial run does. The arguments and the report are
    those of :func:`mri_noiselab.dicom.clean_source`, plus ``workers`` /
    ``scheduler`` (see :func:`run_batch`); ``num_threads`` is per worker
    (default 1). ``background`` must be picklable (cloudpickle handles
    lambdas and closures).
    """
    src, _, scan, inputs, mapping, figures = _prepare_batch(
        source, destination, background=background, sigma=sigma, per_volume=per_volume, qc=qc,
        include_derived=include_derived,
    )  # every output checked before any worker writes anything
    if on_start is not None:
        on_start(len(inputs))
    # Outputs of one source series share one new series UID, so they are drawn here, not by the workers.
    jobs = [
        _SeriesJob([list(s.paths) for s in stacks], [[mapping[p] for p in s.paths] for s in stacks],
                   [figures.get(id(s)) for s in stacks], generate_uid(prefix=uid_prefix))
        for stacks in _by_series(scan.stacks)
    ]
    task = functools.partial(
        _clean_series_job, background=background, protected=inputs, uid_prefix=uid_prefix,
        include_derived=include_derived,
        options={"sigma": sigma, "estimator": estimator, "method": method, "f_size": f_size,
                 "coils": coils, "num_threads": num_threads, "per_volume": per_volume},
    )

    def done(job: _SeriesJob) -> None:
        if on_file is not None:
            for p in job.paths:
                on_file(p)

    if not src.is_dir():
        # A single file raises its error, as clean_source does.
        reports = task(jobs[0])
        done(jobs[0])
        return BatchReport(reports, list(scan.failures), [], scan.ineligible)
    # One failure per series, as the serial run gives: run_batch names the first file, series_failure the rest.
    outcome = run_batch(task, jobs, workers=workers, scheduler=scheduler, on_done=done, paths_of=lambda job: job.paths[:1])
    if not outcome.results:
        raise outcome.errors[0]  # as clean_source does: the CLI then gives its usual one-line error
    first_file = {job.paths[0]: job for job in jobs}
    failures = [series_failure(first_file[f.path].paths, e) for f, e in zip(outcome.failures, outcome.errors)]
    reports = [r for _, series in outcome.results for r in series]
    return BatchReport(reports, list(scan.failures) + failures, [], scan.ineligible)


@dataclass
class _SeriesJob:
    stacks: list[list[Path]]  # the files of each stack of one source series, as grouped and sorted by read_source
    outputs: list[list[Path]]
    figures: list[Path | None]
    series_uid: str

    @property
    def paths(self) -> list[Path]:
        return [p for stack in self.stacks for p in stack]


def _clean_series_job(
    job: _SeriesJob,
    *,
    background: Callable[[DicomStack], np.ndarray] | None,
    protected: Sequence[Path],
    uid_prefix: str | None,
    include_derived: bool,
    options: dict[str, Any],
) -> list[StackReport]:
    stacks = [read_stack(paths, include_derived=include_derived) for paths in job.stacks]
    return clean_and_write_series(
        stacks, job.outputs, series_uid=job.series_uid, background=background, protected=protected,
        uid_prefix=uid_prefix, qc=job.figures, **options,
    )


__all__ = ["BatchOutcome", "DASK_INSTALL", "clean_dicom_source", "correct", "overlap_depth", "run_batch"]
