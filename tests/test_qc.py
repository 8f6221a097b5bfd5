"""QC figure: shared scale, ROI outline, histograms with the fitted density, nothing identifying."""

import numpy as np
import pytest
from dicom_helpers import phantom_volume
from scipy import stats

from mri_noiselab.chi import chi_pdf
from mri_noiselab.qc import qc_figure, save_qc
from mri_noiselab.roi import corner_rois, roi_mask


@pytest.mark.parametrize("coils", [1, 2, 4])
def test_chi_pdf_matches_scipy(coils):
    m = np.linspace(0, 120, 50)
    np.testing.assert_allclose(chi_pdf(m, 17.0, coils), stats.chi(2 * coils, scale=17.0).pdf(m), rtol=1e-12, atol=1e-300)
    if coils == 1:
        np.testing.assert_allclose(chi_pdf(m, 17.0), stats.rayleigh(scale=17.0).pdf(m), rtol=1e-12)


@pytest.fixture
def images(rng):
    _, noisy = phantom_volume(3, 64, 10.0, rng)
    corrected = np.sqrt(np.maximum(noisy**2 - 2 * 10.0**2, 0))
    return noisy, corrected, roi_mask(corner_rois(noisy.shape, 8), noisy.shape)


def test_figure_layout_shared_scale_and_titles(images):
    noisy, corrected, mask = images
    fig = qc_figure(noisy, corrected, mask, 10.0)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 2
    assert image_axes[0].images[0].get_clim() == image_axes[1].images[0].get_clim()
    assert len(fig.axes) == 5  # two images, two histograms, one shared colorbar
    assert all(ax.collections for ax in image_axes)  # the ROI outline
    titles = [ax.get_title() for ax in fig.axes]
    before = noisy[mask]
    after_sigma = np.sqrt(np.mean(corrected[mask] ** 2) / 2)
    assert f"Background before: mean {before.mean():.4g}, σ 10" in titles
    assert f"Background after: mean {corrected[mask].mean():.4g}, σ {after_sigma:.4g}" in titles


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
    path = save_qc(tmp_path / "qc.png", noisy[1], corrected[1], mask[1])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["qc.png"]


def test_mismatched_shapes_fail_clearly(images):
    noisy, corrected, mask = images
    with pytest.raises(ValueError, match="same 2-D or 3-D shape"):
        qc_figure(noisy, corrected[0])
    with pytest.raises(ValueError, match="mask shape"):
        qc_figure(noisy, corrected, mask[0])
