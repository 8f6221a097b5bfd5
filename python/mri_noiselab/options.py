"""How to clean: :class:`CleanOptions`, one object for every format, entry point and worker.

:mod:`mri_noiselab.clean` re-exports it with the functions that take it.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from mri_noiselab._args import (
    Estimator,
    FSize,
    Method,
    check_coils,
    check_estimator,
    check_method,
    check_sigma,
    check_sigma_values,
    check_threads,
    window_sizes,
)


@dataclass(frozen=True)
class CleanOptions:
    """How to clean: one object for every format, entry point and worker.

    Attributes
    ----------
    sigma : float or tuple of float, optional
        A known sigma in the volumes' magnitude units (stored values unless an
        intercept or several slopes): one value, or one per volume of a 4-D
        image. Skips estimation.
    estimator : {"mle", "std", "mean"}
        How sigma is estimated (see :func:`mri_noiselab.estimate_sigma`).
    method : {"lmmse", "moments", "pointwise"}
        How the bias is removed (see :func:`mri_noiselab.correct`).
    f_size : int or tuple of int, optional
        The window: an int ``f`` is ``f x f`` in-plane (never across slices or
        volumes); a tuple lists rows, columns[, slices], the order of ``--roi``.
        The default, None, is 9 x 9 in-plane, widened for many coils (see
        :func:`mri_noiselab.correct`).
    coils : int, optional
        Receiver coils; None fits them to the background (1 when sigma is given).
    per_volume : bool
        One sigma per volume (a DICOM stack: echo, b-value, time point,
        multi-frame file; one volume of a 4-D NIfTI image) instead of one per
        group (a DICOM series, a NIfTI file); a 3-D NIfTI image keeps its one.
        Without it, one sigma for the volumes of a 4-D image whose noise
        differs comes with a warning that suggests it.
    include_derived : bool
        DICOM: also correct derived images, maps, projections and localizers.
    num_threads : int, optional
        Kernel threads (default: all cores; per worker with a Dask cluster).

    Examples
    --------
    >>> from mri_noiselab.clean import CleanOptions
    >>> options = CleanOptions(method="moments", f_size=[7, 7], coils=4)  # checked when made
    >>> options.method, options.f_size, options.sigma
    ('moments', (7, 7), None)
    >>> CleanOptions(sigma=[8, 16, 24]).sigma  # one per volume of a 4-D image
    (8.0, 16.0, 24.0)
    >>> CleanOptions(method="nlm")
    Traceback (most recent call last):
    ...
    ValueError: unknown correction 'nlm': choose one of moments, pointwise, lmmse

    ``clean_source(src, dst, options)`` and the command line take the same object.
    """

    sigma: float | tuple[float, ...] | None = None
    estimator: Estimator = "mle"
    method: Method = "lmmse"
    f_size: int | tuple[int, ...] | None = None
    coils: int | None = None
    per_volume: bool = False
    include_derived: bool = False
    num_threads: int | None = None

    def __post_init__(self) -> None:
        check_estimator(self.estimator)
        check_method(self.method)
        if self.coils is not None:
            check_coils(self.coils)
        if self.num_threads is not None:
            check_threads(self.num_threads)
        f = self.f_size
        if isinstance(f, Sequence) and not isinstance(f, numbers.Integral):
            if len(f) not in (2, 3):
                raise ValueError(f"f_size lists rows, columns[, slices]: give an int or 2 or 3 sizes, got {tuple(f)!r}")
            object.__setattr__(self, "f_size", window_sizes(f, len(f)))
        elif f is not None:
            window_sizes(f, 1)
        if self.sigma is not None and not isinstance(self.sigma, numbers.Real):
            values = check_sigma_values(np.asarray(self.sigma, dtype=np.float64).reshape(-1))
            object.__setattr__(self, "sigma", tuple(float(v) for v in values))
        elif self.sigma is not None:
            object.__setattr__(self, "sigma", check_sigma(self.sigma))
        if self.sigma is not None and self.per_volume:
            raise ValueError("per_volume (--sigma-per-volume) estimates σ for each volume: it cannot be combined with a given sigma (--sigma)")


# The keyword form of CleanOptions, for the functions that take its fields one by one
# (tests/test_layering.py checks that the two list the same fields).
CleanFields = TypedDict(
    "CleanFields",
    {"sigma": "float | Sequence[float] | None", "estimator": Estimator, "method": Method, "f_size": "FSize | None",
     "coils": "int | None", "per_volume": bool, "include_derived": bool, "num_threads": "int | None"},
    total=False,
)


def options_of(options: CleanOptions | None, fields: CleanFields) -> CleanOptions:
    """``options`` (default: :class:`CleanOptions`) with ``fields`` replaced, checked once."""
    return dataclasses.replace(options or CleanOptions(), **fields)  # type: ignore[arg-type]


__all__ = ["CleanFields", "CleanOptions", "options_of"]
