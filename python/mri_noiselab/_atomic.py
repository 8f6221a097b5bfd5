"""Atomic file writes: a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# mkstemp creates files 0600; outputs get the permissions a normal file would get.
# The umask can only be read by setting it, so read it once, at import, not per write
# (changing it while other threads create files would race).
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
PART_SUFFIX = ".part"


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
        If ``path`` is a symbolic link or a folder, if a component of its folder
        is a file, or if the nearest existing folder is not writable.
    """
    target = Path(path)
    if target.is_symlink():
        raise OSError(f"refusing to replace {target}: it is a symbolic link")
    if target.is_dir():
        raise OSError(f"cannot write {target}: it is a folder")
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


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through a temporary file in the same folder, then rename it into place.

    Parameters
    ----------
    path : path-like
        The file to create or replace. Its folder is created if missing.
    write : callable
        Called with a binary file object open for writing; it writes the content.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the folder cannot be created or written, or ``path`` is a symbolic
        link or a folder (replacing either would surprise the user). The
        message names the path and the reason.

    Notes
    -----
    ``os.replace`` within one file system is atomic on POSIX, so an interrupted
    run (error, Ctrl-C, crash) leaves no partial file under ``path``; the
    temporary file (``.<name>.<random>.part``) is removed on any exception,
    KeyboardInterrupt included.
    """
    target = check_writable(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PART_SUFFIX, dir=target.parent)
    except OSError as e:
        # The errno text alone ("File exists: 'x'") does not say which path is wrong or why.
        raise type(e)(f"cannot write {target}: {e.strerror or e} ({target.parent} cannot be created or written)") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, _FILE_MODE)
        os.replace(tmp_name, target)
        _sync_folder(target.parent)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target
