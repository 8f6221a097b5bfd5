"""The file system as a run meets it: source trees, the output lock, and the size limit of images.

Guarantees (see the README's "Guarantees" table):

- a source tree is walked once, in name order: a symbolic-link loop or a folder reached
  twice is walked once, and a folder that cannot be read is reported, never skipped in
  silence (:func:`walk_files`);
- a source is a folder or a regular file: a FIFO, device or socket is refused before it
  is opened, which would block or read forever (:func:`check_source`);
- one run at a time writes into an output folder: a second one is refused at once
  (:func:`lock_folder`);
- an image that declares more pixel data than the limit, or far more than its
  compressed data could hold, is refused before anything is allocated for it
  (:func:`image_size_problem`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks on folders
    fcntl = None  # type: ignore[assignment]

DEFAULT_MAX_IMAGE_BYTES = 1 << 30
"""The most pixel data (stored, uncompressed) one image may declare unless the limit is raised."""
# Lossless compression of MR images reaches 2-4:1; deflate reaches about 1000:1 on zeros,
# which is what a decompression bomb holds. Beyond this ratio, and this size, a file's
# declared pixel data is not believed (an image that compressible holds no noise to measure).
MAX_COMPRESSION_RATIO = 200
COMPRESSION_CHECK_FLOOR = 64 << 20

_max_image_bytes: contextvars.ContextVar[int] = contextvars.ContextVar("max_image_bytes", default=DEFAULT_MAX_IMAGE_BYTES)


def max_image_bytes() -> int:
    """The largest pixel data (in bytes, uncompressed) an image may declare here: see :func:`image_limit`."""
    return _max_image_bytes.get()


@contextlib.contextmanager
def image_limit(limit: int) -> Iterator[None]:
    """Read images under a size limit (bytes of uncompressed pixel data per image) in this context.

    The readers of DICOM and NIfTI files check each image against it before they
    allocate its pixels; threads and tasks each keep their own setting.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"max_image_bytes must be a positive number of bytes, got {limit!r}")
    token = _max_image_bytes.set(limit)
    try:
        yield
    finally:
        _max_image_bytes.reset(token)


def size_text(n: int) -> str:
    """A byte count for a message: ``1.5 GiB``, ``300 KiB``, ``12 bytes``."""
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.4g} {unit}"
        value /= 1024
    return f"{value:.4g} TiB"


def image_size_problem(declared: int, compressed: int | None = None) -> str | None:
    """Why an image that declares ``declared`` bytes of pixel data must not be read, or None.

    Parameters
    ----------
    declared : int
        The uncompressed pixel data its header declares (rows x columns x frames x
        bytes per value; NIfTI: the product of its dimensions x bytes per voxel).
    compressed : int, optional
        The bytes that hold that data compressed (deflated, encapsulated or gzip),
        when it is compressed.
    """
    limit = max_image_bytes()
    if declared > limit:
        return (
            f"declares {size_text(declared)} of pixel data, more than the limit of {size_text(limit)} "
            "(raise it with --max-image-size if the image is genuine)"
        )
    if compressed is not None and declared > COMPRESSION_CHECK_FLOOR and declared > MAX_COMPRESSION_RATIO * compressed:
        return (
            f"declares {size_text(declared)} of pixel data held in {size_text(compressed)} of compressed data "
            f"(more than {MAX_COMPRESSION_RATIO}:1): a damaged file or a decompression bomb"
        )
    return None


def check_source(path: str | os.PathLike[str]) -> Path:
    """``path``, unless it is something other than a folder or a regular file (links followed).

    A path that does not exist is returned as it is: the readers say so.

    Raises
    ------
    ValueError
        If it is a FIFO, device or socket: opening it would block, or read without end.
    """
    source = Path(path)
    try:
        mode = source.stat().st_mode
    except OSError:
        return source
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise ValueError(f"{source}: not a regular file or a folder (a FIFO, device or socket): give a file or a folder")
    return source


@dataclass(frozen=True)
class Unreadable:
    """A folder of a source tree that could not be listed, and why."""

    path: Path
    reason: str


def walk_files(root: str | os.PathLike[str], *, exclude: str | os.PathLike[str] | None = None) -> tuple[list[Path], list[Unreadable]]:
    """The regular files under ``root`` (links followed), in path order, and the folders that could not be read.

    Hidden files and folders (names starting with ".") are left out, and so is
    ``exclude`` (an output folder inside the source). A folder reached again (a
    symbolic-link loop, or two links to one folder) is walked once; a link that
    leads nowhere or to itself is not a file.

    Returns
    -------
    files : list of Path
    unreadable : list of Unreadable
        Folders that could not be listed (permissions, I/O errors), ``root`` included.
    """
    top = Path(root)
    skip = _identity(Path(exclude)) if exclude is not None else None
    files: list[Path] = []
    unreadable: list[Unreadable] = []
    seen: set[tuple[int, int]] = set()
    pending = [top]
    while pending:
        folder = pending.pop()
        try:
            info = folder.stat()
            key = (info.st_dev, info.st_ino)
            if key in seen or key == skip:
                continue
            seen.add(key)
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
        except OSError as e:
            unreadable.append(Unreadable(folder, e.strerror or str(e)))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    pending.append(folder / entry.name)
                elif entry.is_file():
                    files.append(folder / entry.name)
            except OSError:  # a link that loops or leads nowhere
                continue
    return sorted(files), unreadable


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


class OutputBusyError(OSError):
    """Another run holds the lock of an output folder."""


@contextlib.contextmanager
def lock_folder(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (which must exist) while a run writes into it.

    The lock is the kernel's advisory lock on the folder itself (``flock``): it
    leaves no file behind, and it is released when the process ends, however it
    ends. Where the file system cannot lock (some network file systems) or the
    platform has no ``flock`` (Windows), the run goes on unlocked.

    Raises
    ------
    OutputBusyError
        If another run (this process's or another's) holds it.
    """
    if fcntl is None:
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(
                f"another mri-noiselab run is writing into {folder}: wait for it to finish, or choose another output"
            ) from None
        except OSError:  # no locks on this file system
            pass
        yield
    finally:
        os.close(fd)


__all__ = [
    "COMPRESSION_CHECK_FLOOR",
    "DEFAULT_MAX_IMAGE_BYTES",
    "MAX_COMPRESSION_RATIO",
    "OutputBusyError",
    "Unreadable",
    "check_source",
    "image_limit",
    "image_size_problem",
    "lock_folder",
    "max_image_bytes",
    "size_text",
    "walk_files",
]
