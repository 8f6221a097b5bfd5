"""The console a command writes to: one that cannot fail a run, and SIGTERM taken as Ctrl-C.

- :class:`Console` spells out characters the console cannot encode (σ as "sigma") and, once
  its reader is gone (a closed pipe: ``| head``), drops the rest: the exit code then still
  says what was written;
- :func:`sigterm_interrupts` turns SIGTERM into :class:`Terminated` (a KeyboardInterrupt), so
  that what was being written is abandoned whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import TextIO


# What a console that cannot show them prints instead (PYTHONIOENCODING=ascii, a Windows code page).
_PLAIN = str.maketrans({"σ": "sigma", "±": "+-", "×": "x", "²": "^2", "≈": "~", "−": "-", "…": "..."})


class Console:
    """A text stream that cannot fail a run: characters the console cannot encode are spelled
    out (σ as "sigma") or replaced, and once its reader is gone (a closed pipe: ``| head``) the
    rest is dropped. The exit code then still says what was written."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._gone = False

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        if not self._gone:
            try:
                try:
                    self._stream.write(text)
                except UnicodeEncodeError:
                    self._stream.write(text.translate(_PLAIN).encode(self.encoding, "replace").decode(self.encoding))
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self) -> None:
        if not self._gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._close()

    def isatty(self) -> bool:
        return not self._gone and self._stream.isatty()

    def _close(self) -> None:
        self._gone = True
        # Python flushes stdout once more when it exits, which would fail again (and exit 120):
        # the descriptor is pointed at /dev/null instead.
        with contextlib.suppress(AttributeError, OSError, ValueError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: what was being written is abandoned whole."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the command runs (signals reach the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


__all__ = ["Console", "Terminated", "sigterm_interrupts"]
