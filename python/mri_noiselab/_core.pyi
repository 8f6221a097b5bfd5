"""Types of the compiled kernels (python/bindings/core.cpp).

The same source is built twice, as ``_core`` (any x86-64 CPU) and ``_core_v3``
(x86-64-v3): both modules have this API, and :mod:`mri_noiselab._kernels` hands out
whichever the CPU runs under the name ``_core``. Arrays are float32 or float64 in
native byte order (the callers convert them), stored values also 8-, 16- and 32-bit
integers; masks are uint8, non-zero inside.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt

__version__: str

_Float = np.float32 | np.float64
_Image = npt.NDArray[np.float32] | npt.NDArray[np.float64]
_Mask = npt.NDArray[np.uint8]
_Stored = np.int8 | np.uint8 | np.int16 | np.uint16 | np.int32 | np.uint32 | np.float32 | np.float64
_Doubles = npt.NDArray[np.float64]

class CorrectionReport:
    """What correct() saw while it ran (pickles; prints its fields)."""

    @property
    def n(self) -> int: ...
    @property
    def nonfinite(self) -> int: ...
    @property
    def negative(self) -> int: ...
    @property
    def zeros(self) -> int: ...
    @property
    def clamped(self) -> int: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...
    def __getstate__(self) -> tuple[int, int, int, int, int, float, float]: ...
    def __setstate__(self, state: tuple[int, int, int, int, int, float, float]) -> None: ...

class SampleStats:
    """Count, mean, std (two-pass), mean of M^2, range, and the NaN/inf, negative and zero counts of a sample."""

    @property
    def n(self) -> int: ...
    @property
    def zeros_excluded(self) -> int: ...
    @property
    def nonfinite(self) -> int: ...
    @property
    def negative(self) -> int: ...
    @property
    def zeros(self) -> int: ...
    @property
    def mean(self) -> float: ...
    @property
    def std(self) -> float: ...
    @property
    def mean_sq(self) -> float: ...
    @property
    def min(self) -> float: ...
    @property
    def max(self) -> float: ...

def has_openmp() -> bool: ...
def cpu_levels() -> list[str]: ...
def default_threads() -> int: ...
def chi_beta(coils: int) -> float: ...
def chi_std_factor(coils: int) -> float: ...
def chi_mean_std_ratio(coils: int) -> float: ...
def box_moments(
    x: _Image, window: Sequence[int], fourth: bool = False, mask: _Mask | None = None, threads: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]: ...
def box_count(
    x: _Image, window: Sequence[int], mask: _Mask, threads: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint32], int, int]:
    """Masked box mean of M^2, each window's in-mask count, and the NaN/inf and negative voxels in the mask."""
    ...

def band_select(
    values: npt.NDArray[np.float64],
    index: npt.NDArray[np.uint32],
    mask: _Mask,
    lo: npt.ArrayLike,
    hi: npt.ArrayLike,
    edges: npt.ArrayLike = ...,
    out: _Mask | None = None,
    collect: int = 0,
    threads: int = 0,
) -> tuple[int, float, float, npt.NDArray[np.uintp], npt.NDArray[np.float64]]:
    """(n, min, max, histogram over edges, up to ``collect`` values in the odd intervals) of the in-mask
    voxels with lo[index] <= values <= hi[index]; 1 there in out."""
    ...

def masked_moments(
    values: _Image, mask: _Mask, threads: int = 0
) -> tuple[int, float, float, float, float, float, bool]:
    """(n, max, sums of u, u^2, u^4 (u = value / max) and of value^2 in numpy's pairwise order, all whole) over the mask."""
    ...

def correct(
    x: _Image,
    sigma: float,
    window: Sequence[int],
    method: Literal["moments", "lmmse"] = "moments",
    coils: int = 1,
    mask: _Mask | None = None,
    sigma_map: npt.NDArray[np.float64] | None = None,
    threads: int = 0,
) -> tuple[npt.NDArray[_Float], CorrectionReport]: ...
def correct_stored(
    x: npt.NDArray[_Stored],
    sigma: float,
    window: Sequence[int],
    method: Literal["moments", "lmmse"] = "moments",
    coils: int = 1,
    mask: _Mask | None = None,
    sigma_map: _Doubles | None = None,
    threads: int = 0,
    scale: _Doubles | None = None,
    offset: _Doubles | None = None,
    out_scale: _Doubles | None = None,
    out_offset: _Doubles | None = None,
    lo: float = ...,
    hi: float = ...,
    single: bool = False,
) -> tuple[npt.NDArray[_Stored], CorrectionReport]: ...
def sample_stats(x: _Image, mask: _Mask | None = None, exclude_zeros: bool = False, threads: int = 0) -> SampleStats: ...
def sigma_from_stats(
    stats: SampleStats, method: Literal["mle", "std", "mean"], coils: int = 1
) -> tuple[float, float, float]: ...
