"""Planning a run's files, before anything is read or written: what the source is, where outputs go, and whether they may be written.

- :func:`source_format` tells DICOM from NIfTI (a folder holding both is refused) and
  refuses a source that is no file or folder (a FIFO would block the run);
- :func:`output_paths` and :func:`qc_paths` name every output from the input file names;
- :func:`check_targets` refuses an output or QC figure that is an input, a link, a folder,
  a device or FIFO, or cannot be written;
- :func:`refuse_existing` refuses to replace any file that exists, unless asked to
  replace it (``force``) or to keep it (``skip_existing``);
- :func:`locked_output` creates the output folder, no more open than the source's, and
  locks it for the run: a second run into it is refused.

The pipeline says which existing files are this package's outputs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import pydicom

from mri_noiselab._atomic import check_writable, make_folders, permission_bits, same_file
from mri_noiselab._files import check_source, lock_folder, walk_files
from mri_noiselab.derivation import PACKAGE
from mri_noiselab.nifti import is_nifti_path

Format = Literal["dicom", "nifti"]
_FOLDER_NEEDED = "the output {} is a file: a folder source needs an output folder"


def _is_dicom(path: Path) -> bool:
    try:
        return path.is_file() and pydicom.misc.is_dicom(path)
    except OSError:
        return False


def source_format(source: str | os.PathLike[str]) -> Format:
    """``"nifti"`` for a ``.nii``/``.nii.gz`` file or a folder of them, else ``"dicom"``.

    Raises
    ------
    ValueError
        For a folder holding both NIfTI and DICOM files: dcm2niix writes its
        NIfTI next to the DICOMs, and a run must not silently skip either kind;
        for a FIFO, device or socket, which would be read without end.
    """
    path = check_source(source)
    if not path.is_dir():
        return "nifti" if is_nifti_path(path) else "dicom"
    files = walk_files(path)[0]
    if not any(is_nifti_path(p) for p in files):
        return "dicom"
    dicom = next((p for p in files if not is_nifti_path(p) and _is_dicom(p)), None)
    if dicom is not None:
        raise ValueError(
            f"{path} holds both NIfTI and DICOM files (e.g. {dicom.name}): give one kind per run, "
            "for example by moving the NIfTI files to their own folder"
        )
    return "nifti"


def output_paths(source: str | os.PathLike[str], destination: str | os.PathLike[str], inputs: Sequence[Path], *,
                 root: Path | None = None, rename: Callable[[str], str] | None = None) -> dict[Path, Path]:
    """Map every input file to its output file.

    A file source goes to ``destination`` itself, or into it with the same
    name when ``destination`` is an existing folder or ends with a separator.
    A folder source gives ``destination/<path relative to the source>``:
    names always come from the input file names, never from tag values.
    With ``root`` (a dataset's folder, holding the source), every output is
    ``destination/<path relative to root>``; ``rename`` turns each input file
    name into its output's.

    Raises
    ------
    ValueError
        If an output would replace an input file, if a folder source is given
        an existing file as destination, or if an output would land outside
        ``destination`` (a sub-folder there that is a symbolic link).
    """
    src = Path(source)
    dst = Path(destination)
    if src.is_dir() or root is not None:
        if dst.exists() and not dst.is_dir():
            raise ValueError(_FOLDER_NEEDED.format(dst))
        if root is None:
            mapping = {p: dst / p.relative_to(src) for p in inputs}
        else:  # the inputs lie in the dataset, however the source was spelled
            mapping = {p: dst / Path(os.path.abspath(p)).relative_to(os.path.abspath(root)) for p in inputs}
        root = dst.resolve()
        for out in mapping.values():
            if root not in out.resolve().parents:
                raise ValueError(
                    f"the output {out} would be written outside the output folder {dst} "
                    f"(to {out.resolve()}, through a symbolic link): remove the link or choose another output"
                )
    elif dst.is_dir() or str(destination).endswith((os.sep, "/")):
        mapping = {p: dst / p.name for p in inputs}
    else:
        mapping = {p: dst for p in inputs}
    if rename is not None:
        mapping = {p: out.with_name(rename(p.name)) for p, out in mapping.items()}
    resolved_inputs = {p.resolve() for p in inputs}
    for out in mapping.values():
        if out.resolve() in resolved_inputs or (out.exists() and any(same_file(out, q) for q in inputs)):
            raise ValueError(f"the output {out} is an input file: choose another output (inputs are never overwritten)")
    return mapping


def qc_paths(qc: str | os.PathLike[str] | None, count: int) -> list[Path]:
    """The QC figure of each of ``count`` volumes: ``qc`` itself for one, else ``<stem>_<n><suffix>``."""
    if qc is None:
        return []
    path = Path(qc)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i + 1}{path.suffix}") for i in range(count)]


def check_targets(outputs: Sequence[Path], figures: Sequence[Path], inputs: Sequence[Path]) -> None:
    """Refuse, before anything is written, outputs (and QC figures) that would replace an input
    or cannot be written (see :func:`mri_noiselab._atomic.check_writable`)."""
    resolved_inputs = {p.resolve() for p in inputs}
    resolved_outputs = {p.resolve() for p in outputs}
    for path in figures:
        if path.resolve() in resolved_inputs or (path.exists() and any(same_file(path, q) for q in inputs)):
            raise ValueError(f"the QC figure {path} is an input file: choose another name (inputs are never overwritten)")
        if path.resolve() in resolved_outputs:
            raise ValueError(f"the QC figure {path} is also an output: choose another name")
    for path in [*outputs, *figures]:
        check_writable(path)


def refuse_existing(
    source: Path,
    destination: Path,
    outputs: Sequence[Path],
    figures: Sequence[Path],
    *,
    force: bool,
    skip_existing: bool,
    own_output: Callable[[Path], bool],
) -> None:
    """Refuse to replace a file that exists, unless asked to replace it or to keep it.

    The field's convention (MRtrix ``-force``, DIPY ``--force``): an existing
    output or QC figure is replaced with ``force`` only, and left alone with
    ``skip_existing``. Inside the source folder, ``force`` replaces only this
    package's earlier outputs (``own_output``): the other files there were left
    out of the input because they lie in the output folder, and may be data.

    Raises
    ------
    FileExistsError
        Naming the first such file, and how to go on.
    """
    found = [p for p in [*outputs, *figures] if p.exists()]
    if not found or (skip_existing and not force):
        return
    if force:
        if source.is_dir() and source.resolve() in destination.resolve().parents:
            outs = set(outputs)
            strangers = [p for p in found if p in outs and not own_output(p)]
            if strangers:
                more = f" (and {len(strangers) - 1} more)" if len(strangers) > 1 else ""
                raise FileExistsError(
                    f"the output {strangers[0]} exists inside the input folder and was not written by {PACKAGE}{more}: "
                    "--force replaces only earlier outputs there; move it, or choose an output folder outside the input"
                )
        return
    more = f" (and {len(found) - 1} more of this run's outputs)" if len(found) > 1 else ""
    raise FileExistsError(
        f"the output {found[0]} exists{more}: give --force to replace existing outputs, or --skip-existing "
        "to keep them and write only the missing ones"
    )


def output_root(source: Path, destination: Path) -> Path:
    """The folder every output of a run lies in: the output folder, or the output file's folder."""
    if source.is_dir() or destination.is_dir() or str(destination).endswith((os.sep, "/")):
        return destination
    return destination.parent


@contextlib.contextmanager
def locked_output(source: Path, destination: Path) -> Iterator[None]:
    """Create the output folder (no more open than the source's folder) and lock it while the run writes.

    Folders it creates are removed again if the run leaves them empty (it failed
    before writing anything).

    Raises
    ------
    OSError
        If the folder cannot be created; :class:`mri_noiselab._files.OutputBusyError`
        if another run is writing into it.
    """
    root = output_root(source, destination)
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        if folder == destination and source.is_dir():
            raise ValueError(_FOLDER_NEEDED.format(destination))
        raise NotADirectoryError(f"cannot write {destination}: {folder} is a file, not a folder")
    try:
        created = make_folders(root, permission_bits(source if source.is_dir() else source.parent))
    except OSError as e:
        raise type(e)(f"cannot create the output folder {root}: {e.strerror or e}") from None
    try:
        with lock_folder(root):
            yield
    finally:
        for new in reversed(created):
            with contextlib.suppress(OSError):  # not empty: the run wrote into it
                new.rmdir()


__all__ = ["Format", "check_targets", "locked_output", "output_paths", "output_root", "qc_paths", "refuse_existing", "source_format"]
