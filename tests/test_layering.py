"""The package's layout (one-way imports, read from the source) and its one vocabulary across layers.

Layering: each module of python/mri_noiselab sits in a layer and imports only the layers
below it: I/O modules never import the science or the pipeline, batch knows no file
format, clean knows no format, nothing imports the command line, and there are no
cycles. A synthetic package checks that the checker itself catches each breach.

Vocabulary: an int f_size means the same axes in the API, DICOM and NIfTI; --f-size and
--roi list rows, columns, slices for both formats; volume_axis keeps volumes apart;
``estimator`` is for sigma, ``method`` for the correction; one CorrectionReport class.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from conftest import rician
from dicom_helpers import phantom_volume, write_series
from scipy.ndimage import uniform_filter

import mri_noiselab as nl
from mri_noiselab._args import window
from mri_noiselab.cli import main
from mri_noiselab.clean import CleanFields, CleanOptions
from mri_noiselab.dicom import read_file

PACKAGE = Path(nl.__file__).resolve().parent
if not (PACKAGE / "pipeline.py").is_file():  # an installed wheel: read the source tree's package
    PACKAGE = Path(__file__).resolve().parents[1] / "python" / "mri_noiselab"

# Each module's layer, and the layers each layer may import (its own included where it has several modules).
LAYERS = {
    "mri_noiselab._kernels": "base", "mri_noiselab._core": "base", "mri_noiselab.errors": "base",
    "mri_noiselab.roi": "base", "mri_noiselab._atomic": "base", "mri_noiselab._files": "base",
    "mri_noiselab._progress": "base", "mri_noiselab._console": "base",
    "mri_noiselab._args": "args",
    "mri_noiselab.chi": "science", "mri_noiselab.quality": "science", "mri_noiselab.background": "science",
    "mri_noiselab._bands": "science", "mri_noiselab.noise": "science", "mri_noiselab.correction": "science",
    "mri_noiselab.compat": "science",
    "mri_noiselab.stored": "science",
    "mri_noiselab.derivation": "record",
    "mri_noiselab.dicom.read": "io", "mri_noiselab.dicom.series": "io", "mri_noiselab.dicom.derive": "io",
    "mri_noiselab.dicom.checks": "io", "mri_noiselab.dicom.eligibility": "io", "mri_noiselab.dicom.pixels": "io", "mri_noiselab.nifti": "io", "mri_noiselab.planning": "io",
    "mri_noiselab.qc": "plot",
    "mri_noiselab.clean": "engine", "mri_noiselab.options": "engine", "mri_noiselab.dask": "engine", "mri_noiselab.blocks": "engine",
    "mri_noiselab.batch": "batch",
    "mri_noiselab.pipeline": "pipeline", "mri_noiselab.formats": "pipeline", "mri_noiselab.stream": "pipeline",
    "mri_noiselab.bids": "pipeline",
    "mri_noiselab.demo": "app", "mri_noiselab.cli": "cli", "mri_noiselab.__main__": "main",
    "mri_noiselab": "facade", "mri_noiselab.dicom": "facade",
}
BELOW = {
    "base": {"base"},
    "args": {"base"},
    "science": {"base", "args", "science"},
    "record": {"base", "args"},
    "io": {"base", "args", "record", "io"},
    "plot": {"base", "args", "science"},
    "engine": {"base", "args", "science", "record", "engine"},
    "batch": {"base"},
    "pipeline": {"base", "args", "science", "record", "io", "plot", "engine", "batch", "pipeline"},
    "app": {"base", "args", "science", "record", "io", "plot", "engine", "batch", "pipeline"},
    "cli": {"base", "args", "science", "record", "io", "plot", "engine", "batch", "pipeline", "app"},
    "main": {"cli"},
    "facade": {"base", "args", "science", "record", "io", "plot", "engine", "batch", "pipeline", "app", "facade"},
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Lines of the imports under ``if TYPE_CHECKING:``: they are for type checkers, not run."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(n.lineno for n in ast.walk(child) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return lines


def import_graph(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """The package's modules and what each imports of the package: (run-time edges, type-only edges).

    Every import statement counts, at module level or inside a function. ``from pkg import
    name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``.
    """
    files = {_module_name(p, root): p for p in [*root.rglob("*.py"), *root.rglob("*.pyi")]}
    runtime: dict[str, set[str]] = {m: set() for m in files}
    typing_only: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        hidden = _type_checking_lines(tree)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            edges = typing_only if node.lineno in hidden else runtime
            edges[module].update(t for t in targets if t == root.name or t.startswith(root.name + "."))
    return runtime, typing_only


def violations(edges: dict[str, set[str]], layers: dict[str, str]) -> list[str]:
    """Every import against the layering, and every module left out of it."""
    found = [f"{m} is in no layer: place it in LAYERS" for m in sorted(edges) if m not in layers]
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            if (target.endswith(".cli") or layers.get(target) == "cli") and layers.get(module) != "main":
                found.append(f"{module} imports the command line {target}")
            elif module in layers and target in layers and layers[target] not in BELOW[layers[module]]:
                found.append(f"{module} ({layers[module]}) imports {target} ({layers[target]})")
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles (each as the path that closes it), by depth-first search."""
    state: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_the_package_imports_only_downwards_and_has_no_cycles():
    runtime, typing_only = import_graph(PACKAGE)
    assert len(runtime) >= len(LAYERS) - 1  # every module was read (_core is a stub)
    assert "mri_noiselab.clean" in runtime["mri_noiselab.pipeline"]  # the parser sees the imports
    both = {m: runtime[m] | typing_only[m] for m in runtime}
    assert violations(both, LAYERS) == []
    assert cycles(runtime) == []


def _package(root: Path, modules: dict[str, str]) -> Path:
    pkg = root / "mri_noiselab"
    for name, source in modules.items():
        path = pkg / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return pkg


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ({"nifti": "from mri_noiselab.noise import correct\n", "noise": ""}, "nifti (io) imports mri_noiselab.noise"),
        ({"dicom/__init__": "", "dicom/read": "from ..pipeline import clean_source\n", "pipeline": ""},
         "dicom.read (io) imports mri_noiselab.pipeline"),
        ({"batch": "def f():\n    import mri_noiselab.nifti\n", "nifti": ""}, "batch (batch) imports mri_noiselab.nifti"),
        ({"clean": "from mri_noiselab import nifti\n", "nifti": ""}, "clean (engine) imports mri_noiselab.nifti"),
        ({"demo": "from mri_noiselab.cli import main\n", "cli": ""}, "imports the command line"),
        ({"extra": ""}, "mri_noiselab.extra is in no layer"),
    ],
)
def test_the_checker_catches_each_breach(tmp_path, modules, expected):
    runtime, typing_only = import_graph(_package(tmp_path, modules))
    found = violations({m: runtime[m] | typing_only[m] for m in runtime}, LAYERS)
    assert any(expected in v for v in found), found


def test_the_checker_catches_cycles_but_not_type_only_imports(tmp_path):
    pkg = _package(tmp_path, {
        "chi": "from mri_noiselab.quality import RoiQuality\n",
        "quality": "from mri_noiselab import chi\n",
        "noise": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mri_noiselab.background import B\n",
        "background": "from mri_noiselab.noise import x\n",
    })
    runtime, typing_only = import_graph(pkg)
    assert cycles(runtime) == [["mri_noiselab.chi", "mri_noiselab.quality", "mri_noiselab.chi"]]
    assert typing_only["mri_noiselab.noise"] == {"mri_noiselab.background"}


def _sizes(root: Path) -> Iterable[tuple[str, int]]:
    """(module, lines) and (function, lines of code below its docstring)."""
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        yield str(path.relative_to(root)), len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
                yield f"{path.relative_to(root)}:{node.name}", node.end_lineno - body[0].lineno + 1  # type: ignore[operator]


def test_modules_and_functions_stay_small():
    too_big = [(name, n) for name, n in _sizes(PACKAGE) if n > (600 if ":" not in name else 80)]
    assert too_big == []


def test_the_keyword_form_of_the_options_lists_their_fields():
    assert set(CleanFields.__annotations__) == {f.name for f in dataclasses.fields(CleanOptions)}


# --------------------------------------------------------------------------- one vocabulary


def moments_reference(image: np.ndarray, sigma: float | np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """A = sqrt(max(<M^2> - 2 sigma^2, 0)) with scipy's box mean (Gudbjartsson & Patz 1995)."""
    local = uniform_filter(image.astype(np.float64) ** 2, size=size, mode="reflect")
    return np.sqrt(np.clip(local - 2 * np.square(sigma), 0, None))


def test_an_int_window_never_spans_the_slice_or_volume_axis_nor_an_axis_of_length_one():
    assert window(9, (20, 30, 40)) == (9, 9, 9)
    assert window(9, (20, 30, 40), slice_axis=0) == (1, 9, 9)
    assert window(9, (5, 20, 30, 40), volume_axis=0) == (1, 9, 9, 9)
    assert window(9, (1, 30, 40)) == (1, 9, 9)
    # A tuple lists rows, columns[, slices] placed on the axes named: DICOM (1, 2, 0), NIfTI (0, 1, 2).
    assert window((3, 5, 7), (20, 30, 40), axes=(1, 2, 0)) == (7, 3, 5)
    assert window((3, 5), (30, 40, 20, 4), axes=(0, 1, 2)) == (3, 5, 1, 1)


def test_volume_axis_keeps_a_t_z_y_x_series_apart_with_one_sigma_per_volume(rng):
    truth = np.zeros((3, 6, 20, 24))
    truth[:, 1:5, 5:15, 6:18] = 60.0
    sigma = np.array([5.0, 8.0, 11.0])
    image = np.stack([rician(truth[t], s, rng) for t, s in enumerate(sigma)])
    got = nl.correct(image, sigma, f_size=3, method="moments", volume_axis=0)
    for t in range(3):
        np.testing.assert_allclose(got[t], moments_reference(image[t], sigma[t], (3, 3, 3)), rtol=1e-5, atol=1e-4)
    # Without it, the default (last axis: NIfTI's t) mixes this array's volumes.
    assert not np.allclose(nl.correct(image, 5.0, f_size=3, method="moments"),
                           nl.correct(image, 5.0, f_size=3, method="moments", volume_axis=0))


def test_slice_axis_gives_the_in_plane_window_of_the_file_workflows(rng):
    image = rician(np.full((4, 20, 24), 40.0), 6.0, rng)
    got = nl.correct(image, 6.0, f_size=5, method="moments", slice_axis=0)
    np.testing.assert_allclose(got, moments_reference(image, 6.0, (1, 5, 5)), rtol=1e-5, atol=1e-4)


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()


def assert_rounds(got: np.ndarray, expected: np.ndarray) -> None:
    """Integer outputs: the reference rounded, but for float32-against-float64 ties."""
    rounded = np.rint(expected)
    assert np.mean(got != rounded) < 1e-3 and np.max(np.abs(got - rounded)) <= 1


def test_f_size_lists_rows_columns_slices_for_dicom_and_nifti_alike(tmp_path, rng):
    """The same image as DICOM (slices, rows, cols) and as NIfTI (x, y, z): the same window, the same pixels."""
    nib = pytest.importorskip("nibabel")
    stored = np.rint(phantom_volume(4, 32, 10.0, rng)[1]).astype(np.uint16)[:, :, :28]  # 4 slices of 32 x 28
    write_series(tmp_path / "dcm", stored)
    nib.save(nib.Nifti1Image(np.transpose(stored, (1, 2, 0)).astype(np.int16), np.eye(4)), tmp_path / "x.nii")
    args = ["--sigma", "10", "--method", "moments", "--f-size", "3,5,2", "-q"]
    assert _run("clean", str(tmp_path / "dcm"), "-o", str(tmp_path / "dcm_out"), *args)[0] == 0
    assert _run("clean", str(tmp_path / "x.nii"), "-o", str(tmp_path / "x_out.nii"), *args)[0] == 0
    dicom = np.stack([read_file(tmp_path / "dcm_out" / f"slice{k:03d}.dcm").stored[0] for k in range(4)])
    assert_rounds(dicom, moments_reference(stored, 10.0, (2, 3, 5)))  # (slices, rows, cols)
    nifti = np.asarray(nib.load(tmp_path / "x_out.nii").dataobj)
    np.testing.assert_array_equal(np.transpose(nifti, (2, 0, 1)), dicom)


def test_the_library_gives_the_pixels_of_the_command_line(tmp_path, rng):
    """stack.magnitude() through correct() with the stack's slice axis is the CLI's default output."""
    stored = np.rint(phantom_volume(3, 40, 12.0, rng)[1]).astype(np.uint16)
    paths = write_series(tmp_path / "in", stored)
    assert _run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "12", "-q")[0] == 0
    stack = read_file(paths[1])
    api = stack.to_stored(nl.correct(stack.magnitude(), 12.0, slice_axis=0))
    np.testing.assert_array_equal(read_file(tmp_path / "out" / paths[1].name).stored, api)


def test_estimator_names_the_sigma_estimator_everywhere(tmp_path, rng):
    values = rng.rayleigh(3.0, 5000)
    est = nl.estimate_sigma(values, estimator="mean", warn=False)
    assert est.estimator == "mean"
    # The mean of Rayleigh values is sigma sqrt(pi/2); its standard error is 0.655 sigma / sqrt(n).
    assert est.sigma == pytest.approx(values.mean() / np.sqrt(np.pi / 2), rel=1e-12)
    with pytest.raises(TypeError):
        nl.estimate_sigma(values, method="mean")  # type: ignore[call-arg]
    write_series(tmp_path / "in", np.rint(phantom_volume(2, 48, 10.0, rng)[1]).astype(np.uint16))
    code, out, _ = _run("sigma", str(tmp_path / "in"), "--roi", "0:8,0:8", "--estimator", "std", "--json")
    (row,) = json.loads(out)
    assert code == 0 and row["estimator"] == "std" and "method" not in row


def test_one_correction_report_class_that_pickles_whatever_kernels_are_loaded(tmp_path):
    image = np.array([[0.5, 1.0, 2.0], [3.0, 0.0, 4.0]])
    _, report = nl.correct(image, 1.0, f_size=1, method="pointwise", return_report=True)
    # pointwise: A^2 = M^2 - 2 is negative where M < sqrt(2): 0.5, 1.0 and 0.0.
    assert (report.n, report.zeros, report.clamped, report.min, report.max) == (6, 1, 3, 0.0, 4.0)
    assert pickle.loads(pickle.dumps(report)) == report and "clamped=3" in repr(report)
    code = ("import pickle, numpy as np, mri_noiselab as nl; "
            "r = nl.correct(np.ones((3, 3)), 0.1, return_report=True)[1]; "
            "print(type(r).__module__, type(r).__qualname__, pickle.loads(pickle.dumps(r)) == r)")
    for kernels in ("baseline", "auto"):
        env = dict(os.environ, MRI_NOISELAB_KERNELS=kernels)
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert proc.stdout.split() == ["mri_noiselab.correction", "CorrectionReport", "True"]


def test_the_kernels_own_report_prints_and_pickles():
    from mri_noiselab._kernels import _core

    _, raw = _core.correct(np.ones((4, 4)), 0.1, [3, 3])
    copy = pickle.loads(pickle.dumps(raw))
    assert (copy.n, copy.min, copy.max, copy.clamped) == (16, 1.0, 1.0, 0)
    assert repr(copy) == "CorrectionReport(n=16, nonfinite=0, negative=0, zeros=0, clamped=0, min=1.0, max=1.0)"
    assert type(raw).__doc__


def test_a_given_sigma_and_sigma_per_volume_do_not_mix():
    with pytest.raises(ValueError, match="per_volume"):
        CleanOptions(sigma=3.0, per_volume=True)
    with pytest.raises(ValueError, match="rows, columns"):
        CleanOptions(f_size=(3, 3, 3, 3))


# --------------------------------------------------------------------------- one batch path


def _nifti_folder(folder: Path, rng: np.random.Generator, names: Iterable[str]) -> None:
    nib = pytest.importorskip("nibabel")
    folder.mkdir(parents=True)
    truth = np.zeros((24, 20, 3))
    truth[6:18, 5:15] = 80.0
    for name in names:
        nib.save(nib.Nifti1Image(np.rint(rician(truth, 6.0, rng)).astype(np.int16), np.eye(4)), folder / name)


def test_a_folder_of_one_image_names_its_qc_figure_as_dicom_does(tmp_path, rng):
    pytest.importorskip("matplotlib")
    _nifti_folder(tmp_path / "in", rng, ["a.nii"])
    code, _, err = _run("clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--roi", "0:5,0:5",
                        "--qc", str(tmp_path / "qc.png"), "-q")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out", "qc.png"]


def test_skip_existing_finishes_a_nifti_folder_and_refuses_a_stranger(tmp_path, rng):
    nib = pytest.importorskip("nibabel")
    _nifti_folder(tmp_path / "in", rng, ["a.nii", "b.nii"])
    args = ["clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "6", "-q"]
    assert _run(*args)[0] == 0
    kept = (tmp_path / "out" / "a.nii").read_bytes()
    (tmp_path / "out" / "b.nii").unlink()
    code, out, err = _run(*args[:-1], "--skip-existing")
    assert code == 0, err
    assert "skipped 1 existing file(s)" in out and (tmp_path / "out" / "b.nii").is_file()
    assert (tmp_path / "out" / "a.nii").read_bytes() == kept
    nib.save(nib.Nifti1Image(np.ones((24, 20, 3), np.int16), np.eye(4)), tmp_path / "out" / "a.nii")
    code, _, err = _run(*args, "--skip-existing")
    assert code == 2 and "a.nii: exists but was not written by mri-noiselab" in err  # the only group left fails


def test_skip_existing_runs_on_workers_too(tmp_path, rng):
    pytest.importorskip("distributed")
    paths = write_series(tmp_path / "in", np.rint(phantom_volume(3, 32, 10.0, rng)[1]).astype(np.uint16))
    args = ["clean", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--sigma", "10", "-q"]
    assert _run(*args)[0] == 0
    (tmp_path / "out" / paths[0].name).unlink()
    code, _, err = _run(*args, "--skip-existing", "--workers", "1")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in paths]
