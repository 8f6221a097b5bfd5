"""The quality report of a noise ROI: does a background sample look like pure chi noise?

Four checks, each needing both statistical significance and a size that matters:
the share of exact zeros beyond what rounding explains ("zero padding"); mean/std
against its pure-noise value (delta-method standard error from the chi moments
E[M^p] = sigma^p 2^(p/2) Gamma(N+p/2)/Gamma(N)); the excess above the fitted 99.9%
quantile ("signal in the ROI"); and a Kolmogorov-Smirnov test against the chi CDF
("not Rayleigh").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import check_coils
from mri_noiselab.chi import (
    all_integers,
    chi_cdf,
    chi_quantile,
    chunks,
    expected_ratio,
    is_rounded,
    ks_statistic,
    median_sigma,
    mle_sigma,
    rayleigh_constants,
    rounded_pmf,
    rounded_sigma,
)

# A noise ROI smaller than this makes sigma uncertain by more than 5% (sd = 1/(2 sqrt(n))).
_SMALL_ROI = 100
# Goodness-of-fit warnings need both significance and a size that matters: on a million
# voxels a harmless 0.3% deviation is "significant".
_KS_PVALUE = 1e-4
_KS_MIN_D = 0.015
_RATIO_Z = 4.0
_RATIO_MIN_REL = 0.02
_TAIL_P = 1e-3
# The mean/std of chi noise falls as N grows; beyond the largest usual coil count a
# sample is flatter than any noise.
_MAX_USUAL_COILS = 64


class RoiWarning(UserWarning):
    """A noise ROI that does not look like pure Rayleigh / chi noise.

    Issued by :func:`mri_noiselab.estimate_sigma` (``warn=True``); the same texts are in
    ``SigmaEstimate.warnings``.

    Examples
    --------
    >>> import warnings
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> roi = np.hypot(*rng.normal(0, 10, (2, 2000)))  # Rayleigh, sigma 10
    >>> roi[:100] = np.hypot(60 + rng.normal(0, 10, 100), rng.normal(0, 10, 100))  # 5% anatomy
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     estimate = nl.estimate_sigma(roi)
    >>> [(w.category.__name__, str(w.message).split(":")[0]) for w in caught]
    [('RoiWarning', 'signal in the ROI')]
    >>> estimate.warnings == tuple(str(w.message) for w in caught)
    True
    """


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

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> quality = nl.estimate_sigma(np.hypot(*rng.normal(0, 10, (2, 2000)))).quality  # Rayleigh noise
    >>> quality.ratio_coils, round(quality.ks_statistic, 3), quality.ks_pvalue > 0.05, quality.warnings
    (1, 0.01, True, ())
    """

    zero_fraction: float
    ratio_se: float
    ratio_coils: int
    ks_statistic: float
    ks_pvalue: float
    tail_fraction: float
    expected_tail_fraction: float
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Fit:
    """What the checks compare: the sample's statistics against those of the fitted noise."""

    n: int
    sigma: float
    integer: bool
    ratio: float
    expected: float
    se: float
    ratio_coils: int
    d: float
    p: float
    tail: float


def _fit(v: np.ndarray, coils: int, sigma_mle: float | None) -> _Fit:
    parts = chunks(v)  # no temporary of the sample's size
    mean_sq = math.fsum(float(np.sum(np.square(part))) for part in parts) / v.size
    plain = mle_sigma(mean_sq, coils)
    rounded = is_rounded(v, plain)
    integer = rounded or all_integers(v)  # rounded noise is integers: not read again
    zeros = any(bool(np.any(part == 0)) for part in parts)
    if sigma_mle is None:
        sigma_mle = rounded_sigma(mean_sq, coils, "mle", zeros, plain) if rounded else plain
    mean = math.fsum(float(np.sum(part)) for part in parts) / v.size
    std = math.sqrt(math.fsum(float(np.sum(np.square(part - mean))) for part in parts) / v.size)
    ratio = mean / std if std > 0 else math.inf
    expected, se = expected_ratio(sigma_mle, coils, v.size, rounded, zeros=zeros)
    ratio_coils = min((abs(rayleigh_constants(c)[2] - ratio), c) for c in range(1, _MAX_USUAL_COILS + 1))[1]
    d, p = ks_statistic(v, sigma_mle, coils)
    if rounded:
        # The fitted rounded noise's own 99.9% quantile (its tail beyond it is at most 0.1%).
        k, pmf = rounded_pmf(sigma_mle, coils, zeros)
        q999 = float(k[np.searchsorted(np.cumsum(pmf), 1.0 - _TAIL_P)])
    else:
        q999 = chi_quantile(1.0 - _TAIL_P, sigma_mle, coils)
    tail = sum(int(np.count_nonzero(part > q999)) for part in parts) / v.size
    return _Fit(v.size, sigma_mle, integer, ratio, expected, se, ratio_coils, d, p, tail)


def _shape_note(fit: _Fit, coils: int) -> str | None:
    """The warning about the values' distribution, if any (signal, coil count, or shape)."""
    tail_z = (fit.tail - _TAIL_P) / math.sqrt(_TAIL_P * (1 - _TAIL_P) / fit.n)
    low = fit.ratio < fit.expected * (1 - _RATIO_MIN_REL) and fit.ratio < fit.expected - _RATIO_Z * fit.se
    high = fit.ratio > fit.expected * (1 + _RATIO_MIN_REL) and fit.ratio > fit.expected + _RATIO_Z * fit.se
    # Beyond any usual coil count (the given one may be larger: then only `high` applies).
    far_high = coils < _MAX_USUAL_COILS and fit.ratio > rayleigh_constants(_MAX_USUAL_COILS)[2]
    if (tail_z > 5 and fit.tail > 3 * _TAIL_P) or low or far_high:
        return (
            f"signal in the ROI: mean/std = {fit.ratio:.2f} (pure noise with {coils} coil(s): "
            f"{fit.expected:.2f}) and {100 * fit.tail:.2f}% of values above the noise's 99.9% "
            "quantile; move the ROI away from anatomy, ghosts and flow artefacts, or use mask='auto'"
        )
    if high:
        fits = f"fits coils={fit.ratio_coils}, not" if fit.ratio_coils != coils else "is above"
        return (
            f"not Rayleigh: wrong coil count or filtered data? mean/std = {fit.ratio:.2f} {fits} "
            f"{fit.expected:.2f} for coils={coils}; give the right coil count, or a sigma "
            "from a noise scan if the images were filtered or interpolated"
        )
    if fit.p < _KS_PVALUE and fit.d > _KS_MIN_D:
        return (
            f"not Rayleigh: wrong coil count or filtered data? the values do not follow the chi "
            f"distribution for {coils} coil(s) (Kolmogorov-Smirnov D = {fit.d:.3f}, p = {fit.p:.1g})"
        )
    return None


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
        With the checks of the module docstring as warnings.

    Examples
    --------
    >>> from mri_noiselab.quality import roi_quality
    >>> rng = np.random.default_rng(0)
    >>> noise = np.hypot(*rng.normal(0, 10, (2, 2000)))  # Rayleigh, sigma 10
    >>> roi_quality(noise).warnings
    ()
    >>> noise[:100] = np.hypot(60 + rng.normal(0, 10, 100), rng.normal(0, 10, 100))  # 5% anatomy
    >>> roi_quality(noise).warnings[0].split(":")[0]
    'signal in the ROI'
    """
    coils = check_coils(coils)
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("the ROI holds no usable values")
    fit = _fit(v, coils, sigma_mle)
    notes: list[str] = []
    total = fit.n + zeros_excluded
    zero_fraction = zeros_excluded / total
    # Pure noise produces zeros only by rounding magnitudes below 1/2 to 0.
    z0 = float(chi_cdf(0.5, fit.sigma, coils)) if fit.integer else 0.0
    if zero_fraction > z0 + 0.01 + 4 * math.sqrt(max(z0 * (1 - z0), 1e-12) / total):
        notes.append(
            f"zero padding: {100 * zero_fraction:.1f}% of the ROI is exact zeros (zero padding or a "
            "masked-out area); they were left out, but check the ROI lies in the noise"
        )
    if fit.n < _SMALL_ROI:
        notes.append(
            f"only {fit.n} background values: too few to check that they are pure noise, and sigma is "
            f"uncertain by about ±{100 / (2 * math.sqrt(coils * fit.n)):.2g}%; select a larger noise region"
        )
    else:
        shape = _shape_note(fit, coils)
        notes.extend([shape] if shape is not None else [])
    return RoiQuality(
        zero_fraction=zero_fraction,
        ratio_se=fit.se,
        ratio_coils=fit.ratio_coils,
        ks_statistic=fit.d,
        ks_pvalue=fit.p,
        tail_fraction=fit.tail,
        expected_tail_fraction=_TAIL_P,
        warnings=tuple(notes),
    )


# Parts of one group (the volumes of a 4-D image, the stacks of a series) differ in noise when
# the sigma of the noisiest and of the quietest differ by more than this factor (one sigma is
# then over 5% off in some part) and significantly (see noise_spread).
_SPREAD = 1.10


def noise_spread(fits: Sequence[tuple[float, float]]) -> tuple[int, int] | None:
    """The quietest and the noisiest of parts of one group whose noise differs; None when it does not.

    ``fits`` are each part's ``(sigma, standard error of log sigma)`` from the median of its
    background (:func:`mri_noiselab.chi.median_sigma`). They differ when the largest and the
    smallest sigma differ by over 10% and by over z standard errors of their log ratio: z is 4
    for two parts, widened (Bonferroni) so that T parts of one noise exceed it as rarely as two
    exceed 4 (p = 6.3e-5).
    """
    if len(fits) < 2:
        return None
    sigmas = [s for s, _ in fits]
    low, high = int(np.argmin(sigmas)), int(np.argmax(sigmas))
    z = NormalDist().inv_cdf(1.0 - 2.0 * NormalDist().cdf(-4.0) / (len(fits) * (len(fits) - 1)))
    if sigmas[low] > 0 and (sigmas[high] <= _SPREAD * sigmas[low]
                            or math.log(sigmas[high] / sigmas[low]) <= z * math.hypot(fits[low][1], fits[high][1])):
        return None
    return low, high


def volume_spread(rows: np.ndarray, counts: list[int], coils: int, sigma: float) -> str | None:
    """The warning when one ``sigma`` is used for the volumes of an image whose noise differs, or None.

    ``rows`` holds each volume's values on the same background voxels (one row per volume),
    ``counts`` the background voxels found in each volume; each volume's sigma is the median's
    (:func:`mri_noiselab.chi.median_sigma`), and :func:`noise_spread` decides.
    """
    fits = [median_sigma(row, coils) for row in rows]
    if (pair := noise_spread(fits)) is None:
        return None
    low, high = pair
    chosen = str(counts) if len(counts) <= 8 else f"{min(counts)} to {max(counts)}"
    return (f"the noise differs between volumes: σ {fits[low][0]:.4g} (volume {low}) to {fits[high][0]:.4g} "
            f"(volume {high}) on the same background voxels, background voxels per volume {chosen}; one σ "
            f"({sigma:.4g}) cannot fit them all: use --sigma-per-volume (Python: per_volume=True)")


def stack_spread(values: Sequence[np.ndarray], labels: Sequence[str], coils: int, sigma: float) -> str | None:
    """The warning when the stacks of a series, which share one ``sigma``, differ in noise (a series'
    diffusion trace images, averaged over three directions, and its b = 0 images), or None.

    ``values`` holds each stack's own background values (in one unit), ``labels`` names the
    stacks; each stack's sigma is the median's, and :func:`noise_spread` decides.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> b0, trace = (np.hypot(*rng.normal(0, s, (2, 20000))) for s in (10.0, 10.0 / np.sqrt(3)))
    >>> stack_spread([b0, trace], ["b0", "trace"], 1, 8.0).split(";")[0]
    'the noise differs between the stacks of the series: σ 5.764 in trace to 10.01 in b0'
    >>> stack_spread([b0, np.hypot(*rng.normal(0, 10.0, (2, 20000)))], ["b0", "b0 again"], 1, 10.0) is None
    True
    """
    if len(values) < 2:  # one stack: nothing to compare (and no median of its whole sample)
        return None
    fits = [median_sigma(v, coils) for v in values]
    if (pair := noise_spread(fits)) is None:
        return None
    low, high = pair
    return (f"the noise differs between the stacks of the series: σ {fits[low][0]:.4g} in {labels[low]} to "
            f"{fits[high][0]:.4g} in {labels[high]}; one σ ({sigma:.4g}) cannot fit them all: use "
            "--sigma-per-volume (Python: per_volume=True)")


def emit_warnings(texts: tuple[str, ...], stacklevel: int = 3) -> None:
    """Issue each text as a :class:`RoiWarning`."""
    for text in texts:
        warnings.warn(text, RoiWarning, stacklevel=stacklevel)


__all__ = ["RoiQuality", "RoiWarning", "emit_warnings", "noise_spread", "roi_quality", "stack_spread", "volume_spread"]
