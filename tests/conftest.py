"""Shared synthetic data: Rician/Rayleigh images with known sigma."""

from __future__ import annotations

import numpy as np
import pytest


def rician(truth: np.ndarray, sigma: float, rng: np.random.Generator, coils: int = 1) -> np.ndarray:
    """Magnitude of truth + complex Gaussian noise; sum of squares over `coils` coils.

    The truth sits on one coil's real channel, so E[M^2] = A^2 + 2 N sigma^2.
    """
    total = np.zeros(truth.shape)
    for c in range(coils):
        re = rng.normal(0.0, sigma, truth.shape) + (truth if c == 0 else 0.0)
        im = rng.normal(0.0, sigma, truth.shape)
        total += re**2 + im**2
    return np.sqrt(total)


def lmmse_reference(image: np.ndarray, sigma: float, window: int | tuple[int, ...], coils: int = 1) -> np.ndarray:
    """lmmse from its definition, with scipy's box means (reflect boundary).

    A^2 as Aja-Fernandez et al. 2008 write it (K clamped to [0, 1], 0 where the local
    variance is not positive), then the bias-corrected root Re sqrt(A^2 + i s/2) with complex
    numpy, s^2 the variance of the A^2 estimate from n voxels in the window.
    """
    from scipy.ndimage import uniform_filter

    x2 = np.asarray(image, dtype=np.float64) ** 2
    m2 = uniform_filter(x2, window, mode="reflect")
    m4 = uniform_filter(x2 * x2, window, mode="reflect")
    var = m4 - m2 * m2
    noise = coils * sigma**2
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(var > 0, np.clip(1 - 4 * sigma**2 * (m2 - noise) / var, 0, 1), 0.0)
    a2 = m2 - 2 * noise + k * (x2 - m2)
    n = np.prod(np.broadcast_to(window, (x2.ndim,)))
    s2 = 4 * sigma**2 * (k * k * (np.maximum(a2, 0) + noise) + (1 - k * k) * np.maximum(m2 - noise, 0) / n)
    return np.sqrt(a2 + 0.5j * np.sqrt(s2)).real


def rounded_noise_sigma(values: np.ndarray, coils: int = 1) -> float:
    """sigma whose rounded noise round(M) has the values' mean square, from scipy's chi.

    The estimator for integer data: given round(M) >= 1 when the values hold no zero
    (zeros left out), over all k otherwise.
    """
    from scipy import optimize, stats

    v = np.asarray(values, dtype=float)
    first = 0.0 if np.any(v == 0) else 1.0
    target = float(np.mean(v * v))

    def excess(s: float) -> float:
        k = np.arange(first, np.ceil(s * (np.sqrt(2 * coils) + 14)) + 1)
        law = stats.chi(2 * coils, scale=s)
        p = law.sf(k - 0.5) - law.sf(k + 0.5)
        return float(p @ k**2 / p.sum()) - target

    plain = float(np.sqrt(target / (2 * coils)))
    return float(optimize.brentq(excess, plain / 4, plain * 2, xtol=1e-14, rtol=1e-13))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)
