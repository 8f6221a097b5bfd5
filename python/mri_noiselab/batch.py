"""Run one function per item (a file, a DICOM series) serially or on a Dask cluster, collecting failures.

Knows no file format: the pipeline hands it picklable jobs. With ``workers`` or
``scheduler`` the items run on a ``dask.distributed`` cluster (optional ``dask``
extra), a local one or an existing one; without, one after the other here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from mri_noiselab.errors import DASK_INSTALL, Failure

# The errors a bad input file raises (see the DICOM and NIfTI readers); anything else is a bug,
# which fails its own item only, like a bad file, but is reported as a bug.
INPUT_ERRORS = (ValueError, TypeError, OSError)
# A probe of a scheduler's address gets this long to connect and answer (as the client's own timeout).
_CONNECT_TIMEOUT = 20.0

T = TypeVar("T")
R = TypeVar("R")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError(f"running on a Dask cluster needs dask.distributed: {DASK_INSTALL}") from None
    return distributed


@dataclass
class BatchOutcome(Generic[T, R]):
    """What :func:`run_batch` did.

    Attributes
    ----------
    results : list of (item, result)
        The items that succeeded, in input order.
    failures : list of Failure
        One per path of each item that failed, with the error message.
    errors : list of (item, exception)
        Each item that failed and its exception, in input order, so that a
        caller can name its own failures or raise the first one itself.
    """

    results: list[tuple[T, R]]
    failures: list[Failure]
    errors: list[tuple[T, BaseException]]


def failure_message(error: BaseException) -> str:
    """What a failed item's line says: a bad input's error as it is; anything else is a bug, and says so."""
    if isinstance(error, INPUT_ERRORS):
        return str(error)
    return f"internal error ({type(error).__name__}: {error}); please report it"


def _paths(item: object) -> list[Path]:
    if isinstance(item, (str, Path)):
        return [Path(item)]
    paths = getattr(item, "paths", None)
    if paths is not None:
        return [Path(p) for p in paths]
    raise TypeError(f"cannot tell the file(s) of batch item {item!r}: give paths_of=")


@dataclass
class _Record(Generic[T, R]):
    """The outcome of each item as it comes in, in any order."""

    items: Sequence[T]
    on_done: Callable[[T], None] | None
    paths_of: Callable[[T], Iterable[Path]]

    def __post_init__(self) -> None:
        self.done: dict[int, R] = {}
        self.errors: dict[int, BaseException] = {}

    def __call__(self, index: int, error: BaseException | None, result: Any = None) -> None:
        if error is None:
            self.done[index] = result
        else:
            self.errors[index] = error
        if self.on_done is not None:
            self.on_done(self.items[index])

    def outcome(self) -> BatchOutcome[T, R]:
        failed = sorted(self.errors)
        return BatchOutcome(
            [(self.items[i], self.done[i]) for i in sorted(self.done)],
            [Failure(p, failure_message(self.errors[i])) for i in failed for p in self.paths_of(self.items[i])],
            [(self.items[i], self.errors[i]) for i in failed],
        )


def run_batch(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_done: Callable[[T], None] | None = None,
    paths_of: Callable[[T], Iterable[Path]] = _paths,
) -> BatchOutcome[T, R]:
    """Run ``func`` on every item, serially or in parallel on a Dask cluster, collecting failures.

    Parameters
    ----------
    func : callable
        Processes one item (reads, corrects, writes). On a cluster it runs in
        worker processes, so it and the items must be picklable (module-level
        functions, ``functools.partial`` of them, paths).
    items : sequence
        Files (paths), objects with a ``paths`` attribute, or anything with ``paths_of``.
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
    OSError
        If no Dask scheduler answers at ``scheduler``.

    Notes
    -----
    Whatever an item raises (an Exception: a bad file, or a bug) fails that
    item only; a worker that dies (out of memory, a crash) fails only the
    items it held. KeyboardInterrupt cancels the pending items.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either workers (a local cluster) or scheduler (an existing one), not both")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    record: _Record[T, R] = _Record(items, on_done, paths_of)
    if workers is None and scheduler is None:
        for i, item in enumerate(items):
            ((error, result),) = _run_group(func, [item])  # recorded as it finishes: progress moves
            record(i, error, result)
    else:
        _run_on_cluster(func, items, workers, scheduler, record)
    return record.outcome()


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
        if scheduler is not None and "://" not in scheduler.removeprefix("tcp://"):
            # Plain TCP only: other schemes (tls://, ...) need the client's security settings.
            _check_scheduler(distributed, scheduler)
        try:
            client = distributed.Client(cluster if cluster is not None else scheduler, timeout=f"{_CONNECT_TIMEOUT}s")
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
                    # distributed hands a failed task over as (type, exception, traceback); what
                    # broke outside _run_group (a dead worker, an item that cannot be unpickled)
                    # fails that task's items only.
                    error = outcome[1] if isinstance(outcome, tuple) else outcome
                    if isinstance(error, distributed.KilledWorker):
                        error = OSError(f"the worker processing it died ({error})")
                    for index in group:
                        record(index, error)
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


def _check_scheduler(distributed: Any, address: str) -> None:
    """Refuse an address at which no Dask scheduler answers, in bounded time and memory.

    distributed's handshake waits without end on a port that says nothing, and
    takes the first bytes of one that speaks another protocol for a message
    length (3 EiB from an HTTP or SSH banner: a MemoryError).

    Raises
    ------
    OSError
    """

    async def probe() -> None:
        comm = await asyncio.wait_for(distributed.comm.connect(address, timeout=_CONNECT_TIMEOUT), _CONNECT_TIMEOUT)
        comm.abort()

    try:
        # In a thread of its own: the caller may be running an event loop already (Jupyter).
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except Exception as e:
        if isinstance(e, (asyncio.TimeoutError, TimeoutError)):
            reason = f"no answer in {_CONNECT_TIMEOUT:g} s"
        elif isinstance(e, MemoryError):
            reason = "it answers in another protocol"
        else:
            reason = " ".join(f"{type(e).__name__}: {e}".split())[:200]
        raise OSError(f"no Dask scheduler answers at {address} ({reason}): check the address and port (e.g. tcp://host:8786)") from None


def _run_group(func: Callable[[Any], Any], items: Sequence[Any]) -> list[tuple[BaseException | None, Any]]:
    """Run func on each item (in a worker); whatever an item raises fails only that item."""
    out: list[tuple[BaseException | None, Any]] = []
    for item in items:
        try:
            out.append((None, func(item)))
        except Exception as e:  # a bad file, or a bug: either way the other items go on
            out.append((e, None))
    return out


__all__ = ["INPUT_ERRORS", "BatchOutcome", "failure_message", "run_batch"]
