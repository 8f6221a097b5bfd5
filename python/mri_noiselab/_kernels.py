"""Access to the compiled kernels: the fastest build this CPU runs, and a plain message
when they are missing.

Set ``MRI_NOISELAB_KERNELS=baseline`` to use the portable build even where the
x86-64-v3 (AVX2, FMA) one would run. Both builds have the API of ``_core.pyi``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING

try:
    from mri_noiselab import _core as _baseline
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "mri_noiselab's compiled core (_core) is missing: install the package with "
        "'pip install .' (or a wheel) rather than importing it from the source tree"
    ) from exc


def _best() -> tuple[ModuleType, str]:
    if os.environ.get("MRI_NOISELAB_KERNELS", "auto") != "baseline" and _baseline.cpu_has_x86_64_v3():
        try:
            return importlib.import_module("mri_noiselab._core_v3"), "x86-64-v3"
        except ImportError:  # built without it (another CPU family or compiler)
            pass
    return _baseline, "baseline"


if TYPE_CHECKING:
    # Both builds have one API (_core.pyi): type checkers see the one whichever is loaded.
    _core = _baseline
    KERNELS: str
else:
    _core, KERNELS = _best()
    """The kernel module in use, and the name of its build ("x86-64-v3" or "baseline")."""

__all__ = ["KERNELS", "_core"]
