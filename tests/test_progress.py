"""The progress bar of ``mri-noiselab clean``: drawn on stderr when it is a terminal, counting files.

Expected drawings are written out by hand from the closed forms (rate = files / seconds,
time left = files left / rate); the command-line tests read the drawings back from a fake
terminal (a stream whose ``isatty()`` is True).
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import numpy as np
import pytest
from dicom_helpers import phantom_volume, write_series

import mri_noiselab.cli as cli
from mri_noiselab.blocks import blocks
from mri_noiselab._progress import REDRAW_SECONDS, ProgressBar, duration
from mri_noiselab.cli import main

DRAWING = re.compile(r"\s*(\d+)/(\d+)\s+(\d+)%")
SLICES = 5


class Terminal(io.StringIO):
    """What a console looks like to the command: a text stream that is a TTY."""

    def isatty(self) -> bool:
        return True


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drawings(text: str) -> list[str]:
    """Each state of the bar drawn in ``text``: the pieces after a carriage return that start with a count."""
    return [piece.split("\n")[0].rstrip() for piece in text.split("\r") if DRAWING.match(piece)]


def run(*argv: str, err: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = Terminal(), err if err is not None else Terminal()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    _, noisy = phantom_volume(SLICES, 32, 15.0, rng)
    write_series(tmp_path / "in", np.rint(noisy).astype(np.uint16))
    return tmp_path / "in"


def test_the_bar_counts_files_on_a_terminal_and_ends_at_the_total(tmp_path, folder):
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", "--threads", "1")
    assert code == 0, err
    states = drawings(err)
    assert DRAWING.match(states[0]).groups() == ("0", str(SLICES), "0")
    assert DRAWING.match(states[-1]).groups() == (str(SLICES), str(SLICES), "100")
    counts = [int(DRAWING.match(s)[1]) for s in states]
    assert counts == sorted(counts)
    assert err.endswith("\n") and err.count("\n") == 1  # one line ended once, nothing else on stderr
    assert "\r" not in out and "files/s" not in out and out.startswith("slice000.dcm (+4 files")


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path, folder):
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", err=io.StringIO())
    assert (code, err) == (0, "")
    assert "\r" not in out


@pytest.mark.parametrize("flag", ["-q", "--json"])
def test_no_bar_with_quiet_or_json(tmp_path, folder, flag):
    code, out, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", flag)
    assert (code, err) == (0, "")
    assert "\r" not in out


def test_verbose_names_each_file_on_a_line_of_its_own_above_the_bar(tmp_path, folder):
    code, _, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", "-v")
    assert code == 0, err
    lines = [line.split("\r")[-1] for line in err.split("\n")]
    named = sorted(line for line in lines if line.startswith("done:"))
    assert named == [f"done: slice{k:03d}.dcm" for k in range(SLICES)]
    assert DRAWING.match(drawings(err)[-1]).groups() == (str(SLICES), str(SLICES), "100")


def test_an_error_ends_the_bar_line_before_its_message(tmp_path, monkeypatch):
    def failing(*args, on_start, on_file, **kwargs):
        on_start(4)
        on_file(Path("a.dcm"))
        on_file(Path("b.dcm"))
        raise OSError("No space left on device")

    monkeypatch.setattr(cli, "clean_source", failing)
    code, out, err = run("clean", str(tmp_path), "-o", str(tmp_path / "out"), "--sigma", "15")
    assert (code, out) == (2, "")
    bar, message, end = err.split("\n")
    assert DRAWING.match(drawings(bar)[-1]).groups() == ("2", "4", "50")
    assert (message, end) == ("mri-noiselab: error: No space left on device", "")


def test_a_drawing_shows_count_percent_elapsed_rate_and_time_left():
    clock, stream = Clock(), io.StringIO()
    bar = ProgressBar(stream, 40, clock=clock)
    for _ in range(10):
        clock.now += 0.5
        bar.step()
    # 10 files in 5 s: 2 files/s, 30 files left take 15 s.
    assert drawings(stream.getvalue())[-1] == "10/40  25% [#####               ] 0:05, 2.0 files/s, 0:15 left"
    clock.now += 55.0
    bar.step()
    # 11 files in 60 s: 60/11 = 5.45 s per file, 29 left take 29 * 60/11 = 158.2 s.
    assert drawings(stream.getvalue())[-1] == "11/40  28% [#####               ] 1:00, 5.5 s/file, 2:38 left"


def test_the_last_drawing_says_the_total_and_the_line_ends():
    clock, stream = Clock(), io.StringIO()
    bar = ProgressBar(stream, 3, clock=clock)
    for _ in range(3):
        clock.now += 0.01  # faster than the redraw interval: only the last file forces a drawing
        bar.step()
    bar.close()
    assert drawings(stream.getvalue()) == ["0/3   0% [                    ] 0:00",
                                           "3/3 100% [####################] 0:00, 100.0 files/s"]
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_redraws_are_throttled():
    clock, stream = Clock(), io.StringIO()
    bar = ProgressBar(stream, 1000, clock=clock)
    for _ in range(1000):
        clock.now += 0.001
        bar.step()
    # 1 s of files: the first drawing, at most one per REDRAW_SECONDS, and the last.
    count = len(drawings(stream.getvalue()))
    assert 1 + round(1 / REDRAW_SECONDS) - 1 <= count <= 1 + round(1 / REDRAW_SECONDS) + 1


def test_a_shorter_drawing_covers_the_longer_one_before_it():
    clock, stream = Clock(), io.StringIO()
    bar = ProgressBar(stream, 2, clock=clock)
    clock.now += 1.0
    bar.step()  # 1 file in 1 s: "..., 1.0 files/s, 0:01 left"
    bar.step()  # the last, at once: "..., 2.0 files/s" and no time left
    longer, shorter = stream.getvalue().split("\r")[-2:]
    assert len(shorter.rstrip("\n")) == len(longer) and shorter.rstrip("\n").endswith(" " * len(", 0:01 left"))


def test_print_above_clears_the_bar_then_draws_it_again():
    stream = io.StringIO()
    bar = ProgressBar(stream, 2, clock=Clock())
    width = len(stream.getvalue()) - 1
    bar.print_above("done: a.dcm")
    assert stream.getvalue().endswith(f"\r{' ' * width}\rdone: a.dcm\n\r0/2   0% [                    ] 0:00")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (59.9, "0:59"), (61, "1:01"), (3599, "59:59"),
                                               (3725, "1:02:05"), (36000, "10:00:00")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_a_bar_needs_a_total():
    with pytest.raises(ValueError, match="at least 1"):
        ProgressBar(io.StringIO(), 0)


@pytest.mark.parametrize("threads", ["1", "2"])
def test_one_series_advances_file_by_file_not_in_one_jump(tmp_path, folder, monkeypatch, threads):
    # Blocks of 2 slices (3 blocks), every step drawn (no throttle): the series' files are counted
    # as their blocks are written, in this process or on 2 worker processes.
    monkeypatch.setattr("mri_noiselab._progress.REDRAW_SECONDS", 0.0)
    monkeypatch.setattr("mri_noiselab.stream.blocks", functools.partial(blocks, voxels=2 * 32 * 32))
    code, _, err = run("clean", str(folder), "-o", str(tmp_path / "out"), "--sigma", "15", "--threads", threads)
    assert code == 0, err
    assert sorted({int(DRAWING.match(s)[1]) for s in drawings(err)}) == list(range(SLICES + 1))
