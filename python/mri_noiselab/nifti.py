"""NIfTI-1/NIfTI-2 input and output (optional ``nifti`` extra: nibabel).

Voxel values are handled as the DICOM workflow handles them: the correction
works on the values stored in the file when ``scl_inter`` is 0, so that
``scl_slope`` stays valid; a non-zero intercept is removed first (zero signal
must be zero for the noise model) and restored after. Integer outputs are
rounded to nearest and clipped to the range of the file's data type.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mri_noiselab._args import FSize, window
from mri_noiselab._atomic import AtomicBatch, atomic_write, permission_bits, same_file
from mri_noiselab._files import Unreadable, image_size_problem, size_text, walk_files
from mri_noiselab.derivation import NIFTI_PREFIX, PACKAGE, difference
from mri_noiselab.errors import NIFTI_INSTALL, NiftiError, first_line
from mri_noiselab.roi import Roi, roi_mask

NIFTI_SUFFIXES = (".nii", ".nii.gz")
# nibabel's own default: level 1 compresses MR volumes nearly as well as 6, several times faster.
_GZIP_LEVEL = 1
_CHUNK = 1 << 20


def _nibabel() -> Any:
    try:
        import nibabel
    except ImportError:
        raise ImportError(f"reading and writing NIfTI needs nibabel: {NIFTI_INSTALL}") from None
    return nibabel


def is_nifti_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name ends with ``.nii`` or ``.nii.gz`` (any case)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def check_nifti_name(path: Path) -> Path:
    """``path``, when its name ends with ``.nii`` or ``.nii.gz``; else a ValueError."""
    if not is_nifti_path(path):
        raise ValueError(f"{path}: the output name must end with .nii or .nii.gz")
    return path


def nifti_files(folder: str | os.PathLike[str], *, exclude: str | os.PathLike[str] | None = None) -> list[Path]:
    """The ``.nii`` and ``.nii.gz`` files under ``folder`` (recursive, sorted, hidden files skipped).

    Parameters
    ----------
    folder : path-like
    exclude : path-like, optional
        A sub-folder to skip (the output folder, when it lies inside the input).
    """
    return find_nifti(folder, exclude=exclude)[0]


def find_nifti(
    folder: str | os.PathLike[str], *, exclude: str | os.PathLike[str] | None = None
) -> tuple[list[Path], list[Unreadable]]:
    """:func:`nifti_files`, and the folders that could not be read (see :func:`mri_noiselab._files.walk_files`)."""
    files, unreadable = walk_files(folder, exclude=exclude)
    return [p for p in files if is_nifti_path(p)], unreadable


@dataclass
class NiftiVolume:
    """A NIfTI image read for correction.

    Meets :class:`mri_noiselab.clean.Volume`: rows, columns and slices are the
    array axes 0, 1 and 2 (x, y, z), the slice axis is the header's (z when
    unset), and a 4-D image holds its volumes on axis 3.

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
    def zooms(self) -> tuple[float, ...]:
        """Voxel sizes along the array axes (the header's pixdim)."""
        return tuple(float(z) for z in self.image.header.get_zooms())

    @property
    def axis_codes(self) -> tuple[str, ...]:
        """Where each spatial array axis points, as nibabel's codes ("R", "A", "S", ...) from the affine."""
        return tuple(str(c) for c in _nibabel().aff2axcodes(self.image.affine))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.stored.shape)

    @property
    def paths(self) -> list[Path]:
        return [self.path]

    @property
    def group(self) -> str:
        """Each file gets its own σ: its path."""
        return str(self.path)

    @property
    def unit(self) -> float:
        """The real-world value of one unit of :meth:`magnitude`: scl_slope."""
        return self.slope

    @property
    def axes(self) -> tuple[int, ...]:
        """The array axes of rows, columns and slices: x, y and z."""
        return (0, 1, 2) if self.stored.ndim > 2 else (0, 1)

    @property
    def slice_axis(self) -> int | None:
        """The slice axis from the header's dim_info, axis 2 (z) when not set; None for a 2-D image."""
        if self.stored.ndim < 3:
            return None
        dim = self.image.header.get_dim_info()[2]
        return int(dim) if dim is not None and dim < 3 else 2

    @property
    def volume_axis(self) -> int | None:
        """Axis 3 (t) of a 4-D image."""
        return 3 if self.stored.ndim == 4 else None

    mosaic = 1

    @property
    def label(self) -> str:
        """The file name and the image's shape, for messages."""
        return f"{self.path.name} ({'x'.join(map(str, self.shape))})"

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
            out = self.magnitude_of(self.stored)
            out.flags.writeable = False
            self._magnitude = out
        return self._magnitude

    def magnitude_of(self, stored: np.ndarray) -> np.ndarray:
        """:meth:`magnitude` of other stored values of this image (a corrected copy of them)."""
        out = stored.astype(np.float32 if self._single else np.float64)
        if self.intercept != 0:
            out += self.intercept / self.slope
        return out

    @property
    def _single(self) -> bool:
        """The magnitude is float32: the data type holds in it exactly and there is no intercept."""
        exact32 = self.stored.dtype.itemsize <= 2 or self.stored.dtype == np.float32
        return exact32 and self.intercept == 0

    def whole_rescale(self) -> dict[str, Any]:
        """How :meth:`magnitude` and :meth:`to_stored` convert, as the arguments of
        :func:`mri_noiselab.stored.correct_stored` (which gives the same bits)."""
        if self._single:
            return {"single": True}
        shift = self.intercept / self.slope
        return {"offset": shift, "out_offset": shift} if self.intercept != 0 else {}

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
        check_nifti_data(img, p)
        stored = np.asanyarray(img.dataobj.get_unscaled())
    except NiftiError:
        raise
    except Exception as e:  # nibabel raises many types on damaged files
        raise NiftiError(f"{p}: cannot read as NIfTI ({first_line(e)})") from None
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


def check_nifti_data(image: Any, path: Path) -> None:
    """Refuse an image whose header declares more data than the limit or than the file holds, before reading it.

    A ``.nii.gz`` is decompressed once in chunks to count its bytes (nothing is
    kept), which also checks its CRC: a damaged file is refused, not read with
    wrong values.

    Raises
    ------
    NiftiError
    """
    header = image.header
    declared = math.prod(int(n) for n in header.get_data_shape()) * header.get_data_dtype().itemsize
    problem = image_size_problem(declared)
    if problem is not None:
        raise NiftiError(f"{path}: declares {problem}")
    needed = int(header.get_data_offset()) + declared
    if path.name.lower().endswith(".gz"):
        held = 0
        try:
            with gzip.open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    held += len(chunk)
                    if held > needed + _CHUNK:
                        raise NiftiError(f"{path}: holds more data than its header declares ({size_text(declared)})")
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile (a CRC that fails) is an OSError
            raise NiftiError(f"{path}: damaged gzip data ({first_line(e)})") from None
    else:
        held = path.stat().st_size
    if held < needed:
        raise NiftiError(
            f"{path}: the header declares {size_text(needed)} but the file holds {size_text(held)}: truncated, or a damaged header"
        )


def nifti_window(f_size: FSize | None, shape: Sequence[int], slice_axis: int = 2, coils: int = 1) -> tuple[int, ...]:
    """Turn ``f_size`` into a window on the axes ``(x, y, z[, t])`` of a NIfTI image.

    An int ``f`` is ``f`` on the two in-plane axes and 1 on the slice axis and
    the volume axis, as for DICOM (slices are often thicker than pixels, and
    volumes are time points or directions, not neighbours). A sequence gives
    x, y[, z]; the volume axis gets 1. None is the default for ``coils`` (see
    :func:`mri_noiselab.correct`).
    """
    ndim = len(shape)
    volumes = 3 if ndim == 4 else None
    slices = slice_axis if ndim > 2 else None
    return window(f_size, shape, volume_axis=volumes, slice_axis=slices, axes=(0, 1, 2)[: min(ndim, 3)], coils=coils)


def roi_mask_xyz(rois: Sequence[Roi | str], shape: Sequence[int]) -> np.ndarray:
    """The union of ROI boxes on a NIfTI image of ``shape`` ``(x, y, z[, t])``.

    A box's rows are x (axis 0), its columns y (axis 1) and its optional slice
    range z (axis 2); a box covers every volume of a 4-D image.
    """
    return roi_mask(rois, shape, axes=(0, 1, 2)[: min(len(shape), 3)])


def write_nifti(
    volume: NiftiVolume,
    stored: np.ndarray,
    path: str | os.PathLike[str],
    description: str,
    *,
    batch: AtomicBatch | None = None,
) -> Path:
    """Write new stored values with the source's affine, header and data type, atomically.

    The output is gzip-compressed when ``path`` ends with ``.gz``. scl_slope and
    scl_inter are those of the source; its permission bits (and its folder's, for
    new folders) bound the output's. With ``batch`` the file appears when the
    batch commits.

    Raises
    ------
    ValueError
        If ``stored`` does not match the source's shape and data type, or
        ``path`` is not a ``.nii`` / ``.nii.gz`` name.
    OSError
        If ``path`` is the source file, a symbolic link or a folder, or cannot be written.
    """
    target = check_nifti_name(Path(path))
    if target.exists() and same_file(target, volume.path):
        raise OSError(f"refusing to overwrite the input file {target}")
    stored = np.asarray(stored)
    if stored.shape != volume.shape or stored.dtype != volume.stored.dtype:
        raise ValueError(
            f"stored values {stored.dtype} {stored.shape} do not match the source {volume.stored.dtype} {volume.shape}"
        )
    src = volume.image
    header = src.header.copy()
    data = stored.reshape(src.shape) if stored.shape != src.shape else stored
    out = type(src)(data, src.affine, header)
    # A scaled source keeps its scaling; nibabel then writes the values as given (no new scale factors).
    if volume.slope != 1 or volume.intercept != 0:
        out.header.set_slope_inter(volume.slope, volume.intercept)
    out.header.set_data_dtype(src.get_data_dtype())
    out.header["descrip"] = description.encode("ascii")
    return _write_image(volume, out, target, batch)


def _write_image(volume: NiftiVolume, image: Any, target: Path, batch: AtomicBatch | None) -> Path:
    """Write ``image`` to ``target`` (gzip-compressed for ``.gz``), no more open than ``volume``'s file."""
    nib = _nibabel()

    def write(fh: BinaryIO) -> None:
        if target.name.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=_GZIP_LEVEL, mtime=0) as gz:
                _to_stream(nib, image, gz)
        else:
            _to_stream(nib, image, fh)

    mode, folder_mode = permission_bits(volume.path), permission_bits(volume.path.parent)
    if batch is not None:
        return batch.write(target, write, mode=mode, folder_mode=folder_mode)
    return atomic_write(target, write, mode=mode, folder_mode=folder_mode)


def _to_stream(nib: Any, image: Any, fh: Any) -> None:
    holder = nib.fileholders.FileHolder(fileobj=fh)
    image.to_file_map({"image": holder, "header": holder})


def sigma_map_image(volume: NiftiVolume, sigma: float | Sequence[float]) -> np.ndarray:
    """The σ a correction used at each voxel, as a float32 map of the image's shape, in real-world units (σ × scl_slope).

    One σ fills the map; one σ per volume fills each volume of a 4-D image with
    its own: each voxel of the output has its σ at the same index, as a noise map
    of MRtrix ``dwidenoise -noise`` has (which varies in space, this one does not).

    Raises
    ------
    ValueError
        If the number of σ values is neither 1 nor the image's number of volumes.
    """
    values = np.atleast_1d(np.asarray(sigma, dtype=np.float64)) * volume.slope
    if values.size != 1 and (volume.volume_axis is None or values.size != volume.shape[volume.volume_axis]):
        raise ValueError(f"{values.size} sigma values for {volume.label}: give one, or one per volume of a 4-D image")
    return np.array(np.broadcast_to(values.astype(np.float32), volume.shape))


def write_sigma_map(
    volume: NiftiVolume,
    sigma: float | Sequence[float],
    path: str | os.PathLike[str],
    description: str,
    *,
    batch: AtomicBatch | None = None,
) -> Path:
    """Write :func:`sigma_map_image` with the source's affine and grid, atomically (as :func:`write_nifti`).

    The header is the source's, with float32 data, no scaling, the NIfTI intent
    "estimate" named ``sigma``, and ``description`` (the image's derivation) in
    descrip: the map is recognised as this package's output, never as an input.
    """
    target = check_nifti_name(Path(path))
    if target.exists() and same_file(target, volume.path):
        raise OSError(f"refusing to overwrite the input file {target}")
    src = volume.image
    data = sigma_map_image(volume, sigma)
    out = type(src)(data, src.affine, src.header.copy())
    out.header.set_data_dtype(np.float32)
    out.header.set_slope_inter(1.0, 0.0)
    out.header.set_intent("estimate", (), name="sigma")
    out.header["descrip"] = description.encode("ascii")
    return _write_image(volume, out, target, batch)


@dataclass(frozen=True)
class NiftiMask:
    """A background mask in a NIfTI file on the images' grid: its non-zero voxels hold noise only.

    Called with a :class:`NiftiVolume`, it returns the mask for that image (a
    function of the volume, as :func:`mri_noiselab.pipeline.clean_source` takes a
    background; picklable, so that a worker reads the file itself). A 3-D mask
    serves every volume of a 4-D image.
    """

    path: Path

    def check(self) -> NiftiMask:
        """Read the mask once, to refuse a bad file before a run starts; returns itself.

        Raises
        ------
        NiftiError
            If the file is no readable NIfTI image of 2 to 4 dimensions, or holds no non-zero voxel.
        """
        if not self._read()[0].any():
            raise NiftiError(f"{self.path}: the mask holds no non-zero voxel (non-zero marks the background)")
        return self

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        mask = read_nifti(self.path)
        return mask.magnitude() != 0, np.asarray(mask.image.affine)

    def __call__(self, volume: object) -> np.ndarray:
        if not isinstance(volume, NiftiVolume):
            label = getattr(volume, "label", type(volume).__name__)
            raise ValueError(f"the mask {self.path} is a NIfTI mask, for NIfTI images: {label} is not one (use --roi)")
        mask, affine = self._read()
        if mask.shape not in (volume.shape, volume.shape[:3]):
            raise ValueError(f"the mask {self.path} has shape {mask.shape} but {volume.label} has shape {volume.shape}: "
                             "give a mask on the image's grid, (x, y, z) or its whole shape")
        # The same shape on another grid (a mask drawn on another scan) would mark the wrong voxels.
        if not np.allclose(affine, volume.image.affine, rtol=0, atol=1e-3):
            raise ValueError(f"the mask {self.path} lies on another grid than {volume.label} (their affines differ): "
                             "resample it to the image first")
        return mask


def is_own_output(path: str | os.PathLike[str]) -> bool:
    """True when the NIfTI file at ``path`` was written by this package (its descrip says so)."""
    try:
        image = _nibabel().load(path)
    except Exception as e:  # nibabel raises many types on damaged files
        raise NiftiError(f"{path}: exists but cannot be read ({first_line(e)}): remove it to rewrite it") from None
    return descrip(image).startswith(NIFTI_PREFIX)


def verify_output(path: Path, description: str) -> None:
    """Check an output that an earlier run left, before keeping it: whole, and what this run would write.

    Raises
    ------
    NiftiError
        If it cannot be read to its last voxel (a truncated file, a gzip CRC that
        fails), was not written by this package, or records another derivation
        than ``description`` (other options, another sigma or version).
    """
    try:
        recorded = descrip(read_nifti(path).image)
    except NiftiError as e:
        reason = str(e).removeprefix(f"{path}: ")
        raise NiftiError(f"{path}: exists but is damaged or incomplete ({reason}): remove it, or give --force to replace it") from None
    if not recorded.startswith(NIFTI_PREFIX):
        raise NiftiError(f"{path}: exists but was not written by {PACKAGE}: remove it, or give --force to replace it")
    if recorded != description:
        raise NiftiError(
            f"{path}: exists from a run with other options ({difference(recorded, description)}): "
            "resume with the options of that run, or give --force to replace it"
        )


def descrip(image: Any) -> str:
    """The header's descrip text: where this package records what it did (see :class:`mri_noiselab.derivation.Derivation`)."""
    return bytes(image.header["descrip"].item()).decode("ascii", "replace")


__all__ = [
    "NIFTI_INSTALL",
    "NIFTI_SUFFIXES",
    "NiftiError",
    "NiftiMask",
    "NiftiVolume",
    "check_nifti_data",
    "check_nifti_name",
    "descrip",
    "find_nifti",
    "is_nifti_path",
    "is_own_output",
    "nifti_files",
    "nifti_window",
    "read_nifti",
    "roi_mask_xyz",
    "sigma_map_image",
    "verify_output",
    "write_nifti",
    "write_sigma_map",
]
