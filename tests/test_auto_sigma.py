"""The automatic background on hard cases: right within 20% of a careful background box, or a refusal.

Synthetic heads carry a known sigma; real scanner series (../shared/realdata) are compared
with a background box chosen by eye, its coil count fitted from the box's own mean/std
with scipy's chi distribution (not with the code under test).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import rician
from scipy import stats

from mri_noiselab.background import find_background
from mri_noiselab.chi import median_sigma
from mri_noiselab.noise import NoBackgroundError

SHAPE = (20, 128, 128)
SIGMA = 10.0
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def _grid(shape: tuple[int, ...] = SHAPE) -> tuple[np.ndarray, ...]:
    return tuple(np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij"))


def head() -> np.ndarray:
    """Truth in units of A_max: an ellipsoid with a rim, textured interior and a dark ventricle."""
    z, y, x = _grid()
    r = (x / 0.7) ** 2 + (y / 0.8) ** 2 + (z / 1.6) ** 2
    t = np.zeros(SHAPE)
    t[r < 1] = 0.6
    inner = r < 0.8
    t[inner] = 0.8 + 0.15 * np.sin(9 * x[inner]) * np.cos(7 * y[inner])
    t[((x / 0.12) ** 2 + (y / 0.3) ** 2) < 1] = 0.3
    return t


def magnitude(truth: np.ndarray, snr: float, coils: int, rng: np.random.Generator, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """Sum of squares of `coils` complex channels, the signal on the first; noise sd SIGMA * scale."""
    s = SIGMA * np.asarray(scale)
    a = truth * snr * SIGMA
    total = (a + rng.normal(size=a.shape) * s) ** 2 + (rng.normal(size=a.shape) * s) ** 2
    for _ in range(coils - 1):
        total += (rng.normal(size=a.shape) * s) ** 2 + (rng.normal(size=a.shape) * s) ** 2
    return np.sqrt(total)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261201)


@pytest.mark.parametrize("coils", [1, 2, 4, 8, 16, 32])
@pytest.mark.parametrize("snr", [1, 5, 20])
def test_coil_count_is_fitted_and_sigma_is_right(coils: int, snr: float, rng: np.random.Generator) -> None:
    found = find_background(magnitude(head(), snr, coils, rng))
    assert found.coils == coils and found.coils_fitted
    # Hundreds of thousands of voxels: 3% covers faint rim voxels that pass as noise at SNR 1.
    assert found.sigma == pytest.approx(SIGMA, rel=0.03)
    assert found.warnings == ()


def test_given_coil_count_that_the_data_contradict_is_refused(rng: np.random.Generator) -> None:
    with pytest.raises(NoBackgroundError, match="fits 8"):
        find_background(magnitude(head(), 20, 8, rng), coils=1)


def test_zero_filled_background_is_refused(rng: np.random.Generator) -> None:
    z, y, x = _grid()
    image = np.round(magnitude(head(), 20, 1, rng))
    image[(x / 0.7) ** 2 + (y / 0.8) ** 2 + (z / 1.6) ** 2 > 1.1] = 0  # the scanner zeroes all but the head
    with pytest.raises(NoBackgroundError, match="--roi.*--sigma"):
        find_background(image)


def test_zeroed_corners_of_a_circular_field_of_view_leave_a_usable_ring(rng: np.random.Generator) -> None:
    _, y, x = _grid()
    image = magnitude(head(), 20, 1, rng)
    image[x**2 + y**2 > 1] = 0
    assert find_background(image).sigma == pytest.approx(SIGMA, rel=0.03)


def test_image_cropped_to_the_anatomy_is_refused(rng: np.random.Generator) -> None:
    for coils in (1, 8):
        with pytest.raises(NoBackgroundError):
            find_background(magnitude(head(), 20, coils, rng)[:, 30:98, 30:98])


def _box_sigma(image: np.ndarray, box: tuple[slice, ...]) -> float:
    v = image[box]
    return math.sqrt(float(np.mean(v[v > 0] ** 2)) / 2)


def test_mild_noise_ramp_is_averaged_with_a_warning(rng: np.random.Generator) -> None:
    _, _, x = _grid()
    image = magnitude(head(), 20, 1, rng, 1 + 0.3 * (x + 1) / 2)
    found = find_background(image)
    assert any("non-stationary" in w for w in found.warnings)
    for box in ((slice(None), slice(0, 12), slice(0, 12)), (slice(None), slice(0, 12), slice(-12, None))):
        assert found.sigma == pytest.approx(_box_sigma(image, box), rel=0.2)


def test_strong_noise_ramp_is_refused(rng: np.random.Generator) -> None:
    _, _, x = _grid()
    with pytest.raises(NoBackgroundError, match="varies"):
        find_background(magnitude(head(), 20, 1, rng, 1 + (x + 1) / 2))


def test_central_noise_bump_keeps_the_background_level(rng: np.random.Generator) -> None:
    _, y, x = _grid()
    image = magnitude(head(), 20, 1, rng, 1 + np.exp(-(x**2 + y**2) / (2 * 0.3**2)))
    corner = (slice(None), slice(0, 12), slice(0, 12))
    assert find_background(image).sigma == pytest.approx(_box_sigma(image, corner), rel=0.2)


@pytest.mark.parametrize("strength", [0.1, 0.03])
def test_ghosts_do_not_move_sigma(strength: float, rng: np.random.Generator) -> None:
    truth = head()
    truth = truth + strength * np.roll(truth, SHAPE[1] // 2, axis=1)  # an N/2 ghost along the phase axis
    image = magnitude(truth, 20, 1, rng)
    side = (slice(None), slice(40, 88), slice(0, 12))  # beside the head, away from the wrapped ghost
    assert find_background(image).sigma == pytest.approx(_box_sigma(image, side), rel=0.2)


@pytest.mark.parametrize(
    "image",
    [np.full(SHAPE, 7.0), (np.random.default_rng(0).random(SHAPE) > 0.5).astype(float)],
    ids=["constant", "zero-or-one"],
)
def test_images_without_noise_raise_no_background(image: np.ndarray) -> None:
    with pytest.raises(NoBackgroundError):
        find_background(image)


def test_huge_values_do_not_overflow(rng: np.random.Generator) -> None:
    scale = 1e70  # M^4 would overflow float64
    found = find_background(magnitude(head(), 20, 1, rng) * scale)
    assert found.sigma / scale == pytest.approx(SIGMA, rel=0.03)


@pytest.mark.parametrize("coils", [1, 4])
def test_median_sigma_against_scipy_and_its_standard_error_by_simulation(coils):
    """The σ that compares the volumes of a 4-D image: scipy's chi median, and the spread it states."""
    rng = np.random.default_rng(7)
    law = stats.chi(2 * coils, scale=SIGMA)
    x = law.rvs(100_000, random_state=rng)
    sigma, se = median_sigma(x, coils)
    assert sigma == pytest.approx(float(np.median(x)) / stats.chi(2 * coils).median(), rel=1e-9)
    assert sigma == pytest.approx(SIGMA, rel=5 * se)
    # Rounded noise (integers) still gives σ: its median is interpolated within its unit bin.
    assert median_sigma(np.rint(law.rvs(100_000, random_state=rng) * 0.3), coils)[0] == pytest.approx(0.3 * SIGMA, rel=0.02)
    logs = [math.log(median_sigma(law.rvs(2000, random_state=rng), coils)[0]) for _ in range(400)]
    assert float(np.std(logs)) == pytest.approx(median_sigma(x[:2000], coils)[1], rel=0.12)
    # 2% of the voxels with signal (A three times the noise's RMS) move the median by little, the mean
    # square (the MLE) by a lot.
    signal = rician(np.full(2000, 3 * SIGMA * math.sqrt(2 * coils)), SIGMA, rng, coils)
    mixed = np.concatenate([x[:98_000], signal])
    assert median_sigma(mixed, coils)[0] / SIGMA - 1 < 0.03 < math.sqrt(np.mean(mixed**2) / (2 * coils)) / SIGMA - 1


# ----------------------------------------------------------------------------- real scanners


def _series(name: str) -> list[np.ndarray]:
    if not REALDATA.is_dir():
        pytest.skip(f"real scanner data not found at {REALDATA} (absent outside the development tree)")
    from mri_noiselab.dicom import read_source

    return [np.ascontiguousarray(s.magnitude()) for s in read_source(REALDATA / name).stacks]


def _chi_box_sigma(values: np.ndarray) -> float:
    """sigma of a background box: coils from the box's own mean/std (scipy's chi), then the MLE."""
    v = values[values > 0].astype(np.float64)
    ratio = v.mean() / v.std()
    coils = min(range(1, 65), key=lambda n: abs(stats.chi(2 * n).mean() / stats.chi(2 * n).std() - ratio))
    return math.sqrt(float(np.mean(v * v)) / (2 * coils))


@pytest.mark.parametrize(
    ("name", "box"),
    [
        # Corners outside the head in every slice or frame; exact zeros (partial zero filling) left out.
        ("siemens_xa30/5_anat-T1w_acq-tfl", (slice(None), slice(0, 8), slice(120, 128))),
        ("siemens_xa30/7_func-bold_task-fa_run-1", (slice(None), slice(0, 8), slice(56, 64))),
        ("enhanced/Siemens/XA10", (slice(None), slice(0, 8), slice(0, 8))),
    ],
)
def test_real_series_with_a_noise_background_get_sigma_within_20_percent(name: str, box: tuple[slice, ...]) -> None:
    for image in _series(name)[:3]:
        found = find_background(image)
        assert found.sigma == pytest.approx(_chi_box_sigma(image[box]), rel=0.2)


@pytest.mark.parametrize(
    "name",
    [
        "ge/05_3D_Ax_T1_MP_RAGE_R22",  # background zero-filled; dark structures inside the object
        "ge/01_Ax_DWI_TENSOR_R2",  # corners all zero, no Rayleigh region
        "siemens_xa30/8_gre_field_mapping",  # background mostly zeros with sparse large values
        "siemens_xa30/25_asl_2d_tra",
    ],
)
def test_real_series_without_a_noise_background_are_refused(name: str) -> None:
    for image in _series(name)[:3]:
        with pytest.raises(NoBackgroundError, match="--sigma"):
            find_background(image)


def _mosaic_strips(image: np.ndarray) -> np.ndarray:
    """Beside the head in each tile of the mosaic's first row of slices (64x64 tiles)."""
    rows = image[:, 24:44, :]
    return np.concatenate([rows[:, :, x : x + 6] for x in range(0, image.shape[-1], 64)] +
                          [rows[:, :, x - 6 : x] for x in range(64, image.shape[-1] + 1, 64)], axis=-1)


# (series, the careful background sample of its stacks, or None where the series has none)
CLI_CASES = [
    ("siemens_xa30/5_anat-T1w_acq-tfl", lambda m: m[:, 0:8, 120:128]),
    ("siemens_xa30/7_func-bold_task-fa_run-1", lambda m: m[:, 0:8, 56:64]),
    ("enhanced/Siemens/XA10", lambda m: m[:, 0:8, 0:8]),
    ("transfer_syntaxes/In", _mosaic_strips),
    ("ge/05_3D_Ax_T1_MP_RAGE_R22", None),
    ("ge/01_Ax_DWI_TENSOR_R2", None),
    ("siemens_xa30/8_gre_field_mapping", None),
    ("siemens_xa30/25_asl_2d_tra", None),
    ("bits12/In", None),  # one series in two pixel formats (signed and unsigned 12-bit): refused
]


@pytest.mark.parametrize(("name", "box"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_default_run_on_real_series_is_right_or_refuses(name: str, box, tmp_path: Path) -> None:
    """`mri-noiselab clean SRC -o DST`, no options: σ within 20% of the box, or exit 2 and nothing written."""
    import io
    import re

    from mri_noiselab.cli import main

    if not REALDATA.is_dir():
        pytest.skip(f"real scanner data not found at {REALDATA} (absent outside the development tree)")
    out, err = io.StringIO(), io.StringIO()
    code = main(["clean", str(REALDATA / name), "-o", str(tmp_path / "out")], out=out, err=err)
    if box is None:
        assert code == 2, out.getvalue()
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mri-noiselab: error: ")
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))
        return
    assert code == 0, err.getvalue()
    printed = [float(m) for m in re.findall(r"σ = ([0-9.e+-]+)", out.getvalue())]
    assert len(printed) == 1  # one σ per acquisition
    reference = _chi_box_sigma(np.concatenate([box(s).ravel() for s in _series(name)]))
    assert printed[0] == pytest.approx(reference, rel=0.2)
