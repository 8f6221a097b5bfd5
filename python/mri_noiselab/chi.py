"""Closed forms of background noise: the central chi distribution with 2N degrees of freedom.

Magnitude noise with N receiver coils combined by sum of squares, scale sigma:
its CDF, moments, density and quantiles, the maximum-likelihood sigma, the
efficiency of each estimator, the mean/std ratio and its standard error, the model
of rounded (integer) values, and the Kolmogorov-Smirnov distance to a sample.
beta_N and the std factor come from the C++ core, which uses them too.
"""

from __future__ import annotations

import functools
import math
import operator
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import Estimator, check_coils, check_sigma
from mri_noiselab._kernels import _core

# At most this many values (taken at a regular stride) enter the Kolmogorov-Smirnov statistic.
_GOF_MAX_VALUES = 1 << 18


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
        bern.append(-sum((math.comb(m + 1, i) * bern[i] for i in range(m)), Fraction(0)) / (m + 1))
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
        mu.append((mu[n - 1] - sum((mu[i] * (n - i + 1) * mu[n - i + 1] for i in range(2, n)), Fraction(0))) / (n + 1))
    # 1/mu = p(eta) / eta, p = 1 / (mu / eta) as a power series.
    p = [Fraction(1)]
    for n in range(1, size):
        p.append(-sum((mu[j + 1] * p[n - j] for j in range(1, n + 1)), Fraction(0)))
    b = _stirling_series()
    g = [Fraction(1)]
    for n in range(1, _TEMME_TERMS):
        g.append(sum((j * b[j] * g[n - j] for j in range(1, n + 1)), Fraction(0)) / n)
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
    out = np.asarray(mu - log_lambda)
    small = np.abs(mu) < _TEMME_BAND
    m = mu[small]
    acc = np.zeros_like(m)
    for j in range(40, 1, -1):  # 0.3^40 / 40 < 1e-22
        acc = acc * m + (1.0 if j % 2 == 0 else -1.0) / j
    out[small] = acc * m * m
    return out


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


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
    pv[temme] = 0.5 * _erfc(-z) - r
    qv[temme] = 0.5 * _erfc(z) + r

    p[idx] = pv
    q[idx] = qv
    return p.reshape(np.shape(t)), q.reshape(np.shape(t))


def chi_cdf_sf(x: npt.ArrayLike, sigma: float, coils: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(M <= x), P(M > x)) of background noise, each accurate in its own tail."""
    sigma = check_sigma(sigma)
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
    coils = check_coils(coils)
    return chi_cdf_sf(x, sigma, coils)[0]


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
    coils = check_coils(coils)
    sigma = check_sigma(sigma)
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


def chi_quantile(q: float, sigma: float, coils: int) -> float:
    """The q-quantile of background noise: the inverse of :func:`chi_cdf`, by bisection."""
    lo, hi = 0.0, sigma * (2.0 * math.sqrt(coils) + 12.0)
    for _ in range(64):  # 2^-64 of the bracket: below double precision
        mid = 0.5 * (lo + hi)
        if chi_cdf(mid, sigma, coils) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def median_sigma(values: npt.ArrayLike, coils: int) -> tuple[float, float]:
    """sigma from the median of background noise values, and the standard error of its log.

    The median hardly moves for a few voxels of signal among the noise, which a mean
    square takes in whole. Integer values (rounded noise) take the median of grouped
    data: interpolated within the unit bin that holds it, as if its values were spread
    evenly over the bin. The median of n values has standard error 1 / (2 sqrt(n) f(m)),
    f the density at the median m, so log sigma has 1 / (2 sqrt(n) f(m) m): 0.72 / sqrt(n)
    for N = 1, falling towards sqrt(pi / 2) / 2 / sqrt(N n) as N grows.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    m = float(np.median(v))
    if all_integers(v):
        k = round(m)
        at = int(np.count_nonzero(v == k))
        if at:
            m = k - 0.5 + (0.5 * v.size - np.count_nonzero(v < k)) / at
    unit, density = _median_of_noise(coils)
    return m / unit, 1.0 / (2.0 * math.sqrt(v.size) * density * unit)


@functools.lru_cache(maxsize=None)
def _median_of_noise(coils: int) -> tuple[float, float]:
    """The median of noise with sigma 1, and the density there."""
    unit = chi_quantile(0.5, 1.0, coils)
    return unit, float(chi_pdf(unit, 1.0, coils))


def ratio_standard_error(n: int, coils: int) -> float:
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


def expected_ratio(
    sigma: float, coils: int, n: int, rounded: bool, *, zeros: bool = False
) -> tuple[float, float]:
    """Expected mean/std of n pure-noise values and its standard error.

    Integer data (``rounded``) follow round(M), given round(M) >= 1 unless the
    sample kept its ``zeros``; their ratio differs from the continuous one while
    sigma is a few units. Its moments come from the probabilities of each k.
    """
    if not rounded:
        return rayleigh_constants(coils)[2], ratio_standard_error(n, coils)
    k, pmf = rounded_pmf(sigma, coils, zeros)
    mean = float(pmf @ k)
    var, mu3, mu4 = (float(pmf @ (k - mean) ** p) for p in (2, 3, 4))
    return mean / math.sqrt(var), _delta_ratio_se(mean, var, mu3, mu4 - var * var, n)


def rounded_pmf(sigma: float, coils: int, zeros: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """P(round(M) = k) over the k that hold the mass, given round(M) >= 1 unless ``zeros``.

    M lies within sigma (sqrt(2N) -+ 12) but for less than 1e-30 (its sd is below
    0.66 sigma), so the work does not grow with N. Each probability is a difference
    of the CDF below the median and of the survival function above it, so that
    neither tail loses its digits.
    """
    centre = sigma * math.sqrt(2.0 * coils)
    k = np.arange(max(0.0 if zeros else 1.0, math.floor(centre - 12.0 * sigma)), math.ceil(centre + 12.0 * sigma) + 1.0)
    cdf, sf = chi_cdf_sf(np.append(k - 0.5, k[-1] + 0.5), sigma, coils)
    pmf = np.where(cdf[1:] < 0.5, cdf[1:] - cdf[:-1], sf[:-1] - sf[1:])
    return k, pmf / pmf.sum()


# Integer data whose plain sigma is below this are modelled as rounded chi noise, both for
# sigma and in the quality report. Measured, worst case N = 1 with the zeros left out: the
# plain "mle" is +45% at sigma = 0.5, +2.1% at 2, +0.52% at 4 ("mean" +0.50% at 5), and
# the expected mean/std shifts by 0.78% at 5, which the ratio check would notice; at 50
# both are below 0.01%.
ROUNDED_BELOW = 50.0
# sd(round(M)) falls and rises again as sigma grows below this (the mass moves from one
# integer to the next: measured up to 0.78 for N up to 1e5), so "std" cannot be fitted there.
_ROUNDED_MIN_SIGMA_STD = 0.8


_CHUNK = 1 << 20


def chunks(values: np.ndarray) -> list[np.ndarray]:
    """Views of at most 2^20 values covering a sample: a temporary of each (a rounded copy, a
    square) costs 8 MiB, not the sample's size again (σ's sample is up to 32 MiB)."""
    flat = values.reshape(-1)
    return [flat[i : i + _CHUNK] for i in range(0, flat.size, _CHUNK)]


def all_integers(values: np.ndarray) -> bool:
    """Whether every value is a whole number."""
    return all(bool(np.all(part == np.round(part))) for part in chunks(values))


def is_rounded(values: np.ndarray, sigma: float) -> bool:
    """Whether a sample must be fitted as rounded noise: integers, and ``sigma`` (a plain
    estimate) below ROUNDED_BELOW."""
    return sigma < ROUNDED_BELOW and all_integers(values)


def _rounded_statistic(sigma: float, coils: int, statistic: Estimator, zeros: bool) -> float:
    """E[k^2] ("mle"), E[k] ("mean") or sd(k) ("std") of k = round(M) (given k >= 1 unless ``zeros``)."""
    k, pmf = rounded_pmf(sigma, coils, zeros)
    m1 = float(pmf @ k)
    if statistic == "mean":
        return m1
    m2 = float(pmf @ (k * k))
    return m2 if statistic == "mle" else math.sqrt(max(m2 - m1 * m1, 0.0))


def rounded_sigma(value: float, coils: int, statistic: Estimator, zeros: bool, start: float) -> float:
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
    coils = check_coils(coils)
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
        sf = chi_cdf_sf(np.append(k + 0.5, first - 0.5), sigma, coils)[1]
        # Given round(M) >= first; a sigma too small to reach it puts all the mass there.
        model = 1.0 - sf[:-1] / sf[-1] if sf[-1] > 0 else np.ones(k.size)
        ecdf = np.searchsorted(v, k, side="right") / n
        d = float(np.max(np.abs(ecdf - model)))
    else:
        f = chi_cdf(v, sigma, coils)
        i = np.arange(1, n + 1)
        d = float(max(np.max(i / n - f), np.max(f - (i - 1) / n)))
    return d, _kolmogorov_pvalue(d, n)


def rayleigh_constants(coils: int = 1) -> tuple[float, float, float]:
    """Return (beta_N, std factor, mean/std ratio) of background noise with ``coils`` coils.

    E[M] = beta_N sigma, std(M) = factor sigma, and their ratio, which is 1.913
    for pure Rayleigh noise (N = 1).

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> [round(c, 4) for c in nl.rayleigh_constants()]  # sqrt(pi/2), sqrt(2 - pi/2), their ratio
    [1.2533, 0.6551, 1.9131]
    >>> [round(c, 4) for c in nl.rayleigh_constants(coils=4)]
    [2.7416, 0.6953, 3.9429]
    """
    coils = check_coils(coils)
    return float(_core.chi_beta(coils)), float(_core.chi_std_factor(coils)), float(_core.chi_mean_std_ratio(coils))


def mle_variance(mean_square: npt.ArrayLike, coils: int) -> np.ndarray:
    """Maximum-likelihood sigma^2 = <M^2> / (2 N) of noise whose mean square is ``mean_square``.

    E[M^2] = 2 N sigma^2 for central chi noise with N coils: the MLE and unbiased for sigma^2.
    """
    return np.asarray(mean_square, dtype=np.float64) / (2 * coils)


def mle_sigma(mean_square: float, coils: int) -> float:
    """Maximum-likelihood sigma = sqrt(<M^2> / (2 N)) (see :func:`mle_variance`)."""
    return math.sqrt(float(mle_variance(mean_square, coils)))


def efficiency(estimator: Estimator, coils: int) -> float:
    """Efficiency of a sigma estimator: the Cramer-Rao bound sigma^2 / (4 N n) over its variance.

    With v = Var(M) / sigma^2 = 2N - beta_N^2: 1 for "mle"; beta_N^2 / (4 N v) for "mean"
    (0.91 for N = 1); v^2 / (N (mu_4 - v^2)) for "std" (0.45 for N = 1, 0.062 for N = 8,
    about 1/(2N)), mu_4 = E[(M - E M)^4] / sigma^4 from the chi moments, whose difference
    mu_4 - v^2 = 4 (N (2v - 1) + v - v^2) does not cancel as N grows.
    """
    if estimator == "mle":
        return 1.0
    beta, factor, _ = rayleigh_constants(coils)
    v = factor * factor
    if estimator == "mean":
        return beta * beta / (4 * coils * v)
    return v * v / (coils * 4 * (coils * (2 * v - 1) + v - v * v))


def chi_pdf(m: npt.ArrayLike, sigma: float, coils: int = 1) -> np.ndarray:
    """Probability density of background magnitude with ``coils`` coils (Rayleigh for 1).

    Notes
    -----
    Central chi with 2N degrees of freedom and scale sigma:
    f(m) = 2 m^(2N-1) exp(-m^2 / (2 sigma^2)) / ((2 sigma^2)^N Gamma(N)), which for
    N = 1 is the Rayleigh density m / sigma^2 exp(-m^2 / (2 sigma^2)).
    """
    values = np.asarray(m, dtype=np.float64)
    n = int(coils)
    log_pdf = (
        math.log(2.0)
        + (2 * n - 1) * np.log(np.where(values > 0, values, 1.0))
        - values**2 / (2 * sigma**2)
        - n * math.log(2 * sigma**2)
        - math.lgamma(n)
    )
    return np.where(values > 0, np.exp(log_pdf), 0.0)


__all__ = [
    "ROUNDED_BELOW",
    "chi_cdf",
    "chi_cdf_sf",
    "chi_moment",
    "chi_pdf",
    "chi_quantile",
    "efficiency",
    "expected_ratio",
    "is_rounded",
    "ks_statistic",
    "median_sigma",
    "mle_sigma",
    "mle_variance",
    "ratio_standard_error",
    "rayleigh_constants",
    "rounded_pmf",
    "rounded_sigma",
]
