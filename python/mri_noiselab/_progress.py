"""A progress bar for a terminal, with no dependency: files done of the total, redrawn in place.

The command line draws it on stderr only when stderr is a terminal, so a log file or a pipe
gets no carriage returns; results on stdout are never touched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

# Thousands of small files must not wait on the terminal: one drawing per tenth of a second is
# as smooth as the eye follows, and the last file is always drawn.
REDRAW_SECONDS = 0.1
BAR_CELLS = 20


class ProgressBar:
    """``12/40  30% [######              ] 0:05, 2.4 files/s, 0:12 left``, redrawn with ``\\r``.

    Parameters
    ----------
    stream : text stream
        Where to draw (the caller checks that it is a terminal).
    total : int
        The number of steps (files), at least 1.
    clock : callable, optional
        Seconds, monotonic; :func:`time.monotonic` by default (a test gives its own).
    """

    def __init__(self, stream: TextIO, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        if total < 1:
            raise ValueError(f"a progress bar needs a total of at least 1, got {total}")
        self._stream, self._clock, self.total, self.done = stream, clock, total, 0
        self._start = self._drawn_at = clock()
        self._width, self._shown = 0, -1
        self._draw()

    def step(self) -> None:
        """Count one more step; redraw if the last drawing is old enough, or this is the last step."""
        self.done += 1
        if self.done >= self.total or self._clock() - self._drawn_at >= REDRAW_SECONDS:
            self._draw()

    def print_above(self, text: str) -> None:
        """Print a line of text where the bar is, and draw the bar again below it."""
        self._stream.write(f"\r{' ' * self._width}\r{text}\n")
        self._width = 0
        self._draw()

    def close(self) -> None:
        """Draw the final count and end the line, so that what follows starts on a line of its own."""
        if self._shown != self.done:
            self._draw()
        self._stream.write("\n")
        self._stream.flush()

    def _draw(self) -> None:
        now = self._clock()
        elapsed, fraction = now - self._start, min(self.done / self.total, 1.0)
        filled = int(BAR_CELLS * fraction)
        text = (f"{self.done:>{len(str(self.total))}}/{self.total} {100 * fraction:3.0f}% "
                f"[{'#' * filled}{' ' * (BAR_CELLS - filled)}] {duration(elapsed)}")
        if self.done and elapsed > 0:
            rate = self.done / elapsed
            text += f", {rate:.1f} files/s" if rate >= 1 else f", {1 / rate:.1f} s/file"
            if self.done < self.total:
                text += f", {duration((self.total - self.done) / rate)} left"
        # Spaces cover what a longer previous drawing left on the line.
        self._stream.write(f"\r{text.ljust(self._width)}")
        self._stream.flush()
        self._width, self._shown, self._drawn_at = len(text), self.done, now


def duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on (seconds rounded down)."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
