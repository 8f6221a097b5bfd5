"""Access to the compiled kernels: the fastest build this CPU runs, and a plain message
when they are missing.

The builds, fastest first: ``x86-64-v4`` (AVX-512), ``x86-64-v3`` (AVX2, FMA) and the
portable ``baseline``; all have the API of ``_core.pyi`` and give the same bits. Set
``MRI_NOISELAB_KERNELS`` to one of those names to use no build above it (``baseline``: the
portable one), or to ``auto`` (the default) for the best the CPU runs; any other value warns
and means ``auto``.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType
from typing import TYPE_CHECKING

try:
    from mri_noiselab import _core as _baseline
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "mri_noiselab's compiled core (_core) is missing: install the package with "
        "'pip install .' (or a wheel) rather than importing it from the source tree"
    ) from exc

#: The optional builds by CPU level, fastest first, and their modules.
BUILDS: dict[str, str] = {"x86-64-v4": "mri_noiselab._core_v4", "x86-64-v3": "mri_noiselab._core_v3"}


def _best() -> tuple[ModuleType, str]:
    wanted = os.environ.get("MRI_NOISELAB_KERNELS", "auto")
    names = list(BUILDS)
    if wanted not in ("auto", "baseline", *names):
        # A warning, not an error: an import error would reach the CLI as a traceback.
        warnings.warn(
            f"MRI_NOISELAB_KERNELS={wanted!r} names no kernel build (auto, baseline, {', '.join(names)}): "
            "using auto",
            RuntimeWarning,
            stacklevel=2,
        )
        wanted = "auto"
    allowed = [] if wanted == "baseline" else names[names.index(wanted) :] if wanted in names else names
    runs = set(_baseline.cpu_levels())
    for level in allowed:
        if level in runs:
            try:
                return importlib.import_module(BUILDS[level]), level
            except ImportError:  # built without it (another CPU family or compiler)
                pass
    return _baseline, "baseline"


if TYPE_CHECKING:
    # Every build has one API (_core.pyi): type checkers see the one whichever is loaded.
    _core = _baseline
    KERNELS: str
else:
    _core, KERNELS = _best()
    """The kernel module in use, and the name of its build ("x86-64-v4", "x86-64-v3" or "baseline")."""

__all__ = ["BUILDS", "KERNELS", "_core"]
