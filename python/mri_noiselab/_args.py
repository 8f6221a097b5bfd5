"""Argument checks and conversions shared by the public functions: one message per mistake.

Also the one rule that turns ``f_size`` into a window per axis (see :func:`window`) and
the default thread count of the kernels.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, TypeGuard

import numpy as np
import numpy.typing as npt

from mri_noiselab._kernels import _core

Estimator = Literal["mle", "std", "mean"]
"""How sigma is estimated from a background: see :func:`mri_noiselab.estimate_sigma`."""
Method = Literal["lmmse", "moments", "pointwise"]
"""How the bias is removed: see :func:`mri_noiselab.correct`."""
ESTIMATORS: tuple[Estimator, ...] = ("mle", "std", "mean")
METHODS: tuple[Method, ...] = ("moments", "pointwise", "lmmse")
FSize = int | Sequence[int]
"""A window: an int (see :func:`window`) or one size per axis."""
DEFAULT_F_SIZE = 9
"""The default window per axis, widened for many coils (see :func:`default_f_size`)."""

MAX_NDIM = 4
# The kernels take window sizes as 64-bit integers, thread counts as a C int and coil
# counts as a 32-bit unsigned int; beyond these the binding would reject the call with a
# message about its C++ signature.
_MAX_WINDOW = 2**63 - 1
_MAX_THREADS = 2**31 - 1
_MAX_COILS = 2**32 - 1

_default_threads: int | None = None


def _is_int(value: object) -> TypeGuard[numbers.Integral]:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def set_num_threads(n: int | None) -> None:
    """Set the number of threads the kernels use by default.

    Parameters
    ----------
    n : int or None
        A positive count, or None for all cores (OpenMP's default). A
        ``num_threads`` argument given to a function takes precedence. Results
        are bit-identical whatever the count.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> image = np.random.default_rng(0).rayleigh(10.0, (64, 64))
    >>> nl.set_num_threads(1)
    >>> serial = nl.correct(image, 10.0)
    >>> nl.set_num_threads(None)  # back to all cores
    >>> bool(np.array_equal(serial, nl.correct(image, 10.0)))  # the same bits
    True
    """
    global _default_threads
    _default_threads = None if n is None else check_threads(n)


def get_num_threads() -> int:
    """Return the number of threads the kernels use by default.

    The count given to :func:`set_num_threads`, else OpenMP's (all cores, or
    ``OMP_NUM_THREADS``); 1 in a build without OpenMP.

    Examples
    --------
    >>> import mri_noiselab as nl
    >>> nl.set_num_threads(3)
    >>> nl.get_num_threads()
    3
    >>> nl.set_num_threads(None)
    >>> nl.get_num_threads() >= 1
    True
    """
    return _default_threads if _default_threads is not None else int(_core.default_threads())


def check_threads(n: object) -> int:
    """A thread count for the kernels (they never start more threads than they have work for)."""
    if not _is_int(n) or not 1 <= int(n) <= _MAX_THREADS:
        raise ValueError(f"num_threads must be a positive integer (at most {_MAX_THREADS}) or None, got {n!r}")
    return int(n)


def threads(num_threads: int | None) -> int:
    """The thread count to pass to a kernel: the argument, else the default (0: OpenMP's)."""
    if num_threads is not None:
        return check_threads(num_threads)
    return _default_threads or 0


def check_coils(coils: object) -> int:
    """A receiver coil count N >= 1."""
    if not _is_int(coils) or not 1 <= int(coils) <= _MAX_COILS:
        raise ValueError(
            f"coils must be an integer >= 1 and at most {_MAX_COILS} (receiver coils combined by sum of squares), got {coils!r}"
        )
    return int(coils)


def check_sigma(sigma: object) -> float:
    """A scalar noise level: a finite number > 0."""
    if isinstance(sigma, bool) or not isinstance(sigma, numbers.Real) or not (math.isfinite(value := float(sigma)) and value > 0):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    return value


def check_sigma_values(sigma: np.ndarray) -> np.ndarray:
    """A sigma array (one value, per volume or per voxel) whose values are all finite and > 0."""
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        shown = sigma if sigma.ndim == 0 else "an array with bad values"
        raise ValueError(f"sigma must be finite and > 0, got {shown}")
    return sigma


def read_sigma_file(path: str | os.PathLike[str]) -> float | tuple[float, ...]:
    """σ from a file: one value, or one per volume of a 4-D image, in stored units.

    The file holds numbers separated by white space, commas or new lines (``#``
    starts a comment), or JSON: a list of numbers, or the list that ``mri-noiselab
    sigma --json [--sigma-per-volume]`` prints for one file (its ``sigma`` values
    in order).

    Raises
    ------
    ValueError
        Naming the file: unreadable, empty, not numbers, values that are not
        finite and > 0, or JSON rows of several sources.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: cannot read the sigma file ({getattr(e, 'strerror', None) or e})") from None
    body = text.strip()
    try:
        values = _json_sigmas(json.loads(body)) if body.startswith(("[", "{")) else [
            float(word) for line in body.splitlines() for word in re.split(r"[\s,]+", line.split("#")[0]) if word]
    except (ValueError, TypeError) as e:
        raise ValueError(f"{p}: not a list of sigma values ({e!s})") from None
    if not values:
        raise ValueError(f"{p}: the sigma file holds no value")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{p}: sigma values must be finite and > 0, got {', '.join(f'{v:g}' for v in values)}")
    return values[0] if len(values) == 1 else tuple(values)


def _json_sigmas(data: object) -> list[float]:
    """The σ values of a JSON list of numbers, or of ``sigma --json`` rows (one source)."""
    rows = data if isinstance(data, list) else [data]
    if all(isinstance(r, dict) for r in rows):
        sources = {json.dumps(r.get("source")) for r in rows if isinstance(r, dict)}
        if len(sources) > 1:
            raise ValueError(f"σ of {len(sources)} sources: keep the rows of the one image to clean")
        if not all(isinstance(r, dict) and "sigma" in r for r in rows):
            raise ValueError("rows without a 'sigma'")
        rows = [v for r in rows if isinstance(r, dict) for v in np.atleast_1d(r["sigma"]).tolist()]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in rows):
        raise ValueError("expected numbers")
    return [float(v) for v in rows]  # type: ignore[arg-type]


def sigma_shape(sigma: tuple[int, ...], shape: tuple[int, ...], volume_axis: int | None) -> tuple[int, ...]:
    """The shape a sigma array takes to broadcast against an image of ``shape``.

    A 1-D sigma with one value per volume is laid along ``volume_axis``; any other
    shape must broadcast as it is.

    Raises
    ------
    ValueError
        If it does not broadcast.
    """
    if len(sigma) == 1 and volume_axis is not None and sigma[0] == shape[volume_axis]:
        sigma = sigma + (1,) * (len(shape) - 1 - volume_axis)
    try:
        if np.broadcast_shapes(sigma, shape) == shape:
            return sigma
    except ValueError:
        pass
    raise ValueError(
        f"a sigma array of shape {sigma} does not broadcast to the image shape {shape}: "
        "give one value per volume (along volume_axis) or one per voxel"
    )


def check_estimator(estimator: object) -> Estimator:
    """One of :data:`ESTIMATORS`."""
    for name in ESTIMATORS:
        if estimator == name:
            return name
    raise ValueError(f"unknown sigma estimator {estimator!r}: choose one of {', '.join(ESTIMATORS)}")


def check_method(method: object) -> Method:
    """One of :data:`METHODS`."""
    for name in METHODS:
        if method == name:
            return name
    raise ValueError(f"unknown correction {method!r}: choose one of {', '.join(METHODS)}")


def _image_object_hint(a: object) -> str | None:
    """What to pass instead of a nibabel or SimpleITK image, which numpy cannot read as voxels.

    Told apart by their type's module, so that neither library is imported (or needed).
    """
    package, name = type(a).__module__.partition(".")[0], type(a).__name__
    # A nibabel image becomes a 0-d object array; its array proxy (img.dataobj) converts fine.
    if package == "nibabel" and hasattr(a, "dataobj"):
        return (f"a nibabel {name}, not an array: pass img.get_fdata() or np.asanyarray(img.dataobj), "
                "whose axes are (x, y, z[, t]): slice_axis=2 for thick slices")
    # A SimpleITK image iterates over its pixels: numpy would silently make it 1-D.
    if package == "SimpleITK" and name == "Image":
        return ("a SimpleITK Image, not an array: pass SimpleITK.GetArrayFromImage(img), whose axes are "
                "(z, y, x): slice_axis=0; a 4-D (t, z, y, x) array needs volume_axis=0")
    return None


def as_kernel_array(a: npt.ArrayLike, name: str, dtype: npt.DTypeLike | None = None) -> np.ndarray:
    """Return ``a`` as a float32/float64 array in native byte order the kernels accept.

    Views (strided, reversed, read-only) are passed on without a copy when their
    dtype already fits; integers become float32 unless ``dtype`` says otherwise.

    Raises
    ------
    TypeError
        For bool, complex or other non-real dtypes; for objects numpy can only
        hold as Python objects; for nibabel and SimpleITK images (the message
        says which array to pass and its axes).
    """
    hint = _image_object_hint(a)
    if hint is not None:
        raise TypeError(f"{name} is {hint}")
    arr = np.asarray(a)
    kind = arr.dtype.kind
    if kind == "O" and not isinstance(a, np.ndarray):  # an object array given as one: its dtype is the answer
        raise TypeError(
            f"{name} must be an array of numbers, got {type(a).__name__!r}, which numpy can only hold as "
            "Python objects (dtype object): pass a numpy array of the voxel values"
        )
    if kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (integer or floating point), got dtype {arr.dtype}")
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 or arr.dtype.itemsize > 4 and kind == "f" else np.float32
    target = np.dtype(dtype).newbyteorder("=")
    if arr.dtype != target or not arr.flags.aligned:  # the kernels read T*: alignment is required
        arr = arr.astype(target)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    return arr


def check_shape(shape: tuple[int, ...], what: str = "image") -> tuple[int, ...]:
    """The shape of an image the kernels take: 1 to 4 axes, none of length 0."""
    if not 1 <= len(shape) <= MAX_NDIM:
        raise ValueError(f"images of 1 to {MAX_NDIM} dimensions are supported, got {len(shape)}")
    if 0 in shape:
        raise ValueError(f"{what} is empty (an axis has length 0)")
    return shape


def check_image(arr: np.ndarray, what: str = "image") -> np.ndarray:
    """An image the kernels take (see :func:`check_shape`)."""
    check_shape(arr.shape, what)
    return arr


def check_mask(mask: npt.ArrayLike, shape: tuple[int, ...], what: str = "image") -> np.ndarray:
    """A boolean mask of ``shape``."""
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise ValueError(f"mask shape {arr.shape} does not match {what} shape {shape}")
    return arr.astype(bool)


def sample_view(arr: np.ndarray) -> np.ndarray:
    """A sample as the statistics kernel reads it: its own shape when it has 1 to 4 axes
    (rows are the kernel's unit of parallel work, so a flat copy would run on one thread),
    flattened otherwise."""
    return arr if 1 <= arr.ndim <= MAX_NDIM else arr.reshape(-1)


def squeeze_to_kernel(arr: np.ndarray, window: tuple[int, ...]) -> tuple[np.ndarray, tuple[int, ...]]:
    """Drop axes of length 1 (a window there changes nothing) so that up to 4 axes remain."""
    if arr.ndim <= MAX_NDIM:
        return arr, window
    keep = [d for d in range(arr.ndim) if arr.shape[d] > 1] or [arr.ndim - 1]
    if len(keep) > MAX_NDIM:
        raise ValueError(f"images with at most {MAX_NDIM} axes longer than 1 are supported, got shape {arr.shape}")
    return arr.reshape([arr.shape[d] for d in keep]), tuple(window[d] for d in keep)


def window_sizes(f_size: FSize, ndim: int) -> tuple[int, ...]:
    """``f_size`` as one size per axis, scipy's way: an int on every axis, or one int per axis.

    Raises
    ------
    TypeError
        For an f_size that is not an int or a sequence of ints.
    ValueError
        For the wrong number of sizes, or a size below 1 or above 2**63 - 1.
    """
    if isinstance(f_size, np.ndarray) and f_size.ndim == 1:  # as scipy accepts
        f_size = f_size.tolist()
    if _is_int(f_size):
        sizes = [int(f_size)] * ndim
    elif isinstance(f_size, Sequence) and not isinstance(f_size, str):
        if len(f_size) != ndim:
            raise ValueError(f"f_size has {len(f_size)} entries but the image has {ndim} axes: give one per axis")
        if not all(_is_int(s) for s in f_size):
            raise TypeError(f"f_size entries must be ints, got {tuple(f_size)!r}")
        sizes = [int(s) for s in f_size]
    else:
        raise TypeError(f"f_size must be an int or a tuple of ints, got {f_size!r}")
    if any(s < 1 for s in sizes):
        raise ValueError(f"f_size must be >= 1 on every axis, got {tuple(sizes)}")
    if any(s > _MAX_WINDOW for s in sizes):
        raise ValueError(f"f_size must be at most 2**63 - 1 on every axis, got {tuple(sizes)}")
    return tuple(sizes)


def check_axis(axis: int | None, ndim: int, name: str) -> int | None:
    """An axis index of an ndim-array (negative counts from the end), or None."""
    if axis is None:
        return None
    if not _is_int(axis) or not -ndim <= int(axis) < ndim:
        raise ValueError(f"{name} must be an axis of the {ndim}-D image (-{ndim} to {ndim - 1}) or None, got {axis!r}")
    return int(axis) % ndim


def default_volume_axis(ndim: int, volume_axis: int | None) -> int | None:
    """``volume_axis``, or by default the last axis of a 4-D image (NIfTI's (x, y, z, t)); none otherwise."""
    if volume_axis is None:
        return 3 if ndim == 4 else None
    return check_axis(volume_axis, ndim, "volume_axis")


def default_f_size(coils: int, axes: int) -> int:
    """The default window per axis: DEFAULT_F_SIZE, widened by 2 until ``axes`` axes hold 4 (N + 1) voxels.

    At SNR 1 lmmse's A^2 estimate from n voxels has a standard error s of about
    2 sigma^2 sqrt((N + 1) / n) in flat tissue. With n >= 4 (N + 1) it stays at most
    A^2, where the bias-corrected root is within 2.5% of A (README, "Which method and
    window"); a narrower window at 32 coils leaves 0.09 sigma. So 9 x 9 up to 19 coils,
    11 x 11 up to 29, 13 x 13 at 32; 9 x 9 x 9 up to 181.
    """
    f = DEFAULT_F_SIZE
    while axes and f**axes < 4 * (coils + 1):
        f += 2
    return f


def window(
    f_size: FSize | None,
    shape: Sequence[int],
    *,
    volume_axis: int | None = None,
    slice_axis: int | None = None,
    axes: Sequence[int] | None = None,
    coils: int = 1,
) -> tuple[int, ...]:
    """The window on each axis of an image of ``shape``: the one meaning of ``f_size``.

    An int ``f`` is ``f`` on every axis except the volume axis (volumes are other
    images), the slice axis (slices are thicker than pixels, or are echoes and time
    points) and axes of length 1 (a window there repeats the same voxels). None is
    the int :func:`default_f_size` gives for ``coils`` on those axes. A sequence
    lists sizes for ``axes`` (every axis in order when None); axes it does not list
    get 1.

    Raises
    ------
    TypeError, ValueError
        As :func:`window_sizes`.
    """
    ndim = len(shape)
    if f_size is None or _is_int(f_size):
        skip = {check_axis(volume_axis, ndim, "volume_axis"), check_axis(slice_axis, ndim, "slice_axis")}
        windowed = [d for d in range(ndim) if d not in skip and shape[d] != 1]
        (f,) = window_sizes(default_f_size(coils, len(windowed)) if f_size is None else int(f_size), 1)
        return tuple(f if d in windowed else 1 for d in range(ndim))
    if axes is None:
        return window_sizes(f_size, ndim)
    if isinstance(f_size, Sequence) and not isinstance(f_size, str) and not 2 <= len(f_size) <= len(axes):
        names = ("rows", "columns", "slices")[: len(axes)]
        raise ValueError(f"f_size has {len(f_size)} entries: give an int or one per axis of {', '.join(names)}")
    given = window_sizes(f_size, len(f_size) if isinstance(f_size, Sequence) else len(axes))
    sizes = [1] * ndim
    for axis, size in zip(axes, given):
        sizes[axis] = size
    return tuple(sizes)


__all__ = [
    "DEFAULT_F_SIZE",
    "ESTIMATORS",
    "METHODS",
    "Estimator",
    "FSize",
    "Method",
    "as_kernel_array",
    "check_coils",
    "check_estimator",
    "check_image",
    "check_mask",
    "check_method",
    "check_sigma",
    "check_shape",
    "check_sigma_values",
    "check_threads",
    "default_f_size",
    "default_volume_axis",
    "get_num_threads",
    "read_sigma_file",
    "sample_view",
    "set_num_threads",
    "sigma_shape",
    "squeeze_to_kernel",
    "threads",
    "window",
    "window_sizes",
]
