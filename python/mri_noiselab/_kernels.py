"""Access to the compiled kernels, with a plain message when they are missing."""

from __future__ import annotations

try:
    from mri_noiselab import _core
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "mri_noiselab's compiled core (_core) is missing: install the package with "
        "'pip install .' (or a wheel) rather than importing it from the source tree"
    ) from exc

__all__ = ["_core"]
