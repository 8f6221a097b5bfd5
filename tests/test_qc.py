"""QC figure: slices with their residual, parameters in the title, histograms, pixel aspect, radiological view."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dicom_helpers import phantom_volume, write_series
from scipy import stats

from mri_noiselab.chi import chi_pdf
from mri_noiselab.derivation import Derivation
from mri_noiselab.dicom import read_file, synthetic_mr_image, write_dataset
from mri_noiselab.qc import qc_figure, save_qc
from mri_noiselab.roi import corner_rois, roi_mask

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def _suptitle(fig: object) -> str:
    """The figure's title (Figure.get_suptitle exists from matplotlib 3.8; the floor is older)."""
    return str(fig._suptitle.get_text())  # type: ignore[attr-defined]


@pytest.mark.parametrize("coils", [1, 2, 4])
def test_chi_pdf_matches_scipy(coils):
    m = np.linspace(0, 120, 50)
    np.testing.assert_allclose(chi_pdf(m, 17.0, coils), stats.chi(2 * coils, scale=17.0).pdf(m), rtol=1e-12, atol=1e-300)
    if coils == 1:
        np.testing.assert_allclose(chi_pdf(m, 17.0), stats.rayleigh(scale=17.0).pdf(m), rtol=1e-12)


@pytest.fixture
def images(rng):
    """Eight slices of 64 x 48 (not square: a transposed display changes the shape), corrected by 2 sigma^2."""
    _, noisy = phantom_volume(8, 64, 10.0, rng)
    noisy = noisy[:, :, :48]
    corrected = np.sqrt(np.maximum(noisy**2 - 2 * 10.0**2, 0))
    return noisy, corrected, roi_mask(corner_rois(noisy.shape, 8), noisy.shape)


def _image_rows(fig):
    """The image axes, three (original, corrected, residual) per row, in drawing order."""
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) % 3 == 0
    return [axes[i : i + 3] for i in range(0, len(axes), 3)]


def _titled(fig, start):
    (ax,) = [ax for ax in fig.axes if ax.get_title().startswith(start)]
    return ax


def test_quarter_middle_and_three_quarter_slices_in_rows_with_their_residual(images):
    noisy, corrected, mask = images
    fig = qc_figure(noisy, corrected, mask, 10.0)
    rows = _image_rows(fig)
    assert len(rows) == 3
    assert len(fig.axes) == 9 + 2 + 2  # nine images, two colorbars, two histograms
    assert [ax.get_title() for ax in rows[0]] == ["Original", "Corrected", "Residual: original − corrected"]
    clims = {ax.images[0].get_clim() for row in rows for ax in row[:2]}
    assert len(clims) == 1  # one grey window for original and corrected
    for row, k in zip(rows, (2, 4, 6)):
        assert row[0].get_ylabel() == f"slice {k + 1} of 8"
        np.testing.assert_array_equal(row[0].images[0].get_array(), noisy[k])
        np.testing.assert_array_equal(row[1].images[0].get_array(), corrected[k])
        np.testing.assert_allclose(row[2].images[0].get_array(), noisy[k] - corrected[k], rtol=0, atol=1e-12)
        low, high = row[2].images[0].get_clim()
        assert low == -high > -np.inf and row[2].images[0].get_cmap().name == "RdBu_r"
        assert row[0].collections and row[1].collections  # the background outlined


def test_chosen_slices_and_a_single_image(images):
    noisy, corrected, _ = images
    rows = _image_rows(qc_figure(noisy, corrected, slices=[7, 0]))
    assert [row[0].get_ylabel() for row in rows] == ["slice 8 of 8", "slice 1 of 8"]
    np.testing.assert_array_equal(rows[0][0].images[0].get_array(), noisy[7])
    fig = qc_figure(noisy[3], corrected[3])
    (row,) = _image_rows(fig)
    assert row[0].get_ylabel() == "" and len(fig.axes) == 3 + 2
    np.testing.assert_allclose(row[2].images[0].get_array(), noisy[3] - corrected[3], atol=1e-12)
    for bad in ([8], [-1], []):
        with pytest.raises(ValueError, match="slices"):
            qc_figure(noisy, corrected, slices=bad)


def test_the_title_states_sigma_method_window_coils_and_estimator(images):
    noisy, corrected, mask = images
    title = _suptitle(qc_figure(noisy, corrected, mask, derivation=Derivation("lmmse", 12.5, (1, 9, 9), 4, "mle")))
    for part in ("σ = 12.5 stored units", "estimated, mle", "method lmmse", "window 1x9x9", "coils 4"):
        assert part in title
    title = _suptitle(qc_figure(noisy, corrected, derivation=Derivation("pointwise", (10.0, 20.0), (1, 1, 1), 1)))
    for part in ("σ = 10 stored units (given; volume 1 of 2)", "method pointwise", "window none (pointwise)", "coils 1"):
        assert part in title
    # No sigma given: the Rayleigh MLE sqrt(<M^2> / 2) of the background, said so.
    title = _suptitle(qc_figure(noisy, corrected, mask))
    assert f"σ = {np.sqrt(np.mean(noisy[mask] ** 2) / 2):.4g} stored units (MLE of the background)" in title
    assert "method" not in title and "coils 1" in title


@pytest.mark.parametrize(("sigma", "coils", "derivation"), [
    (10.0, None, None),
    (None, None, Derivation("moments", 7.0, (1, 5, 5), 3, "std")),
])
def test_only_the_before_histogram_has_a_chi_density(images, sigma, coils, derivation):
    noisy, corrected, mask = images
    fig = qc_figure(noisy, corrected, mask, sigma, coils=coils, derivation=derivation)
    before, after = _titled(fig, "Background before"), _titled(fig, "Background after")
    expected_sigma, n = (10.0, 1) if derivation is None else (7.0, 3)
    (curve,) = before.lines
    x, y = curve.get_data()
    np.testing.assert_allclose(y, stats.chi(2 * n, scale=expected_sigma).pdf(x), rtol=1e-10, atol=1e-300)
    assert len(after.lines) == 0 and after.patches  # the corrected background is not chi: no curve
    for ax, values, label in ((before, noisy[mask], "before"), (after, corrected[mask], "after")):
        assert ax.get_title() == f"Background {label}: mean {values.mean():.4g}, std {values.std():.4g}"


@pytest.mark.parametrize(("directions", "aspect"), [(None, 0.25), (("P", "L"), 0.25), (("R", "A"), 4.0)])
def test_pixel_aspect_follows_the_spacing(images, directions, aspect):
    noisy, corrected, _ = images
    fig = qc_figure(noisy, corrected, slices=[4], spacing=(0.5, 2.0), directions=directions)
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.images:
            assert ax.get_aspect() == aspect
            # What is drawn: the axes box is as tall, relative to its width, as the pixels say.
            rows, cols = ax.images[0].get_array().shape
            box = ax.get_window_extent()
            assert box.height / box.width == pytest.approx(aspect * rows / cols, rel=2e-3)
    assert all(ax.get_aspect() == 1.0 for ax in qc_figure(noisy, corrected).axes if ax.images)
    for bad in ((0.0, 1.0), (1.0, float("nan")), (1.0, 1.0, 2.0)):
        with pytest.raises(ValueError, match="spacing"):
            qc_figure(noisy, corrected, spacing=bad)


def test_directions_are_checked(images):
    noisy, corrected, _ = images
    for bad in (("R", "L"), ("A", "P"), ("X", "A"), ("R",), ("R", "A", "S")):
        with pytest.raises(ValueError, match="directions"):
            qc_figure(noisy, corrected, directions=bad)


# --------------------------------------------------------------------------- orientation
# One patient, one axial plane: a DICOM image of standard orientation (ImageOrientationPatient
# 1\0\0\0\1\0: columns towards the patient's left, rows towards posterior) of 6 rows 2 mm apart
# and 8 columns 1 mm apart, with a bright marker at the patient's right anterior and a dimmer
# one at the left anterior. A DICOM viewer shows them top left and top right.
_ROWS, _COLS, _ROW_MM = 6, 8, 2.0


def _dicom_plane() -> np.ndarray:
    plane = np.full((_ROWS, _COLS), 100, dtype=np.uint16)
    plane[0:2, 0:2] = 1000  # right anterior
    plane[0, _COLS - 1] = 500  # left anterior
    plane[_ROWS - 1, 3] = 300  # posterior, right of the middle
    return plane


def _shown(fig) -> tuple[np.ndarray, float]:
    ax = _image_rows(fig)[0][0]
    image = ax.images[0]
    assert image.origin == "upper"  # array row 0 at the top of the axes
    return np.asarray(image.get_array()), ax.get_aspect()


def _nifti_view(path: Path):
    """The NIfTI image drawn as the pipeline hands it over: planes (z, x, y), directions and spacing of (x, y)."""
    nib = pytest.importorskip("nibabel")
    from mri_noiselab.nifti import read_nifti

    volume = read_nifti(path)
    planes = np.transpose(volume.magnitude(), (2, 0, 1))
    directions = nib.aff2axcodes(volume.image.affine)[:2]
    spacing = tuple(float(v) for v in volume.image.header.get_zooms()[:2])
    return planes, directions, spacing


# Voxel (i, j) -> patient RAS+ mm, for the DICOM plane's pixel (r, c) at LPS (c, 2 r): RAS (-c, -2 r).
_AFFINES = {
    "RAS": [[1, 0, 0, -7], [0, _ROW_MM, 0, -10], [0, 0, 4, 0], [0, 0, 0, 1]],
    "LAS": [[-1, 0, 0, 0], [0, _ROW_MM, 0, -10], [0, 0, 4, 0], [0, 0, 0, 1]],
    "LPS": [[-1, 0, 0, 0], [0, -_ROW_MM, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]],
    "PRS": [[0, 1, 0, -7], [-_ROW_MM, 0, 0, 0], [0, 0, 4, 0], [0, 0, 0, 1]],
}


@pytest.mark.parametrize("orientation", sorted(_AFFINES))
def test_a_nifti_image_is_shown_as_the_dicom_viewer_shows_the_same_plane(tmp_path, orientation):
    nib = pytest.importorskip("nibabel")
    plane = _dicom_plane()
    dicom = read_file(write_dataset(synthetic_mr_image(plane, PixelSpacing=[_ROW_MM, 1.0]), tmp_path / "plane.dcm"))
    expected, dicom_aspect = _shown(qc_figure(dicom.magnitude(), dicom.magnitude(), spacing=(_ROW_MM, 1.0)))
    np.testing.assert_array_equal(expected, plane)  # the DICOM view is the stored plane
    assert (expected[0, 0], expected[0, -1], expected[-1, 3]) == (1000, 500, 300) and dicom_aspect == 2.0

    affine = np.array(_AFFINES[orientation], dtype=float)
    shape = (_COLS, _ROWS) if orientation[0] in "RL" else (_ROWS, _COLS)
    voxels = np.zeros((*shape, 1), dtype=np.int16)
    for i, j in np.ndindex(shape):
        x, y, _, _ = affine @ [i, j, 0, 1]
        voxels[i, j, 0] = plane[round(-y / _ROW_MM), round(-x)]
    nib.save(nib.Nifti1Image(voxels, affine), tmp_path / "plane.nii")
    planes, directions, spacing = _nifti_view(tmp_path / "plane.nii")
    assert "".join(directions) == orientation[:2]
    shown, aspect = _shown(qc_figure(planes, planes, directions=directions, spacing=spacing))
    np.testing.assert_array_equal(shown, expected)
    assert aspect == dicom_aspect


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")
def test_dcm2niix_output_is_shown_as_its_dicom_source(tmp_path):
    # dcm2niix is an independent converter: its NIfTI must look like the DICOM it came from.
    stored = np.stack([_dicom_plane() + 7 * k for k in range(3)]).astype(np.uint16)
    paths = write_series(tmp_path / "dicom", stored, PixelSpacing=[_ROW_MM, 1.0])
    views = [_shown(qc_figure(m, m, spacing=(_ROW_MM, 1.0))) for m in (read_file(p).magnitude() for p in paths)]
    converted = _dcm2niix(tmp_path / "dicom", tmp_path / "nifti")
    planes, directions, spacing = _nifti_view(converted)
    assert len(planes) == 3
    for k in range(3):
        shown, aspect = _shown(qc_figure(planes, planes, slices=[k], directions=directions, spacing=spacing))
        matches = [j for j, (view, _) in enumerate(views) if view.shape == shown.shape and np.array_equal(view, shown)]
        assert len(matches) == 1, f"NIfTI slice {k} ({directions}) matches no DICOM view"
        assert aspect == views[matches[0]][1] == 2.0


def _dcm2niix(source: Path, target: Path) -> Path:
    target.mkdir()
    run = subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "image", "-o", str(target), str(source)],
                         check=False, capture_output=True, text=True, timeout=120)
    found = sorted(target.glob("*.nii"))
    if run.returncode != 0 or len(found) != 1:
        pytest.fail(f"dcm2niix: exit {run.returncode}, {[p.name for p in found]}: {run.stdout[-500:]}{run.stderr[-500:]}")
    return found[0]


def test_real_scanner_volume_through_dcm2niix_is_shown_as_its_dicom(tmp_path):
    folder = REALDATA / "ge" / "05_3D_Ax_T1_MP_RAGE_R22"
    if not folder.is_dir():
        pytest.skip(f"real scanner data not found at {folder} (../shared/realdata from the project root)")
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    planes, directions, spacing = _nifti_view(_dcm2niix(folder, tmp_path / "nifti"))
    middle = len(planes) // 2
    shown, aspect = _shown(qc_figure(planes, planes, slices=[middle], directions=directions, spacing=spacing))
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        stack = read_file(path)
        view, dicom_aspect = _shown(qc_figure(stack.magnitude(), stack.magnitude(),
                                              spacing=tuple(float(v) for v in stack.datasets[0].PixelSpacing)))
        if view.shape == shown.shape and np.array_equal(view, shown):
            assert aspect == pytest.approx(dicom_aspect)
            return
    pytest.fail(f"the NIfTI's middle slice ({directions}) matches no DICOM image as a viewer shows it")


def test_figure_has_nothing_identifying(images, tmp_path):
    noisy, corrected, mask = images
    fig = qc_figure(noisy, corrected, mask)
    from matplotlib.text import Text

    texts = [t.get_text() for t in fig.findobj(Text)]
    joined = " ".join(texts)
    for forbidden in ("Phantom^Noise", "NOISELAB-PHANTOM", "Patient", str(tmp_path)):
        assert forbidden not in joined


def test_save_writes_a_png_atomically(images, tmp_path):
    noisy, corrected, mask = images
    path = save_qc(tmp_path / "qc.png", noisy[1], corrected[1], mask[1], derivation=Derivation("lmmse", 10.0, (9, 9), 1))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["qc.png"]


def test_mismatched_shapes_fail_clearly(images):
    noisy, corrected, mask = images
    with pytest.raises(ValueError, match="same 2-D or 3-D shape"):
        qc_figure(noisy, corrected[0])
    with pytest.raises(ValueError, match="mask shape"):
        qc_figure(noisy, corrected, mask[0])
