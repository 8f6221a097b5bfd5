"""subtract_noise / subtract_noise_masked as drop-ins for mri-noiselab 0.1."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from mri_noiselab import subtract_noise, subtract_noise_masked

from conftest import rician


def seed_reference(image: np.ndarray, background: np.ndarray, f_size: int | tuple[int, ...]) -> np.ndarray:
    """The seed's algorithm, written out in float64 with scipy."""
    sigma = np.std(background) / 0.655
    a2 = uniform_filter(image.astype(np.float64) ** 2, f_size, mode="reflect") - 2 * sigma**2
    return np.sqrt(np.clip(a2, 0, None))


@pytest.fixture
def phantom(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((64, 80))
    truth[16:48, 20:60] = 100.0
    image = rician(truth, 10.0, rng)
    return image, image[:12, :]


def quiet(fn, *args, **kwargs):  # noqa: ANN001, ANN202 - test helper
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("f_size", [1, 2, 3, 10, 200, (3, 8)])
def test_float64_result_equals_the_seed_formula(phantom: tuple[np.ndarray, np.ndarray], f_size) -> None:  # noqa: ANN001
    image, bg = phantom
    out = quiet(subtract_noise, image, bg, f_size=f_size, np_type=np.float64)
    assert out.dtype == np.float64 and out.shape == image.shape
    np.testing.assert_allclose(out, seed_reference(image, bg, f_size), rtol=1e-9, atol=1e-9)


def test_default_float32_is_as_accurate_as_the_seed_needs(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    out = quiet(subtract_noise, image.astype(np.float32), bg.astype(np.float32))
    assert out.dtype == np.float32
    ref = seed_reference(image.astype(np.float32), bg.astype(np.float32), 10)
    # Error of A^2 relative to max(M^2) below 1e-6 (SCIENCE.md numerics).
    assert np.max(np.abs(out.astype(np.float64) ** 2 - ref**2)) / np.max(image**2) < 1e-6


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float16])
def test_integer_and_half_inputs_are_accepted(dtype: type, phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    out = quiet(subtract_noise, image.astype(dtype), bg.astype(dtype), f_size=5)
    assert out.dtype == np.float32


def test_any_nd_shape_and_background_shape(rng: np.random.Generator) -> None:
    image = rician(np.full((3, 1, 6, 1, 5), 30.0), 5.0, rng)
    bg = rician(np.zeros(500), 5.0, rng).reshape(5, 10, 10)
    out = quiet(subtract_noise, image, bg, f_size=3, np_type=np.float64)
    assert out.shape == image.shape
    np.testing.assert_allclose(out, seed_reference(image, bg, 3), rtol=1e-9)


def test_f_size_larger_than_the_image(rng: np.random.Generator) -> None:
    image = rician(np.full((4, 5), 50.0), 5.0, rng)
    bg = rician(np.zeros((30, 30)), 5.0, rng)
    out = quiet(subtract_noise, image, bg, f_size=11, np_type=np.float64)
    np.testing.assert_allclose(out, seed_reference(image, bg, 11), rtol=1e-9)


@pytest.mark.parametrize(
    ("image", "bg", "exc", "match"),
    [
        ([1.0, 2.0], np.ones(3), TypeError, "image must be a numpy.ndarray"),
        (np.ones(3), [1.0, 2.0], TypeError, "background must be a numpy.ndarray"),
        (np.array([1.0, np.nan]), np.array([1.0, 2.0]), ValueError, "image contains NaN or infinite values"),
        (np.array([1.0, np.inf]), np.array([1.0, 2.0]), ValueError, "image contains NaN or infinite values"),
        (np.array([1.0, 2.0]), np.array([1.0, np.nan]), ValueError, "background contains NaN or infinite values"),
        (np.array([1.0, -2.0]), np.array([1.0, 2.0]), ValueError, "Found negative values in the image"),
        (np.array([1.0, 2.0]), np.array([1.0, -2.0]), ValueError, "Found negative values in the background"),
        (np.zeros(4), np.array([1.0, 2.0]), ValueError, "image is totally dark"),
        (np.array([1.0, 2.0]), np.zeros(4), ValueError, "background is totally dark"),
        (np.array([1.0, 2.0]), np.full(4, 3.0), ValueError, r"Unable to estimate noise from background \(std = 0\)"),
        (np.array([1.0, -2.0]), np.zeros(4), ValueError, "Found negative values in the image"),
    ],
)
def test_errors_keep_the_seed_messages_and_order(image, bg, exc, match) -> None:  # noqa: ANN001
    with pytest.raises(exc, match=match):
        subtract_noise(image, bg)


def test_warns_when_the_background_is_not_rayleigh(rng: np.random.Generator) -> None:
    bg = rng.uniform(0, 10, 1000)  # mean/std of a uniform is ~1.73, not 1.91
    image = rician(np.full((20, 20), 50.0), 3.0, rng)
    with pytest.warns(RuntimeWarning, match="Background may be biased"):
        subtract_noise(image, bg, f_size=3)


def test_b_tol_loosens_the_check(rng: np.random.Generator) -> None:
    bg = rng.uniform(0, 10, 1000)
    image = rician(np.full((20, 20), 50.0), 3.0, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        subtract_noise(image, bg, f_size=3, b_tol=0.5)


def test_warns_for_a_constant_image(rng: np.random.Generator) -> None:
    bg = rician(np.zeros(4000), 1.0, rng)
    with pytest.warns(RuntimeWarning, match=r"No noise found in image \(std = 0\)"):
        subtract_noise(np.full((8, 8), 7.0), bg, f_size=3)


def test_warns_with_the_percentage_of_clamped_voxels(rng: np.random.Generator) -> None:
    bg = rician(np.zeros(4000), 10.0, rng)
    image = rng.uniform(0.5, 1.5, (10, 10))  # far below 2 sigma^2: every voxel clamps
    with pytest.warns(RuntimeWarning, match=r"100\.00% negative values set to zero before square root"):
        out = subtract_noise(image, bg, f_size=3)
    assert np.all(out == 0)


def test_cast_overflow_raises_runtime_error_with_numpys_words() -> None:
    image = np.full((4, 4), 1e20)
    with pytest.raises(RuntimeError, match="overflow encountered in cast"):
        subtract_noise(image, np.array([1.0, 2.0, 3.0]), np_type=np.float16)


def test_input_arrays_are_not_modified(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    before_i, before_b = image.copy(), bg.copy()
    quiet(subtract_noise, image, bg)
    assert np.array_equal(image, before_i) and np.array_equal(bg, before_b)


def test_masked_requires_a_masked_array(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    with pytest.raises(TypeError, match="MaskedArray"):
        subtract_noise_masked(image, bg)


def test_masked_background_must_have_unmasked_pixels(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    with pytest.raises(ValueError, match=r"Background has no valid \(unmasked\) pixels"):
        subtract_noise_masked(np.ma.masked_array(image), np.ma.masked_array(bg, mask=True))


def test_masked_pixels_are_filled_skip_validation_and_keep_their_mask(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    dirty = image.copy()
    dirty[0, :5] = np.nan
    dirty[1, :5] = -3.0
    mask = np.zeros(image.shape, bool)
    mask[:2, :5] = True
    bg_ma = np.ma.masked_array(bg, mask=np.zeros(bg.shape, bool))
    bg_ma.mask[0, 0] = True
    out = quiet(subtract_noise_masked, np.ma.masked_array(dirty, mask=mask), bg_ma, np_type=np.float64)
    assert isinstance(out, np.ma.MaskedArray)
    assert np.array_equal(np.ma.getmaskarray(out), mask)
    filled = np.where(mask, 0.0, image)
    np.testing.assert_allclose(out.data, seed_reference(filled, bg_ma.compressed(), 10), rtol=1e-9)
    plain = quiet(subtract_noise_masked, np.ma.masked_array(dirty, mask=mask), bg, return_masked=False, fill_value=1.0)
    assert type(plain) is np.ndarray


def test_integer_input_values_match_the_seed_formula(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    img16, bg16 = np.rint(image).astype(np.uint16), np.rint(bg).astype(np.uint16)
    out = quiet(subtract_noise, img16, bg16, f_size=5, np_type=np.float64)
    np.testing.assert_allclose(out, seed_reference(img16, bg16, 5), rtol=1e-9, atol=1e-9)


def test_zero_dimensional_input_keeps_its_shape(rng: np.random.Generator) -> None:
    bg = rician(np.zeros(2000), 1.0, rng)
    out = quiet(subtract_noise, np.array(30.0), bg, np_type=np.float64)
    assert out.shape == ()
    assert float(out) == pytest.approx(np.sqrt(900 - 2 * (np.std(bg) / 0.655) ** 2), rel=1e-12)


def test_a_masked_background_counts_only_its_unmasked_values(rng: np.random.Generator) -> None:
    noise = rician(np.zeros(2000), 5.0, rng)
    bg = np.ma.masked_array(np.concatenate([noise, np.full(2000, 1e4)]), mask=[False] * 2000 + [True] * 2000)
    image = rician(np.full((20, 20), 50.0), 5.0, rng)
    out = quiet(subtract_noise, image, bg, f_size=3, np_type=np.float64)
    np.testing.assert_allclose(out, seed_reference(image, noise, 3), rtol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_squares_that_overflow_np_type_raise_like_the_seed(dtype: type) -> None:
    image = np.array([[1.0, 2.0], [3.0, np.sqrt(np.finfo(dtype).max) * 4]], dtype=dtype)
    with pytest.raises(RuntimeError, match="overflow encountered in square"):
        quiet(subtract_noise, image, np.array([1.0, 2.0, 3.0]), np_type=dtype)


def test_half_precision_overflows_in_square_as_in_the_seed() -> None:
    with pytest.raises(RuntimeError, match="overflow encountered in square"):
        quiet(subtract_noise, np.full((4, 4), 300.0) + np.eye(4), np.array([1.0, 2.0, 3.0]), np_type=np.float16)


@pytest.mark.parametrize(("bad", "match"), [(-1.0, "Found negative values in the image"), (np.nan, "NaN or infinite")])
def test_content_errors_win_over_cast_overflow(bad: float, match: str) -> None:
    image = np.array([bad, 1e20, 3.0])
    with pytest.raises(ValueError, match=match):
        subtract_noise(image, np.array([1.0, 2.0, 3.0]), np_type=np.float16)


def test_warnings_come_in_the_seeds_order(rng: np.random.Generator) -> None:
    bg = rng.uniform(0, 10, 1000)  # not Rayleigh
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        subtract_noise(np.full((6, 6), 0.5), bg, f_size=3)  # constant and far below 2 sigma^2
    messages = [str(w.message) for w in caught]
    assert [m.split(":")[0].split(" (")[0] for m in messages] == [
        "Background may be biased",
        "No noise found in image",
        "100.00% negative values set to zero before square root.",
    ]
    assert all(w.category is RuntimeWarning for w in caught)


def test_f_size_may_be_a_numpy_array_as_in_scipy(phantom: tuple[np.ndarray, np.ndarray]) -> None:
    image, bg = phantom
    out = quiet(subtract_noise, image, bg, f_size=np.array([3, 5]), np_type=np.float64)
    np.testing.assert_allclose(out, seed_reference(image, bg, (3, 5)), rtol=1e-9)
