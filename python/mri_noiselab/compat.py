"""Drop-in replacements for mri-noiselab 0.1's ``subtract_noise`` functions.

Same signatures, defaults, return dtype, exceptions and warnings (user scripts
match their messages), computed by the fused C++ kernel instead of numpy/scipy.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

from mri_noiselab._kernels import _core
from mri_noiselab._args import as_kernel_array, sample_view, squeeze_to_kernel, threads, window_sizes

# mri-noiselab 0.1's constants, kept for compatibility: 1.91 ~ sqrt(pi/(4-pi)) = 1.9131 and
# 0.655 ~ sqrt(2 - pi/2) = 0.6551 (estimate_sigma uses the exact values).
_RAYLEIGH_MEAN_STD_RATIO = 1.91
_RAYLEIGH_SIGMA_FACTOR = 0.655


def _require_ndarray(data: object, name: str) -> np.ndarray:
    if not isinstance(data, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(data).__name__}")
    if data.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (integer or floating point), got dtype {data.dtype}")
    return data


_OVERFLOW_TIP = "Tip: to circumvent overflow try np_type=np.float64 or scale inputs down and rescale outputs."


def _overflow(message: str) -> RuntimeError:
    return RuntimeError(f"{message} during noise subtraction.\n{_OVERFLOW_TIP}")


def _cast(data: np.ndarray, np_type: np.dtype) -> np.ndarray:
    """Cast as 0.1 did, under errstate(raise); FloatingPointError becomes RuntimeError."""
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise", under="raise"):
            return data.astype(np_type, copy=False)
    except FloatingPointError as e:
        raise _overflow(str(e)) from None


def _validate(data: np.ndarray, name: str, n_threads: int) -> ValueError | None:
    """The content error 0.1 raised for ``data`` before casting, if any (an extra pass:
    only on paths that fail anyway)."""
    values = sample_view(as_kernel_array(data, name))
    if values.size == 0:
        return ValueError(f"{name} is totally dark, it has no pixels.")
    st = _core.sample_stats(values, None, False, n_threads)
    return _content_errors(st.nonfinite, st.negative, st.zeros == st.n, name)


def _content_errors(nonfinite: int, negative: int, all_zero: bool, name: str) -> ValueError | None:
    if nonfinite:
        return ValueError(
            f"{name} contains NaN or infinite values. "
            "Possible solution: mask them and use subtract_noise_masked."
        )
    if negative:
        return ValueError(
            f"Found negative values in the {name}. Possible solutions: clip or mask or set an offset "
            "(equal for image and background) before passing it to the function."
        )
    if all_zero:
        return ValueError(f"{name} is totally dark, all pixels are 0.")
    return None


def subtract_noise(
    image: np.ndarray,
    bg_area: np.ndarray,
    b_tol: float = 0.1,
    f_size: int = 10,
    np_type: npt.DTypeLike = np.float32,
) -> np.ndarray:
    """Remove the Rayleigh noise bias of a magnitude image, estimating sigma from a background.

    Drop-in replacement for mri-noiselab 0.1's ``subtract_noise``.

    Parameters
    ----------
    image : numpy.ndarray
        Magnitude image, any shape with at most 4 axes longer than 1. Finite,
        non-negative, not all zero.
    bg_area : numpy.ndarray
        Noise-only background values, any shape. Finite, non-negative, not all zero.
    b_tol : float
        Tolerance on the background mean/std ratio against 1.91 (Rayleigh).
    f_size : int or tuple of int
        Window size, applied to every axis (or one per axis).
    np_type : numpy dtype
        Floating-point type of the result. float32 and float64 are computed
        directly; other float types are computed in float32/float64 and cast.

    Returns
    -------
    numpy.ndarray
        sqrt(max(<M^2> - 2 sigma^2, 0)) with sigma = std(bg_area) / 0.655 and
        <.> the box mean over ``f_size`` (scipy's reflect boundary).

    Raises
    ------
    TypeError
        If ``image`` or ``bg_area`` is not a numpy.ndarray of real numbers.
    ValueError
        If either contains NaN/inf ("contains NaN or infinite values"), negative
        values ("Found negative values in the image/background"), is all zero
        ("is totally dark"), or if the background has std 0 ("Unable to estimate
        noise from background (std = 0)").
    RuntimeError
        If casting to ``np_type`` overflows (numpy's message, e.g. "overflow
        encountered in cast").

    Warns
    -----
    RuntimeWarning
        "Background may be biased" when |mean/std - 1.91| > b_tol; "No noise
        found in image (std = 0)" for a constant image; "...% negative values set
        to zero before square root" when the estimate of A^2 is clamped.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> background = np.hypot(*rng.normal(0, 10, (2, 40, 40)))  # noise only, sigma 10
    >>> image = np.hypot(100 + rng.normal(0, 10, (64, 64)), rng.normal(0, 10, (64, 64)))  # truth 100
    >>> out = nl.subtract_noise(image, background)  # f_size 10 on every axis, as in 0.1
    >>> out.dtype, round(float(image.mean())), round(float(out.mean()))
    (dtype('float32'), 101, 100)
    """
    image = _require_ndarray(image, "image")
    if np.ma.isMaskedArray(bg_area):  # 0.1's numpy statistics left masked values out
        bg_area = bg_area.compressed()
    bg_area = _require_ndarray(bg_area, "background")
    out_type = np.dtype(np_type)
    if out_type.kind != "f":
        raise TypeError(f"np_type must be a floating-point type, got {out_type}")
    work = np.float64 if out_type.itemsize > 4 else np.float32
    window = window_sizes(f_size, max(image.ndim, 1))
    n_threads = threads(None)

    try:
        img = as_kernel_array(_cast(image, out_type), "image", work)
        bg = sample_view(as_kernel_array(_cast(bg_area, out_type), "background", work))
    except RuntimeError:
        # 0.1 validated before casting, so a content error wins over the cast's.
        error = _validate(image, "image", n_threads) or _validate(bg_area, "background", n_threads)
        if error is not None:
            raise error from None
        raise

    bg_error = _validate(bg, "background", n_threads) if bg.size == 0 else None
    if bg.size:
        st = _core.sample_stats(bg, None, False, n_threads)
        bg_error = _content_errors(st.nonfinite, st.negative, st.zeros == st.n, "background")
        if bg_error is None and st.std == 0:
            bg_error = ValueError("Unable to estimate noise from background (std = 0).")
    if img.size == 0 or bg_error is not None:
        # mri-noiselab 0.1 reports image problems first: check the image before failing.
        raise _validate(img, "image", n_threads) or bg_error  # type: ignore[misc]

    kernel_img, kernel_window = squeeze_to_kernel(img, window)
    sigma = st.std / _RAYLEIGH_SIGMA_FACTOR
    out, rep = _core.correct(kernel_img, sigma, list(kernel_window), "moments", 1, None, None, n_threads)
    image_error = _content_errors(rep.nonfinite, rep.negative, rep.zeros == rep.n, "image")
    if image_error is not None:
        raise image_error

    # Warnings and errors in 0.1's order; stacklevel 1 like 0.1, so that filters on
    # module="mri_noiselab" keep working.
    ratio = st.mean / st.std
    if not np.isclose(ratio, _RAYLEIGH_MEAN_STD_RATIO, atol=b_tol):
        warnings.warn(
            f"Background may be biased: ave/std = {ratio:.3f}, expected ~{_RAYLEIGH_MEAN_STD_RATIO} ± {b_tol}",
            RuntimeWarning,
        )
    if rep.min == rep.max:
        warnings.warn("No noise found in image (std = 0).", RuntimeWarning)
    # 0.1 squared the image in np_type; the kernel works in double, so say what 0.1 said.
    if float(rep.max) > math.sqrt(float(np.finfo(out_type).max)):
        raise _overflow("overflow encountered in square")
    if rep.clamped:
        warnings.warn(f"{100 * rep.clamped / out.size:.2f}% negative values set to zero before square root.", RuntimeWarning)
    out = out.reshape(image.shape)
    return out if out.dtype == out_type else _cast(out, out_type)


def subtract_noise_masked(
    image_ma: np.ma.MaskedArray,
    bg_ma: np.ma.MaskedArray | np.ndarray,
    *,
    fill_value: float = 0.0,
    return_masked: bool = True,
    **kwargs: Any,
) -> np.ma.MaskedArray | np.ndarray:
    """Apply :func:`subtract_noise` to a masked image.

    Drop-in replacement for mri-noiselab 0.1's ``subtract_noise_masked``.
    Masked pixels are filled with ``fill_value`` (so they skip validation) and
    still enter the local windows with that value; for windows that ignore
    masked pixels use :func:`mri_noiselab.correct` with ``mask=``.

    Parameters
    ----------
    image_ma : numpy.ma.MaskedArray
        The image.
    bg_ma : numpy.ma.MaskedArray or numpy.ndarray
        Background; only unmasked values count.
    fill_value : float
        Value given to masked image pixels during the computation.
    return_masked : bool
        Return a masked array carrying the input mask, else a plain array.
    **kwargs
        Passed to :func:`subtract_noise` (b_tol, f_size, np_type).

    Returns
    -------
    numpy.ma.MaskedArray or numpy.ndarray

    Raises
    ------
    TypeError
        If ``image_ma`` is not a numpy.ma.MaskedArray.
    ValueError
        If the background has no valid (unmasked) pixels, and as :func:`subtract_noise`.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> rng = np.random.default_rng(0)
    >>> background = np.hypot(*rng.normal(0, 10, (2, 40, 40)))
    >>> image = np.hypot(100 + rng.normal(0, 10, (64, 64)), rng.normal(0, 10, (64, 64)))
    >>> masked = np.ma.masked_greater(image, 130)  # outliers left out
    >>> out = nl.subtract_noise_masked(masked, background)
    >>> bool((out.mask == masked.mask).all()), round(float(out.mean()))
    (True, 100)
    """
    if not np.ma.isMaskedArray(image_ma):
        raise TypeError("image_ma must be a numpy.ma.MaskedArray, otherwise use subtract_noise")
    bg_valid = bg_ma.compressed() if np.ma.isMaskedArray(bg_ma) else bg_ma
    if np.size(bg_valid) == 0:
        raise ValueError("Background has no valid (unmasked) pixels.")
    output = subtract_noise(image_ma.filled(fill_value), bg_valid, **kwargs)
    if return_masked:
        return np.ma.array(output, mask=np.ma.getmaskarray(image_ma), copy=False)
    return output


__all__ = ["subtract_noise", "subtract_noise_masked"]
