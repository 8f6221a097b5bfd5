"""Access to the compiled kernels: the fastest build this CPU runs, and a plain message
when they are missing.

Set ``MRI_NOISELAB_KERNELS=baseline`` to use the portable build even where the
x86-64-v3 (AVX2, FMA) one would run.
"""

from __future__ import annotations

import os
from types import ModuleType

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
            from mri_noiselab import _core_v3
        except ImportError:  # built without it (another CPU family or compiler)
            pass
        else:
            return _core_v3, "x86-64-v3"
    return _baseline, "baseline"


_core, KERNELS = _best()
"""The kernel module in use, and the name of its build ("x86-64-v3" or "baseline")."""

__all__ = ["KERNELS", "_core"]
