"""The docstrings' Examples run and print what they show, and every public name has one.

The examples run as doctests against the installed package (a wheel in CI, not the source
tree), each with its module's globals, under pytest's warning filters: a stray warning fails.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import io
import pkgutil

import pytest

import mri_noiselab as nl

# The Python modules: not the compiled kernels, which only _kernels may load (the x86-64-v3 build
# would stop a CPU without AVX2 with an illegal instruction).
MODULES = sorted(m.name for m in pkgutil.walk_packages(nl.__path__, "mri_noiselab.")
                 if not m.name.startswith("mri_noiselab._core"))
PUBLIC = sorted(name for name in nl.__all__ if name != "__version__")


def _examples(module_name: str) -> list[doctest.DocTest]:
    """The doctests of a module's own objects (re-exported ones are tested where they are defined)."""
    module = importlib.import_module(module_name)
    return [t for t in doctest.DocTestFinder(exclude_empty=True).find(module) if t.examples]


@pytest.mark.parametrize("module_name", ["mri_noiselab", *MODULES])
def test_examples_in_docstrings_run_and_print_what_they_show(module_name):
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    for test in _examples(module_name):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_has_an_examples_section(name):
    obj = getattr(nl, name)
    doc = inspect.getdoc(obj) or ""
    assert "\nExamples\n--------\n" in doc, f"mri_noiselab.{name} has no numpy-style Examples section"
    assert doctest.DocTestParser().get_examples(doc), f"mri_noiselab.{name}'s Examples hold no >>> example"
    # Its doctest is found, so run, where it is defined.
    assert any(t.name.endswith(f".{obj.__qualname__}") for t in _examples(obj.__module__))


def test_the_examples_are_many():
    # A guard against a finder that silently finds nothing (a wheel without docstrings, -OO).
    assert sum(len(t.examples) for m in MODULES for t in _examples(m)) >= 100
