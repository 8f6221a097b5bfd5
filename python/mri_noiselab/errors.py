"""What can go wrong, in one place: the exceptions a user catches, and the record of a failed file.

Every exception is a ``ValueError`` (or ``ImportError`` for a missing extra) whose
message says what to change; the command line prints it on one line.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# What to install when an optional part is missing: each ImportError names its command.
CODECS_INSTALL = 'pip install "mri-noiselab[codecs]"'
NIFTI_INSTALL = 'pip install "mri-noiselab[nifti]"'
DASK_INSTALL = 'pip install "mri-noiselab[dask]"'
PLOT_INSTALL = 'pip install "mri-noiselab[plot]"'


class NoBackgroundError(ValueError):
    """No usable noise-bearing background: empty, all exact zeros, one value repeated,
    too few values for sigma to +-10%, or nothing that looks like noise.

    The message says why, and what to give instead (a region of pure noise, or sigma).

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> try:
    ...     nl.estimate_sigma([7.0] * 100)  # a background the scanner replaced by one value
    ... except nl.NoBackgroundError as error:
    ...     print(str(error).split(":")[0])
    the background holds one value (7, 100 times; std = 0)
    """


class DicomError(ValueError):
    """A file cannot be used: not DICOM, no pixels, not a magnitude image, unreadable."""


class DecoderMissingError(DicomError):
    """Compressed pixel data and no installed decoder for its transfer syntax."""


class NotEligibleError(DicomError):
    """Nothing to correct: the file (or every file of a folder) is not a magnitude MR image.

    ``derived`` is True when ``include_derived`` would have let it through.
    """

    def __init__(self, message: str, *, derived: bool = False) -> None:
        super().__init__(message)
        self.derived = derived


class NiftiError(ValueError):
    """A file that is not a usable NIfTI magnitude image."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (libraries put details on the lines after it)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def without_values(error: BaseException) -> str:
    """:func:`first_line` with every quoted part left out: what a library says of a bad value,
    without the value (an attribute may hold a patient's name, and int("DOE^") quotes it)."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", "...", first_line(error))


@dataclass(frozen=True)
class Failure:
    """A file, or a group of files (a DICOM series), that could not be used or written, and why.

    Attributes
    ----------
    path : Path
        The file, or the first file of the group.
    message : str
    paths : tuple of Path
        Every file left unwritten because of it (a whole series); empty when
        it is ``path`` alone.
    """

    path: Path
    message: str
    paths: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        """The files left unwritten: ``paths``, or ``path`` alone."""
        return self.paths or (self.path,)


def failure(paths: Sequence[Path], error: BaseException | str) -> Failure:
    """The failure of a group of files none of which is written, naming its first file and size.

    Messages never quote attribute values (a series description may name the
    patient): the group is named by its first file (in name order) and its
    number of files.
    """
    message = str(error)
    ordered = sorted(paths, key=str)
    first = ordered[0]
    if len(ordered) == 1:
        return Failure(first, message if message.startswith(str(first)) else f"{first}: {message}")
    return Failure(first, f"series of {first} ({len(ordered)} files): {message}", tuple(ordered))


def named(error: BaseException, paths: Sequence[Path]) -> BaseException:
    """``error``, of the same type, with a message that names its file (or its group, as :func:`failure` does).

    Errors raised after a file was read (a dark background, a disk that is full)
    do not know which file they are about; the command line prints only the message.
    """
    message = failure(paths, error).message
    if message == str(error):
        return error
    if isinstance(error, OSError):  # its errno and strerror would keep the old text
        return type(error)(message)
    renamed = copy.copy(error)
    renamed.args = (message,)
    return renamed


__all__ = [
    "CODECS_INSTALL",
    "DASK_INSTALL",
    "NIFTI_INSTALL",
    "PLOT_INSTALL",
    "DecoderMissingError",
    "DicomError",
    "Failure",
    "NiftiError",
    "NoBackgroundError",
    "NotEligibleError",
    "failure",
    "first_line",
    "named",
    "without_values",
]
