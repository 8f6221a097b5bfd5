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


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)
