"""``python -m mri_noiselab``: the ``mri-noiselab`` command."""

from __future__ import annotations

import sys

from mri_noiselab.cli import main

if __name__ == "__main__":
    sys.exit(main())
