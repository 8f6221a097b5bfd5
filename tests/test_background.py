"""Automatic background, sigma maps and the ROI quality report, against scipy and known truth."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.ndimage import uniform_filter

import mri_noiselab as nl
from mri_noiselab import chi

from conftest import rician


def _phantom(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    t = np.zeros(shape)
    t[40:200, 50:210] = 1.0
    t[80:120, 90:180] = 2.0
    return t


@pytest.mark.parametrize("coils", [1, 2, 8])
def test_chi_cdf_and_moments_match_scipy(coils: int) -> None:
    x = np.linspace(0, 60, 301)
    ref = stats.chi(2 * coils, scale=7.0)
    np.testing.assert_allclose(chi.chi_cdf(x, 7.0, coils), ref.cdf(x), rtol=1e-12, atol=1e-15)
    for p in (1, 2, 3, 4):
        assert chi.chi_moment(p, 7.0, coils) == pytest.approx(ref.moment(p), rel=1e-12)


def test_ks_statistic_matches_scipy_on_continuous_data(rng: np.random.Generator) -> None:
    v = rician(np.zeros(3000), 4.0, rng, coils=2)
    d, p = chi.ks_statistic(v, 4.0, 2)
    res = stats.kstest(v, stats.chi(4, scale=4.0).cdf, method="asymp")
    assert d == pytest.approx(res.statistic, rel=1e-12)
    assert p == pytest.approx(res.pvalue, rel=0.05, abs=1e-3)  # Stephens' factor vs plain asymptotic


def test_ks_statistic_models_rounding_of_integer_data(rng: np.random.Generator) -> None:
    # DICOM stores integers: a naive continuous test rejects pure, rounded noise.
    v = np.round(rician(np.zeros(20000), 2.0, rng))
    v = v[v != 0]
    naive = stats.kstest(v, stats.chi(2, scale=2.0).cdf)
    assert naive.pvalue < 1e-6
    d, p = chi.ks_statistic(v, 2.0, 1)
    assert p > 0.01 and d < 0.015
    # ...while rounded data of the wrong distribution is still rejected
    assert chi.ks_statistic(v, 2.4, 1)[1] < 1e-6


@pytest.mark.parametrize("coils", [1, 4])
def test_ratio_standard_error_matches_simulation(coils: int, rng: np.random.Generator) -> None:
    reps, n = 3000, 400
    v = rician(np.zeros((reps, n)), 1.0, rng, coils=coils)
    ratios = v.mean(axis=1) / v.std(axis=1)
    se = chi.ratio_standard_error(n, coils)
    # the sd of 3000 replicates is known to ~1.3%; the delta method to O(1/n)
    assert np.std(ratios) == pytest.approx(se, rel=0.07)
    assert np.mean(ratios) == pytest.approx(nl.rayleigh_constants(coils)[2], abs=4 * se / math.sqrt(reps) + 0.01)


@pytest.mark.parametrize("coils", [1, 8])
def test_pure_noise_gets_no_warning(coils: int, rng: np.random.Generator) -> None:
    est = nl.estimate_sigma(rician(np.zeros((120, 120)), 3.0, rng, coils), coils=coils)
    assert est.warnings == ()
    assert est.quality.ratio_coils == coils and est.quality.ks_pvalue > 1e-3


def test_rounded_noise_with_natural_zeros_is_not_called_zero_padding(rng: np.random.Generator) -> None:
    bg = np.round(rician(np.zeros((150, 150)), 1.5, rng)).astype(np.uint16)
    assert np.mean(bg == 0) > 0.03  # rounding alone produces these zeros
    est = nl.estimate_sigma(bg)
    assert not any("zero padding" in w for w in est.warnings)


def test_signal_in_the_roi_is_reported(rng: np.random.Generator) -> None:
    truth = np.zeros((100, 100))
    truth[:, :4] = 15.0  # the ROI clips the edge of the anatomy
    with pytest.warns(nl.RoiWarning, match="signal in the ROI") as rec:
        nl.estimate_sigma(rician(truth, 3.0, rng))
    assert len(rec) == 1


def test_wrong_coil_count_is_reported(rng: np.random.Generator) -> None:
    bg = rician(np.zeros((100, 100)), 3.0, rng, coils=8)
    with pytest.warns(nl.RoiWarning, match="not Rayleigh: wrong coil count or filtered data.*fits coils=8"):
        est = nl.estimate_sigma(bg, coils=1)
    assert est.quality.ratio_coils == 8


def test_filtered_noise_is_reported(rng: np.random.Generator) -> None:
    re = uniform_filter(rng.normal(0, 3.0, (200, 200)), 2)
    im = uniform_filter(rng.normal(0, 3.0, (200, 200)), 2)
    smoothed = uniform_filter(np.hypot(re, im), 2)  # magnitude smoothed after reconstruction
    with pytest.warns(nl.RoiWarning, match="not Rayleigh"):
        nl.estimate_sigma(smoothed)


def test_small_roi_is_reported(rng: np.random.Generator) -> None:
    with pytest.warns(nl.RoiWarning, match="only 30 background values"):
        nl.estimate_sigma(rician(np.zeros(30), 3.0, rng))


@pytest.mark.parametrize("coils", [1, 8])
def test_auto_background_with_zero_padding(coils: int, rng: np.random.Generator) -> None:
    truth = _phantom() * 60.0
    image = rician(truth, 5.0, rng, coils)
    image[:, :20] = 0.0
    image[:, -20:] = 0.0
    mask = nl.auto_background(image, coils)
    assert mask.dtype == bool and mask.shape == image.shape
    assert not mask[:, :20].any() and not mask[:, -20:].any()
    assert not (mask & (truth > 0)).any()
    far = (truth == 0) & (uniform_filter((truth > 0).astype(float), 11) == 0) & (image > 0)
    far &= uniform_filter((image > 0).astype(float), 11) == 1
    assert np.mean(mask[far]) > 0.98
    est = nl.estimate_sigma(image, coils=coils, mask="auto")
    n = est.n
    assert np.array_equal(est.mask, mask) and est.warnings == ()
    assert abs(est.sigma - 5.0) < 4 * 5.0 / (2 * math.sqrt(coils * n))


def test_auto_background_with_bright_object_touching_the_border(rng: np.random.Generator) -> None:
    truth = np.zeros((200, 160))
    truth[:, :90] = 400.0  # fills every corner on the left: corner ROIs would fail
    truth[:30, :] = 250.0
    image = rician(truth, 4.0, rng).astype(np.float32)
    mask = nl.auto_background(image)
    assert not (mask & (truth > 0)).any()
    assert mask.sum() > 0.8 * np.sum(truth == 0)
    est = nl.estimate_sigma(image, mask="auto")
    assert abs(est.sigma - 4.0) < 4 * 4.0 / (2 * math.sqrt(est.n))


def test_auto_background_respects_the_user_mask_and_volumes(rng: np.random.Generator) -> None:
    image = rician(np.zeros((40, 40, 6, 2)), 3.0, rng)
    image[..., 1] = rician(np.full((40, 40, 6), 100.0), 3.0, rng)  # a volume with no background
    user = np.ones(image.shape, bool)
    user[:10] = False
    mask = nl.auto_background(image, mask=user)
    assert not mask[:10].any() and not mask[..., 1].any()
    assert mask[10:, :, :, 0].mean() > 0.95


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.zeros((30, 30)), {}, "no non-zero voxels"),
        (np.array([[1.0, np.nan], [1.0, 1.0]]), {}, "NaN or infinite"),
        (-np.ones((10, 10)), {}, "negative"),
        (np.full((60, 60), 50.0) + np.arange(60), {}, "not noise"),
        (np.ones((3, 3)), {"mask": np.ones((2, 2), bool)}, "mask shape"),
        (np.ones((2,) * 5), {}, "1 to 4 dimensions"),
    ],
)
def test_auto_background_errors(image: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        nl.auto_background(image, **kwargs)


def test_estimate_sigma_rejects_unknown_mask_words() -> None:
    with pytest.raises(ValueError, match="'auto' or None"):
        nl.estimate_sigma(np.ones((5, 5)), mask="automatic")


def test_sigma_map_follows_a_smooth_noise_gradient(rng: np.random.Generator) -> None:
    shape = (240, 240)
    truth = np.zeros(shape)
    truth[60:180, 60:180] = 80.0
    sig = np.broadcast_to(np.linspace(2.0, 6.0, shape[1]), shape)  # smooth, like coil sensitivity
    re = truth + rng.normal(0.0, 1.0, shape) * sig
    im = rng.normal(0.0, 1.0, shape) * sig
    image = np.hypot(re, im)
    smap = nl.sigma_map(image, truth == 0, f_size=21)
    assert smap.shape == shape and smap.dtype == np.float64
    # in the background the map tracks the gradient within a few %; inside it interpolates
    inner = np.zeros(shape, bool)
    inner[10:-10, 10:-10] = True
    rel = smap / sig - 1
    assert np.max(np.abs(rel[inner & (truth == 0)])) < 0.08
    # inside, far from the background, it only interpolates (see sigma_map's Notes)
    assert np.max(np.abs(rel[truth > 0])) < 0.25
    # it feeds correct() directly
    out = nl.correct(image, smap, f_size=9)
    assert abs(np.mean(out[80:160, 80:160]) - 80.0) < 1.0


def test_sigma_map_errors(rng: np.random.Generator) -> None:
    image = rician(np.zeros((30, 30)), 2.0, rng)
    with pytest.raises(ValueError, match="does not match"):
        nl.sigma_map(image, np.ones((30, 29), bool))
    few = np.zeros((30, 30), bool)
    few[:5, :5] = True
    with pytest.raises(ValueError, match="only 25 background voxels"):
        nl.sigma_map(image, few)
    with pytest.raises(ValueError, match="min_count"):
        nl.sigma_map(image, few, min_count=0)


def test_warnings_can_be_silenced_and_are_kept_in_the_report(rng: np.random.Generator) -> None:
    truth = np.zeros((100, 100))
    truth[:, :4] = 15.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nl.RoiWarning)
        est = nl.estimate_sigma(rician(truth, 3.0, rng))
    assert any(w.startswith("signal in the ROI") for w in est.warnings)
