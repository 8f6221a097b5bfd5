"""Every how-to runs to the end with a non-interactive matplotlib backend, in a scratch folder."""

import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

HOWTO = Path(__file__).resolve().parents[1] / "howto"


@pytest.mark.parametrize("script", sorted(p.name for p in HOWTO.glob("howto_*.py")))
def test_howto_runs(tmp_path, script):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-W", "error", str(HOWTO / script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, proc.stderr
    outputs = sorted((tmp_path / Path(script).stem / "output").rglob("*.dcm"))
    assert outputs
    for path in outputs:
        assert pydicom.dcmread(path).ImageType[0] == "DERIVED"
    assert (tmp_path / Path(script).stem / "qc.png").is_file()


def test_both_howtos_exist():
    assert {"howto_clean_dicom.py", "howto_clean_series.py"} <= {p.name for p in HOWTO.glob("howto_*.py")}
