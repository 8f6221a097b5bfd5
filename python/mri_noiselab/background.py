"""Automatic background selection, smooth sigma maps and the quality report of a noise ROI.

The local statistics are box means computed by the C++ core (``_core.box_moments``);
this module only does per-voxel comparisons, a histogram and small closed forms.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from dataclasses import dataclass, field
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from mri_noiselab._kernels import _core
from mri_noiselab.noise import (
    MAX_NDIM,
    NoBackgroundError,
    _check_coils,
    _check_sigma,
    _threads,
    as_kernel_array,
    rayleigh_constants,
    window_sizes,
)

# Local windows whose statistic lies beyond this many standard deviations of the
# pure-noise distribution are "not background". 3.5 keeps ~99.95% of noise windows
# (a negligible truncation bias) while rejecting anatomy with A >~ 1.5 sigma.
_ACCEPT_Z = 3.5
# A noise ROI smaller than this makes sigma uncertain by more than 5% (sd = 1/(2 sqrt(n))).
_SMALL_ROI = 100
# Goodness-of-fit warnings need both significance and a size that matters: on a million
# voxels a harmless 0.3% deviation is "significant".
_KS_PVALUE = 1e-4
_KS_MIN_D = 0.015
_RATIO_Z = 4.0
_RATIO_MIN_REL = 0.02
_TAIL_P = 1e-3
_GOF_MAX_VALUES = 1 << 18


class RoiWarning(UserWarning):
    """A noise ROI that does not look like pure Rayleigh / chi noise."""


# ----------------------------------------------------------------------------------------
# Closed forms of the central chi distribution (2N degrees of freedom, scale sigma)
# ----------------------------------------------------------------------------------------


# Temme's expansion replaces the series and the continued fraction for N >= 20 within
# 30% of t = N, where those need O(sqrt(N)) terms (the choice of scipy's igam).
_TEMME_MIN_N = 20
_TEMME_BAND = 0.3
# Terms kept in 1/N and in each coefficient's Taylor series in eta: at N = 20 and
# |eta| < 0.34 (the band's edge) those left out change P by less than 1e-17.
_TEMME_TERMS = 10
_TEMME_TAYLOR = 20


@functools.cache
def _stirling_series() -> tuple[Fraction, ...]:
    """b_j, exactly, of ln Gamma*(a) ~ sum_j b_j a^-j: B_(j+1) / (j (j+1)) for odd j, 0 for even j.

    Gamma*(a) = Gamma(a) / (sqrt(2 pi) a^(a - 1/2) e^-a); the Bernoulli numbers come
    from their recurrence sum_i C(m+1, i) B_i = 0.
    """
    bern = [Fraction(1)]
    for m in range(1, _TEMME_TERMS + 2):
        bern.append(-sum(math.comb(m + 1, i) * bern[i] for i in range(m)) / (m + 1))
    return tuple(bern[j + 1] / (j * (j + 1)) if j % 2 else Fraction(0) for j in range(_TEMME_TERMS + 1))


@functools.cache
def _temme_coefficients() -> np.ndarray:
    """Taylor coefficients d[k, n] of Temme's c_k(eta) (DLMF 8.12.10-11), derived exactly.

    With eta^2 / 2 = mu - ln(1 + mu), mu = t/a - 1, the series mu(eta) = eta + eta^2/3 + ...
    follows from mu mu' = eta (1 + mu). Then c_0 = 1/mu - 1/eta and
    c_k = c_(k-1)' / eta + (-1)^k g_k / mu, g_k being the coefficients of
    Gamma*(a) ~ sum_k g_k a^-k; the poles at eta = 0 cancel.
    """
    size = _TEMME_TAYLOR + 2 * _TEMME_TERMS + 2
    mu = [Fraction(0), Fraction(1)]
    for n in range(2, size + 2):
        mu.append((mu[n - 1] - sum(mu[i] * (n - i + 1) * mu[n - i + 1] for i in range(2, n))) / (n + 1))
    # 1/mu = p(eta) / eta, p = 1 / (mu / eta) as a power series.
    p = [Fraction(1)]
    for n in range(1, size):
        p.append(-sum(mu[j + 1] * p[n - j] for j in range(1, n + 1)))
    b = _stirling_series()
    g = [Fraction(1)]
    for n in range(1, _TEMME_TERMS):
        g.append(sum(j * b[j] * g[n - j] for j in range(1, n + 1)) / n)
    c = p[1:]
    table = [c[:_TEMME_TAYLOR]]
    for k in range(1, _TEMME_TERMS):
        c = [(j + 2) * c[j + 2] + (-1) ** k * g[k] * p[j + 1] for j in range(len(c) - 2)]
        table.append(c[:_TEMME_TAYLOR])
    return np.array(table, dtype=np.float64)


def _log_gamma_star(a: int) -> float:
    """ln Gamma*(a): from (a-1)! below 20 (to ~1e-14), else the Stirling series (first term left out < 1e-17)."""
    if a < 20:
        return math.log(math.factorial(a - 1)) - (a - 0.5) * math.log(a) + a - 0.5 * math.log(2.0 * math.pi)
    return sum(float(bj) / float(a) ** j for j, bj in enumerate(_stirling_series()) if bj)


def _mu_minus_log1p(mu: np.ndarray, log_lambda: np.ndarray) -> np.ndarray:
    """mu - ln(1 + mu) >= 0 (ln(1 + mu) given), by its Taylor series where the two would cancel."""
    out = mu - log_lambda
    small = np.abs(mu) < _TEMME_BAND
    m = mu[small]
    acc = np.zeros_like(m)
    for j in range(40, 1, -1):  # 0.3^40 / 40 < 1e-22
        acc = acc * m + (1.0 if j % 2 == 0 else -1.0) / j
    out[small] = acc * m * m
    return out


_erfc = np.frompyfunc(math.erfc, 1, 1)


def _regularised_gamma(a: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P, Q) = the regularised lower and upper incomplete gamma functions, integer a >= 1, t >= 0.

    Each where it is accurate (P + Q = 1): the power series for P below t = a + 1,
    the continued fraction for Q above (Numerical Recipes 6.2), and Temme's uniform
    expansion [1]_ for a >= 20 within 30% of t = a. The work per value is bounded
    whatever a is. NaN stays NaN.

    References
    ----------
    .. [1] N. M. Temme, The asymptotic expansion of the incomplete gamma functions,
       SIAM J Math Anal 10:757 (1979); DLMF 8.12.
    """
    flat = np.asarray(t, dtype=np.float64).reshape(-1)
    p = np.where(flat == np.inf, 1.0, np.where(flat == 0.0, 0.0, np.nan))
    q = 1.0 - p
    idx = np.flatnonzero((flat > 0.0) & (flat < np.inf))
    v = flat[idx]
    mu = (v - a) / a
    half_eta2 = _mu_minus_log1p(mu, np.log(v) - math.log(a))
    # t^a e^-t / Gamma(a + 1), through eta: no large terms cancel whatever a is.
    lead = np.exp(-a * half_eta2 - _log_gamma_star(a)) / math.sqrt(2.0 * math.pi * a)
    temme = np.abs(mu) < _TEMME_BAND if a >= _TEMME_MIN_N else np.zeros(v.shape, dtype=bool)
    series = ~temme & (v < a + 1.0)
    fraction = ~temme & ~series
    pv = np.empty_like(v)
    qv = np.empty_like(v)

    x = v[series]
    total = np.ones_like(x)
    term = np.ones_like(x)
    live = np.arange(x.size)
    k = 0
    while live.size:  # terms shrink geometrically once k > t - a
        k += 1
        term[live] *= x[live] / (a + k)
        total[live] += term[live]
        live = live[term[live] > 1e-17 * total[live]]
    pv[series] = lead[series] * total
    qv[series] = 1.0 - pv[series]

    # Modified Lentz. For integer a the fraction's a-th numerator is 0: it ends there at the latest.
    x = v[fraction]
    tiny = 1e-300
    b = x + 1.0 - a
    c = np.full_like(x, 1.0 / tiny)
    d = 1.0 / b
    h = d.copy()
    live = np.arange(x.size)
    i = 0
    while live.size:
        i += 1
        an = -i * (i - a)
        b[live] += 2.0
        dl = an * d[live] + b[live]
        dl = np.where(np.abs(dl) < tiny, tiny, dl)
        cl = b[live] + an / c[live]
        cl = np.where(np.abs(cl) < tiny, tiny, cl)
        d[live] = 1.0 / dl
        c[live] = cl
        delta = cl / dl
        h[live] *= delta
        live = live[np.abs(delta - 1.0) > 1e-16]
    qv[fraction] = a * lead[fraction] * h
    pv[fraction] = 1.0 - qv[fraction]

    # P = erfc(-eta sqrt(a/2)) / 2 - R and Q = erfc(eta sqrt(a/2)) / 2 + R (DLMF 8.12.8).
    eta = np.sign(mu[temme]) * np.sqrt(2.0 * half_eta2[temme])
    coefficients = _temme_coefficients()
    c_k = np.polynomial.polynomial.polyval(eta, coefficients.T)
    powers = float(a) ** -np.arange(coefficients.shape[0], dtype=np.float64)
    r = np.exp(-a * half_eta2[temme]) / math.sqrt(2.0 * math.pi * a) * (powers @ c_k)
    z = eta * math.sqrt(0.5 * a)
    pv[temme] = 0.5 * _erfc(-z).astype(np.float64) - r
    qv[temme] = 0.5 * _erfc(z).astype(np.float64) + r

    p[idx] = pv
    q[idx] = qv
    return p.reshape(np.shape(t)), q.reshape(np.shape(t))


def _chi_cdf_sf(x: npt.ArrayLike, sigma: float, coils: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(M <= x), P(M > x)) of background noise, each accurate in its own tail."""
    sigma = _check_sigma(sigma)
    with np.errstate(over="ignore"):  # x / sigma beyond 1e154: t = inf, P = 1 exactly
        t = 0.5 * np.square(np.clip(np.asarray(x, dtype=np.float64), 0.0, None) / sigma)
    return _regularised_gamma(coils, t)


def chi_cdf(x: npt.ArrayLike, sigma: float, coils: int = 1) -> np.ndarray:
    """CDF of background noise: central chi with 2N degrees of freedom and scale sigma.

    Parameters
    ----------
    x : array_like
        Magnitude values.
    sigma : float
        Noise standard deviation of each real channel, finite and > 0.
    coils : int
        Number N of coils combined by sum of squares (N = 1: Rayleigh).

    Returns
    -------
    numpy.ndarray
        P(M <= x), 0 for x <= 0.

    Notes
    -----
    M^2 / (2 sigma^2) is Gamma(N, 1), so the CDF is the regularised lower incomplete
    gamma function P(N, t) with t = x^2 / (2 sigma^2): its power series below
    t = N + 1, a continued fraction for 1 - P above, and Temme's uniform asymptotic
    expansion near t = N for N >= 20. The cost per value is bounded whatever N is,
    and P keeps its relative precision in the lower tail.
    """
    coils = _check_coils(coils)
    return _chi_cdf_sf(x, sigma, coils)[0]


def chi_moment(p: int, sigma: float, coils: int = 1) -> float:
    """E[M^p] of background noise: sigma^p 2^(p/2) Gamma(N + p/2) / Gamma(N).

    The Gamma ratio is a product of p/2 factors N, N+1, ... (times
    Gamma(N + 1/2) / Gamma(N) = beta_N / sqrt(2) for odd p), exact to rounding for
    any N, where a difference of lgamma values loses digits as N grows.

    Raises
    ------
    ValueError
        For p <= -2N (the moment is infinite) or a bad sigma or coils.
    """
    coils = _check_coils(coils)
    sigma = _check_sigma(sigma)
    p = operator.index(p)
    if p <= -2 * coils:
        raise ValueError(f"E[M^{p}] is infinite for {coils} coil(s): p must be > -2N = {-2 * coils}")
    odd = p % 2
    ratio = float(_core.chi_beta(coils)) / math.sqrt(2.0) if odd else 1.0
    base = coils + 0.5 * odd
    steps = (p - odd) // 2
    for j in range(max(steps, 0)):
        ratio *= base + j
    for j in range(1, max(-steps, 0) + 1):
        ratio /= base - j
    return (math.sqrt(2.0) * sigma) ** p * ratio


def _chi_quantile(q: float, sigma: float, coils: int) -> float:
    """Inverse of chi_cdf by bisection (monotone, closed-form CDF)."""
    lo, hi = 0.0, sigma * (2.0 * math.sqrt(coils) + 12.0)
    for _ in range(64):  # 2^-64 of the bracket: below double precision
        mid = 0.5 * (lo + hi)
        if chi_cdf(mid, sigma, coils) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _ratio_standard_error(n: int, coils: int) -> float:
    """Standard error of the sample mean/std of n pure-noise values (delta method).

    The central moments of the chi (sigma = 1) in forms that do not cancel as N
    grows: v = 2N - beta^2, mu_3 = beta (1 - 2v), mu_4 - v^2 = 4 (N (2v - 1) + v - v^2).
    """
    beta, factor, _ = rayleigh_constants(coils)
    v = factor * factor
    return _delta_ratio_se(beta, v, beta * (1 - 2 * v), 4 * (coils * (2 * v - 1) + v - v * v), n)


def _delta_ratio_se(mean: float, var: float, mu3: float, mu4_minus_var2: float, n: int) -> float:
    """sd of mean/std over n values, from the mean, variance and third and fourth central moments.

    r = mean / sqrt(var), with Var(mean) = var / n, Cov(mean, s^2) = mu3 / n and
    Var(s^2) = (mu4 - var^2) / n: n Var(r) = 1 - mean mu3 / var^2 + mean^2 (mu4 - var^2) / (4 var^3).
    """
    return math.sqrt((1 - mean * mu3 / var**2 + mean * mean * mu4_minus_var2 / (4 * var**3)) / n)


def _expected_ratio(
    sigma: float, coils: int, n: int, rounded: bool, *, zeros: bool = False
) -> tuple[float, float]:
    """Expected mean/std of n pure-noise values and its standard error.

    Integer data (``rounded``) follow round(M), given round(M) >= 1 unless the
    sample kept its ``zeros``; their ratio differs from the continuous one while
    sigma is a few units. Its moments come from the probabilities of each k.
    """
    if not rounded:
        return rayleigh_constants(coils)[2], _ratio_standard_error(n, coils)
    k, pmf = _rounded_pmf(sigma, coils, zeros)
    mean = float(pmf @ k)
    var, mu3, mu4 = (float(pmf @ (k - mean) ** p) for p in (2, 3, 4))
    return mean / math.sqrt(var), _delta_ratio_se(mean, var, mu3, mu4 - var * var, n)


def _rounded_pmf(sigma: float, coils: int, zeros: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """P(round(M) = k) over the k that hold the mass, given round(M) >= 1 unless ``zeros``.

    M lies within sigma (sqrt(2N) -+ 12) but for less than 1e-30 (its sd is below
    0.66 sigma), so the work does not grow with N. Each probability is a difference
    of the CDF below the median and of the survival function above it, so that
    neither tail loses its digits.
    """
    centre = sigma * math.sqrt(2.0 * coils)
    k = np.arange(max(0.0 if zeros else 1.0, math.floor(centre - 12.0 * sigma)), math.ceil(centre + 12.0 * sigma) + 1.0)
    cdf, sf = _chi_cdf_sf(np.append(k - 0.5, k[-1] + 0.5), sigma, coils)
    pmf = np.where(cdf[1:] < 0.5, cdf[1:] - cdf[:-1], sf[:-1] - sf[1:])
    return k, pmf / pmf.sum()


# Integer data whose plain sigma is below this are modelled as rounded chi noise, both for
# sigma and in the quality report. Measured, worst case N = 1 with the zeros left out: the
# plain "mle" is +45% at sigma = 0.5, +2.1% at 2, +0.52% at 4 ("mean" +0.50% at 5), and
# the expected mean/std shifts by 0.78% at 5, which the ratio check would notice; at 50
# both are below 0.01%.
_ROUNDED_BELOW = 50.0
# sd(round(M)) falls and rises again as sigma grows below this (the mass moves from one
# integer to the next: measured up to 0.78 for N up to 1e5), so "std" cannot be fitted there.
_ROUNDED_MIN_SIGMA_STD = 0.8


def _rounded_model(values: np.ndarray, sigma: float) -> bool:
    """Whether a sample must be fitted as rounded noise: integers, and ``sigma`` (a plain
    estimate) below _ROUNDED_BELOW."""
    return sigma < _ROUNDED_BELOW and bool(np.all(values == np.round(values)))


def _rounded_statistic(sigma: float, coils: int, statistic: str, zeros: bool) -> float:
    """E[k^2] ("mle"), E[k] ("mean") or sd(k) ("std") of k = round(M) (given k >= 1 unless ``zeros``)."""
    k, pmf = _rounded_pmf(sigma, coils, zeros)
    m1 = float(pmf @ k)
    if statistic == "mean":
        return m1
    m2 = float(pmf @ (k * k))
    return m2 if statistic == "mle" else math.sqrt(max(m2 - m1 * m1, 0.0))


def _rounded_sigma(value: float, coils: int, statistic: str, zeros: bool, start: float) -> float:
    """sigma whose rounded noise has the sample's statistic ``value``, by bisection.

    ``statistic`` is what the estimator measures: mean(M^2) for "mle", mean(M) for
    "mean", std(M) for "std"; each grows with sigma (the spread from 0.8 on only).
    Rounding adds about 1/12 to E[M^2] and leaving genuine zeros out raises every
    statistic, so for sigma of a few units the plain estimates are several % off,
    and would fail their own fit test. ``start`` (the plain estimate) seeds the
    bracket, which doubles or halves until it holds the solution: a sample that is
    not one value repeated has one well above where the probabilities underflow.

    Raises
    ------
    ValueError
        For "std" when the spread is below that of sigma = 0.8.
    """
    def f(sigma: float) -> float:
        return _rounded_statistic(sigma, coils, statistic, zeros)

    lo = hi = start
    if statistic == "std":
        lo, hi = _ROUNDED_MIN_SIGMA_STD, max(start, _ROUNDED_MIN_SIGMA_STD)
        if f(lo) > value:
            raise ValueError(
                f"the integer background values spread too little (std = {value:.3g}) for the 'std' estimator: "
                f"below sigma = {lo} rounding to integers hides how their spread depends on sigma; use 'mle'"
            )
    while f(hi) < value:
        lo, hi = hi, 2.0 * hi
    while f(lo) > value:
        lo, hi = 0.5 * lo, lo
    for _ in range(60):  # 2^-60 of the bracket: below double precision of sigma
        mid = 0.5 * (lo + hi)
        if f(mid) < value:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _kolmogorov_pvalue(d: float, n: int) -> float:
    """Asymptotic P(D >= d) of the one-sample KS statistic, with Stephens' small-n factor.

    With sigma fitted to the same sample the true null distribution of D is narrower,
    so this p-value is conservative (fewer false alarms), which suits a warning.
    """
    sn = math.sqrt(n)
    lam = (sn + 0.12 + 0.11 / sn) * d
    if lam < 0.2:
        return 1.0
    k = np.arange(1, 101)
    p = 2.0 * float(np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * lam * lam)))
    return min(max(p, 0.0), 1.0)


def ks_statistic(values: npt.ArrayLike, sigma: float, coils: int = 1) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance between a noise sample and the chi distribution.

    Parameters
    ----------
    values : array_like
        Background magnitudes (exact zeros already left out).
    sigma : float
        Fitted noise level.
    coils : int
        Coils combined by sum of squares.

    Returns
    -------
    (D, p) : tuple of float
        The largest distance between the empirical and model CDFs, and its
        asymptotic p-value (conservative when sigma was fitted to ``values``).

    Notes
    -----
    Integer-valued samples (DICOM pixel data) are compared with the model of the
    rounded magnitude, P(round(M) <= k) = F(k + 1/2), conditioned on round(M) >= 1
    when there are no zeros, so quantisation alone never looks like a misfit.
    At most 2^18 values, taken at a regular stride, enter the statistic.
    """
    coils = _check_coils(coils)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size > _GOF_MAX_VALUES:
        v = v[:: -(-v.size // _GOF_MAX_VALUES)]
    n = v.size
    if n == 0:
        raise ValueError("no values to test")
    v = np.sort(v)
    if v[-1] < 1e7 and np.all(v == np.round(v)):
        # Both CDFs are steps at integers only. Between two sample values the empirical one
        # is flat and the model rises, so the distance peaks at a value u or at u - 1.
        first = 1.0 if v[0] >= 1 else 0.0
        u = np.unique(v)
        k = np.unique(np.concatenate([u - 1.0, u]))
        k = k[k >= first]
        sf = _chi_cdf_sf(np.append(k + 0.5, first - 0.5), sigma, coils)[1]
        # Given round(M) >= first; a sigma too small to reach it puts all the mass there.
        model = 1.0 - sf[:-1] / sf[-1] if sf[-1] > 0 else np.ones(k.size)
        ecdf = np.searchsorted(v, k, side="right") / n
        d = float(np.max(np.abs(ecdf - model)))
    else:
        f = chi_cdf(v, sigma, coils)
        i = np.arange(1, n + 1)
        d = float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))
    return d, _kolmogorov_pvalue(d, n)


# ----------------------------------------------------------------------------------------
# Quality report of a noise ROI
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoiQuality:
    """How well a background sample matches pure noise with N coils.

    Attributes
    ----------
    zero_fraction : float
        Exact zeros excluded, as a fraction of all values looked at.
    ratio_se : float
        Standard error of the mean/std ratio for pure noise of this size.
    ratio_coils : int
        Coil count (1..64) whose expected mean/std is closest to the sample's.
    ks_statistic, ks_pvalue : float
        Kolmogorov-Smirnov distance to the chi distribution fitted by maximum
        likelihood, and its (conservative) p-value.
    tail_fraction, expected_tail_fraction : float
        Fraction of values above the fitted 99.9% quantile, and 0.001.
    warnings : tuple of str
        What looks wrong, in words a user can act on; empty when nothing does.
    """

    zero_fraction: float
    ratio_se: float
    ratio_coils: int
    ks_statistic: float
    ks_pvalue: float
    tail_fraction: float
    expected_tail_fraction: float
    warnings: tuple[str, ...]


def _expected_zero_fraction(sigma: float, coils: int, integer: bool) -> float:
    """Zeros pure noise produces: only by rounding magnitudes below 1/2 to 0."""
    return float(chi_cdf(0.5, sigma, coils)) if integer else 0.0


def roi_quality(
    values: npt.ArrayLike,
    coils: int = 1,
    *,
    zeros_excluded: int = 0,
    sigma_mle: float | None = None,
) -> RoiQuality:
    """Judge a background sample against pure chi noise with ``coils`` coils.

    Parameters
    ----------
    values : array_like
        The background values used for sigma (exact zeros already left out).
    coils : int
        Coils combined by sum of squares.
    zeros_excluded : int
        How many exact zeros were left out of ``values``.
    sigma_mle : float, optional
        Maximum-likelihood sigma of ``values`` (for integer data with sigma below
        50, the fit of rounded noise); computed when not given.

    Returns
    -------
    RoiQuality

    Notes
    -----
    Four checks, each needing both statistical significance and a size that
    matters: the share of exact zeros beyond what rounding explains ("zero
    padding"); mean/std against its pure-noise value (delta-method standard
    error from the chi moments E[M^p] = sigma^p 2^(p/2) Gamma(N+p/2)/Gamma(N));
    the excess above the fitted 99.9% quantile ("signal in the ROI"); and a
    Kolmogorov-Smirnov test against the chi CDF ("not Rayleigh").
    """
    coils = _check_coils(coils)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = v.size
    if n == 0:
        raise ValueError("the ROI holds no usable values")
    mean_sq = float(np.mean(v * v))
    plain = math.sqrt(mean_sq / (2 * coils))
    rounded = _rounded_model(v, plain)
    zeros = bool(np.any(v == 0))
    if sigma_mle is None:
        sigma_mle = _rounded_sigma(mean_sq, coils, "mle", zeros, plain) if rounded else plain
    mean, std = float(np.mean(v)), float(np.std(v))
    ratio = mean / std if std > 0 else math.inf
    integer = bool(np.all(v == np.round(v)))
    expected_ratio, ratio_se = _expected_ratio(sigma_mle, coils, n, rounded, zeros=zeros)
    ratios = [(abs(rayleigh_constants(c)[2] - ratio), c) for c in range(1, 65)]
    ratio_coils = min(ratios)[1]
    d, p = ks_statistic(v, sigma_mle, coils)
    if rounded:
        # The fitted rounded noise's own 99.9% quantile (its tail beyond it is at most 0.1%).
        k, pmf = _rounded_pmf(sigma_mle, coils, zeros)
        q999 = float(k[np.searchsorted(np.cumsum(pmf), 1.0 - _TAIL_P)])
    else:
        q999 = _chi_quantile(1.0 - _TAIL_P, sigma_mle, coils)
    tail = float(np.count_nonzero(v > q999)) / n

    notes: list[str] = []
    total = n + zeros_excluded
    zero_fraction = zeros_excluded / total
    z0 = _expected_zero_fraction(sigma_mle, coils, integer)
    if zero_fraction > z0 + 0.01 + 4 * math.sqrt(max(z0 * (1 - z0), 1e-12) / total):
        notes.append(
            f"zero padding: {100 * zero_fraction:.1f}% of the ROI is exact zeros (zero padding or a "
            "masked-out area); they were left out, but check the ROI lies in the noise"
        )
    if n < _SMALL_ROI:
        notes.append(
            f"only {n} background values: too few to check that they are pure noise, and sigma is "
            f"uncertain by about ±{100 / (2 * math.sqrt(coils * n)):.2g}%; select a larger noise region"
        )
    else:
        tail_z = (tail - _TAIL_P) / math.sqrt(_TAIL_P * (1 - _TAIL_P) / n)
        low = ratio < expected_ratio * (1 - _RATIO_MIN_REL) and ratio < expected_ratio - _RATIO_Z * ratio_se
        high = ratio > expected_ratio * (1 + _RATIO_MIN_REL) and ratio > expected_ratio + _RATIO_Z * ratio_se
        # Beyond any usual coil count (the given one may be larger: then only `high` applies).
        far_high = coils < 64 and ratio > rayleigh_constants(64)[2]
        if (tail_z > 5 and tail > 3 * _TAIL_P) or low or far_high:
            notes.append(
                f"signal in the ROI: mean/std = {ratio:.2f} (pure noise with {coils} coil(s): "
                f"{expected_ratio:.2f}) and {100 * tail:.2f}% of values above the noise's 99.9% "
                "quantile; move the ROI away from anatomy, ghosts and flow artefacts, or use mask='auto'"
            )
        elif high:
            fits = f"fits coils={ratio_coils}, not" if ratio_coils != coils else "is above"
            notes.append(
                f"not Rayleigh: wrong coil count or filtered data? mean/std = {ratio:.2f} {fits} "
                f"{expected_ratio:.2f} for coils={coils}; give the right coil count, or a sigma "
                "from a noise scan if the images were filtered or interpolated"
            )
        elif p < _KS_PVALUE and d > _KS_MIN_D:
            notes.append(
                f"not Rayleigh: wrong coil count or filtered data? the values do not follow the chi "
                f"distribution for {coils} coil(s) (Kolmogorov-Smirnov D = {d:.3f}, p = {p:.1g})"
            )
    return RoiQuality(
        zero_fraction=zero_fraction,
        ratio_se=ratio_se,
        ratio_coils=ratio_coils,
        ks_statistic=d,
        ks_pvalue=p,
        tail_fraction=tail,
        expected_tail_fraction=_TAIL_P,
        warnings=tuple(notes),
    )


def emit_warnings(quality: RoiQuality, stacklevel: int = 3) -> None:
    """Issue each of the report's warnings as a :class:`RoiWarning`."""
    for text in quality.warnings:
        warnings.warn(text, RoiWarning, stacklevel=stacklevel)


# ----------------------------------------------------------------------------------------
# Automatic background
# ----------------------------------------------------------------------------------------


def _image_and_valid(
    image: npt.ArrayLike, mask: npt.ArrayLike | None, what: str, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    arr = as_kernel_array(image, what)
    if arr.size == 0:
        raise ValueError(f"{what} is empty (an axis has length 0)")
    if arr.ndim > MAX_NDIM:
        raise ValueError(f"images of 1 to {MAX_NDIM} dimensions are supported, got {arr.ndim}")
    user = None
    if mask is not None:
        user = np.asarray(mask)
        if user.shape != arr.shape:
            raise ValueError(f"mask shape {user.shape} does not match {what} shape {arr.shape}")
        user = user.astype(bool)
    stats = _core.sample_stats(arr, None if user is None else user.view(np.uint8), True, threads)
    if stats.nonfinite:
        raise ValueError(f"{what} contains NaN or infinite values: mask them out (mask=...)")
    if stats.negative:
        raise ValueError(f"Found negative values in the {what}: magnitude data cannot be negative")
    valid = arr != 0
    if user is not None:
        valid &= user
    if not valid.any():
        raise ValueError(f"{what} has no non-zero voxels (inside the mask): there is no noise to measure")
    return arr, valid


def _box_mean(x: np.ndarray, window: tuple[int, ...], mask: np.ndarray | None, threads: int) -> np.ndarray:
    """Box mean of x^2 (masked: over in-mask voxels only), from the C++ kernel."""
    m2, _ = _core.box_moments(x, list(window), False, None if mask is None else mask.view(np.uint8), threads)
    return m2


def _gamma_bounds(k: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on mean / E for a Gamma(k, 1/k) variable at +-z sds (Wilson-Hilferty).

    The local mean of M^2 over n pure-noise voxels, divided by 2 N sigma^2, is
    Gamma(N n, 1/(N n)): chi^2 with 2 N n degrees of freedom over 2 N n.
    """
    c = 1.0 / (9.0 * k)
    lo = np.clip(1.0 - c - z * np.sqrt(c), 0.0, None) ** 3
    hi = (1.0 - c + z * np.sqrt(c)) ** 3
    return lo, hi


def _noise_mode(local: np.ndarray, k: float) -> float:
    """The lowest well-populated mode of the local <M^2> values (the background's).

    In log space the spread of pure-noise local means is about 1/sqrt(k) whatever
    sigma is, and the mode of log Gamma(k, theta) is exactly log(k theta), the mean.
    Signal only adds to <M^2>, so the background is the lowest mode holding at least
    2% of the voxels; anatomy may be larger and is then ignored.
    """
    y = np.log(local)
    sd = 1.0 / math.sqrt(k)
    width = sd / 3.0
    lo, hi = float(y.min()), float(y.max())
    nbins = int((hi - lo) / width) + 1
    if nbins < 8:  # (nearly) one value: no spread to find a mode in, and the smoothing needs bins
        return float(math.exp(0.5 * (lo + hi)))
    counts, edges = np.histogram(y, bins=nbins, range=(lo, lo + nbins * width))
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    smooth = np.convolve(counts, kernel / kernel.sum(), mode="same")
    left = np.concatenate([[-1.0], smooth[:-1]])
    right = np.concatenate([smooth[1:], [-1.0]])
    peaks = np.flatnonzero((smooth >= left) & (smooth > right) & (smooth > 0))
    reach = 6  # +-2 sd of the noise peak
    csum = np.concatenate([[0], np.cumsum(counts)])
    need = max(0.02 * y.size, 20)
    chosen = None
    for i in peaks:
        mass = csum[min(i + reach + 1, nbins)] - csum[max(i - reach, 0)]
        if mass >= need:
            chosen = i
            break
    if chosen is None:
        chosen = int(np.argmax(smooth))
    return float(math.exp(0.5 * (edges[chosen] + edges[chosen + 1])))


@dataclass(frozen=True)
class Background:
    """The noise-only background found by :func:`find_background`, and what it tells.

    Attributes
    ----------
    mask : numpy.ndarray of bool
        The voxels judged to be pure noise.
    coils : int
        The coil count N used: the one given, or the one the background's
        moments fit (``coils_fitted``).
    coils_fitted : bool
        True when ``coils`` was fitted rather than given.
    sigma : float
        Maximum-likelihood sigma of the chosen voxels for ``coils`` coils.
    sigma_range : tuple of float
        The lowest and highest sigma of the regions of the background (thirds
        of each image axis) that hold enough voxels; equal to ``(sigma, sigma)``
        when only one region does.
    warnings : tuple of str
        What looks doubtful but was accepted (noise varying across the field of
        view, a coil count that differs from the one given).
    """

    mask: np.ndarray = field(repr=False)
    coils: int
    coils_fitted: bool
    sigma: float
    sigma_range: tuple[float, float]
    warnings: tuple[str, ...]

    @property
    def n(self) -> int:
        """Number of background voxels."""
        return int(np.count_nonzero(self.mask))


# At least this many voxels: sigma to +-3.5% (N = 1), and room for the shape tests below.
_MIN_BACKGROUND = 200
# Fitted coil counts beyond this are a flat signal (a Rician at high SNR has kurtosis ~1
# like a chi with many degrees of freedom), not noise.
_MAX_FIT_COILS = 64
# A background whose regions' sigma differ by more than these factors (and significantly)
# is non-stationary noise: one sigma is then off by about half the spread somewhere.
_SPREAD_WARN = 1.15
_SPREAD_REFUSE = 1.5
# A small central object leaves its background ~1.4x denser in the border than inside.
# Only a sparse selection is judged so: a background that fills a fifth of the centre is
# a real one (an object touching one side of the field of view, or lost in noise).
_SPARSE = 0.2
_BORDER_DENSITY = 1.25
_ASK = "select a region of pure noise (roi=..., --roi) or give sigma (--sigma) from a noise scan"


def _moments(v: np.ndarray) -> tuple[float, float, float]:
    """(mean/std, E[M^4]/E[M^2]^2, E[M^2]) of the sample, scaled first so that M^4 cannot overflow."""
    scale = float(v.max())
    u = v / scale
    u2 = u * u
    m2 = float(np.mean(u2))
    mean = float(np.mean(u))
    std = math.sqrt(max(m2 - mean * mean, 0.0))
    ratio = mean / std if std > 0 else math.inf
    return ratio, float(np.mean(u2 * u2)) / (m2 * m2), m2 * scale * scale


def _fit_coils(kurtosis: float) -> int:
    """N from E[M^4]/E[M^2]^2 = (N + 1)/N, the central chi's; 0 when no N in 1..64 fits."""
    if kurtosis <= 1.0:
        return 0
    n = 1.0 / (kurtosis - 1.0)
    # Below 0.7 the tail is heavier than any noise (a mixture of levels); above the
    # largest N the sample is flatter than noise.
    if n < 0.7 or n > _MAX_FIT_COILS + 0.5:
        return 0
    return max(1, round(n))


def _noise_misfit(values: np.ndarray, coils: int | None) -> tuple[int, float, str | None]:
    """Is this sample central chi noise? Returns (N, MLE sigma, None) or (N, sigma, why not).

    The kurtosis E[M^4]/E[M^2]^2 = (N+1)/N fits N (unless given); the mean/std must
    then match the chi value of that N within 10% and 5 standard errors (the model
    of rounded values for integer data: rounding changes both while sigma is small).
    Dim tissue mimics the kurtosis of noise with few coils but not its mean/std.
    """
    ratio, kurtosis, mean_sq = _moments(values)
    fitted = _fit_coils(kurtosis)
    n_coils = coils or max(fitted, 1)
    sigma = math.sqrt(mean_sq / (2 * n_coils))
    if fitted == 0:
        what = "a heavier tail than noise" if kurtosis > 1.0 + 1.0 / 0.7 else "flatter than noise: signal"
        return n_coils, sigma, (
            f"the darkest region's values follow no noise distribution for any coil count "
            f"(E[M^4]/E[M^2]^2 = {kurtosis:.2f}: {what}): the background is zero-filled, filtered or absent"
        )
    if coils is not None and abs(fitted - coils) > max(1, 0.25 * coils):
        return n_coils, sigma, (
            f"the darkest region's values are not noise with the {coils} coil(s) given (their shape fits "
            f"{fitted}): give the right coil count (or none, to fit it)"
        )
    # Rounding to integers changes the noise's shape only while sigma is a few units.
    integer = sigma < 50 and bool(np.all(values == np.round(values)))
    expected, se = _expected_ratio(sigma, n_coils, values.size, integer)
    if abs(ratio - expected) > 0.1 * expected + 5 * se:
        return n_coils, sigma, (
            f"the darkest region's mean/std is {ratio:.2f} where noise with {n_coils} coil(s) gives "
            f"{expected:.2f}: it is not pure noise (zero filling, filtering or anatomy)"
        )
    return n_coils, sigma, None


def fit_coils(values: npt.ArrayLike) -> int:
    """The coil count N whose central chi distribution fits a background sample.

    Parameters
    ----------
    values : array_like
        Background magnitudes (exact zeros left out).

    Returns
    -------
    int
        N in 1..64: from the kurtosis E[M^4]/E[M^2]^2 = (N+1)/N, confirmed by the
        mean/std of the same N. Sum-of-squares data give the number of coils; an
        adaptive combination gives an effective N, which is what its correction needs.

    Raises
    ------
    NoBackgroundError
        If the sample has fewer than 2 values, or no N fits it (not pure noise).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    v = v[v != 0]
    if v.size < 2 or not np.all(np.isfinite(v)) or float(v.max()) <= 0:
        raise NoBackgroundError("too few non-zero background values to fit a coil count; give --coils")
    coils, _, misfit = _noise_misfit(v, None)
    if misfit is not None:
        raise NoBackgroundError(f"{misfit}; give --coils, or {_ASK}")
    return coils


def _select(local: np.ndarray, count: np.ndarray, valid: np.ndarray, mode: float, coils: int) -> np.ndarray:
    """PIESNO-style test: the window's <M^2> within 3.5 sds of its pure-noise Gamma law."""
    lo, hi = _gamma_bounds(coils * np.maximum(count, 1.0), _ACCEPT_Z)
    rel = local / mode
    return valid & (rel >= lo) & (rel <= hi)


def _outer_share(chosen: np.ndarray, axes: Sequence[int]) -> tuple[float, float]:
    """Densities of chosen voxels in the outer sixth of the image (along ``axes``) and inside it."""
    band = np.zeros(chosen.shape, dtype=bool)
    for axis in axes:
        n = chosen.shape[axis]
        index = np.arange(n)
        edge = (index < n / 6) | (index >= n - n / 6)
        shape = [1] * chosen.ndim
        shape[axis] = n
        band |= edge.reshape(shape)
    inner = ~band
    outside = float(chosen[band].mean()) if band.any() else 0.0
    inside = float(chosen[inner].mean()) if inner.any() else 0.0
    return outside, inside


def _region_sigmas(
    arr: np.ndarray, local: np.ndarray, count: np.ndarray, full: np.ndarray, axes: Sequence[int], coils: int, k: float
) -> tuple[list[tuple[float, int]], np.ndarray]:
    """(MLE sigma, n) of the noise found in each third of the image along ``axes``, each on its own,
    and the mask of the voxels they used.

    Each region gets its own lowest mode and PIESNO test, so a noise level that
    drifts across the field of view shows up even where the global test, tied to
    one level, rejected the noisier part as "signal". A region whose darkest voxels
    do not fit noise with ``coils`` coils (all anatomy) or hold fewer than 500
    voxels or a tenth of the region says nothing and is left out.
    """
    index = np.nonzero(full)
    label = np.zeros(index[0].size, dtype=np.int64)
    for axis in axes:
        label = label * 3 + (index[axis] * 3) // full.shape[axis]
    local_f, count_f, values_f = local[full], count[full], arr[full].astype(np.float64)
    order = np.argsort(label, kind="stable")
    bounds = np.searchsorted(label[order], np.arange(3 ** len(axes) + 1))
    out = []
    used = np.zeros(local_f.size, dtype=bool)
    for start, stop in zip(bounds[:-1], bounds[1:]):
        if stop - start < 1000:
            continue
        part = order[start:stop]
        mode = _noise_mode(local_f[part], k)
        lo, hi = _gamma_bounds(coils * np.maximum(count_f[part], 1.0), _ACCEPT_Z)
        rel = local_f[part] / mode
        inside = part[(rel >= lo) & (rel <= hi)]
        v = values_f[inside]
        # A mode held by a tenth of the region or less is a dim structure (a ventricle),
        # not the region's background.
        if v.size < max(500, 0.1 * part.size):
            continue
        _, sigma, misfit = _noise_misfit(v, coils)
        if misfit is None:
            out.append((sigma, int(v.size)))
            used[inside] = True
    mask = np.zeros(full.shape, dtype=bool)
    mask[full] = used
    return out, mask


def find_background(
    image: npt.ArrayLike,
    coils: int | None = None,
    *,
    mask: npt.ArrayLike | None = None,
    f_size: int | Sequence[int] = 9,
    num_threads: int | None = None,
) -> Background:
    """Find the noise-only background of a magnitude image, or say why there is none.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D, finite and non-negative inside ``mask``.
        A 4-D input is (x, y, z, volumes); windows never span volumes.
    coils : int, optional
        Receiver coils combined by sum of squares; fitted from the background
        when None (sum-of-squares and adaptive-combine data alike).
    mask : array_like of bool, optional
        Voxels the search may use; masked-out voxels are never background.
    f_size : int or tuple of int
        Window of the local statistics (9 per spatial axis by default).
    num_threads : int, optional
        Threads for the kernels.

    Returns
    -------
    Background
        The mask, the coil count, the regional sigma range and warnings.

    Raises
    ------
    NoBackgroundError
        When no region of the image is pure noise, with the reason: fewer than
        200 candidate voxels (cropped, masked or zero-filled background); values
        whose shape is no central chi distribution for any coil count (zero
        filling, filtering, or anatomy: a heavier tail than noise, or a flat
        signal); a coil count that contradicts the one given; candidates lying
        inside the image rather than around the object (anatomy); or a noise
        level that varies by more than 1.5x across the background.
    ValueError
        If the image is empty, or has NaN/inf or negative voxels inside the mask.

    Notes
    -----
    1. Local means <M^2> over the window, counting only non-zero in-mask voxels,
       from the C++ box kernel.
    2. 2 N sigma^2 is the mode of the local <M^2> distribution [1]_, the lowest
       well-populated one in log space, because signal only raises <M^2> and the
       anatomy may outnumber the background. The mode does not depend on N.
    3. A PIESNO-style classification [2]_: a voxel is background when its
       window's <M^2> / (2 N sigma^2) lies within 3.5 sds of its pure-noise
       Gamma(N n, 1/(N n)) distribution (n: non-zero voxels in the window;
       Wilson-Hilferty bounds). Unless given, N is refitted from the chosen
       voxels' kurtosis E[M^4]/E[M^2]^2 = (N+1)/N and the test repeated.
    4. Checks, each a reason to refuse rather than to return a wrong sigma: the
       mean/std of the chosen voxels must match the chi value of the same N
       (within 10% and 5 standard errors; the rounded model for integer data),
       sparse voxels (under a fifth of the centre) must be 1.25x as dense in the
       outer sixth of the image as inside it (noise surrounds the object), and the MLE sigma of each third of the image along every axis
       of 16 or more voxels must agree within 1.5x (a warning above 1.15x).

    Faint anatomy with A^2 below about 3.5 sqrt(N / n) * 2 sigma^2 cannot be told
    from noise by any local statistic and biases sigma up by a few percent.

    References
    ----------
    .. [1] S. Aja-Fernandez, A. Tristan-Vega, C. Alberola-Lopez, Noise estimation in
       single- and multiple-coil MR data based on statistical models, Magn Reson
       Imaging 27:1397 (2009).
    .. [2] C. G. Koay, E. Ozarslan, C. Pierpaoli, Probabilistic identification and
       estimation of noise (PIESNO), J Magn Reson 199:94 (2009).
    """
    given = None if coils is None else _check_coils(coils)
    threads = _threads(num_threads)
    arr, valid = _image_and_valid(image, mask, "image", threads)
    window = window_sizes(f_size, arr.ndim, volumes_last=True)
    local = _box_mean(arr, window, valid, threads)
    count = _box_mean(valid.astype(np.float32), window, None, threads) * float(np.prod(window))
    # Windows with fewer than half their voxels non-zero are too noisy to judge (and sit
    # on the edge of zero padding); they can still be background through the test.
    full = valid & (count >= 0.5 * np.prod(window)) & (local > 0)
    if not full.any():
        full = valid & (local > 0)
    if not full.any():
        raise NoBackgroundError(f"the image has no voxel with a non-zero neighbourhood: no noise to measure; {_ASK}")
    mode = _noise_mode(local[full], float(np.prod(window)))
    n_coils = given or 1
    chosen = _select(local, count, valid, mode, n_coils)
    if given is None:
        for _ in range(4):  # N only moves the bounds: converges in a step or two
            if np.count_nonzero(chosen) < _MIN_BACKGROUND:
                break
            fitted = _fit_coils(_moments(arr[chosen].astype(np.float64))[1])
            if fitted in (0, n_coils):
                break
            n_coils = fitted
            chosen = _select(local, count, valid, mode, n_coils)
    n = int(np.count_nonzero(chosen))
    if n < _MIN_BACKGROUND:
        raise NoBackgroundError(
            f"found only {n} voxels that look like pure noise: the image has no usable background "
            f"(cropped, masked, zero-filled or filtered); {_ASK}"
        )
    n_coils, sigma, misfit = _noise_misfit(arr[chosen].astype(np.float64), given)
    if misfit is not None:
        raise NoBackgroundError(f"{misfit}; {_ASK}")
    notes: list[str] = []
    axes = [d for d in range(min(arr.ndim, 3)) if arr.shape[d] >= 16]
    if axes:
        outside, inside = _outer_share(chosen, axes)
        # Noise surrounds the object: its voxels are denser in the border than in the centre.
        # Anatomy (or dark structures inside it) taken for noise is spread evenly or central.
        if outside < _BORDER_DENSITY * inside and inside < _SPARSE:
            raise NoBackgroundError(
                f"the voxels that look like noise lie inside the image ({100 * inside:.0f}% of its centre "
                f"against {100 * outside:.0f}% of its border), not around the object: the background is "
                f"zero-filled or the image is cropped to the anatomy; {_ASK}"
            )
    regions, regional = _region_sigmas(arr, local, count, full, axes, n_coils, float(np.prod(window))) if axes else ([], None)
    low = min(regions, default=(sigma, n))
    high = max(regions, default=(sigma, n))
    spread = high[0] / low[0]
    # log sigma of a region has standard error 1 / (2 sqrt(N n)): a spread is real when
    # it exceeds 4 standard errors of the difference.
    significant = math.log(spread) > 4 * math.sqrt(1 / (4 * n_coils * low[1]) + 1 / (4 * n_coils * high[1]))
    if significant and spread > _SPREAD_REFUSE:
        raise NoBackgroundError(
            f"the noise level varies {spread:.1f}x across the background (sigma {low[0]:.4g} to "
            f"{high[0]:.4g}): one sigma would be wrong in part of the image (parallel imaging or "
            f"coil sensitivities); {_ASK}, or correct with a sigma map"
        )
    if significant and spread > _SPREAD_WARN and regional is not None:
        # The global test keeps the level of the mode only; each region's own noise joins it,
        # so that sigma is the average over the field of view.
        chosen = chosen | regional
        sigma = math.sqrt(float(np.mean(np.square(arr[chosen], dtype=np.float64))) / (2 * n_coils))
        notes.append(
            f"non-stationary noise: sigma varies {spread:.2f}x across the background ({low[0]:.4g} to "
            f"{high[0]:.4g}); the single sigma is its average"
        )
    return Background(chosen, n_coils, given is None, sigma, (low[0], high[0]), tuple(notes))


def auto_background(
    image: npt.ArrayLike,
    coils: int | None = 1,
    *,
    mask: npt.ArrayLike | None = None,
    f_size: int | Sequence[int] = 9,
    num_threads: int | None = None,
) -> np.ndarray:
    """The noise-only voxels of a magnitude image: :func:`find_background`'s mask.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D (4-D: (x, y, z, volumes)).
    coils : int or None
        Receiver coils combined by sum of squares; None fits them.
    mask : array_like of bool, optional
        Voxels the search may use.
    f_size : int or tuple of int
        Window of the local statistics.
    num_threads : int, optional
        Threads for the kernels.

    Returns
    -------
    numpy.ndarray of bool
        True on voxels judged to be pure noise. Exact zeros (zero padding,
        suppressed background) and masked-out voxels are always False.

    Raises
    ------
    NoBackgroundError
        When the image has no pure-noise background; see :func:`find_background`.
    ValueError
        If the image is empty, or has NaN/inf or negative voxels inside the mask.
    """
    return find_background(image, coils, mask=mask, f_size=f_size, num_threads=num_threads).mask


# ----------------------------------------------------------------------------------------
# Smooth sigma map
# ----------------------------------------------------------------------------------------


def sigma_map(
    image: npt.ArrayLike,
    background: npt.ArrayLike,
    coils: int = 1,
    *,
    f_size: int | Sequence[int] = 31,
    min_count: int = 100,
    num_threads: int | None = None,
) -> np.ndarray:
    """A smooth per-voxel noise map sigma(x) interpolated from background voxels.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D (4-D: one map per volume, never mixing volumes).
    background : array_like of bool
        Noise-only voxels, e.g. from :func:`auto_background`. Exact zeros are ignored.
    coils : int
        Receiver coils combined by sum of squares.
    f_size : int or tuple of int
        Smoothing window per axis (31 per spatial axis by default). Larger is
        smoother and more precise but follows slower variations only.
    min_count : int
        Background voxels a window needs for a local value; where it has fewer,
        a window twice as large (and so on, up to the whole volume) is used.
    num_threads : int, optional
        Threads for the kernels.

    Returns
    -------
    numpy.ndarray
        float64 sigma, same shape as ``image``; pass it to :func:`correct`.

    Raises
    ------
    ValueError
        If the mask shape differs, or a volume has fewer than ``min_count``
        background voxels.

    Notes
    -----
    sigma^2(x) = <M^2>_bg(x) / (2 N), where <.>_bg is a normalised convolution: the
    box mean over background voxels only, divided by their count. The result is
    box-filtered once more so that the seams between window scales vanish.

    Where it is valid: in and near the background, and inside the object only when
    the noise level varies slowly and smoothly across the field of view, e.g. a
    sum-of-squares combination with smooth coil sensitivities, or a smooth
    intensity normalisation (prescan normalise) that scales signal and noise alike.
    Inside the object the map is an interpolation of the surrounding background.

    Where it is not valid: parallel imaging (SENSE, GRAPPA) concentrates the noise
    amplification (g-factor) in the middle of the field of view, where no
    background is seen; the map underestimates it there. Use a g-factor map or a
    noise scan in that case. Neither does it apply to images whose background was
    filtered, masked or clipped by the scanner.
    """
    coils = _check_coils(coils)
    threads = _threads(num_threads)
    bg = np.asarray(background)
    arr, valid = _image_and_valid(image, None, "image", threads)
    if bg.shape != arr.shape:
        raise ValueError(f"background mask shape {bg.shape} does not match image shape {arr.shape}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count must be a positive int, got {min_count!r}")
    bg = bg.astype(bool) & valid
    window = window_sizes(f_size, arr.ndim, volumes_last=True)
    spatial = arr.ndim - 1 if arr.ndim == 4 else arr.ndim
    per_volume = bg.reshape(-1, arr.shape[-1]).sum(axis=0) if arr.ndim == 4 else np.array([bg.sum()])
    if np.any(per_volume < min_count):
        raise ValueError(
            f"a volume has only {int(per_volume.min())} background voxels (< min_count={min_count}): "
            "too few for a sigma map; select a larger background or lower min_count"
        )
    sigma2 = np.full(arr.shape, np.nan)
    bg_f = bg.astype(np.float32)
    w = list(window)
    while True:
        local = _box_mean(arr, tuple(w), bg, threads)
        count = _box_mean(bg_f, tuple(w), None, threads) * float(np.prod(w))
        todo = np.isnan(sigma2) & (count >= min_count)
        sigma2[todo] = local[todo] / (2 * coils)
        if not np.isnan(sigma2).any():
            break
        # Windows at least as long as the axis see every background voxel of the volume
        # (reflection repeats them evenly), so doubling ends with full coverage.
        w = [min(2 * s, 2 * arr.shape[d]) if d < spatial else s for d, s in enumerate(w)]
    # box_moments averages squares: feeding sqrt(sigma^2) gives the box mean of sigma^2.
    smooth = _box_mean(np.sqrt(sigma2), window, None, threads)
    return np.sqrt(smooth)


__all__ = [
    "Background",
    "NoBackgroundError",
    "RoiQuality",
    "RoiWarning",
    "auto_background",
    "chi_cdf",
    "chi_moment",
    "emit_warnings",
    "find_background",
    "fit_coils",
    "ks_statistic",
    "roi_quality",
    "sigma_map",
]
