"""Cleaning volumes, whatever their file format: the options of a run, sigma per group, the correction.

A :class:`Volume` is what a reader hands over: a DICOM stack
(:class:`mri_noiselab.dicom.DicomStack`) or a NIfTI image
(:class:`mri_noiselab.nifti.NiftiVolume`). Volumes of one group (the stacks of a DICOM
series, or one NIfTI file) share one sigma, estimated from their pooled backgrounds,
with a warning when the volumes of a 4-D image differ in noise, unless ``per_volume``
asks for one sigma per volume (a stack, or one volume of a 4-D image; a 3-D image keeps
its one). :func:`clean_group` estimates sigma and corrects a group all or nothing;
writing is the pipeline's (:mod:`mri_noiselab.pipeline`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from mri_noiselab._args import Estimator, window
from mri_noiselab.background import Background, search_tiles
from mri_noiselab.correction import correct
from mri_noiselab.options import CleanFields, CleanOptions, options_of
from mri_noiselab.blocks import SliceBlocks, WholeStored, any_negative, below_zero, blocks, every_kth, halo_exact
from mri_noiselab.blocks import masked_values, stored_block
from mri_noiselab.derivation import Derivation
from mri_noiselab.errors import NoBackgroundError
from mri_noiselab.noise import SigmaEstimate, estimate_sigma
from mri_noiselab.quality import stack_spread, volume_spread
from mri_noiselab.stored import correct_stored

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Volume(Protocol):
    """What the cleaning needs of an image read from files: met by DICOM stacks and NIfTI images.

    ``magnitude()`` is zero where the signal is zero; ``unit`` is the real-world
    value of one of its units, so that volumes of one group can pool their
    backgrounds. ``axes`` are the array axes of rows, columns (and slices):
    the order of ``--roi`` and of an ``f_size`` tuple.
    """

    @property
    def paths(self) -> Sequence[Path]: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def group(self) -> str: ...
    @property
    def unit(self) -> float: ...
    @property
    def axes(self) -> tuple[int, ...]: ...
    @property
    def slice_axis(self) -> int | None: ...
    @property
    def volume_axis(self) -> int | None: ...
    @property
    def mosaic(self) -> int: ...
    @property
    def label(self) -> str: ...
    def magnitude(self) -> np.ndarray: ...
    def to_stored(self, magnitude: np.ndarray) -> np.ndarray: ...


SIGMA_SAMPLE = 1 << 22
"""The most background values of one volume σ is estimated from: beyond, every k-th, k the
smallest step that keeps at most this many. The estimate's relative standard error is then
below 0.03% for one coil (1 / (2 sqrt(n))), and its memory does not grow with the series."""

BackgroundFunction = Callable[[Volume], "np.ndarray | Background"]
"""Returns a volume's background: a boolean mask (a ROI) or an automatic :class:`Background`."""
BackgroundSpec = BackgroundFunction | np.ndarray | Literal["auto"] | None
"""A background: a function of the volume, one mask, or ``"auto"`` (None: automatic unless sigma is given)."""


@dataclass
class CleanResult:
    """One volume, cleaned.

    Attributes
    ----------
    stored : numpy.ndarray or None
        Corrected stored values in the source's data type, ready to write; None
        when they are computed a block of slices at a time (``stored_block``).
    corrected : numpy.ndarray or None
        The corrected magnitude (float, before rounding); None where the kernel
        went from stored values to stored values (DICOM stacks, NIfTI images).
    estimates : tuple of SigmaEstimate
        What sigma came from: the group's estimate, one per volume with
        ``per_volume``, none when sigma was given. In the units of the group's
        first volume; ``derivation.sigma`` is this volume's.
    derivation : Derivation
    warnings : list of str
    mask : numpy.ndarray of bool or None
        The background sigma was estimated from (or the ROI given), for display.
    stored_block : callable or None
        With ``stored`` None (``clean_group(stream=True)``): ``stored_block(block,
        threads)`` corrects slices ``block`` (a slice of the outermost axis) and
        returns their stored values, with ``threads`` kernel threads (None: the
        options' own).

    Examples
    --------
    >>> import tempfile
    >>> from mri_noiselab.dicom import read_file, synthetic_mr_image, write_dataset
    >>> rng = np.random.default_rng(0)
    >>> truth = np.zeros((96, 96))
    >>> truth[24:72, 24:72] = 200.0  # an object in air, sigma 10
    >>> image = np.rint(np.hypot(truth + rng.normal(0, 10, truth.shape), rng.normal(0, 10, truth.shape)))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     stack = read_file(write_dataset(synthetic_mr_image(image.astype(np.uint16)), Path(tmp) / "a.dcm"))
    ...     result = clean_volume(stack, f_size=5)  # sigma from the automatic background
    >>> result.stored.dtype, result.derivation.f_size, round(result.sigma.sigma, 1), result.warnings
    (dtype('uint16'), (1, 5, 5), 10.0, [])
    """

    stored: np.ndarray | None
    corrected: np.ndarray | None
    estimates: tuple[SigmaEstimate, ...]
    derivation: Derivation
    warnings: list[str]
    mask: np.ndarray | None = field(default=None, repr=False)
    stored_block: Callable[[slice, int | None], np.ndarray] | None = field(default=None, repr=False)

    @property
    def sigma(self) -> SigmaEstimate | None:
        """The (first) estimate, or None when sigma was given."""
        return self.estimates[0] if self.estimates else None


@dataclass
class SigmaGroup:
    """One sigma and the volumes it holds for: a group's pooled estimate, or one volume's.

    Attributes
    ----------
    volumes : list of Volume
    estimate : SigmaEstimate
        In the units of ``volumes[0].magnitude()``; see :meth:`sigma_of`.
    warnings : list of str
        The estimate's warnings (an automatic background's own), and the
        volumes in which no background was found.
    index : int or None
        With σ per volume of a 4-D image: the volume (along its volume axis).
    """

    volumes: list[Volume]
    estimate: SigmaEstimate
    warnings: list[str]
    index: int | None = None

    @property
    def paths(self) -> list[Path]:
        """Every file of the volumes, in order."""
        return [p for v in self.volumes for p in v.paths]

    @property
    def label(self) -> str:
        """The first file's name and the group's extent, for messages: never a tag value."""
        if len(self.volumes) > 1:
            return f"{self.paths[0].name} (+{len(self.paths) - 1} files, {len(self.volumes)} stacks)"
        return _volume_label(self.volumes[0], self.index)

    def sigma_of(self, volume: Volume) -> float:
        """sigma in the units of ``volume.magnitude()``: the same noise on that volume's unit."""
        return self.estimate.sigma * self.volumes[0].unit / volume.unit


def _volume_label(volume: Volume, index: int | None) -> str:
    """A volume's label, naming one of its volumes (along the volume axis) when ``index`` is given."""
    return volume.label if index is None else f"{volume.label[:-1]}, volume {index})"


def _name(volume: Volume | _Part) -> str:
    more = f" (+{len(volume.paths) - 1} files)" if len(volume.paths) > 1 else ""
    return f"{volume.paths[0].name}{more}"


def find_volume_background(volume: Volume, coils: int | None = None) -> Background:
    """:func:`mri_noiselab.find_background` on a volume; a mosaic's tiles searched as slices.

    A Siemens mosaic packs a volume's slices into one image as a grid of tiles; the
    search needs the slices as slices (noise surrounds each head, windows must not
    straddle two tiles), so it runs on the tiles and its mask is put back in place.

    Raises
    ------
    NoBackgroundError
        When the volume has no pure-noise background (the reason is in the message).
    """
    return search_tiles(_search_input(volume), volume.mosaic, volume.volume_axis, coils)


def _search_input(volume: Volume | _Part) -> np.ndarray:
    """The magnitude the background search reads: exact float32 where the volume gives it (half the
    memory, the same search: the kernel sums in double)."""
    search = getattr(volume, "search_magnitude", None)
    return np.asarray(search() if callable(search) else volume.magnitude())


def background_sigma(volume: Volume, mask: npt.ArrayLike, estimator: Estimator = "mle", coils: int | None = 1) -> SigmaEstimate:
    """sigma, in the units of ``volume.magnitude()``, from a background mask of the volume.

    ``coils=None`` fits the coil count to the background values. The quality
    report (signal in the ROI, zero padding, ...) is in the estimate's
    ``warnings``; no RoiWarning is issued.

    Raises
    ------
    NoBackgroundError
        If the mask is empty or every value in it is exactly zero: sigma must
        then be given, never guessed.
    ValueError
        For a mask of the wrong shape or bad values.
    """
    return estimate_sigma(_values(volume, mask), estimator, coils, warn=False)


def _values(volume: Volume | _Part, mask: npt.ArrayLike) -> np.ndarray:
    """The background values σ is estimated from: every k-th beyond SIGMA_SAMPLE (a bounded memory)."""
    m = np.asarray(mask)
    if m.shape != volume.shape:
        raise ValueError(f"background mask shape {m.shape} does not match the image shape {volume.shape}")
    values = masked_values(volume, m.astype(bool, copy=False), SIGMA_SAMPLE)  # a broadcast ROI stays a view
    if values.size and values.min() < 0:  # a streamed stack is not checked whole before its sigma
        raise below_zero(_name(volume))
    return values


def _sample(volume: Volume | _Part, found: _Found) -> np.ndarray:
    """The values sigma is estimated from: the search's, or :func:`_values` of the mask."""
    assert found.mask is not None
    return _values(volume, found.mask) if found.values is None else found.values


def _full_mask(volume: Volume, mask: npt.ArrayLike) -> np.ndarray:
    """A mask of the volume's shape: as given, or one volume's mask repeated along the volume axis."""
    m = np.asarray(mask).astype(bool, copy=False)  # a broadcast ROI stays a view
    axis = volume.volume_axis
    if m.shape != volume.shape and axis is not None and m.shape == volume.shape[:axis] + volume.shape[axis + 1 :]:
        m = np.broadcast_to(np.expand_dims(m, axis), volume.shape)
    if m.shape != volume.shape:
        raise ValueError(f"background mask shape {m.shape} does not match the image shape {volume.shape}")
    return m


@dataclass
class _Part:
    """One volume of an image with a volume axis, for sigma per volume: its own background and sigma."""

    whole: Volume
    index: int

    @property
    def paths(self) -> Sequence[Path]:
        return self.whole.paths

    @property
    def shape(self) -> tuple[int, ...]:
        axis = self._axis()
        return self.whole.shape[:axis] + self.whole.shape[axis + 1 :]

    @property
    def unit(self) -> float:
        return self.whole.unit

    mosaic = 1
    volume_axis = None

    @property
    def label(self) -> str:
        return _volume_label(self.whole, self.index)

    def _axis(self) -> int:
        axis = self.whole.volume_axis
        assert axis is not None  # parts are made of images with a volume axis only
        return axis

    def magnitude(self) -> np.ndarray:
        return np.asarray(np.take(self.whole.magnitude(), self.index, axis=self._axis()))

    def mask_of(self, mask: np.ndarray) -> np.ndarray:
        """This volume's part of a mask of the whole image."""
        return np.asarray(np.take(mask, self.index, axis=self._axis()))


@dataclass
class _Found:
    """A volume's background: the mask (None: none found, or sigma given), its notes, and whether it was searched."""

    mask: np.ndarray | None
    notes: list[str]
    automatic: bool
    values: np.ndarray | None = field(default=None, repr=False)  # sigma's sample, when the search had it at hand


def _background(volume: Volume | _Part, background: BackgroundSpec, coils: int | None) -> _Found:
    """The background of a volume, from what the caller gave (a part is searched on its own)."""
    if isinstance(background, str) or background is None:
        if background not in (None, "auto"):
            raise ValueError(f"background must be a mask, a function of the volume, 'auto' or None, got {background!r}")
        magnitude = _search_input(volume)
        found = search_tiles(magnitude, volume.mosaic, volume.volume_axis, coils)
        sample = every_kth(magnitude[found.mask], SIGMA_SAMPLE)  # _values's, without reading the files again
        return _Found(found.mask, list(found.warnings), True, sample.astype(np.float64, copy=False))
    if isinstance(volume, _Part):
        whole = _background(volume.whole, background, coils)
        return _Found(None if whole.mask is None else volume.mask_of(whole.mask), whole.notes, whole.automatic)
    given = background(volume) if callable(background) else background
    if isinstance(given, Background):
        return _Found(_full_mask(volume, given.mask), list(given.warnings), True)
    return _Found(_full_mask(volume, given), [], False)


def _backgrounds(
    volumes: Sequence[Volume | _Part], background: BackgroundSpec, coils: int | None, *, pooled: bool
) -> list[_Found]:
    """Each volume's background. Pooled, a volume in which none is found gets None and a note: the
    others of its group measure the same noise. Otherwise, or when none has one, the error is raised."""
    found: list[_Found] = []
    missing: list[NoBackgroundError] = []
    for volume in volumes:
        try:
            found.append(_background(volume, background, coils))
        except NoBackgroundError as e:
            if not pooled:
                raise
            missing.append(e)
            found.append(_Found(None, [f"no background found in {_name(volume)}: its σ is the other stacks' of the series"], False))
    if missing and len(missing) == len(volumes):
        raise missing[0]
    return found


def group_sigmas(volumes: Sequence[Volume], options: CleanOptions, background: BackgroundSpec = None) -> list[SigmaGroup]:
    """sigma of a group of volumes: one pooled over their backgrounds, or one per volume.

    Parameters
    ----------
    volumes : sequence of Volume
        One group: the stacks of a DICOM series, or one NIfTI image.
    options : CleanOptions
        ``estimator``, ``coils`` and ``per_volume`` apply.
    background : mask, function of the volume, "auto" or None
        None and "auto" find the background of each volume.

    Returns
    -------
    list of SigmaGroup
        One, or one per volume (``per_volume``).

    Raises
    ------
    NoBackgroundError, ValueError
        When the background holds no usable noise.
    """
    return _group_sigmas(volumes, options, background)[0]


def _group_sigmas(
    volumes: Sequence[Volume], options: CleanOptions, background: BackgroundSpec
) -> tuple[list[SigmaGroup], list[np.ndarray | None]]:
    """The sigma groups, and each volume's background mask (None where none was found)."""
    if options.per_volume:
        return _volume_sigmas(volumes, options, background)
    found = _backgrounds(volumes, background, options.coils, pooled=True)
    unit = volumes[0].unit
    # x * 1.0 is x: a stack in the first one's units is not copied (a long series' sample is large).
    measured = [(v, f.mask) for v, f in zip(volumes, found) if f.mask is not None]
    samples = [_sample(v, f) for v, f in zip(volumes, found) if f.mask is not None]
    values = [x if v.unit == unit else x * (v.unit / unit) for (v, _), x in zip(measured, samples)]
    estimate = estimate_sigma(values[0] if len(values) == 1 else np.concatenate(values), options.estimator,
                              options.coils, warn=False)
    spread = [*(_volume_spread(v, m, estimate.coils, estimate.sigma * unit / v.unit) for v, m in measured),
              stack_spread(values, [v.label for v, _ in measured], estimate.coils, estimate.sigma)]
    notes = [*(n for f in found for n in f.notes), *(w for w in spread if w is not None)]
    # An automatic background has passed stricter tests of its noise than the ROI quality
    # report makes (whose advice is to pick another ROI): its own warnings stand instead.
    automatic = any(f.automatic for f in found)
    warnings = list(dict.fromkeys(notes)) if automatic else [*estimate.warnings, *notes]
    return [SigmaGroup(list(volumes), estimate, warnings)], [f.mask for f in found]


def _volume_sigmas(
    volumes: Sequence[Volume], options: CleanOptions, background: BackgroundSpec
) -> tuple[list[SigmaGroup], list[np.ndarray | None]]:
    """One sigma per volume of each image that has a volume axis, one per image (a DICOM stack)
    otherwise; and each image's background mask."""
    parts: list[Volume | _Part] = []
    for volume in volumes:
        axis = volume.volume_axis
        parts.extend([volume] if axis is None else [_Part(volume, t) for t in range(volume.shape[axis])])
    found = _backgrounds(parts, background, options.coils, pooled=False)
    groups = []
    for part, f in zip(parts, found):
        assert f.mask is not None  # not pooled: a missing background raised
        estimate = estimate_sigma(_sample(part, f), options.estimator, options.coils, warn=False)
        whole, index = (part.whole, part.index) if isinstance(part, _Part) else (part, None)
        groups.append(SigmaGroup([whole], estimate, f.notes if f.automatic else list(estimate.warnings), index))
    return groups, [_whole_mask(v, parts, found) for v in volumes]


def _volume_spread(volume: Volume, mask: np.ndarray, coils: int, sigma: float) -> str | None:
    """:func:`mri_noiselab.quality.volume_spread` of an image with a volume axis, on the voxels of the
    background in any volume (a search at one noise level keeps the quietest volumes' and drops the others')."""
    axis = volume.volume_axis
    if axis is None or volume.shape[axis] < 2:
        return None
    rows = np.moveaxis(volume.magnitude(), axis, 0)[:, np.any(mask, axis=axis)]  # a volume to a row, gathered once
    counts = np.count_nonzero(mask, axis=tuple(d for d in range(mask.ndim) if d != axis)).tolist()
    return volume_spread(rows, counts, coils, sigma)


def _whole_mask(volume: Volume, parts: Sequence[Volume | _Part], found: Sequence[_Found]) -> np.ndarray | None:
    """A volume's mask, put together from its parts' when it was cut into volumes."""
    masks = [f.mask for p, f in zip(parts, found) if p is volume or isinstance(p, _Part) and p.whole is volume]
    if volume.volume_axis is None or len(masks) == 1:
        return masks[0]
    return np.stack([m for m in masks if m is not None], axis=volume.volume_axis)


def _given_sigma(volume: Volume, sigma: float | tuple[float, ...]) -> float | tuple[float, ...]:
    if isinstance(sigma, float):
        return sigma
    axis = volume.volume_axis
    if axis is None or len(sigma) != volume.shape[axis]:
        raise ValueError(
            f"{_name(volume)}: {len(sigma)} sigma values given, but the image has shape {volume.shape}: "
            "give one σ, or one per volume of a 4-D image"
        )
    return sigma


def _derivation(volume: Volume, options: CleanOptions, groups: Sequence[SigmaGroup]) -> Derivation:
    """What correcting one volume with the sigma of its groups (given when there are none) records."""
    sigma: float | tuple[float, ...]
    groups = [g for g in groups if any(v is volume for v in g.volumes)]
    if groups:
        values = tuple(g.sigma_of(volume) for g in groups)
        sigma = values[0] if groups[0].index is None else values
        coils, estimator = groups[0].estimate.coils, groups[0].estimate.estimator
    else:
        assert options.sigma is not None  # without groups, sigma was given
        sigma, coils, estimator = _given_sigma(volume, options.sigma), options.coils or 1, None
    f_size = window(options.f_size, volume.shape, volume_axis=volume.volume_axis, slice_axis=volume.slice_axis,
                    axes=volume.axes, coils=coils)
    return Derivation(options.method, sigma, f_size, coils, estimator)


def _correct(volume: Volume, options: CleanOptions, groups: Sequence[SigmaGroup], mask: np.ndarray | None,
             stream: bool) -> CleanResult:
    """Correct one volume with the sigma of its groups (given when there are none); or, streamed, say how."""
    derivation = _derivation(volume, options, groups)
    notes = [w if g.index is None else f"volume {g.index}: {w}" for g in groups for w in g.warnings]
    how: dict[str, Any] = {"sigma": np.asarray(derivation.sigma), "f_size": derivation.f_size,
                           "method": options.method, "coils": derivation.coils, "num_threads": options.num_threads}
    estimates = tuple(g.estimate for g in groups)
    across = derivation.f_size[0] > 1
    if isinstance(volume, SliceBlocks) and (stream or not across):
        # Stored values in, stored values out, in the kernel: streamed, or block by block here;
        # a 3-D window streams with a halo of slices where that gives the same bits, and
        # otherwise corrects the stack whole (twice its stored bytes, no float64 copy), then
        # streams the derived files.
        exact = halo_exact(volume, derivation.f_size)
        block: Callable[..., np.ndarray] = functools.partial(
            stored_block, volume, name=_name(volume), halo=derivation.f_size[0] // 2 if exact else 0, **how)
        if stream and (exact or not across):
            return CleanResult(None, None, estimates, derivation, notes, mask, stored_block=block)
        stored = block(slice(None)) if across else np.concatenate([block(b) for b in blocks(volume)])
        if stream:
            whole = functools.partial(_slices_of, stored)
            return CleanResult(None, None, estimates, derivation, notes, mask, stored_block=whole)
        return CleanResult(stored, None, estimates, derivation, notes, mask)
    if isinstance(volume, WholeStored):
        stored = correct_stored(volume.stored, volume_axis=volume.volume_axis, **how, **volume.whole_rescale())
        return CleanResult(stored, None, estimates, derivation, notes, mask)
    corrected = correct(volume.magnitude(), volume_axis=volume.volume_axis, **how)
    return CleanResult(volume.to_stored(corrected), corrected, estimates, derivation, notes, mask)


def _slices_of(stored: np.ndarray, block: slice, threads: int | None = None) -> np.ndarray:
    """:attr:`CleanResult.stored_block` of a stack corrected whole: its slices ``block`` (nothing runs on ``threads``)."""
    return stored[block]


def planned_derivations(volumes: Sequence[Volume], options: CleanOptions, background: BackgroundSpec = None) -> list[Derivation]:
    """What :func:`clean_group` would record for each volume (sigma, window, coils), without correcting:
    an earlier run's outputs are kept only when they record the same (raises as :func:`clean_group`)."""
    groups = _group_sigmas(volumes, options, background)[0] if options.sigma is None else []
    return [_derivation(v, options, groups) for v in volumes]


def clean_group(
    volumes: Sequence[Volume],
    options: CleanOptions,
    background: BackgroundSpec = None,
    *,
    todo: Sequence[bool] | None = None,
    stream: bool = False,
) -> list[CleanResult | None]:
    """Estimate sigma (unless given) and correct the volumes of one group, all or nothing.

    Parameters
    ----------
    volumes : sequence of Volume
        One group: the stacks of a DICOM series, or one NIfTI image.
    options : CleanOptions
    background : mask, function of the volume, "auto" or None
        Where the noise is (see :func:`group_sigmas`); with a given sigma it
        only marks the region of the QC figure.
    todo : sequence of bool, optional
        Which volumes to correct (all by default); the others still count for sigma.
    stream : bool
        Leave the correction of volumes that convert slice blocks and whose window
        keeps slices apart to :attr:`CleanResult.stored_block` (a writer corrects
        and writes a few slices at a time).

    Returns
    -------
    list of CleanResult or None
        One per volume, None where ``todo`` says not to correct.

    Raises
    ------
    NoBackgroundError, ValueError
        For a background without noise, bad arguments, or values below zero signal.
    """
    for i, volume in enumerate(volumes):
        # A streamed stack is checked block by block as it is read, for sigma and its correction.
        if not (stream and isinstance(volume, SliceBlocks) and (todo is None or todo[i])) and any_negative(volume):
            raise below_zero(_name(volume))
    groups: list[SigmaGroup] = []
    masks: list[np.ndarray | None] = [None] * len(volumes)
    if options.sigma is None:
        groups, masks = _group_sigmas(volumes, options, background)
    elif background is not None and not isinstance(background, str):
        masks = [f.mask for f in _backgrounds(volumes, background, None, pooled=False)]
    results: list[CleanResult | None] = []
    for i, volume in enumerate(volumes):
        mine = [g for g in groups if any(v is volume for v in g.volumes)]
        results.append(_correct(volume, options, mine, masks[i], stream) if todo is None or todo[i] else None)
    return results


def clean_volume(
    volume: Volume,
    options: CleanOptions | None = None,
    *,
    mask: BackgroundSpec = None,
    **fields: Unpack[CleanFields],
) -> CleanResult:
    """Estimate sigma (unless given) and remove the noise bias of one volume.

    Parameters
    ----------
    volume : Volume
        A DICOM stack or a NIfTI image.
    options : CleanOptions, optional
    mask : array of bool, function of the volume or "auto", optional
        The background (noise-only) voxels; found automatically when neither
        it nor sigma is given.
    **fields
        Fields of :class:`CleanOptions` replacing those of ``options``.

    Raises
    ------
    NoBackgroundError
        If sigma must be estimated and the background holds no noise.
    ValueError
        For bad arguments, or values below zero signal.
    """
    (result,) = clean_group([volume], options_of(options, fields), mask)
    assert result is not None  # every volume is corrected without todo
    return result


__all__ = [
    "BackgroundFunction",
    "BackgroundSpec",
    "CleanFields",
    "CleanOptions",
    "CleanResult",
    "SigmaGroup",
    "Volume",
    "background_sigma",
    "clean_group",
    "clean_volume",
    "find_volume_background",
    "group_sigmas",
    "options_of",
    "planned_derivations",
]
