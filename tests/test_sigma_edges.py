"""Edge cases of sigma estimation: the chi closed forms for any coil count, degenerate and
extreme samples, integer (rounded) noise, argument ranges, and the DICOM decoders.

References are independent of the implementation: scipy's incomplete gamma function and
chi distribution, closed forms, and simulation with known sigma.
"""

from __future__ import annotations

import importlib.metadata
import io
import math
import time
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest
from scipy import special, stats

import mri_noiselab as nl
from mri_noiselab import chi
from mri_noiselab.cli import main
from mri_noiselab.dicom import DecoderMissingError, DicomError, read_file, synthetic_mr_image, write_dataset

TRANSFER_SYNTAXES = Path(__file__).parents[1].parent / "shared" / "realdata" / "transfer_syntaxes" / "In"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_exit_2(code: int, err: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mri-noiselab: error: "), err
    assert "Warning" not in err and "Traceback" not in err


def chi_noise(rng: np.random.Generator, sigma: float, coils: int, n: int) -> np.ndarray:
    return np.sqrt(np.sum(rng.normal(0.0, sigma, (n, 2 * coils)) ** 2, axis=1))


# --------------------------------------------------------------------------- chi closed forms


@pytest.mark.parametrize("coils", [1, 2, 3, 5, 19, 20, 21, 64, 1000, 10**4])
def test_chi_cdf_is_the_regularised_incomplete_gamma_function(coils):
    # M^2 / (2 sigma^2) is Gamma(N, 1): P(M <= x) = P(N, x^2 / (2 sigma^2)), scipy's gammainc.
    # The grid covers both tails, the switch at t = N + 1 and the edges of Temme's band.
    sigma = 3.0
    s = math.sqrt(coils)
    t = np.concatenate([
        np.geomspace(1e-300, 1e-3, 40),
        np.linspace(0.0, coils + 12 * s + 40, 1500),
        coils + np.linspace(-10, 10, 401) * s,
        coils * np.array([0.69, 0.7, 0.71, 1.29, 1.3, 1.31]),
    ])
    t = t[t >= 0]
    x = sigma * np.sqrt(2 * t)
    ref = special.gammainc(coils, 0.5 * (x / sigma) ** 2)  # t as chi_cdf sees it, to the last bit
    got = chi.chi_cdf(x, sigma, coils)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-15)
    tail = ref > 1e-250  # the lower tail keeps its relative precision too
    np.testing.assert_allclose(got[tail], ref[tail], rtol=1e-10)


@pytest.mark.parametrize("coils", [10**7, 2**32 - 1])
def test_chi_cdf_for_huge_coil_counts_is_fast_and_near_its_normal_limit(coils):
    # Wilson-Hilferty: (t/N)^(1/3) is normal with mean 1 - 1/(9N) and variance 1/(9N), to O(1/N).
    t = coils + np.linspace(-8, 8, 100_001) * math.sqrt(coils)
    start = time.perf_counter()
    got = chi.chi_cdf(np.sqrt(2 * t), 1.0, coils)
    took = time.perf_counter() - start
    c = 1 / (9 * coils)
    ref = stats.norm.cdf((np.cbrt(t / coils) - (1 - c)) / math.sqrt(c))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6)
    assert took < 10.0  # the per-coil loop it replaces needed ~N passes over x


def test_chi_cdf_edges_and_arguments():
    np.testing.assert_array_equal(chi.chi_cdf([-1.0, 0.0, np.inf, 1e300], 1e-300, 3), [0.0, 0.0, 1.0, 1.0])
    assert np.isnan(chi.chi_cdf(np.nan, 1.0))
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
            chi.chi_cdf(1.0, bad)
    with pytest.raises(ValueError, match="coils must be an integer >= 1 and at most 4294967295"):
        chi.chi_cdf(1.0, 1.0, 2**32)


@pytest.mark.parametrize("coils", [1, 2, 7, 31, 32, 33, 1000, 10**6, 2**32 - 1])
def test_chi_moments_match_closed_forms_for_any_coil_count(coils):
    sigma = 1.7
    n = float(coils)
    # E[M^2] = 2N sigma^2, E[M^4] = 4N(N+1) sigma^4, E[M^3] = (2N+1) E[M] sigma^2.
    assert chi.chi_moment(2, sigma, coils) == pytest.approx(2 * n * sigma**2, rel=1e-15)
    assert chi.chi_moment(4, sigma, coils) == pytest.approx(4 * n * (n + 1) * sigma**4, rel=1e-15)
    m1 = chi.chi_moment(1, sigma, coils)
    assert chi.chi_moment(3, sigma, coils) == pytest.approx((2 * n + 1) * m1 * sigma**2, rel=1e-14)
    if coils <= 10**6:  # scipy's chi mean: a difference of lgamma values, good to ~1e-10 there
        assert m1 == pytest.approx(stats.chi(2 * coils, scale=sigma).mean(), rel=1e-9)
    else:  # Gamma(N + 1/2) / Gamma(N) = sqrt(N) (1 - 1/(8N) + 1/(128 N^2) + ...)
        assert m1 == pytest.approx(sigma * math.sqrt(2 * n) * (1 - 1 / (8 * n) + 1 / (128 * n * n)), rel=1e-15)


def test_negative_chi_moments():
    # Rayleigh: E[1/M] = sqrt(pi/2) / sigma; E[M^-2] is infinite for N = 1, 1 / (2 sigma^2 (N - 1)) otherwise.
    assert chi.chi_moment(-1, 2.0, 1) == pytest.approx(math.sqrt(math.pi / 2) / 2.0, rel=1e-15)
    assert chi.chi_moment(-2, 2.0, 3) == pytest.approx(1 / (2 * 4.0 * 2), rel=1e-15)
    with pytest.raises(ValueError, match="infinite"):
        chi.chi_moment(-2, 1.0, 1)


# --------------------------------------------------------------------------- efficiency and minimum n


@pytest.mark.parametrize("coils", [1, 2, 8, 16])  # scipy's kurtosis loses digits beyond
def test_estimator_efficiencies_follow_from_the_chi_moments(coils):
    # Relative to the Cramer-Rao bound sigma^2 / (4 N n): mean(M)/beta has beta^2 / (4 N Var M),
    # std(M)/c has 1 / (N (kurtosis - 1)) (the variance of a sample sd is (kurtosis - 1) s^2 / (4n)).
    mean, var, _, excess = stats.chi(2 * coils).stats(moments="mvsk")
    assert chi.efficiency("mle", coils) == 1.0
    assert chi.efficiency("mean", coils) == pytest.approx(mean**2 / (4 * coils * var), rel=1e-9)
    assert chi.efficiency("std", coils) == pytest.approx(1 / (coils * (excess + 2)), rel=1e-9)


def test_std_efficiency_at_8_coils_is_006_and_the_help_says_so(capsys):
    assert chi.efficiency("std", 8) == pytest.approx(0.0624, abs=5e-4)
    assert main(["sigma", "--help"]) == 0
    assert "0.06 at N = 8" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(("method", "coils"), [("mle", 1), ("mle", 4), ("mean", 1), ("std", 1), ("std", 8)])
def test_the_smallest_sample_gives_sigma_to_10_percent(rng, method, coils):
    # n N efficiency >= 25: one standard error 1 / (2 sqrt(N n eff)) <= 10%.
    need = math.ceil(25 / (coils * chi.efficiency(method, coils)))
    documented = {("mle", 1): 25, ("std", 1): 57}  # README and docstrings
    assert documented.get((method, coils), need) == need
    values = chi_noise(rng, 3.0, coils, need)
    est = nl.estimate_sigma(values, estimator=method, coils=coils, warn=False)
    assert est.n == need
    with pytest.raises(nl.NoBackgroundError, match=rf"only {need - 1} background values.*at least {need} values"):
        nl.estimate_sigma(values[1:], estimator=method, coils=coils)


def test_one_voxel_is_refused():
    with pytest.raises(nl.NoBackgroundError, match="one value"):
        nl.estimate_sigma(np.array([[17.0]]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_constant_offset_is_no_noise(dtype):
    # A background zeroed by the scanner, then shifted by a tiny RescaleIntercept: not all zeros, one value.
    for values in (np.full(5000, 6e-5, dtype), np.full(5000, 1e300 if dtype == np.float64 else 1e30, dtype)):
        with pytest.raises(nl.NoBackgroundError, match=r"one value .*std = 0"):
            nl.estimate_sigma(values)
    spread = np.full(5000, 6e-5, dtype)
    spread[0] = 7e-5  # two values: a spread, however odd, is not refused as constant
    assert nl.estimate_sigma(spread, warn=False).n == 5000


def test_dicom_with_a_tiny_intercept_over_zeros_is_refused_in_one_line(tmp_path):
    zero = synthetic_mr_image(np.zeros((32, 32), np.uint16), RescaleIntercept="0.00006", RescaleSlope="1")
    write_dataset(zero, tmp_path / "in.dcm")
    code, out, err = run("sigma", str(tmp_path / "in.dcm"), "--roi", "0:16,0:16")
    assert_one_line_exit_2(code, err)
    assert "one value" in err and "--sigma" in err
    code, out, err = run("clean", str(tmp_path / "in.dcm"), "-o", str(tmp_path / "out.dcm"), "--roi", "0:16,0:16")
    assert_one_line_exit_2(code, err)
    assert not (tmp_path / "out.dcm").exists()


def test_a_one_voxel_roi_on_the_command_line(tmp_path, rng):
    write_dataset(synthetic_mr_image(np.round(rng.rayleigh(10.0, (32, 32))).astype(np.uint16)), tmp_path / "in.dcm")
    code, out, err = run("sigma", str(tmp_path / "in.dcm"), "--roi", "3:4,3:4")
    assert_one_line_exit_2(code, err)
    code, out, err = run("sigma", str(tmp_path / "in.dcm"), "--roi", "0:4,0:5")
    assert_one_line_exit_2(code, err)
    assert "only 20 background values" in err and "at least 25" in err


# --------------------------------------------------------------------------- extreme scales


@pytest.mark.parametrize("scale", [1e200, 1e-200, 2.0**1000, 2.0**-1000])
def test_extreme_scales_give_the_scaled_sigma(rng, scale):
    values = rng.rayleigh(1.0, 20_000)
    want = math.sqrt(np.mean(values**2) / 2)  # the MLE at unit scale
    est = nl.estimate_sigma(values * scale, warn=False)
    assert est.sigma == pytest.approx(want * scale, rel=1e-12)
    assert est.mean == pytest.approx(np.mean(values) * scale, rel=1e-12)
    assert est.std == pytest.approx(np.std(values) * scale, rel=1e-10)
    assert est.warnings == ()


def test_sigma_whose_square_overflows_is_refused():
    image = np.ones((8, 8))
    with pytest.raises(ValueError, match="2 N sigma\\^2 overflows"):
        nl.correct(image, 1e200)
    with pytest.raises(ValueError, match="2 N sigma\\^2 overflows"):
        nl.correct(image, np.full(8, 1e160))
    # Just below the limit every voxel is clamped: the right limit, all zeros (no NaN).
    limit = math.sqrt(np.finfo(np.float64).max / 2) * 0.99
    np.testing.assert_array_equal(nl.correct(image, limit, f_size=1), 0.0)


def test_cli_sigma_1e200_writes_nothing(tmp_path, rng):
    write_dataset(synthetic_mr_image(np.round(rng.rayleigh(10.0, (32, 32))).astype(np.uint16)), tmp_path / "in.dcm")
    code, out, err = run("clean", str(tmp_path / "in.dcm"), "-o", str(tmp_path / "out.dcm"), "--sigma", "1e200")
    assert_one_line_exit_2(code, err)
    assert "overflows" in err
    assert not (tmp_path / "out.dcm").exists()


@pytest.mark.parametrize("method", ["moments", "pointwise", "lmmse"])
@pytest.mark.parametrize("value", [1e-20, 3e-23, 1e-40])
def test_tiny_float32_amplitudes_keep_their_precision(method, value):
    # A constant image: <M^2> = M^2, so A^2 = M^2 - 2 sigma^2, and A its root, rounded to
    # float32. A^2 is below FLT_MIN here, where a float square root loses bits or gives 0.
    m = np.float32(value)
    sigma = float(m) / 10
    image = np.full((12, 12), m, np.float32)
    out = nl.correct(image, sigma, f_size=3, method=method)
    a2 = float(m) ** 2 - 2 * sigma**2
    if method == "lmmse":  # K = 0 (no variance), and the root's (s/2)^2 = sigma^2 (M^2 - sigma^2) / 9
        a2 = (a2 + math.hypot(a2, math.sqrt(sigma**2 * (float(m) ** 2 - sigma**2) / 9))) / 2
    want = np.full(image.shape, math.sqrt(a2), np.float32)
    assert out.dtype == np.float32
    np.testing.assert_array_max_ulp(out, want, maxulp=1)


# --------------------------------------------------------------------------- argument ranges


def test_coil_and_thread_counts_beyond_the_kernels_range_are_refused_in_python():
    values = np.random.default_rng(1).rayleigh(1.0, 1000)
    with pytest.raises(ValueError, match="coils must be an integer >= 1 and at most 4294967295"):
        nl.estimate_sigma(values, coils=2**32)
    with pytest.raises(ValueError, match="at most 2147483647"):
        nl.estimate_sigma(values, num_threads=2**31)
    before = nl.get_num_threads()
    with pytest.raises(ValueError, match="at most 2147483647"):
        nl.set_num_threads(2**40)
    assert nl.get_num_threads() == before
    assert nl.estimate_sigma(values, warn=False).n == 1000  # later calls still work
    nl.set_num_threads(2**31 - 1)  # the largest count is accepted: the kernels never start more than they need
    try:
        assert nl.estimate_sigma(values, warn=False).n == 1000
    finally:
        nl.set_num_threads(None)


@pytest.mark.parametrize(
    ("option", "value", "words"), [("--coils", "4294967296", "coils"), ("--threads", "2147483648", "num_threads")]
)
def test_cli_ranges_are_one_line_errors(tmp_path, rng, option, value, words):
    write_dataset(synthetic_mr_image(np.round(rng.rayleigh(10.0, (32, 32))).astype(np.uint16)), tmp_path / "in.dcm")
    code, out, err = run("clean", str(tmp_path / "in.dcm"), "-o", str(tmp_path / "o.dcm"), "--roi", "0:10,0:10",
                         option, value)
    assert_one_line_exit_2(code, err)
    assert words in err and "C++" not in err and "(self" not in err
    assert not (tmp_path / "o.dcm").exists()


@pytest.mark.parametrize("coils", [10**7, 2**32 - 1])
def test_huge_coil_counts_estimate_in_bounded_time(rng, coils):
    # sqrt of a chi-square with 2N degrees of freedom: background noise of N coils, sigma = 1.
    values = np.sqrt(rng.chisquare(2 * coils, 20_000))
    start = time.perf_counter()
    est = nl.estimate_sigma(values, coils=coils)
    assert time.perf_counter() - start < 10.0
    assert est.sigma == pytest.approx(1.0, abs=4 / (2 * math.sqrt(coils * 20_000)))
    assert est.warnings == ()
    # beta = sqrt(2N) (1 - 1/(8N) + ...) and Var(M) = 1/2 - 1/(16N) + ... (sigma = 1).
    n = float(coils)
    want = math.sqrt(2 * n) * (1 - 1 / (8 * n)) / math.sqrt(0.5 - 1 / (16 * n))
    assert est.expected_ratio == pytest.approx(want, rel=1e-12)


# --------------------------------------------------------------------------- integer (rounded) noise


def _rounded_moment_fit_se(sigma: float, coils: int, zeros: bool, n: int) -> float:
    """sd of the sigma that matches mean(k^2) of n rounded values (delta method, scipy's chi)."""
    k = np.arange(0.0 if zeros else 1.0, math.ceil(sigma * (math.sqrt(2 * coils) + 14)))

    def second(s: float) -> tuple[float, float]:
        d = stats.chi(2 * coils, scale=s)
        p = d.cdf(k + 0.5) - d.cdf(k - 0.5)
        p /= p.sum()
        return float(p @ k**2), float(p @ k**4)

    m2, m4 = second(sigma)
    h = 1e-4 * sigma
    slope = (second(sigma + h)[0] - second(sigma - h)[0]) / (2 * h)
    return math.sqrt((m4 - m2 * m2) / n) / slope


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("coils", [1, 4])
@pytest.mark.parametrize("keep_zeros", [False, True])
def test_rounded_noise_gives_sigma_within_its_standard_error(sigma, coils, keep_zeros):
    rng = np.random.default_rng(int(1000 * sigma) + 10 * coils + keep_zeros)
    n = 20_000
    stored = np.round(chi_noise(rng, sigma, coils, n)).astype(np.uint16)
    est = nl.estimate_sigma(stored, coils=coils, exclude_zeros=not keep_zeros, warn=False)
    used = stored if keep_zeros else stored[stored > 0]
    se = _rounded_moment_fit_se(sigma, coils, keep_zeros, used.size)
    assert abs(est.sigma - sigma) <= 3 * se + 0.005 * sigma, (est.sigma, se)
    assert est.n == used.size
    assert est.warnings == ()
    assert est.rounded
    if sigma == 0.5 and coils == 1:
        # The plain formula on the same values is far off: the test can fail.
        plain = math.sqrt(np.mean(used.astype(float) ** 2) / 2)
        assert abs(plain - sigma) > 10 * se + 0.05 * sigma


@pytest.mark.parametrize("method", ["mean", "std"])
def test_rounded_fit_serves_every_estimator(method):
    rng = np.random.default_rng(7)
    sigma, coils, n = 1.5, 1, 40_000
    stored = np.round(chi_noise(rng, sigma, coils, n)).astype(np.int16)
    est = nl.estimate_sigma(stored, estimator=method, warn=False)
    assert est.rounded
    # Twice the continuous standard error of that estimator (rounding loses some information).
    se = 1 / (2 * math.sqrt(n * chi.efficiency(method, coils)))
    assert est.sigma == pytest.approx(sigma, rel=2 * 3 * se)


def test_std_refuses_integer_data_whose_spread_no_longer_tells_sigma():
    stored = np.round(chi_noise(np.random.default_rng(3), 0.4, 8, 20_000)).astype(np.uint16)
    with pytest.raises(ValueError, match="use 'mle'"):
        nl.estimate_sigma(stored, estimator="std", coils=8)
    assert nl.estimate_sigma(stored, coils=8, warn=False).sigma == pytest.approx(0.4, rel=0.02)


def test_real_valued_and_large_sigma_data_keep_the_plain_estimate(rng):
    values = chi_noise(rng, 0.5, 1, 20_000)  # not integers
    est = nl.estimate_sigma(values, warn=False)
    assert not est.rounded and est.sigma == pytest.approx(math.sqrt(np.mean(values**2) / 2), rel=1e-14)
    stored = np.round(chi_noise(rng, 80.0, 1, 20_000))  # integers, but sigma above 50
    est = nl.estimate_sigma(stored, warn=False)
    kept = stored[stored > 0]
    assert not est.rounded and est.sigma == pytest.approx(math.sqrt(np.mean(kept**2) / 2), rel=1e-12)


def test_rounded_noise_quality_report_is_clean_and_its_expected_ratio_is_the_rounded_one(rng):
    stored = np.round(chi_noise(rng, 0.5, 1, 50_000)).astype(np.uint16)
    kept = stored[stored > 0].astype(float)
    est = nl.estimate_sigma(stored, warn=False)
    assert est.warnings == ()
    # mean/std of round(M) given round(M) >= 1 at the fitted sigma, from scipy's chi.
    d = stats.chi(2, scale=est.sigma)
    k = np.arange(1.0, 20.0)
    p = d.cdf(k + 0.5) - d.cdf(k - 0.5)
    p /= p.sum()
    mean = p @ k
    assert est.expected_ratio == pytest.approx(mean / math.sqrt(p @ (k - mean) ** 2), rel=1e-9)
    assert est.ratio == pytest.approx(kept.mean() / kept.std(), rel=1e-6)


# --------------------------------------------------------------------------- decoders


def _reference_pixels() -> np.ndarray:
    return pydicom.dcmread(TRANSFER_SYNTAXES / "1.dcm").pixel_array


# Transfer syntaxes whose pixels may differ from the source's.
LOSSY = {pydicom.uid.JPEGBaseline8Bit, pydicom.uid.JPEGExtended12Bit, pydicom.uid.JPEGLSNearLossless,
         pydicom.uid.JPEG2000, pydicom.uid.HTJ2K}


@pytest.mark.parametrize("name", [f"{i}.dcm" for i in range(1, 10)])
def test_every_transfer_syntax_decodes_to_the_uncompressed_pixels(name):
    if not TRANSFER_SYNTAXES.is_dir():
        pytest.skip(f"real scanner data not available at {TRANSFER_SYNTAXES}")
    path = TRANSFER_SYNTAXES / name
    ts = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    reference = _reference_pixels()
    assert pydicom.dcmread(TRANSFER_SYNTAXES / "1.dcm").file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    stack = read_file(path)
    assert stack.shape == (1, *reference.shape)
    if ts in LOSSY:
        diff = np.abs(stack.stored[0].astype(np.int64) - reference.astype(np.int64))
        assert diff.mean() <= 0.01 * float(np.ptp(reference))
    else:
        np.testing.assert_array_equal(stack.stored[0], reference)


def test_the_codecs_extra_holds_the_jpeg_lossless_decoder():
    requires = importlib.metadata.requires("mri-noiselab") or []
    codecs = [r.split(";")[0].replace(" ", "") for r in requires if 'extra == "codecs"' in r]
    assert any(r.startswith("pylibjpeg-libjpeg") for r in codecs), codecs
    from pydicom.pixels import get_decoder

    assert get_decoder(pydicom.uid.JPEGLosslessSV1).is_available


def test_missing_decoder_names_the_extra_and_what_pydicom_lacks(monkeypatch):
    from pydicom.data import get_testdata_file
    from pydicom.pixels import get_decoder

    decoder = get_decoder(pydicom.uid.JPEGLSLossless)
    monkeypatch.setattr(decoder, "_available", {})
    with pytest.raises(DecoderMissingError) as info:
        read_file(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    text = str(info.value)
    assert 'pip install "mri-noiselab[codecs]"' in text and "pydicom's plugins for it need: gdcm" in text
    assert "\n" not in text


def test_decoder_errors_keep_every_line(monkeypatch):
    from pydicom.data import get_testdata_file

    def broken(self: pydicom.Dataset) -> np.ndarray:
        raise RuntimeError("Unable to decompress the pixel data:\n\tplugin A - bad marker\n\tplugin B - needs foo>=2")

    monkeypatch.setattr(pydicom.Dataset, "pixel_array", property(broken))
    with pytest.raises(DicomError) as info:
        read_file(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    text = str(info.value)
    assert "plugin A - bad marker" in text and "plugin B - needs foo>=2" in text and "\n" not in text
