"""correct_stored gives the bits of the numpy sequence it replaces: convert to float64, correct, convert back.

The reference runs the float64 ``mri_noiselab.correct`` in the middle: the claim under test
is the fused conversion (rescale per slice, rounding half to even, clipping, the cast).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from dicom_helpers import phantom_volume, write_series

import mri_noiselab as nl
from mri_noiselab.dicom import read_source
from mri_noiselab.dicom.read import stored_range
from mri_noiselab.stored import STORED_DTYPES, correct_stored

DTYPES = [d.name for d in STORED_DTYPES]


def numpy_sequence(stored, sigma, f_size, method, *, scale=None, offset=None, out_scale=None, out_offset=None,
                   lo=None, hi=None, single=False, **options):
    """The conversion as the pipeline wrote it in numpy, each step skipped when its argument is None."""
    per_slice = (-1,) + (1,) * (stored.ndim - 1)
    m = stored.astype(np.float32 if single else np.float64)
    if scale is not None:
        m *= np.asarray(scale, np.float64).reshape(per_slice)
    if offset is not None:
        m += np.asarray(offset, np.float64).reshape(per_slice)
    y = nl.correct(m, sigma, f_size, method, **options).astype(np.float64)
    if out_scale is not None:
        y = y * np.asarray(out_scale, np.float64).reshape(per_slice)
    if out_offset is not None:
        y -= np.asarray(out_offset, np.float64).reshape(per_slice)
    if stored.dtype.kind in "iu":
        info = np.iinfo(stored.dtype)
        y = np.clip(np.rint(y), info.min if lo is None else lo, info.max if hi is None else hi)
    return y.astype(stored.dtype)


def top(dtype: np.dtype) -> float:
    """The largest stored value of the tests: the type's for integers, 3e4 for floats."""
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else 3.0e4


def stored_values(dtype: str, shape: tuple[int, ...], rng: np.random.Generator, signed: bool) -> np.ndarray:
    """An image (a bright block on Rician noise) with the type's extremes and, when ``signed``, negative values."""
    d = np.dtype(dtype)
    big = top(d)
    truth = np.zeros(shape)
    truth[..., shape[-2] // 4 : shape[-2] // 2, :] = 0.4 * big
    values = np.hypot(truth + rng.normal(0, 0.01 * big, shape), rng.normal(0, 0.01 * big, shape))
    if signed:
        values[rng.random(shape) < 0.1] *= -1
    flat = values.reshape(-1)
    low = float(np.iinfo(d).min) if d.kind in "iu" else -big
    flat[rng.random(flat.size) < 0.02] = big
    flat[rng.random(flat.size) < 0.02] = low if signed else 0.0
    if d.kind in "iu":
        values = np.clip(np.rint(values), low, big)
    if d.kind == "f":
        flat[:3] = [-0.0, 1e-40, 0.0]  # -0 and a float32 subnormal are valid magnitudes
    return values.astype(d)


def rescale(stored: np.ndarray, per_slice: bool, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """DICOM's per-slice slope and intercept in the first slice's units (what DicomStack computes).

    The intercept lifts the most negative stored value to a magnitude >= 0.
    """
    n = stored.shape[0] if per_slice else 1
    slope = rng.uniform(0.5, 2.5, n)
    low = min(float(stored.min()), 0.0)
    intercept = -low * slope + rng.uniform(0, 100, n)
    unit = slope[0]
    return {"scale": slope / unit, "offset": intercept / unit, "out_scale": unit / slope, "out_offset": intercept / slope}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", ["identity", "per slice", "one for all"])
@pytest.mark.parametrize("method", ["lmmse", "moments", "pointwise"])
@pytest.mark.parametrize("f_size", [(1, 9, 9), (3, 5, 5)])
def test_every_dtype_gives_the_bits_of_the_numpy_sequence(dtype, how, method, f_size):
    rng = np.random.default_rng(zlib.crc32(repr((dtype, how, method, f_size)).encode()))
    stored = stored_values(dtype, (5, 24, 21), rng, signed=how != "identity" and np.dtype(dtype).kind != "u")
    conversion = {} if how == "identity" else rescale(stored, how == "per slice", rng)
    if how == "per slice" and np.dtype(dtype).kind in "iu":  # BitsStored below the type's width
        conversion.update(lo=int(np.iinfo(dtype).min) // 4, hi=int(np.iinfo(dtype).max) // 4)
    sigma = 0.01 * top(np.dtype(dtype))
    want = numpy_sequence(stored, sigma, f_size, method, **conversion)
    for threads in (1, 2):
        got = correct_stored(stored, sigma, f_size, method, num_threads=threads, **conversion)
        assert got.dtype == stored.dtype and got.shape == stored.shape
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))  # bits: -0.0 and NaN too


@pytest.mark.parametrize("dtype", ["int16", "uint32", "float32"])
def test_masks_per_volume_sigma_and_coils_give_the_same_bits(dtype):
    rng = np.random.default_rng(3)
    stored = stored_values(dtype, (4, 20, 18, 3), rng, signed=np.dtype(dtype).kind == "i")
    conversion = rescale(stored, True, rng)
    sigma = 0.01 * top(np.dtype(dtype)) * np.array([1.0, 2.0, 0.5])  # one per volume (the last axis)
    mask = rng.random(stored.shape) < 0.7
    for method in ("lmmse", "moments"):
        want = numpy_sequence(stored, sigma, 5, method, coils=4, mask=mask, **conversion)
        got = correct_stored(stored, sigma, 5, method, 4, mask=mask, **conversion)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_single_precision_gives_the_bits_of_a_float32_magnitude(dtype):
    # NIfTI corrects 8/16-bit and float32 images as a float32 magnitude when scl_inter is 0.
    rng = np.random.default_rng(8)
    stored = stored_values(dtype, (3, 30, 25), rng, signed=False)
    sigma = 0.01 * top(np.dtype(dtype))
    for method in ("lmmse", "moments"):
        want = numpy_sequence(stored, sigma, (1, 7, 7), method, single=True)
        got = correct_stored(stored, sigma, (1, 7, 7), method, single=True)
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
        if dtype == "float32":  # the float root is not the double root rounded to float
            assert not np.array_equal(got, correct_stored(stored, sigma, (1, 7, 7), method))


def test_rounding_is_half_to_even_and_clipping_to_lo_hi():
    # Window 1 and a sigma whose 2 sigma^2 underflows to 0 leave the magnitude m = 2 v as it
    # is, and y = m / 4 = v / 2 has halves: 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 10.5 round to
    # 0, 2, 2, 4, 4, 6, 6, 10, then clip to [-3, 5].
    v = np.array([[1, 3, 5, 7, 9, 11, 13, 21]], np.int16)
    halves = {"scale": [2.0], "out_scale": [0.25], "lo": -3, "hi": 5}
    assert correct_stored(v, 1e-300, 1, "moments", **halves).tolist() == [[0, 2, 2, 4, 4, 5, 5, 5]]
    # y - 4 = -3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 6.5 -> -4, -2, -2, -0, 0, 2, 2, 6, clipped.
    shifted = correct_stored(v, 1e-300, 1, "moments", **halves, out_offset=[4.0])
    assert shifted.tolist() == [[-3, -2, -2, 0, 0, 2, 2, 5]]


def test_big_unsigned_strided_and_big_endian_inputs_are_read_as_they_are():
    rng = np.random.default_rng(11)
    base = stored_values("uint32", (3, 40, 30), rng, signed=False)
    base[:, ::3, ::2] = np.uint32(2**32 - 1) - rng.integers(0, 1000, base[:, ::3, ::2].shape).astype(np.uint32)
    view = base[:, ::-1, ::2]
    want = numpy_sequence(np.ascontiguousarray(view), 3e7, (1, 5, 5), "lmmse")
    np.testing.assert_array_equal(correct_stored(view, 3e7, (1, 5, 5), "lmmse"), want)
    np.testing.assert_array_equal(correct_stored(view.astype(">u4"), 3e7, (1, 5, 5), "lmmse"), want)
    assert want.max() > 2**31  # beyond a signed 32-bit integer


@pytest.mark.parametrize(("slope", "intercept"), [(1.0, 0.0), (0.37, -12.5)])
def test_a_dicom_stack_gives_the_bits_of_its_to_stored(tmp_path, slope, intercept):
    # The wiring the pipeline needs: the stack's rescale per slice and BitsStored range.
    _, noisy = phantom_volume(4, 40, 10.0, np.random.default_rng(5))
    write_series(tmp_path / "in", np.rint(noisy).astype(np.int16) + 40, RescaleSlope=slope, RescaleIntercept=intercept)
    (stack,) = read_source(tmp_path / "in").stacks
    want = stack.to_stored(nl.correct(stack.magnitude(), 4.0, (1, 5, 5), "lmmse"))
    identity = slope == 1.0 and intercept == 0.0
    conversion = {} if identity else {
        "scale": stack.slope / stack.unit, "offset": stack.intercept / stack.unit,
        "out_scale": stack.unit / stack.slope, "out_offset": stack.intercept / stack.slope,
    }
    lo, hi = stored_range(stack.datasets[0])
    got = correct_stored(stack.stored, 4.0, (1, 5, 5), "lmmse", lo=lo, hi=hi, **conversion)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"scale": [1.0, 2.0]}, ValueError, "one per index of the first axis"),
        ({"offset": [[1.0]]}, ValueError, "one per index of the first axis"),
        ({"out_scale": [np.nan]}, ValueError, "out_scale must be finite"),
        ({"lo": -40000}, ValueError, "lo must be an integer in the range of int16"),
        ({"hi": 2.5}, ValueError, "hi must be an integer"),
        ({"lo": 10, "hi": 5}, ValueError, "lo must be at most hi"),
        ({"single": True, "scale": [2.0]}, ValueError, "single precision"),
        ({"method": "median"}, ValueError, "unknown correction"),
        ({"coils": 0}, ValueError, "coils must be an integer"),
        ({"sigma": -1.0}, ValueError, "sigma must be finite and > 0"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    stored = np.ones((3, 8, 8), np.int16)
    args = {"sigma": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        correct_stored(stored, **args)


@pytest.mark.parametrize(
    ("stored", "kwargs", "error", "match"),
    [
        (np.ones((3, 8), np.int64), {}, TypeError, "stored values must be one of int8"),
        (np.ones((3, 8), bool), {}, TypeError, "got dtype bool"),
        (np.ones((3, 8), np.float32), {"lo": 0}, ValueError, "neither rounded nor clipped"),
        (np.ones((3, 8), np.int32), {"single": True}, ValueError, "single precision"),
        (np.ones(8, np.int16), {"scale": np.ones(8)}, ValueError, "2-D to 4-D image"),
        (np.ones((3, 0), np.int16), {}, ValueError, "stored is empty"),
        (np.array([[1, -2]], np.int16), {}, ValueError, "Found negative values in the magnitude"),
        (np.array([[1, 2]], np.float64), {"offset": [-1.5]}, ValueError, "Found negative values in the magnitude"),
        (np.array([[1, np.inf]]), {}, ValueError, "magnitude contains NaN or infinite values"),
        (np.array([[1, 2]], np.int32), {"scale": [1e300]}, ValueError, "magnitude values up to"),
    ],
)
def test_bad_images_raise_clear_errors(stored, kwargs, error, match):
    with pytest.raises(error, match=match):
        correct_stored(stored, 1.0, **kwargs)
