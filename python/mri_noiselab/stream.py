"""Writing a DICOM stack a block of slices at a time, on every core.

Once σ is known and the window keeps slices apart, each block of slices is read from its
files, corrected, derived and written to temporary files on its own, so that memory holds a
few slices (per worker) whatever the length of the series. With several cores the blocks go
to worker processes forked from this one: they inherit the stack's headers and the
correction, so only block bounds go to them and slice numbers come back. Each runs the
kernel on one thread: an OpenMP runtime that has run in the parent cannot start threads in
a forked child. The files appear when the series' batch commits
(:class:`mri_noiselab._atomic.AtomicBatch`), all or none.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mri_noiselab._atomic import AtomicBatch, permission_bits, same_file, write_temp
from mri_noiselab.blocks import blocks
from mri_noiselab.derivation import Derivation
from mri_noiselab.dicom.derive import derive_file, encode_checked, series_number_of
from mri_noiselab.dicom.read import DicomStack

StoredBlock = Callable[[slice, "int | None"], np.ndarray]


@dataclass
class _Task:
    """One stack to write: what every block needs, inherited by forked workers."""

    stack: DicomStack
    stored_block: StoredBlock
    derivation: Derivation
    series_uid: str
    series_number: int
    uid_prefix: str | None
    outputs: dict[int, tuple[Path, Path, int | None]]  # slice -> (temporary file, target, permission bits)


# The task of the pool that is running: a forked worker finds it here (set before the fork).
_TASK: _Task | None = None
_POOL_LOCK = threading.Lock()


def _write_block(task: _Task, start: int, stop: int, threads: int | None) -> list[int]:
    """Correct, derive and write slices ``start:stop`` of the stack; returns the slices written."""
    stored = task.stored_block(slice(start, stop), threads)
    done = []
    for i in range(start, stop):
        if i not in task.outputs:
            continue
        tmp, target, mode = task.outputs[i]
        ds = derive_file(task.stack.datasets[i], stored[i - start : i - start + 1], task.derivation,
                         task.series_uid, task.series_number, task.uid_prefix)
        data = encode_checked(ds, target)
        write_temp(tmp, target, lambda fh: fh.write(data), mode)
        done.append(i)
    return done


def _worker_block(start: int, stop: int) -> list[int]:
    assert _TASK is not None  # set by the parent before it forked this worker
    return _write_block(_TASK, start, stop, 1)


def write_stack(
    stack: DicomStack,
    stored_block: StoredBlock,
    derivation: Derivation,
    targets: Sequence[Path],
    todo: Sequence[bool],
    *,
    series_uid: str,
    uid_prefix: str | None,
    protected: Sequence[Path],
    batch: AtomicBatch,
    processes: int,
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write the derived file of each slice of ``stack`` that ``todo`` marks, into ``batch``.

    Parameters
    ----------
    stack : DicomStack
        Single-frame files (one per slice).
    stored_block : callable
        ``stored_block(block, threads)``: the corrected stored values of slices ``block``.
    derivation : Derivation
    targets, todo : sequence
        The output of each slice, and whether to write it.
    series_uid, uid_prefix : str
        The derived series' UID, and the root of new UIDs.
    protected : sequence of Path
        Files never replaced (the inputs).
    batch : AtomicBatch
        The files appear when it commits; its abort removes them.
    processes : int
        Worker processes (1: here, with the options' threads); forked, so on
        POSIX systems only, and never from a process that is itself a worker.
    on_file : callable, optional
        Called with each source file once its output is written (to a temporary file).

    Returns
    -------
    list of Path
        The targets, in slice order.
    """
    outputs: dict[int, tuple[Path, Path, int | None]] = {}
    for i, (target, write, source) in enumerate(zip(targets, todo, stack.paths)):
        if write:
            if target.exists() and any(same_file(target, p) for p in protected):
                raise OSError(f"refusing to overwrite the input file {target}")
            tmp = batch.reserve(target, folder_mode=permission_bits(source.parent))
            outputs[i] = (tmp, target, permission_bits(source))
    task = _Task(stack, stored_block, derivation, series_uid, series_number_of(stack.datasets[0]), uid_prefix, outputs)
    bounds = [(b.start, b.stop) for b in blocks(stack) if any(i in outputs for i in range(b.start, b.stop))]
    if processes > 1 and len(bounds) > 1 and _can_fork():
        _run_forked(task, bounds, min(processes, len(bounds)), on_file)
    else:
        for start, stop in bounds:
            for i in _write_block(task, start, stop, None):
                if on_file is not None:
                    on_file(stack.paths[i])
    return [outputs[i][1] for i in sorted(outputs)]


def _can_fork() -> bool:
    """Fork is safe here: POSIX, and this process is not a daemon worker (Dask's, or one of ours)."""
    return hasattr(os, "fork") and sys.platform != "darwin" and not multiprocessing.current_process().daemon


def _run_forked(task: _Task, bounds: list[tuple[int, int]], processes: int, on_file: Callable[[Path], None] | None) -> None:
    global _TASK
    with _POOL_LOCK:
        _TASK = task
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns that forking a process with threads may deadlock: the workers
                # only run the kernel on one thread, numpy and pydicom, and exit with the pool.
                warnings.simplefilter("ignore", DeprecationWarning)
                pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"))
            try:
                futures: dict[Future[list[int]], int] = {pool.submit(_worker_block, a, b): a for a, b in bounds}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        for i in future.result():
                            if on_file is not None:
                                on_file(task.stack.paths[i])
            except BrokenProcessPool:
                raise OSError("a worker process died while writing the series (out of memory, or killed)") from None
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            _TASK = None


__all__ = ["write_stack"]
