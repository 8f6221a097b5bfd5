"""Bias correction of magnitude images: the API for new code.

The formulas are in the C++ core (``cpp/include/noiselab``); this module checks
arguments, converts arrays and turns the core's reports into exceptions. sigma comes
from :mod:`mri_noiselab.noise`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import (
    FSize,
    Method,
    as_kernel_array,
    check_axis,
    check_coils,
    check_image,
    check_mask,
    check_method,
    check_sigma_values,
    default_volume_axis,
    sigma_shape,
    threads,
    window,
)
from mri_noiselab._kernels import _core
from mri_noiselab.noise import SigmaEstimate


@dataclass(frozen=True)
class CorrectionReport:
    """What the correction kernel saw while it ran (``correct(..., return_report=True)``).

    The same class whatever kernel build (portable or x86-64-v3) is loaded; it
    pickles and compares by value.

    Attributes
    ----------
    n : int
        Voxels corrected (in the mask, if any).
    nonfinite, negative, zeros : int
        Input voxels that are NaN or infinite, negative, and exactly 0.
    clamped : int
        Voxels whose A^2 estimate was negative and set to 0.
    min, max : float
        The smallest and largest input voxel.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> image = np.array([[0.5, 1.0, 2.0], [3.0, 0.0, 4.0]])
    >>> corrected, report = nl.correct(image, 1.0, method="pointwise", return_report=True)
    >>> report  # A^2 = M^2 - 2 sigma^2 is negative for 0.5, 1.0 and 0.0: set to 0
    CorrectionReport(n=6, nonfinite=0, negative=0, zeros=1, clamped=3, min=0.0, max=4.0)
    >>> np.round(corrected, 3)
    array([[0.   , 0.   , 1.414],
           [2.646, 0.   , 3.742]])
    """

    n: int
    nonfinite: int
    negative: int
    zeros: int
    clamped: int
    min: float
    max: float


def _sigma_argument(
    sigma: float | SigmaEstimate | npt.ArrayLike, shape: tuple[int, ...], coils: int, volume_axis: int | None
) -> tuple[float, np.ndarray | None]:
    """A scalar sigma, or a float64 map broadcast to ``shape`` (per volume or per voxel)."""
    if isinstance(sigma, SigmaEstimate):
        sigma = sigma.sigma
    arr = check_sigma_values(np.asarray(sigma, dtype=np.float64))
    # The bias 2 N sigma^2 must be a finite double (an infinite one turns A^2 into NaN).
    if arr.size and float(arr.max()) > math.sqrt(np.finfo(np.float64).max / (2 * coils)):
        raise ValueError(
            f"sigma = {float(arr.max()):.3g} is too large: 2 N sigma^2 overflows double precision; "
            "give sigma in the image's units"
        )
    if arr.ndim == 0:
        return float(arr), None
    return 0.0, np.broadcast_to(arr.reshape(sigma_shape(arr.shape, shape, volume_axis)), shape)


@overload
def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: Literal[False] = False,
) -> np.ndarray: ...


@overload
def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: Literal[True],
) -> tuple[np.ndarray, CorrectionReport]: ...


def correct(
    image: npt.ArrayLike,
    sigma: float | SigmaEstimate | npt.ArrayLike,
    f_size: FSize | None = None,
    method: Method = "lmmse",
    coils: int = 1,
    *,
    mask: npt.ArrayLike | None = None,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    num_threads: int | None = None,
    return_report: bool = False,
) -> np.ndarray | tuple[np.ndarray, CorrectionReport]:
    """Remove the Rician (noncentral chi) noise bias from a magnitude image.

    Parameters
    ----------
    image : array_like
        Magnitude image, 1-D to 4-D, finite and non-negative. float64 stays
        float64; other real types are computed and returned as float32.
    sigma : float, SigmaEstimate or array_like
        Noise level: one value, one per volume (a 1-D array along
        ``volume_axis``), or one per voxel (the image's shape).
    f_size : int or tuple of int, optional
        Window. An int is that size on every axis except the volume axis, the
        slice axis and axes of length 1, so volumes are never averaged together.
        The default is 9 (9 x 9 on a 2-D image, 9 x 9 x 9 on a 3-D volume),
        widened for many coils until the window holds 4 (N + 1) voxels (13 x 13
        on a 2-D image at 32 coils). A tuple gives one size per axis.
    method : {"lmmse", "moments", "pointwise"}
        ``"lmmse"`` (the default): Aja-Fernandez et al. 2008, which keeps the
        voxel's own value where the window holds an edge, with a bias-corrected
        square root. ``"moments"``:
        A^2 = <M^2> - 2 N sigma^2, a box blur of M^2. ``"pointwise"``: the same
        with no window (power subtraction).
    coils : int
        Receiver coils combined by sum of squares.
    mask : array_like of bool, optional
        Only voxels inside the mask enter the local moments and are corrected;
        the others are returned unchanged.
    volume_axis : int, optional
        The axis that holds volumes (time points, directions, echoes): the
        last axis of a 4-D image by default, none otherwise. Give 0 for a
        ``(t, z, y, x)`` array from SimpleITK or pydicom.
    slice_axis : int, optional
        An axis an int ``f_size`` leaves alone: slices thicker than pixels, as
        the DICOM and NIfTI workflows declare them (``slice_axis=0`` on a DICOM
        stack or a SimpleITK ``(z, y, x)`` array gives their in-plane window,
        ``slice_axis=2`` on a nibabel ``(x, y, z)`` array).
    num_threads : int, optional
        Threads for this call; see :func:`mri_noiselab.set_num_threads`.
    return_report : bool
        Also return the kernel's :class:`CorrectionReport`.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, CorrectionReport)
        The corrected magnitude, same shape as ``image``.

    Raises
    ------
    ValueError
        For NaN/inf or negative voxels, bad sigma, f_size, coils, method or axes.
    TypeError
        For non-real dtypes or an f_size that is not an int or tuple of ints.

    Notes
    -----
    With box means <.> over the window (scipy's ``mode="reflect"``), ``"moments"``
    computes A = sqrt(max(<M^2> - 2 N sigma^2, 0)) [1]_ and ``"lmmse"`` adds
    K (M^2 - <M^2>), K = 1 - 4 sigma^2 (<M^2> - N sigma^2) / (<M^4> - <M^2>^2)
    clamped to [0, 1] [2]_; its root is Re sqrt(A^2 + i s/2) with s^2 the
    variance of the A^2 estimate, which removes the low bias of sqrt(max(A^2, 0))
    at low SNR (up to 0.1 sigma at SNR 1 with many coils) and needs no clamp.
    The default was chosen by ``benchmarks/accuracy.py --part default`` (README,
    "Which method and window should I use?").

    References
    ----------
    .. [1] H. Gudbjartsson, S. Patz, Magn Reson Med 34:910 (1995).
    .. [2] S. Aja-Fernandez, C. Alberola-Lopez, C.-F. Westin, IEEE TIP 17:1383 (2008).

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> truth = np.full((128, 128), 20.0)  # a flat region at SNR 2
    >>> image = np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape))
    >>> round(float(image.mean()), 1), round(float(nl.correct(image, 10.0).mean()), 1)
    (22.8, 20.0)
    """
    method = check_method(method)
    coils = check_coils(coils)
    arr = check_image(as_kernel_array(image, "image"))
    volumes = default_volume_axis(arr.ndim, volume_axis)
    slices = check_axis(slice_axis, arr.ndim, "slice_axis")
    sizes = window(1 if method == "pointwise" else f_size, arr.shape, volume_axis=volumes, slice_axis=slices, coils=coils)
    scalar, sigma_map = _sigma_argument(sigma, arr.shape, coils, volumes)
    mask_arr = None if mask is None else check_mask(mask, arr.shape).view(np.uint8)
    kernel: Literal["moments", "lmmse"] = "lmmse" if method == "lmmse" else "moments"
    out, rep = _core.correct(arr, scalar, list(sizes), kernel, coils, mask_arr, sigma_map, threads(num_threads))
    report = _check_report(rep, kernel, "image")
    out = out.reshape(np.shape(image))
    return (out, report) if return_report else out


def _check_report(rep: Any, kernel: Literal["moments", "lmmse"], what: str) -> CorrectionReport:
    """The kernel's report of a correction; raises for values it cannot have corrected (``what`` names them: "image")."""
    if rep.nonfinite:
        raise ValueError(f"{what} contains NaN or infinite values: mask them out (mask=...) before correcting")
    if rep.negative:
        raise ValueError(f"Found negative values in the {what}: magnitude data cannot be negative")
    power = 4 if kernel == "lmmse" else 2
    if float(rep.max) > np.finfo(np.float64).max ** (1 / power):
        raise ValueError(
            f"{what} values up to {rep.max:.3g} overflow float64 once raised to the power "
            f"{power}: scale the image down (and sigma with it)"
        )
    return CorrectionReport(int(rep.n), int(rep.nonfinite), int(rep.negative), int(rep.zeros), int(rep.clamped),
                            float(rep.min), float(rep.max))


__all__ = ["CorrectionReport", "correct"]
