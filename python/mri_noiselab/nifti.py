"""NIfTI-1/NIfTI-2 input and output (optional ``nifti`` extra: nibabel).

Voxel values are handled as the DICOM workflow handles them: the correction
works on the values stored in the file when ``scl_inter`` is 0, so that
``scl_slope`` stays valid; a non-zero intercept is removed first (zero signal
must be zero for the noise model) and restored after. Integer outputs are
rounded to nearest and clipped to the range of the file's data type.
"""

from __future__ import annotations

import functools
import gzip
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from mri_noiselab._atomic import atomic_write, same_file
from mri_noiselab._kernels import _core
from mri_noiselab.dicom import PACKAGE, Failure, check_targets, output_paths
from mri_noiselab.noise import SIGMA_METHODS, SigmaEstimate, correct, estimate_sigma, window_sizes
from mri_noiselab.roi import Roi, roi_mask

NIFTI_INSTALL = 'pip install "mri-noiselab[nifti]"'
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# The header's descrip field is char[80]: 79 characters and the terminating NUL.
_DESCRIP_BYTES = 79
# nibabel's own default: level 1 compresses MR volumes nearly as well as 6, several times faster.
_GZIP_LEVEL = 1


class NiftiError(ValueError):
    """A file that is not a usable NIfTI magnitude image."""


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError:
        raise ImportError(f"reading and writing NIfTI needs nibabel: {NIFTI_INSTALL}") from None
    return nibabel


def is_nifti_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name ends with ``.nii`` or ``.nii.gz`` (any case)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def nifti_files(folder: str | os.PathLike[str], *, exclude: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``.nii`` and ``.nii.gz`` files under ``folder`` (recursive, sorted, hidden files skipped).

    Parameters
    ----------
    folder : path-like
    exclude : path-like, optional
        A sub-folder to skip (the output folder, when it lies inside the input).
    """
    root = Path(folder)
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for p in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(root).parts) or not is_nifti_path(p) or not p.is_file():
            continue
        if skip is not None and (p.resolve() == skip or skip in p.resolve().parents):
            continue
        found.append(p)
    return found


@dataclass
class NiftiVolume:
    """A NIfTI image read for correction.

    Attributes
    ----------
    path : pathlib.Path
    image : nibabel.Nifti1Image or nibabel.Nifti2Image
        The image as read: affine, header and extensions.
    stored : numpy.ndarray
        The values stored in the file (before scl_slope/scl_inter), in the
        file's data type and native byte order; axes ``(x, y, z[, t])``.
    slope, intercept : float
        ``scl_slope`` and ``scl_inter`` (1 and 0 when the file is not scaled).
    """

    path: Path
    image: Any
    stored: np.ndarray
    slope: float
    intercept: float
    _magnitude: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.stored.shape)

    @property
    def slice_axis(self) -> int:
        """The slice axis from the header's dim_info, axis 2 (z) when not set."""
        ndim = min(self.stored.ndim, 3)
        dim = self.image.header.get_dim_info()[2]
        return int(dim) if dim is not None and dim < ndim else min(2, ndim - 1)

    def magnitude(self) -> np.ndarray:
        """The voxels in stored units, zero where the signal is zero.

        Returns
        -------
        numpy.ndarray
            ``stored + scl_inter / scl_slope``: the stored values themselves
            when the intercept is 0. float32 for data types it holds exactly
            (8/16-bit integers, float32), float64 otherwise. Computed once and
            shared by later calls (read-only).
        """
        if self._magnitude is None:
            exact32 = self.stored.dtype.itemsize <= 2 or self.stored.dtype == np.float32
            out = self.stored.astype(np.float32 if exact32 and self.intercept == 0 else np.float64)
            if self.intercept != 0:
                out += self.intercept / self.slope
            out.flags.writeable = False
            self._magnitude = out
        return self._magnitude

    def to_stored(self, magnitude: np.ndarray) -> np.ndarray:
        """Convert a magnitude in the units of :meth:`magnitude` back to the file's data type.

        Integer types are rounded to nearest (ties to even) and clipped to the
        type's range; floating-point types are only cast.
        """
        mag = np.asarray(magnitude, dtype=np.float64)
        if mag.shape != self.shape:
            raise ValueError(f"magnitude shape {mag.shape} does not match the image shape {self.shape}")
        values = mag - self.intercept / self.slope if self.intercept != 0 else mag
        dtype = self.stored.dtype
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            values = np.clip(np.rint(values), info.min, info.max)
        return values.astype(dtype)


def read_nifti(path: str | os.PathLike[str]) -> NiftiVolume:
    """Read a ``.nii`` or ``.nii.gz`` magnitude image.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    NiftiVolume

    Raises
    ------
    ImportError
        If nibabel is not installed (``pip install "mri-noiselab[nifti]"``).
    NiftiError
        If the file is missing, not NIfTI, damaged, or holds complex, RGB or
        more than 4-D data, or a zero or non-finite scaling.
    """
    nib = _nibabel()
    p = Path(path)
    if not p.is_file():
        raise NiftiError(f"{p}: no such file")
    if not is_nifti_path(p):
        raise NiftiError(f"{p}: not a NIfTI file name (expected .nii or .nii.gz)")
    try:
        img = nib.load(p)
        if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
            raise NiftiError(f"{p}: a {type(img).__name__}, not a single-file NIfTI image")
        stored = np.asanyarray(img.dataobj.get_unscaled())
    except NiftiError:
        raise
    except Exception as e:  # nibabel raises many types on damaged files
        text = str(e).strip().splitlines()
        raise NiftiError(f"{p}: cannot read as NIfTI ({text[0] if text else type(e).__name__})") from None
    if stored.dtype.kind not in "iuf" or stored.dtype.names is not None:
        raise NiftiError(f"{p}: data type {img.get_data_dtype()} is not a real scalar type (complex or RGB data)")
    while stored.ndim > 4 and stored.shape[-1] == 1:
        stored = stored[..., 0]
    if stored.ndim > 4 or stored.ndim < 2:
        raise NiftiError(f"{p}: a {stored.ndim}-D image of shape {stored.shape}; 2-D to 4-D (x, y, z, t) are supported")
    slope, inter = float(img.dataobj.slope), float(img.dataobj.inter)
    if slope == 0 or not math.isfinite(slope) or not math.isfinite(inter):
        raise NiftiError(f"{p}: scl_slope {slope} / scl_inter {inter} are not a usable scaling")
    stored = np.ascontiguousarray(stored, dtype=stored.dtype.newbyteorder("="))
    return NiftiVolume(p, img, stored, slope, inter)


def nifti_window(f_size: int | Sequence[int], shape: Sequence[int], slice_axis: int = 2) -> tuple[int, ...]:
    """Turn ``f_size`` into a window on the axes ``(x, y, z[, t])`` of a NIfTI image.

    An int ``f`` is an in-plane window: ``f`` on the two in-plane axes, 1 on
    the slice axis and on the volume axis, as the DICOM workflow does (slices
    are often thicker than pixels, and volumes are time points or directions,
    not neighbours). A sequence gives one size per axis; on a 4-D image, three
    sizes are spatial and the volume axis gets 1.
    """
    ndim = len(shape)
    if isinstance(f_size, Sequence) and not isinstance(f_size, str) and ndim == 4 and len(f_size) == 3:
        f_size = (*f_size, 1)
    if isinstance(f_size, Sequence) and not isinstance(f_size, str):
        return window_sizes(f_size, ndim)
    f = window_sizes(f_size, 1)[0]
    return tuple(1 if (d == slice_axis and ndim > 2) or d == 3 else f for d in range(ndim))


def roi_mask_xyz(rois: Sequence[Roi | str], shape: Sequence[int]) -> np.ndarray:
    """The union of ROI boxes on a NIfTI image of ``shape`` ``(x, y, z[, t])``.

    A box's rows are x (axis 0), its columns y (axis 1) and its optional slice
    range z (axis 2); a box covers every volume of a 4-D image.
    """
    shape = tuple(shape)
    if len(shape) == 2:
        return roi_mask(rois, shape)
    zxy = roi_mask(rois, (shape[2], shape[0], shape[1]))
    xyz = np.moveaxis(zxy, 0, 2)
    return np.broadcast_to(xyz[..., None], shape) if len(shape) == 4 else xyz


def _estimate(values: np.ndarray, mask: np.ndarray | Literal["auto"], estimator: str, coils: int | None) -> SigmaEstimate:
    """σ from a background, with the quality warnings kept in the estimate rather than issued."""
    if isinstance(mask, str):
        return estimate_sigma(values, estimator, coils, mask="auto", warn=False)  # type: ignore[arg-type]
    return estimate_sigma(values[mask], estimator, coils, warn=False)  # type: ignore[arg-type]


def _volume_mask(mask: np.ndarray | Literal["auto"], shape: tuple[int, ...]) -> np.ndarray | Literal["auto"]:
    if isinstance(mask, str):
        if mask != "auto":
            raise ValueError(f"mask must be a boolean array or 'auto', got {mask!r}")
        return mask
    m = np.asarray(mask, dtype=bool)
    if m.shape not in (shape, shape[:-1]):
        raise ValueError(f"mask shape {m.shape} fits neither the image {shape} nor one volume {shape[:-1]}")
    return m


def sigma_per_volume(
    image: np.ndarray,
    mask: np.ndarray | Literal["auto"] = "auto",
    estimator: str = "mle",
    coils: int | None = None,
) -> list[SigmaEstimate]:
    """Estimate σ separately for each volume of a 4-D ``(x, y, z, t)`` image.

    Parameters
    ----------
    image : numpy.ndarray
        4-D magnitude image, volumes on the last axis.
    mask : numpy.ndarray of bool or "auto"
        The background: one mask for every volume (shape ``(x, y, z)``), one
        per volume (the image's shape), or ``"auto"`` to find it in each volume
        with :func:`mri_noiselab.background.auto_background`.
    estimator : {"mle", "std", "mean"}
    coils : int

    Returns
    -------
    list of SigmaEstimate
        One per volume; pass ``[e.sigma for e in ...]`` to :func:`mri_noiselab.correct`,
        which takes one σ per volume of a 4-D image. Quality warnings are in
        each estimate's ``warnings``.

    Raises
    ------
    NoBackgroundError
        If a volume's background is empty or all zeros.
    ValueError
        For a non-4-D image, a mask of the wrong shape or bad values.
    """
    arr = np.asarray(image)
    if arr.ndim != 4:
        raise ValueError(f"sigma per volume needs a 4-D (x, y, z, t) image, got shape {arr.shape}")
    if estimator not in SIGMA_METHODS:
        raise ValueError(f"unknown sigma estimator {estimator!r}: choose one of {', '.join(SIGMA_METHODS)}")
    m = _volume_mask(mask, arr.shape)
    estimates = []
    for t in range(arr.shape[3]):
        vm = m if isinstance(m, str) or m.ndim == 3 else m[..., t]
        try:
            estimates.append(_estimate(arr[..., t], vm, estimator, coils))
        except ValueError as e:
            raise type(e)(f"volume {t}: {e}") from None
    return estimates


@dataclass
class NiftiResult:
    """The outcome of :func:`clean_nifti`.

    Attributes
    ----------
    source, output : pathlib.Path
    sigma : float or numpy.ndarray
        σ in stored units: one value, or one per volume.
    estimates : list of SigmaEstimate
        The estimates σ came from (one, or one per volume); empty when σ was given.
    window : tuple of int
        The window on ``(x, y, z[, t])``.
    method : str
    coils : int
    description : str
        What was written to the header's descrip field.
    """

    source: Path
    output: Path
    sigma: float | np.ndarray
    estimates: list[SigmaEstimate]
    window: tuple[int, ...]
    method: str
    coils: int
    description: str
    warnings: list[str] = field(default_factory=list)


def describe(method: str, sigma: float | np.ndarray, window: Sequence[int], coils: int) -> str:
    """The header descrip text (at most 79 ASCII characters): method, σ, window, coils, version."""
    s = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    sig = f"s={s[0]:.4g}" if s.size == 1 else f"s={s.min():.3g}..{s.max():.3g}/vol"
    win = "1" if method == "pointwise" else "x".join(map(str, window))
    coil = f" N={coils}" if coils > 1 else ""
    text = f"Rician bias removed: {method} {sig} f={win}{coil} {PACKAGE} {_core.__version__}"
    return text.encode("ascii", "replace")[:_DESCRIP_BYTES].decode("ascii")


def write_nifti(
    volume: NiftiVolume,
    stored: np.ndarray,
    path: str | os.PathLike[str],
    description: str,
) -> Path:
    """Write new stored values with the source's affine, header and data type, atomically.

    The output is gzip-compressed when ``path`` ends with ``.gz``. scl_slope and
    scl_inter are those of the source.

    Raises
    ------
    ValueError
        If ``stored`` does not match the source's shape and data type, or
        ``path`` is not a ``.nii`` / ``.nii.gz`` name.
    OSError
        If ``path`` is the source file, a symbolic link or a folder, or cannot be written.
    """
    target = Path(path)
    if not is_nifti_path(target):
        raise ValueError(f"{target}: the output name must end with .nii or .nii.gz")
    if target.exists() and same_file(target, volume.path):
        raise OSError(f"refusing to overwrite the input file {target}")
    stored = np.asarray(stored)
    if stored.shape != volume.shape or stored.dtype != volume.stored.dtype:
        raise ValueError(
            f"stored values {stored.dtype} {stored.shape} do not match the source {volume.stored.dtype} {volume.shape}"
        )
    nib = _nibabel()
    src = volume.image
    header = src.header.copy()
    data = stored.reshape(src.shape) if stored.shape != src.shape else stored
    out = type(src)(data, src.affine, header)
    # A scaled source keeps its scaling; nibabel then writes the values as given (no new scale factors).
    if volume.slope != 1 or volume.intercept != 0:
        out.header.set_slope_inter(volume.slope, volume.intercept)
    out.header.set_data_dtype(src.get_data_dtype())
    out.header["descrip"] = description.encode("ascii")

    def write(fh: BinaryIO) -> None:
        if target.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
                _to_stream(nib, out, gz)
        else:
            _to_stream(nib, out, fh)

    return atomic_write(target, write)


def _to_stream(nib: Any, image: Any, fh: Any) -> None:
    holder = nib.fileholders.FileHolder(fileobj=fh)
    image.to_file_map({"image": holder, "header": holder})


def volume_sigma(
    volume: NiftiVolume,
    background: np.ndarray | Literal["auto"] | Callable[[NiftiVolume], np.ndarray] | None = "auto",
    *,
    per_volume: bool = False,
    estimator: str = "mle",
    coils: int | None = None,
) -> list[SigmaEstimate]:
    """Estimate σ (stored units) of a NIfTI image from its background.

    Parameters
    ----------
    volume : NiftiVolume
    background : numpy.ndarray of bool, "auto" or callable
        A mask of the image's shape or of one volume's (applied to every
        volume), ``"auto"``, or a function of ``volume`` returning a mask.
    per_volume : bool
        One estimate per volume of a 4-D image (see :func:`sigma_per_volume`).
    estimator : {"mle", "std", "mean"}
    coils : int

    Returns
    -------
    list of SigmaEstimate
        One, or one per volume; quality warnings are in their ``warnings``.

    Raises
    ------
    NoBackgroundError
        If the background is empty or all zeros.
    ValueError
        For a mask of the wrong shape, ``per_volume`` on a non-4-D image, or bad values.
    """
    if background is None:
        raise ValueError("give a background (mask or 'auto') or a known sigma")
    magnitude = volume.magnitude()
    mask = background(volume) if callable(background) else background
    four_d = volume.stored.ndim == 4
    if per_volume:
        if not four_d:
            raise ValueError(f"{volume.path}: sigma per volume needs a 4-D image, this one has shape {volume.shape}")
        return sigma_per_volume(magnitude, mask, estimator, coils)
    if four_d:
        mask = _volume_mask(mask, volume.shape)
    if not isinstance(mask, str):
        mask = np.asarray(mask, dtype=bool)
        if four_d and mask.ndim == 3:
            mask = np.broadcast_to(mask[..., None], volume.shape)
        if mask.shape != volume.shape:
            raise ValueError(f"background mask shape {mask.shape} does not match the image shape {volume.shape}")
    return [_estimate(magnitude, mask, estimator, coils)]


def _qc_png(
    magnitude: np.ndarray,
    corrected: np.ndarray,
    estimates: list[SigmaEstimate],
    sigma: float | np.ndarray,
    coils: int,
) -> bytes:
    from mri_noiselab.qc import qc_png

    def slices(a: np.ndarray) -> np.ndarray:
        # The QC figure shows (slices, rows, cols) stacks: one volume, z first.
        a = a[..., 0] if a.ndim == 4 else a
        return np.moveaxis(a, 2, 0) if a.ndim == 3 else a

    first = estimates[0] if estimates else None
    mask = first.mask if first is not None else None
    s = float(np.atleast_1d(sigma)[0])
    return qc_png(slices(magnitude), slices(corrected), None if mask is None else slices(mask), s, coils=coils)


def clean_nifti(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    background: np.ndarray | Literal["auto"] | Callable[[NiftiVolume], np.ndarray] | None = "auto",
    sigma: float | Sequence[float] | np.ndarray | None = None,
    per_volume: bool = False,
    estimator: str = "mle",
    method: str = "lmmse",
    f_size: int | Sequence[int] = 9,
    coils: int | None = None,
    num_threads: int | None = None,
    qc: str | os.PathLike[str] | None = None,
) -> NiftiResult:
    """Estimate σ (unless given), remove the noise bias of a NIfTI image and write it.

    Parameters
    ----------
    source : path-like
        A ``.nii`` or ``.nii.gz`` magnitude image, ``(x, y, z[, t])``.
    destination : path-like
        The output ``.nii`` or ``.nii.gz``; never the source.
    background : numpy.ndarray of bool, "auto" or callable, optional
        Noise-only voxels: a mask of the image's shape (or of one volume's),
        ``"auto"`` (default) to find them, or a function of the
        :class:`NiftiVolume` returning a mask. Ignored when ``sigma`` is given.
    sigma : float or sequence of float, optional
        Known σ in stored units, one value or one per volume; skips estimation.
    per_volume : bool
        Estimate one σ per volume of a 4-D image (noise that differs between
        volumes, e.g. diffusion directions or a changing receiver gain).
    estimator : {"mle", "std", "mean"}
    method : {"moments", "pointwise", "lmmse"}
    f_size : int or sequence of int
        See :func:`nifti_window`: an int is an in-plane window, never mixing
        slices or volumes.
    coils : int
    num_threads : int, optional
    qc : path-like, optional
        A QC figure (PNG, needs matplotlib) of the first volume, slices along z.

    Returns
    -------
    NiftiResult

    Raises
    ------
    ImportError
        Without nibabel.
    NiftiError, NoBackgroundError, ValueError, OSError
        For an unusable file, a background without noise, voxels below zero
        signal, bad arguments, or an output that is the input. Nothing is
        written then.
    """
    src, dst = Path(source), Path(destination)
    if not is_nifti_path(dst):
        raise ValueError(f"{dst}: the output name must end with .nii or .nii.gz")
    if dst.exists() and same_file(dst, src):
        raise ValueError(f"the output {dst} is the input file: choose another output (inputs are never overwritten)")
    volume = read_nifti(src)
    window = nifti_window(f_size, volume.shape, volume.slice_axis)
    magnitude = volume.magnitude()
    if np.any(magnitude < 0):
        raise ValueError(
            f"{src}: voxel values below zero signal (after scl_inter): not a magnitude image, or an "
            "intercept that does not mark zero signal"
        )
    estimates: list[SigmaEstimate] = []
    if sigma is not None:
        value: float | np.ndarray = np.asarray(sigma, dtype=np.float64)
        if value.ndim == 0:
            value = float(value)
        elif volume.stored.ndim != 4 or value.shape != (volume.shape[3],):
            raise ValueError(f"{src}: {value.size} sigma values given, but the image has shape {volume.shape}: "
                             "give one σ, or one per volume of a 4-D image")
    else:
        estimates = volume_sigma(volume, background, per_volume=per_volume, estimator=estimator, coils=coils)
        value = np.array([e.sigma for e in estimates]) if per_volume else estimates[0].sigma
    # The coil count the background fitted (coils=None), else the one given (1 with a given σ).
    coils = estimates[0].coils if estimates else (coils or 1)
    corrected = correct(magnitude, value, f_size=window, method=method, coils=coils, num_threads=num_threads)  # type: ignore[arg-type]
    text = describe(method, value, window, coils)
    # Everything that can fail comes before the first write: the figure is drawn and every
    # target checked (a QC path may not be the input or the output), so a failure leaves nothing.
    png = _qc_png(magnitude, corrected, estimates, value, coils) if qc is not None else None
    check_targets([dst], [Path(qc)] if qc is not None else [], [src])
    write_nifti(volume, volume.to_stored(corrected), dst, text)
    if qc is not None and png is not None:
        atomic_write(qc, lambda fh: fh.write(png))
    notes = [f"volume {t}: {w}" if len(estimates) > 1 else w for t, e in enumerate(estimates) for w in e.warnings]
    return NiftiResult(src, dst, value, estimates, window, method, coils, text, notes)


@dataclass
class NiftiBatchReport:
    """What :func:`clean_nifti_source` did: the images written and the files that failed."""

    results: list[NiftiResult]
    failures: list[Failure]

    @property
    def written(self) -> list[Path]:
        return [r.output for r in self.results]


def clean_nifti_source(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[Path], None] | None = None,
    **options: Any,
) -> NiftiBatchReport:
    """Clean a NIfTI file, or every NIfTI file under a folder, optionally on a Dask cluster.

    Parameters
    ----------
    source : path-like
        A ``.nii``/``.nii.gz`` file, or a folder searched recursively.
    destination : path-like
        The output file, or folder (same relative names as the inputs; see
        :func:`mri_noiselab.dicom.output_paths`).
    workers, scheduler
        Run the files in parallel on a local or existing Dask cluster; see
        :func:`mri_noiselab.dask.run_batch`. Default: one after the other here.
    on_start : callable, optional
        Called once with the number of files found.
    on_file : callable, optional
        Called with each input path once it is written or has failed.
    **options
        Passed to :func:`clean_nifti` (``background``, ``sigma``,
        ``per_volume``, ``estimator``, ``method``, ``f_size``, ``coils``,
        ``num_threads``, ``qc``: a folder gets one figure per file, named
        with ``_<n>``); a ``background`` callable must be picklable to run on
        a cluster.

    Returns
    -------
    NiftiBatchReport

    Raises
    ------
    NiftiError, NoBackgroundError, ValueError, OSError
        For a file source, or when every file of a folder fails (the first
        error); otherwise failures are collected and every good file is written.
    """
    from mri_noiselab.dask import run_batch

    src, dst = Path(source), Path(destination)
    if not src.is_dir():
        if not src.exists():
            raise NiftiError(f"{src}: no such file or folder")
        target = dst / src.name if dst.is_dir() or str(destination).endswith((os.sep, "/")) else dst
        if on_start is not None:
            on_start(1)
        result = clean_nifti(src, target, **options)
        if on_file is not None:
            on_file(src)
        return NiftiBatchReport([result], [])
    if dst.resolve() == src.resolve():
        raise ValueError(f"the output folder {dst} is the input folder: choose another one")
    inputs = nifti_files(src, exclude=dst)
    if not inputs:
        raise NiftiError(f"{src}: no .nii or .nii.gz file found")
    mapping = output_paths(src, dst, inputs)
    qc = options.pop("qc", None)
    # One QC figure per file: _<n> is added to the name, as for DICOM stacks.
    qc_paths = {p: Path(qc).with_name(f"{Path(qc).stem}_{i + 1}{Path(qc).suffix}") for i, p in enumerate(inputs)} if qc else {}
    if on_start is not None:
        on_start(len(inputs))
    outcome = run_batch(
        functools.partial(_clean_mapped, mapping=mapping, qc_paths=qc_paths, options=options),
        inputs,
        workers=workers,
        scheduler=scheduler,
        on_done=on_file,
    )
    if not outcome.results:
        raise outcome.errors[0]
    return NiftiBatchReport([r for _, r in outcome.results], outcome.failures)


def _clean_mapped(path: Path, *, mapping: dict[Path, Path], qc_paths: dict[Path, Path], options: dict[str, Any]) -> NiftiResult:
    return clean_nifti(path, mapping[path], qc=qc_paths.get(path), **options)


__all__ = [
    "NIFTI_INSTALL",
    "NiftiBatchReport",
    "clean_nifti_source",
    "NiftiError",
    "NiftiResult",
    "NiftiVolume",
    "clean_nifti",
    "describe",
    "is_nifti_path",
    "nifti_files",
    "nifti_window",
    "read_nifti",
    "roi_mask_xyz",
    "sigma_per_volume",
    "volume_sigma",
    "write_nifti",
]
