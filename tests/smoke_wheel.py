"""Smoke test of an installed wheel (tests/run_all.sh and cibuildwheel run it; not a pytest module).

Run from outside the source tree, so that the import finds the installed package.
"""

import sys
import warnings
from importlib.metadata import version

import numpy as np

warnings.simplefilter("error")
import mri_noiselab as nl

assert nl.__file__.startswith(sys.prefix), f"imported {nl.__file__}, not the installed wheel"
assert nl.__version__ == version("mri-noiselab"), (nl.__version__, version("mri-noiselab"))
assert nl._core.has_openmp(), "the wheel was built without OpenMP"
runtime = "not located on this platform"  # macOS and Windows (cibuildwheel) have no /proc
if sys.platform.startswith("linux"):
    # The OpenMP runtime in use must be the copy auditwheel put into the wheel.
    with open("/proc/self/maps") as maps:
        gomp = {line.split()[-1] for line in maps if "libgomp" in line}
    assert gomp and all(p.startswith(sys.prefix) for p in gomp), f"libgomp loaded from {gomp}"
    runtime = gomp.pop()

# subtract_noise against numpy: sigma = std(bg) / 0.655, A = sqrt(<M^2> - 2 sigma^2) with
# a 3x3 box mean under scipy's "reflect" boundary (numpy's "symmetric" pad).
bg = np.random.default_rng(5).rayleigh(1.0, 4096)
image = np.linspace(4.0, 6.0, 40 * 30).reshape(40, 30)
sigma = bg.std() / 0.655
m2 = np.pad(image**2, 1, mode="symmetric")
box = sum(m2[i : i + 40, j : j + 30] for i in range(3) for j in range(3)) / 9
expected = np.sqrt(box - 2 * sigma**2)
for np_type, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
    out = nl.subtract_noise(image, bg, f_size=3, np_type=np_type)
    assert out.dtype == np_type, out.dtype
    np.testing.assert_allclose(out, expected, rtol=rtol)
print(f"  mri_noiselab {nl.__version__} from the wheel; subtract_noise matches numpy; OpenMP runtime {runtime}")
