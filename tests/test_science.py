"""The statistics behind the estimators and corrections, checked by simulation and closed forms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.ndimage import uniform_filter

import mri_noiselab as nl

from conftest import lmmse_reference, rician


def _asymptotic_sd(method: str, coils: int, n: int) -> float:
    """sd of sigma_hat / sigma from the chi moments (delta method), independent of the code."""
    d = stats.chi(2 * coils)
    m1, m2, m3, m4 = (d.moment(p) for p in (1, 2, 3, 4))
    if method == "mle":  # sqrt(mean(M^2) / 2N): d/dx sqrt(x) = 1 / (2 sqrt(x))
        return math.sqrt((m4 - m2 * m2) / n) / (2 * m2)
    if method == "mean":
        return math.sqrt((m2 - m1 * m1) / n) / m1
    var = m2 - m1 * m1  # sample std: sd(s) ~ sqrt(mu4_central - var^2) / (2 s sqrt(n))
    mu4c = m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1**4
    return math.sqrt((mu4c - var * var) / n) / (2 * var)


@pytest.mark.parametrize("coils", [1, 4])
@pytest.mark.parametrize("method", ["mle", "mean", "std"])
def test_estimator_mean_and_spread_match_theory(method: str, coils: int, rng: np.random.Generator) -> None:
    reps, n = 300, 900
    samples = rician(np.zeros((reps, n)), 2.5, rng, coils)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", nl.RoiWarning)  # not what this test is about
        est = np.array([nl.estimate_sigma(s, estimator=method, coils=coils).sigma for s in samples]) / 2.5
    sd = _asymptotic_sd(method, coils, n)
    # the mean of 300 estimates is known to sd/sqrt(300); the sd itself to ~4%
    assert abs(est.mean() - 1) < 4 * sd / math.sqrt(reps) + sd * sd  # + O(1/n) bias of the sqrt
    assert np.std(est) == pytest.approx(sd, rel=0.17)


def test_mle_is_the_most_efficient(rng: np.random.Generator) -> None:
    assert _asymptotic_sd("mle", 1, 1000) < _asymptotic_sd("mean", 1, 1000) < _asymptotic_sd("std", 1, 1000)
    # the efficiencies quoted in SCIENCE.md: 0.92 for mean, 0.44 for std
    assert (_asymptotic_sd("mle", 1, 1) / _asymptotic_sd("mean", 1, 1)) ** 2 == pytest.approx(0.92, abs=0.01)
    assert (_asymptotic_sd("mle", 1, 1) / _asymptotic_sd("std", 1, 1)) ** 2 == pytest.approx(0.44, abs=0.01)


@pytest.mark.parametrize("coils", [1, 3, 8])
def test_noncentral_chi_moments_behind_the_n_coil_forms(coils: int, rng: np.random.Generator) -> None:
    a, sigma, n = 3.0, 1.0, 400_000
    m = rician(np.full(n, a), sigma, rng, coils)
    m2, m4 = m**2, m**4
    # E[M^2] = A^2 + 2N s^2; Var(M^2) = 4 s^2 A^2 + 4 N s^4 = 4 s^2 (E[M^2] - N s^2)
    assert m2.mean() == pytest.approx(a * a + 2 * coils, abs=4 * m2.std() / math.sqrt(n))
    var = m4.mean() - m2.mean() ** 2
    assert var == pytest.approx(4 * (a * a + coils), rel=0.02)
    assert var == pytest.approx(4 * (m2.mean() - coils), rel=0.02)


@pytest.mark.parametrize("coils", [1, 8])
@pytest.mark.parametrize("method", ["moments", "lmmse"])
def test_n_coil_corrections_are_unbiased_on_flat_data(method: str, coils: int, rng: np.random.Generator) -> None:
    a, sigma = 5.0, 1.0
    image = rician(np.full((256, 256), a), sigma, rng, coils)
    out = nl.correct(image, sigma, f_size=15, method=method, coils=coils)
    # E[A_hat^2] = A^2 when nothing clamps (A = 5 sigma); the image mean of M^2 has
    # sd sqrt(4 A^2 + 4N) / 256 sigma^2. A 1-coil form for 8 coils would be 14 off.
    tol = 4 * math.sqrt(4 * a * a + 4 * coils) / 256
    assert np.mean(out**2) == pytest.approx(a * a, abs=tol + 0.02)


def test_lmmse_n_coil_formula_matches_scipy(rng: np.random.Generator) -> None:
    truth = np.zeros((50, 40))
    truth[:, 20:] = 12.0
    image = rician(truth, 2.0, rng, coils=4)
    out = nl.correct(image, 2.0, f_size=5, method="lmmse", coils=4)
    np.testing.assert_allclose(out, lmmse_reference(image, 2.0, 5, coils=4), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lmmse_where_k_clamps_to_zero_is_the_moments_estimate_through_the_corrected_root(
        dtype: type, rng: np.random.Generator) -> None:
    truth = np.full((40, 30), 100.0)
    truth[:, 15:] = 140.0
    image = rician(truth, 1.0, rng).astype(dtype)
    sigma = 3.0  # 4 sigma^2 (<M^2> - sigma^2) >> the local variance 4 A^2: K = 1 - 9 -> 0
    x = image.astype(np.float64)
    m2 = uniform_filter(x**2, 5, mode="reflect")
    m4 = uniform_filter(x**4, 5, mode="reflect")
    clamped = 1 - 4 * sigma**2 * (m2 - sigma**2) / (m4 - m2**2) < -0.5  # far from the clamp
    assert clamped.mean() > 0.5
    lm = nl.correct(image, sigma, f_size=5, method="lmmse")
    mo = nl.correct(image, sigma, f_size=5, method="moments").astype(np.float64)
    # K = 0: A^2 = <M^2> - 2 sigma^2, and (s/2)^2 = sigma^2 (<M^2> - sigma^2) / 25.
    want = np.sqrt(mo**2 + 1j * np.sqrt(sigma**2 * (m2 - sigma**2) / 25)).real
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(lm[clamped], want[clamped], rtol=rtol)
    assert np.all(lm[clamped] > mo[clamped])


@pytest.mark.parametrize("method", ["moments", "lmmse"])
def test_mask_outside_is_untouched_and_does_not_leak_in(method: str, rng: np.random.Generator) -> None:
    image = rician(np.full((16, 18, 7), 30.0), 2.0, rng)
    mask = np.zeros(image.shape, bool)
    mask[3:12, 4:15, 1:6] = True
    out = nl.correct(image, 2.0, f_size=5, method=method, mask=mask)
    assert np.array_equal(out[~mask], image[~mask])
    other = image.copy()
    other[~mask] = rng.uniform(0, 1e4, int((~mask).sum()))
    out2 = nl.correct(other, 2.0, f_size=5, method=method, mask=mask)
    assert np.array_equal(out2[mask], out[mask])
    assert np.array_equal(out2[~mask], other[~mask])


def test_lmmse_is_accurate_with_a_large_offset(rng: np.random.Generator) -> None:
    # <M^4> - <M^2>^2 cancels badly when A >> sigma: 12-bit data with sigma = 1.
    truth = np.full((60, 60), 4000.0)
    truth[:, 30:] = 4050.0
    image = rician(truth, 1.0, rng)
    out = nl.correct(image, 1.0, f_size=5, method="lmmse")
    x2 = image**2
    c = x2.mean()  # shift before the box filters: the reference keeps its digits
    m2c = uniform_filter(x2 - c, 5, mode="reflect")
    var = uniform_filter((x2 - c) ** 2, 5, mode="reflect") - m2c**2
    m2 = m2c + c
    k = np.clip(1 - 4 * (m2 - 1.0) / var, 0, 1)
    ref2 = m2 - 2.0 + k * (x2 - m2)
    # the error of A^2 relative to max(M^2) must stay below 1e-6 (SCIENCE.md, Numerics)
    assert np.max(np.abs(out**2 - ref2)) / x2.max() < 1e-6
