"""BIDS derivatives, and the files written beside a NIfTI output: sidecars and σ maps.

A NIfTI source in a BIDS dataset (a folder holding ``dataset_description.json``: the
source itself, or a folder above it whose subject folder ``sub-<label>`` holds it), cleaned
into an output folder, gives a BIDS derivative dataset (:func:`bids_layout`):

- inputs are the NIfTI files of the subjects' folders; ``derivatives/``, ``sourcedata/``
  and the dataset's other top-level folders are left alone;
- each output keeps its path in the dataset (sub-, ses- and datatype folders) and gets a
  ``desc-<label>`` entity before its suffix: ``sub-01_dwi.nii.gz`` becomes
  ``sub-01_desc-riciancorrected_dwi.nii.gz`` (a name that has a desc entity gets the label
  appended, ``desc-preprocRiciancorrected``, so that two sources never share an output);
- beside it, a JSON sidecar: the source's metadata (its sidecars merged by the
  inheritance principle, the most specific last) with ``Description``, ``Sources`` (a BIDS
  URI of the source) and ``NoiseBiasCorrection`` (the derivation) added; the source's
  ``.bval`` and ``.bvec`` are copied unchanged;
- the output folder gets a ``dataset_description.json`` (``DatasetType`` "derivative",
  ``GeneratedBy``, ``DatasetLinks`` "raw" to the source dataset, its DOI as
  ``SourceDatasets`` and its ``License``), written once the images are.

A σ map (``sigma_map``) is the σ each output was corrected with, as a NIfTI image (see
:func:`mri_noiselab.nifti.sigma_map_image`). Every file of an image is written in the image's
batch, all or nothing; each is checked, refused, kept or replaced as the images are.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Sequence
import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

from mri_noiselab._atomic import AtomicBatch, atomic_write, check_writable, permission_bits
from mri_noiselab._kernels import _core
from mri_noiselab.derivation import PACKAGE, Derivation
from mri_noiselab.errors import NiftiError, first_line
from mri_noiselab.formats import FORMATS, Form, nifti_form
from mri_noiselab.nifti import NIFTI_SUFFIXES, NiftiVolume, check_nifti_name, verify_output, write_sigma_map
from mri_noiselab.planning import Format

DESCRIPTION = "dataset_description.json"
DEFAULT_DESC = "riciancorrected"
"""The ``desc-`` label of the outputs unless another is given (BIDS labels are alphanumeric)."""
NOISE_DESC = "noise"
"""The ``desc-`` label of σ maps in a BIDS output (``_noise`` ends their name otherwise)."""
CORRECTION_KEY = "NoiseBiasCorrection"
"""The sidecar key that records the derivation (:meth:`mri_noiselab.derivation.Derivation.record`)."""
BIDS_VERSION = "1.10.0"
CODE_URL = "https://github.com/mri-noiselab/mri-noiselab"
_LABEL = re.compile(r"[0-9A-Za-z]+")
_SUBJECT = re.compile(r"sub-[0-9A-Za-z]+")
_IMAGE_TEXT = "Magnitude image with the Rician noise bias removed"
_MAP_TEXT = ("Noise level sigma that the Rician bias correction used, constant within each volume, "
             "in the source image's real-world units (stored sigma x scl_slope)")

# --------------------------------------------------------------------------- names


def check_label(label: str) -> str:
    """A BIDS label: letters and digits only."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise ValueError(f"a BIDS desc label holds letters and digits only, got {label!r}")
    return label


def _split(name: str) -> tuple[str, str]:
    """A file name's stem and extension: ``.nii.gz`` counts as one."""
    lower = name.lower()
    for ext in (*NIFTI_SUFFIXES[::-1], ".json", ".bval", ".bvec"):
        if lower.endswith(ext):
            return name[: -len(ext)], name[-len(ext):]
    stem, dot, ext = name.rpartition(".")
    return (stem, dot + ext) if dot else (name, "")


def parse_name(name: str) -> tuple[list[tuple[str, str]], str] | None:
    """The entities (key, label) and suffix of a BIDS file name (``sub-01_ses-2_dwi.nii.gz``), or None."""
    *pairs, suffix = _split(name)[0].split("_")
    entities = [tuple(p.split("-", 1)) for p in pairs]
    if not _LABEL.fullmatch(suffix) or not all(len(e) == 2 and all(_LABEL.fullmatch(x) for x in e) for e in entities):
        return None
    return [(e[0], e[1]) for e in entities], suffix


def with_desc(name: str, label: str) -> str:
    """``name`` with ``desc-<label>`` before its suffix (``label`` appended to a desc it has); other names unchanged."""
    parsed = parse_name(name)
    if parsed is None or not parsed[0]:
        return name
    entities, suffix = parsed
    old = dict(entities).get("desc")
    value = label if old is None else old + label[:1].upper() + label[1:]
    kept = [f"{k}-{v}" for k, v in entities if k != "desc"]
    return "_".join([*kept, f"desc-{value}", suffix]) + _split(name)[1]


def _noise_name(output: str) -> str:
    stem, ext = _split(output)
    return f"{stem}_noise{ext}"


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


# --------------------------------------------------------------------------- the dataset


def dataset_root(source: str | os.PathLike[str]) -> Path | None:
    """The BIDS dataset that holds ``source``, or None.

    The nearest folder, from the source up, holding ``dataset_description.json``,
    when the source is that folder or lies in one of its subjects' folders
    (``sub-<label>``); a file source must also be named as BIDS names files
    (``sub-<label>[_<key>-<label>...]_<suffix>.nii[.gz]``).
    """
    path = _absolute(Path(source))
    start = path if path.is_dir() else path.parent
    root = next((f for f in (start, *start.parents) if (f / DESCRIPTION).is_file()), None)
    if root is None:
        return None
    if root == path:
        return root
    if not _SUBJECT.fullmatch(path.relative_to(root).parts[0]):
        return None
    if not path.is_dir() and (parse_name(path.name) is None or not path.name.startswith("sub-")):
        return None
    return root


@dataclass(frozen=True)
class Layout:
    """A BIDS run: the source dataset's folder, the output (derivative) dataset's, and the desc label."""

    root: Path
    destination: Path
    desc: str = DEFAULT_DESC

    def keep(self, path: Path) -> bool:
        """True for a file in one of the dataset's subjects' folders."""
        parts = _absolute(path).relative_to(self.root).parts
        return len(parts) > 1 and _SUBJECT.fullmatch(parts[0]) is not None

    def rename(self, name: str) -> str:
        return with_desc(name, self.desc)

    def uri(self, path: Path) -> str:
        """A source file as a BIDS URI in the dataset the derivative links as "raw"."""
        return "bids:raw:" + _absolute(path).relative_to(self.root).as_posix()


def dataset_form(source: str | os.PathLike[str]) -> Form | None:
    """For a folder in a BIDS dataset, the NIfTI format scanning its subjects' folders only; else None."""
    root = dataset_root(source) if Path(source).is_dir() else None
    return None if root is None else nifti_form(Layout(root, Path(source)).keep)


def bids_layout(source: str | os.PathLike[str], destination: str | os.PathLike[str], *, bids: bool | None = None,
                desc: str = DEFAULT_DESC) -> Layout | None:
    """The BIDS layout of a run, or None: a source in a BIDS dataset (see :func:`dataset_root`) and an output folder.

    Parameters
    ----------
    bids : bool, optional
        None detects the dataset; False writes plain outputs; True refuses a
        source that is not in one.
    desc : str
        The label of the outputs' ``desc-`` entity.

    Raises
    ------
    ValueError
        For a label that is not alphanumeric, ``bids=True`` or another label
        without a BIDS source and an output folder.
    """
    check_label(desc)
    asked = bids is True or desc != DEFAULT_DESC
    if bids is False:
        if desc != DEFAULT_DESC:
            raise ValueError("bids_desc (--bids-desc) names BIDS outputs: it cannot be combined with bids=False (--no-bids)")
        return None
    src, dst = Path(source), Path(destination)
    root = dataset_root(src)
    to_folder = src.is_dir() or dst.is_dir() or str(destination).endswith((os.sep, "/"))
    if root is not None and to_folder:
        return Layout(root, dst, desc)
    if asked:
        why = ("a BIDS derivative needs an output folder (end -o with /)" if root is not None else
               f"{src} is not in a BIDS dataset (a folder with {DESCRIPTION}, the source being it or in its sub-<label> folders)")
        raise ValueError(f"BIDS outputs (--bids-desc): {why}")
    return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{path}: cannot read as JSON ({first_line(e)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: holds a JSON {type(data).__name__}, not an object")
    return data


def _applicable(root: Path, image: Path, extension: str) -> list[Path]:
    """The files ending with ``extension`` that apply to ``image`` by the inheritance principle, the most general first:
    in its folder and those above it in the dataset, with its suffix and a part of its entities."""
    parsed = parse_name(image.name)
    if parsed is None:
        same = image.with_name(_split(image.name)[0] + extension)
        return [same] if same.is_file() else []
    entities, suffix = set(parsed[0]), parsed[1]
    rel = _absolute(image.parent).relative_to(root)
    found: list[Path] = []
    for depth in range(len(rel.parts) + 1):
        folder = root.joinpath(*rel.parts[:depth])
        level = []
        with contextlib.suppress(OSError):
            for path in sorted(folder.glob(f"*{extension}")):
                other = parse_name(path.name)
                if path.is_file() and other is not None and other[1] == suffix and set(other[0]) <= entities:
                    level.append((len(other[0]), path))
        found.extend(p for _, p in sorted(level))
    return found


def description(layout: Layout) -> dict[str, Any]:
    """The output dataset's ``dataset_description.json``, from the source dataset's."""
    try:
        source = _read_json(layout.root / DESCRIPTION)
    except ValueError:  # a damaged description still names a BIDS dataset; what it said is lost
        source = {}
    name = source.get("Name")
    out: dict[str, Any] = {
        "Name": f"{name}: Rician noise bias removed" if isinstance(name, str) and name else "Rician noise bias removed",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": PACKAGE, "Version": _core.__version__,
                         "Description": "Rician noise bias correction of magnitude images", "CodeURL": CODE_URL}],
    }
    if isinstance(source.get("DatasetDOI"), str) and source["DatasetDOI"]:
        out["SourceDatasets"] = [{"DOI": source["DatasetDOI"]}]
    try:
        raw = Path(os.path.relpath(layout.root, _absolute(layout.destination))).as_posix()
    except ValueError:  # another drive (Windows): no relative path
        raw = layout.root.as_uri()
    out["DatasetLinks"] = {"raw": raw}
    if isinstance(source.get("License"), str):
        out["License"] = source["License"]
    return out


def _generated_version(path: Path) -> str | None:
    """The version of this package that wrote a dataset_description.json, or None when another tool did."""
    try:
        entries = _read_json(path).get("GeneratedBy")
    except ValueError:
        return None
    ours = [e for e in entries if isinstance(e, dict) and e.get("Name") == PACKAGE] if isinstance(entries, list) else []
    return str(ours[0].get("Version")) if ours else None


def plan_description(layout: Layout, *, force: bool, skip_existing: bool) -> bool:
    """Whether the run writes the output dataset's description, checked before anything is written.

    One written by this version is kept as it is (runs on other subjects add to the
    dataset); one written by another version is replaced with ``force``, kept with
    ``skip_existing``, refused otherwise; one written by another tool is never replaced.

    Raises
    ------
    FileExistsError, OSError
    """
    path = check_writable(layout.destination / DESCRIPTION)
    if not path.exists():
        return True
    version = _generated_version(path)
    if version is None:
        raise FileExistsError(f"{path} exists and was not written by {PACKAGE}: the output folder is another dataset; "
                              "choose another output folder")
    if version == _core.__version__ or (skip_existing and not force):
        return False
    if force:
        return True
    raise FileExistsError(f"{path} exists from {PACKAGE} {version}: give --force to replace it, or choose another output folder")


def write_description(layout: Layout) -> Path:
    """Write the output dataset's description, atomically, no more open than the source's."""
    data = (json.dumps(description(layout), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return atomic_write(layout.destination / DESCRIPTION, _bytes(data), mode=permission_bits(layout.root / DESCRIPTION))


# --------------------------------------------------------------------------- files beside an output

Kind = Literal["sidecar", "copy", "sigma_map", "map_sidecar"]


@dataclass(frozen=True)
class Companion:
    """A file written with an image: its JSON sidecar, a copied .bval/.bvec, a σ map or the map's sidecar.

    ``sources`` are the files it is made from: the metadata files merged (the most
    general first), or the file copied; ``uri`` names the image in ``Sources``.
    """

    kind: Kind
    target: Path
    image: Path  # the output image it goes with
    sources: tuple[Path, ...] = ()
    uri: str | None = None
    todo: bool = True


@dataclass(frozen=True)
class Companions:
    """What a run writes beside its NIfTI outputs: a BIDS layout's files, σ maps."""

    layout: Layout | None = None
    sigma_map: Path | None = None
    map_folder: bool = False  # sigma_map names a folder (it exists, or its name ends with a separator)

    def form(self, form: Format) -> Form:
        """The format that scans the source: in a BIDS dataset, its subjects' folders only."""
        if self.layout is not None and form == "nifti":
            return nifti_form(self.layout.keep)
        return FORMATS[form]

    def naming(self) -> dict[str, Any]:
        """The arguments of :func:`mri_noiselab.planning.output_paths` that give BIDS names."""
        return {} if self.layout is None else {"root": self.layout.root, "rename": self.layout.rename}

    def plan(self, inputs: Sequence[Path], mapping: dict[Path, Path], output_root: Path) -> dict[Path, list[Companion]]:
        """The files to write beside each input's output.

        Raises
        ------
        ValueError
            For a σ map file name and several images, or two files of the run
            with one name.
        """
        found: dict[Path, list[Companion]] = {p: [] for p in inputs}
        maps = self._maps(inputs, mapping, output_root)
        for p in inputs:
            image, companions = mapping[p], found[p]
            if self.layout is not None:
                uri = self.layout.uri(p)
                stem = _split(image.name)[0]
                companions.append(Companion("sidecar", image.with_name(stem + ".json"), image,
                                            tuple(_applicable(self.layout.root, p, ".json")), uri))
                for ext in (".bval", ".bvec"):
                    copied = _applicable(self.layout.root, p, ext)[-1:]
                    if copied:
                        companions.append(Companion("copy", image.with_name(stem + ext), image, tuple(copied)))
            if p in maps:
                companions.append(Companion("sigma_map", maps[p], image))
                if self.layout is not None:  # a BIDS map is described as its image is, with a DWI's gradients
                    stem = _split(maps[p].name)[0]
                    companions.append(Companion("map_sidecar", maps[p].with_name(stem + ".json"), image, (),
                                                self.layout.uri(p)))
                    companions.extend(Companion("copy", maps[p].with_name(stem + _split(c.target.name)[1]), image,
                                                c.sources) for c in list(companions) if c.kind == "copy")
        seen: set[Path] = set()
        for name in [*mapping.values(), *(c.target for cs in found.values() for c in cs)]:
            if name in seen:
                raise ValueError(f"two files of this run would be written to {name}: choose another --bids-desc or σ map folder")
            seen.add(name)
        return found

    def _maps(self, inputs: Sequence[Path], mapping: dict[Path, Path], output_root: Path) -> dict[Path, Path]:
        if self.sigma_map is None:
            return {}
        where = self.sigma_map
        if not (self.map_folder or where.is_dir()):
            if len(inputs) > 1:
                raise ValueError(f"the σ map {where} is one file but the run has {len(inputs)} images: "
                                 "give a folder (ending with /) for their maps")
            return {p: check_nifti_name(where) for p in inputs}
        names = {p: with_desc(p.name, NOISE_DESC) if self.layout is not None else _noise_name(mapping[p].name)
                 for p in inputs}
        return {p: where / mapping[p].parent.relative_to(output_root) / names[p] for p in inputs}


def companion_sources(companions: dict[Path, list[Companion]]) -> list[Path]:
    """Every file the companions are made from: never to be replaced."""
    return [s for cs in companions.values() for c in cs for s in c.sources]


def pending(companions: Sequence[Companion], skip_existing: bool) -> list[Companion]:
    """The companions, each to be written unless it exists and ``skip_existing`` keeps it."""
    return [replace(c, todo=not (skip_existing and c.target.exists())) for c in companions]


def _put(data: bytes, fh: BinaryIO) -> None:
    fh.write(data)


def _bytes(data: bytes) -> Callable[[BinaryIO], None]:
    return functools.partial(_put, data)


def _sidecar(companion: Companion, derivation: Derivation) -> bytes:
    """A sidecar's content: the image's merged metadata (none for a σ map), with the derivation."""
    metadata: dict[str, Any] = {}
    for path in companion.sources:
        metadata.update(_read_json(path))
    metadata["Description"] = _IMAGE_TEXT if companion.kind == "sidecar" else _MAP_TEXT
    metadata.setdefault("SkullStripped", False)  # REQUIRED of derived images: none is stripped here
    metadata["Sources"] = [companion.uri]
    metadata[CORRECTION_KEY] = derivation.record()
    return (json.dumps(metadata, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_companions(volume: object, derivation: Derivation, companions: Sequence[Companion], batch: AtomicBatch) -> list[Path]:
    """Write the companions to do of one image in its batch; each no more open than the image and its own sources.

    Raises
    ------
    ValueError
        For a source sidecar that is no JSON object (the image's batch then writes nothing).
    """
    if not companions:
        return []
    if not isinstance(volume, NiftiVolume):
        raise TypeError(f"sidecars and σ maps go with NIfTI images, got {type(volume).__name__}")
    written = []
    for c in companions:
        if not c.todo:
            continue
        if c.kind == "sigma_map":
            written.append(write_sigma_map(volume, derivation.sigma, c.target, derivation.nifti_description(), batch=batch))
            continue
        data = c.sources[0].read_bytes() if c.kind == "copy" else _sidecar(c, derivation)
        mode = permission_bits(volume.path) or 0o7777
        for source in c.sources:
            mode &= permission_bits(source) or 0o7777
        written.append(batch.write(c.target, _bytes(data), mode=mode, folder_mode=permission_bits(volume.path.parent)))
    return written


def verify_companions(volume: object, derivation: Derivation, companions: Sequence[Companion]) -> None:
    """Check the companions an earlier run left, before keeping them: each what this run would write.

    Raises
    ------
    NiftiError
        Naming the file and how to go on.
    """
    for c in companions:
        if c.todo:
            continue
        if c.kind == "sigma_map":
            verify_output(c.target, derivation.nifti_description())
            continue
        expected = c.sources[0].read_bytes() if c.kind == "copy" else _sidecar(c, derivation)
        try:
            same = c.target.read_bytes() == expected
        except OSError as e:
            raise NiftiError(f"{c.target}: exists but cannot be read ({e.strerror or e})") from None
        if not same:
            what = "its source" if c.kind == "copy" else "what this run would write (other options, sidecars or version)"
            raise NiftiError(f"{c.target}: exists but differs from {what}: resume with the options of that run, "
                             "or give --force to replace it")


def own_output(companions: dict[Path, list[Companion]], image_own: Callable[[Path], bool]) -> Callable[[Path], bool]:
    """Tells this package's earlier outputs among the run's targets: images, sidecars, copies and σ maps."""
    by_target = {c.target: c for cs in companions.values() for c in cs}

    def own(path: Path) -> bool:
        c = by_target.get(path)
        if c is None or c.kind == "sigma_map":
            return image_own(path)
        if c.kind == "copy":  # a copy says nothing of its writer: its image does
            return image_own(c.image)
        try:
            return CORRECTION_KEY in _read_json(path)
        except ValueError:
            return False

    return own


__all__ = [
    "BIDS_VERSION",
    "CORRECTION_KEY",
    "DEFAULT_DESC",
    "NOISE_DESC",
    "Companion",
    "Companions",
    "Layout",
    "bids_layout",
    "check_label",
    "dataset_form",
    "dataset_root",
    "description",
    "parse_name",
    "plan_description",
    "with_desc",
    "write_description",
]
