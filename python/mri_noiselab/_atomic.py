"""Atomic file writes: a reader sees the old file or the complete new one, never a part.

Guarantees (see the README's "Guarantees" table):

- a target is replaced by ``os.replace`` of a complete temporary file in its own folder,
  so an interrupted run (error, Ctrl-C, SIGTERM, SIGKILL, power cut) leaves the old file or
  the new one, never a part;
- durable once committed: every temporary file is flushed to disk before any rename, and
  each folder once after its renames; :class:`AtomicBatch` pays that once per batch
  (a series: one syncfs of the file system on Linux) instead of twice per file;
- temporary files are named ``.mri-noiselab-<pid>-<random>.part`` whatever the target's
  name, are removed on any exception, and those a killed run left behind are removed by
  the next run into that folder (:func:`remove_stale_parts`);
- outputs are never more open than their input: created through ``os.open(..., 0o666)``
  so that the process umask applies (it is never read or changed: that would race with a
  host application's threads), then narrowed to the input's (and an existing target's)
  permission bits; new folders likewise;
- only regular files are replaced: a symbolic link, folder, device, FIFO or socket at the
  target is refused.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

TEMP_PREFIX = ".mri-noiselab-"
PART_SUFFIX = ".part"
# A run's own temporary files are younger than this run; anything older in an output
# folder was left by a killed run (a lock keeps two runs out of one folder).
RUN_STARTED = time.time()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Check, without creating anything, that :func:`atomic_write` can write ``path``.

    Lets a batch refuse a bad output before it writes its first file.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If ``path`` is a symbolic link, a folder or another non-regular file (a
        device such as /dev/null, a FIFO, a socket), if a component of its folder
        is a file, or if the nearest existing folder is not writable.
    """
    target = Path(path)
    if target.is_symlink():
        raise OSError(f"refusing to replace {target}: it is a symbolic link")
    if target.is_dir():
        raise OSError(f"cannot write {target}: it is a folder")
    if target.exists() and not target.is_file():
        raise OSError(f"refusing to replace {target}: it is not a regular file (a device, FIFO or socket)")
    folder = target.parent
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NotADirectoryError(f"cannot write {target}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"cannot write {target}: the folder {folder} is not writable")
    return target


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name the same file (links included); False if either is missing."""
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def permission_bits(path: str | os.PathLike[str]) -> int | None:
    """The permission bits of ``path`` (and of its folder, when asked via ``path.parent``); None if missing."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _sync(path: Path, flags: int = os.O_RDONLY) -> None:
    """fsync a file or folder; a no-op where folders cannot be opened (not POSIX)."""
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def make_folders(folder: Path, mode: int | None) -> list[Path]:
    """Create ``folder`` and missing parents, each no more open than ``mode``; returns those created, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    created = []
    for new in reversed(missing):
        try:
            new.mkdir()
        except FileExistsError:
            continue
        created.append(new)
        if mode is not None:
            # The owner keeps rwx: this run must write into the folder it made.
            os.chmod(new, (permission_bits(new) or 0) & (mode | 0o700))
    return created


def _temp_name(folder: Path) -> Path:
    """A name for a new temporary file in ``folder`` (created exclusively by :func:`write_temp`)."""
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(8)}{PART_SUFFIX}"


def write_temp(tmp: Path, target: Path, write: Callable[[BinaryIO], object], mode: int | None = None) -> None:
    """Create ``tmp`` (exclusively, 0o666 so that the umask applies) and write it; removed on any error.

    Its permission bits are narrowed to ``mode`` and to those of an existing
    ``target``. A worker process may write a name its parent reserved
    (:meth:`AtomicBatch.reserve`).
    """
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            limit = mode if mode is not None else 0o7777
            existing = permission_bits(target)
            if existing is not None:
                limit &= existing
            os.chmod(tmp, stat.S_IMODE(os.stat(tmp).st_mode) & limit)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2), which flushes one file system whole; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


# Below this many files an fsync each costs less than flushing their whole file system.
_SYNCFS_FILES = 8


def _sync_files(paths: Sequence[Path]) -> None:
    """Flush ``paths`` to disk: one syncfs per file system for many files, else one fsync each.

    fsync per file paid a journal commit per file (0.8 s for 200 files of 512 KiB
    here, against 0.06 s for one syncfs).
    """
    syncfs = _syncfs() if len(paths) >= _SYNCFS_FILES else None
    if syncfs is None:
        for path in paths:
            _sync(path)
        return
    devices: dict[int, Path] = {}
    for path in paths:
        try:
            devices.setdefault(os.stat(path).st_dev, path)
        except OSError:
            _sync(path)
    for path in devices.values():
        fd = os.open(path, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:  # an old kernel or a file system without it: one file at a time
                for other in paths:
                    _sync(other)
                return
        finally:
            os.close(fd)


class AtomicBatch:
    """Write several files so that they appear complete, and durable, in one step.

    Each :meth:`write` goes to a temporary file beside its target; :meth:`commit`
    flushes them all to disk, renames each into place, then flushes each folder
    once. Used as a context manager it commits on success and removes every
    temporary file on any exception (KeyboardInterrupt included), so nothing of a
    failed batch appears.

    Parameters
    ----------
    durable : bool
        Flush to disk before renaming (the default). False skips the fsyncs: a
        power cut may then lose recent outputs, but never shows a part.
    """

    def __init__(self, *, durable: bool = True) -> None:
        self.durable = durable
        self._pending: list[tuple[Path, Path]] = []

    def reserve(self, path: str | os.PathLike[str], *, folder_mode: int | None = None) -> Path:
        """Check ``path``, create its folder, and name the temporary file that will replace it.

        The caller (or a worker process it starts) writes that file with
        :func:`write_temp`; :meth:`commit` renames it into place, :meth:`abort`
        removes it. :meth:`write` is both steps at once.

        Raises
        ------
        OSError
            If ``path`` cannot be written (see :func:`check_writable`); the
            message names the path.
        """
        target = check_writable(path)
        try:
            make_folders(target.parent, folder_mode)
            if not os.access(target.parent, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, "permission denied")
        except OSError as e:
            # The errno text alone ("File exists: 'x'") does not say which path is wrong or why.
            raise type(e)(f"cannot write {target}: {e.strerror or e} ({target.parent} cannot be created or written)") from None
        tmp = _temp_name(target.parent)
        self._pending.append((tmp, target))
        return tmp

    def write(
        self,
        path: str | os.PathLike[str],
        write: Callable[[BinaryIO], object],
        *,
        mode: int | None = None,
        folder_mode: int | None = None,
    ) -> Path:
        """Write ``path``'s content to a temporary file; it appears at :meth:`commit`.

        Parameters
        ----------
        path : path-like
            The file to create or replace.
        write : callable
            Called with a binary file object; it writes the content.
        mode : int, optional
            Permission bits the file may have at most (its input's); an existing
            target's bits narrow it further.
        folder_mode : int, optional
            Permission bits new folders may have at most (the input folder's).

        Raises
        ------
        OSError
            If ``path`` cannot be written (see :func:`check_writable`); the
            message names the path.
        """
        tmp = self.reserve(path, folder_mode=folder_mode)
        target = self._pending[-1][1]
        try:
            write_temp(tmp, target, write, mode)
        except FileExistsError as e:
            raise FileExistsError(f"cannot write {target}: {e.strerror or e}") from None
        return target

    def commit(self) -> list[Path]:
        """Flush, rename every temporary file into place, flush the folders; returns the targets."""
        pending, self._pending = self._pending, []
        try:
            if self.durable:
                _sync_files([tmp for tmp, _ in pending])
            done = []
            for tmp, target in pending:
                os.replace(tmp, target)
                done.append(target)
        except BaseException:
            for tmp, _ in pending:
                tmp.unlink(missing_ok=True)
            raise
        if self.durable:
            for folder in {target.parent for target in done}:
                _sync(folder)
        return done

    def abort(self) -> None:
        """Remove every temporary file not yet committed."""
        pending, self._pending = self._pending, []
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    mode: int | None = None,
    folder_mode: int | None = None,
) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

    Parameters
    ----------
    path : path-like
        The file to create or replace. Its folder is created if missing.
    write : callable
        Called with a binary file object open for writing; it writes the content.
    mode, folder_mode : int, optional
        See :meth:`AtomicBatch.write`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the folder cannot be created or written, or ``path`` is a symbolic
        link, a folder or another non-regular file (replacing it would surprise
        the user). The message names the path and the reason.
    """
    with AtomicBatch() as batch:
        batch.write(path, write, mode=mode, folder_mode=folder_mode)
    return Path(path)


def remove_stale_parts(folders: Iterable[Path]) -> list[Path]:
    """Remove this tool's temporary files that a killed run left in ``folders``.

    Only files named like this tool's temporary files (``.mri-noiselab-*.part``),
    regular (not links) and older than this run are removed.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed = []
    for folder in folders:
        try:
            candidates = list(Path(folder).glob(f"{TEMP_PREFIX}*{PART_SUFFIX}"))
        except OSError:
            continue
        for path in candidates:
            try:
                info = path.lstat()
                if stat.S_ISREG(info.st_mode) and info.st_mtime < RUN_STARTED:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
    return removed
