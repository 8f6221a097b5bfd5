"""Bounded fuzz run of read -> clean -> write over mutated bytes of pydicom's MR test files.

Every case must end in a written, readable DICOM or in one of the documented
exceptions (ValueError and its DicomError/NoBackgroundError subclasses), within
a per-case time limit, with the input unchanged and no partial or temporary
file left. The run is derandomized so CI is reproducible; set
MRI_NOISELAB_FUZZ_EXAMPLES to fuzz longer locally.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from mri_noiselab.clean import CleanOptions, clean_group
from mri_noiselab.dicom import clean_source, read_file
from mri_noiselab.roi import roi_mask

SEEDS = {name: Path(get_testdata_file(name)).read_bytes() for name in (
    "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_truncated.dcm",
)}
EXAMPLES = int(os.environ.get("MRI_NOISELAB_FUZZ_EXAMPLES", "3000"))
CASE_SECONDS = 10.0


class _Hang(BaseException):
    """Raised by the alarm to stop a case that runs too long."""


_fired: list[bool] = []


def _alarm(signum, frame):  # noqa: ANN001, ANN202
    # Recorded as well as raised: the decoder guard of the code under test may turn the exception into a DicomError.
    _fired.append(True)
    raise _Hang


Edit = tuple[str, float, int]


def apply(data: bytes, edits: list[Edit]) -> bytes:
    """Apply (operation, relative position, argument) edits; positions scale to the current length."""
    out = bytearray(data)
    for op, position, arg in edits:
        n = len(out)
        # Most of the header lies in the first ~1.5 kB: a negative position aims there.
        where = int(-position * min(n, 1600)) if position < 0 else int(position * n)
        if op == "flip" and where < n:
            out[where] ^= 1 << (arg % 8)
        elif op == "byte" and where < n:
            out[where] = arg % 256
        elif op == "truncate":
            del out[where:]
        elif op == "insert":
            out[where:where] = bytes((arg + 37 * k) % 256 for k in range(1 + arg % 16))
        elif op == "delete":
            del out[where : where + 1 + arg % 16]
        elif op == "length" and where + 4 <= n:
            # Lengths and sizes are 16/32-bit little-endian fields: make one huge.
            out[where : where + 4] = (b"\xff\xff\xff\xff", b"\xff\xff\x00\x00", b"\x00\x00\x00\x80")[arg % 3]
    return bytes(out)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "length"]),
        st.floats(-1.0, 1.0, allow_nan=False, exclude_max=True),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(sorted(SEEDS)), EDITS)
def test_mutated_mr_files_are_cleaned_or_refused_cleanly(name: str, edits: list[Edit]) -> None:
    data = apply(SEEDS[name], edits)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "in" / name
        source.parent.mkdir()
        source.write_bytes(data)
        out = folder / "out"
        _fired.clear()
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy may warn about odd values; errors are what count here
                # The seeds are DERIVED images: corrected only when derived images are asked for.
                report = clean_source(source, out / name, background=lambda s: roi_mask(["0:8,0:8"], s.shape),
                                      f_size=3, num_threads=1, include_derived=True)
        except ValueError:
            report = None
        except _Hang:
            raise AssertionError(f"a mutated {name} took more than {CASE_SECONDS} s") from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert not _fired, f"a mutated {name} took more than {CASE_SECONDS} s"
        assert source.read_bytes() == data
        written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) if out.exists() else []
        if report is None:
            assert written == []
            return
        assert written == [Path(name)]
        ds = pydicom.dcmread(out / name)
        # What was written is the correction of what was read (the report keeps no pixels).
        stack = read_file(source)
        (result,) = clean_group([stack], CleanOptions(f_size=3, num_threads=1, include_derived=True),
                                lambda s: roi_mask(["0:8,0:8"], s.shape))
        assert result is not None and result.stored is not None
        expected = stack.file_pixels(result.stored)[1]
        assert np.array_equal(ds.pixel_array.reshape(expected.shape), expected)
        shutil.rmtree(out)
