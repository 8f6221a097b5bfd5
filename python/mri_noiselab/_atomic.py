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
        link or a folder (replacing either would surprise the user).

    Notes
    -----
    ``os.replace`` within one file system is atomic on POSIX, so an interrupted
    run (error, Ctrl-C, crash) leaves no partial file under ``path``; the
    temporary file is removed on any exception, KeyboardInterrupt included.
    """
    target = Path(path)
    if target.is_symlink():
        raise OSError(f"refusing to replace {target}: it is a symbolic link")
    if target.is_dir():
        raise OSError(f"cannot write {target}: it is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, _FILE_MODE)
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return target
