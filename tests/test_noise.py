"""estimate_sigma / correct: the API for new code, against closed forms and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

import mri_noiselab as nl

from conftest import lmmse_reference, rician


@pytest.mark.parametrize("coils", [1, 2, 8])
@pytest.mark.parametrize("method", ["mle", "mean", "std"])
def test_estimators_land_within_their_statistical_error(method: str, coils: int, rng: np.random.Generator) -> None:
    sigma, n = 12.0, 100 * 100
    bg = rician(np.zeros((100, 100)), sigma, rng, coils=coils)
    est = nl.estimate_sigma(bg, estimator=method, coils=coils)
    # sd of the MLE is sigma / (2 sqrt(N n)); "mean" is ~1.04x and "std" ~1.5x wider
    # (efficiencies 0.92 and 0.44). Four sds: a fixed seed, and a real bug is far outside.
    sd = sigma / (2 * math.sqrt(coils * n)) * {"mle": 1.0, "mean": 1.1, "std": 1.6}[method]
    assert abs(est.sigma - sigma) < 4 * sd
    assert float(est) == est.sigma
    assert est.n == n and est.estimator == method and est.coils == coils
    beta, std_factor, ratio = nl.rayleigh_constants(coils)
    assert abs(est.ratio - ratio) < 0.05 and est.expected_ratio == pytest.approx(ratio)


@pytest.mark.parametrize("coils", [1, 4])
@pytest.mark.parametrize("method", ["mle", "mean", "std"])
def test_standard_error_is_the_spread_of_sigma_over_repeated_samples(method: str, coils: int, rng: np.random.Generator) -> None:
    # The reference is the simulation: the sd of sigma over 400 samples of 2000 values of
    # chi noise (its own relative error 1 / sqrt(2 * 399) = 3.5%: 12% is 3.4 of those).
    estimates = [nl.estimate_sigma(rician(np.zeros(2000), 3.0, rng, coils=coils), method, coils, warn=False)
                 for _ in range(400)]
    spread = float(np.std([e.sigma for e in estimates], ddof=1))
    assert np.mean([e.standard_error for e in estimates]) == pytest.approx(spread, rel=0.12)
    # And the closed form of the maximum-likelihood estimator, the Cramer-Rao bound.
    if method == "mle":
        assert all(e.standard_error == pytest.approx(e.sigma / (2 * math.sqrt(coils * 2000)), rel=1e-12) for e in estimates)


def test_mle_is_within_one_percent_on_a_100x100_background(rng: np.random.Generator) -> None:
    bg = rician(np.zeros((100, 100)), 5.0, rng)
    assert abs(nl.estimate_sigma(bg).sigma / 5.0 - 1) < 0.01


def test_rayleigh_constants_match_closed_forms() -> None:
    beta, std_factor, ratio = nl.rayleigh_constants(1)
    assert beta == pytest.approx(math.sqrt(math.pi / 2), rel=1e-15)
    assert std_factor == pytest.approx(math.sqrt(2 - math.pi / 2), rel=1e-15)
    assert ratio == pytest.approx(math.sqrt(math.pi / (4 - math.pi)), rel=1e-14)
    beta3, _, _ = nl.rayleigh_constants(3)
    assert beta3 == pytest.approx(math.sqrt(math.pi / 2) * 15 / (4 * 2), rel=1e-15)  # 5!!/(2^2 2!)


def test_zero_padding_and_mask_are_left_out(rng: np.random.Generator) -> None:
    bg = rician(np.zeros((50, 50)), 4.0, rng)
    padded = np.concatenate([bg, np.zeros((50, 50))])
    with pytest.warns(nl.RoiWarning, match="zero padding: 50.0% of the ROI"):
        est = nl.estimate_sigma(padded)
    assert est.zeros_excluded == 2500 and est.n == 2500
    assert est.quality.zero_fraction == 0.5 and len(est.warnings) == 1
    assert est.sigma == pytest.approx(nl.estimate_sigma(bg).sigma, rel=1e-12)
    mask = np.ones(padded.shape, bool)
    mask[:10] = False
    with pytest.warns(nl.RoiWarning, match="zero padding"):
        assert nl.estimate_sigma(padded, mask=mask).n == 2000


@pytest.mark.parametrize(
    ("bg", "kwargs", "match"),
    [
        (np.array([]), {}, "empty"),
        (np.array([1.0, np.nan]), {}, "NaN or infinite"),
        (np.array([1.0, -1.0]), {}, "negative"),
        (np.zeros(5), {}, "totally dark"),
        (np.full(5, 2.0), {"estimator": "std"}, r"std = 0"),
        (np.ones(5), {"estimator": "median"}, "choose one of mle, std, mean"),
        (np.ones(5), {"coils": 0}, "coils must be an integer >= 1"),
        (np.ones(5), {"mask": np.ones(4, bool)}, "mask shape"),
    ],
)
def test_estimate_sigma_errors(bg: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nl.estimate_sigma(bg, **kwargs)


@pytest.mark.parametrize("f_size", [3, (5, 1, 4), 20])
def test_moments_correction_matches_the_formula(f_size, rng: np.random.Generator) -> None:  # noqa: ANN001
    image = rician(np.full((12, 9, 10), 20.0), 4.0, rng)
    out = nl.correct(image, 4.0, f_size=f_size, method="moments", coils=2)
    size = f_size if isinstance(f_size, tuple) else (f_size,) * 3
    ref = np.sqrt(np.clip(uniform_filter(image**2, size, mode="reflect") - 2 * 2 * 16.0, 0, None))
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def test_pointwise_is_power_subtraction(rng: np.random.Generator) -> None:
    image = rician(np.full((30, 30), 10.0), 3.0, rng).astype(np.float32)
    out = nl.correct(image, 3.0, method="pointwise")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.sqrt(np.clip(image.astype(np.float64) ** 2 - 18.0, 0, None)), rtol=1e-6)


def test_lmmse_matches_the_formula(rng: np.random.Generator) -> None:
    truth = np.zeros((40, 40))
    truth[:, 20:] = 30.0
    image = rician(truth, 5.0, rng)
    out = nl.correct(image, 5.0, f_size=5, method="lmmse")
    np.testing.assert_allclose(out, lmmse_reference(image, 5.0, 5), rtol=1e-8, atol=1e-8)


def test_4d_default_window_never_mixes_volumes(rng: np.random.Generator) -> None:
    image = rician(np.full((6, 7, 5, 4), 20.0), 2.0, rng)
    image[..., 2] *= 3  # a very different volume must not leak into its neighbours
    out = nl.correct(image, 2.0, f_size=3, method="moments")
    ref = np.sqrt(np.clip(uniform_filter(image**2, (3, 3, 3, 1), mode="reflect") - 8.0, 0, None))
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_sigma_per_volume_and_per_voxel(rng: np.random.Generator) -> None:
    image = rician(np.full((5, 6, 4, 3), 20.0), 2.0, rng)
    sig = np.array([1.0, 2.0, 3.0])
    out = nl.correct(image, sig, f_size=1, method="moments")
    np.testing.assert_allclose(out, np.sqrt(np.clip(image**2 - 2 * sig**2, 0, None)), rtol=1e-12)
    smap = rng.uniform(1, 3, image.shape)
    out = nl.correct(image, smap, f_size=(3, 3, 1, 1), method="moments")
    ref = np.sqrt(np.clip(uniform_filter(image**2, (3, 3, 1, 1), mode="reflect") - 2 * smap**2, 0, None))
    np.testing.assert_allclose(out, ref, rtol=1e-10)


def test_mask_voxels_outside_are_bit_identical(rng: np.random.Generator) -> None:
    image = rician(np.full((20, 20), 20.0), 2.0, rng).astype(np.float32)
    image[0, 0] = np.nan  # outside the mask: never validated, never used
    mask = np.zeros(image.shape, bool)
    mask[5:15, 5:15] = True
    out = nl.correct(image, 2.0, f_size=3, method="moments", mask=mask)
    assert np.array_equal(out[~mask], image[~mask], equal_nan=True)
    num = uniform_filter(np.where(mask, image.astype(np.float64) ** 2, 0), 3, mode="reflect")
    den = uniform_filter(mask.astype(float), 3, mode="reflect")
    np.testing.assert_allclose(out[mask], np.sqrt(np.clip(num[mask] / den[mask] - 8, 0, None)), rtol=1e-6)


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "match"),
    [
        ((np.array([1.0, np.nan]), 1.0), {}, ValueError, "NaN or infinite"),
        ((np.array([1.0, -1.0]), 1.0), {}, ValueError, "negative"),
        ((np.ones(3), 0.0), {}, ValueError, "sigma must be finite and > 0"),
        ((np.ones(3), np.nan), {}, ValueError, "sigma must be finite and > 0"),
        ((np.ones((3, 4)), np.ones(5)), {}, ValueError, "does not broadcast"),
        ((np.ones(3), 1.0), {"coils": 0}, ValueError, "coils"),
        ((np.ones(3), 1.0), {"method": "nlm"}, ValueError, "choose one of moments, pointwise, lmmse"),
        ((np.ones(3), 1.0), {"f_size": 0}, ValueError, "f_size must be >= 1"),
        ((np.ones(3), 1.0), {"f_size": 2.5}, TypeError, "f_size must be an int"),
        ((np.ones((3, 3)), 1.0), {"f_size": (3, 3, 3)}, ValueError, "one per axis"),
        ((np.ones(3, complex), 1.0), {}, TypeError, "real numbers"),
        ((np.ones(3, bool), 1.0), {}, TypeError, "real numbers"),
        ((np.ones((2, 2, 2, 2, 2)), 1.0), {}, ValueError, "1 to 4 dimensions"),
        ((np.ones((0, 3)), 1.0), {}, ValueError, "empty"),
        ((np.ones((3, 3)), 1.0), {"mask": np.ones((2, 2))}, ValueError, "mask shape"),
        ((np.ones(3), 1.0), {"num_threads": 0}, ValueError, "num_threads"),
    ],
)
def test_correct_errors(args: tuple, kwargs: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        nl.correct(*args, **kwargs)


def test_big_endian_and_non_contiguous_inputs_work(rng: np.random.Generator) -> None:
    image = rician(np.full((30, 40), 10.0), 2.0, rng)
    ref = nl.correct(image, 2.0, f_size=3)
    assert np.array_equal(nl.correct(image.astype(">f8"), 2.0, f_size=3), ref)
    flipped = np.ascontiguousarray(image[::-1, ::-1])
    assert np.array_equal(nl.correct(flipped[::-1, ::-1], 2.0, f_size=3), ref)


def test_thread_setting_is_validated_and_does_not_change_results(rng: np.random.Generator) -> None:
    image = rician(np.full((40, 30, 20), 10.0), 2.0, rng).astype(np.float32)
    ref = nl.correct(image, 2.0, num_threads=1)
    try:
        nl.set_num_threads(2)
        assert nl.get_num_threads() == 2
        assert np.array_equal(nl.correct(image, 2.0), ref)
    finally:
        nl.set_num_threads(None)
    with pytest.raises(ValueError, match="num_threads"):
        nl.set_num_threads(-1)


def test_float32_images_beyond_the_float_square_root_range_stay_finite() -> None:
    image = np.full((4, 5), 3e19, np.float32)  # A^2 ~ 9e38 > FLT_MAX
    for method in ("moments", "lmmse"):
        out = nl.correct(image, 1.0, f_size=3, method=method)
        np.testing.assert_allclose(out, 3e19, rtol=1e-6)


def test_float64_images_whose_powers_overflow_are_refused() -> None:
    image = np.ones((20, 20))
    image[3, 3] = 1e200
    with pytest.raises(ValueError, match="overflow float64"):
        nl.correct(image, 1.0, f_size=3)


def test_report_has_the_clamped_count_and_zero_d_keeps_its_shape(rng: np.random.Generator) -> None:
    image = rng.uniform(0.5, 1.5, (10, 12))
    out, report = nl.correct(image, 10.0, f_size=3, method="moments", return_report=True)
    assert report.clamped == image.size and np.all(out == 0)
    # lmmse counts them too; its root keeps them above 0 and below sigma / 2.
    out, report = nl.correct(image, 10.0, f_size=3, method="lmmse", return_report=True)
    assert report.clamped == image.size and np.all((out > 0) & (out < 5))
    assert nl.correct(np.array(5.0), 1.0).shape == ()


def test_unaligned_arrays_are_copied_not_misread() -> None:
    raw = np.zeros(4 * 60 + 1, np.uint8)
    values = np.linspace(1, 10, 60).astype(np.float32)
    raw[1:].view(np.uint8)[:] = values.view(np.uint8)
    unaligned = np.frombuffer(raw.data, np.float32, count=60, offset=1).reshape(6, 10)
    assert not unaligned.flags.aligned
    np.testing.assert_array_equal(nl.correct(unaligned, 1.0, f_size=3), nl.correct(values.reshape(6, 10), 1.0, f_size=3))


@pytest.mark.parametrize("threads", [2, 3])
def test_masked_runs_and_sample_stats_are_deterministic(threads: int, rng: np.random.Generator) -> None:
    image = rician(np.full((50, 40, 30), 20.0), 3.0, rng).astype(np.float32)
    mask = rng.random(image.shape) > 0.2
    ref = nl.correct(image, 3.0, f_size=7, method="lmmse", mask=mask, num_threads=1)
    assert np.array_equal(nl.correct(image, 3.0, f_size=7, method="lmmse", mask=mask, num_threads=threads), ref)
    noise = rician(np.zeros((300, 200)), 3.0, rng)
    a = nl.estimate_sigma(noise, num_threads=1)
    b = nl.estimate_sigma(noise, num_threads=threads)
    assert (a.sigma, a.std, a.mean) == (b.sigma, b.std, b.mean)
