"""Tissue detection on the real H&E sample: glass is background, pale stroma is tissue, tiles agree."""

import numpy as np
import pytest
from skimage.filters import threshold_otsu

from histomics_label.core.io.slide import SlideReader
from histomics_label.core.segments.tissue import (
    MAX_THRESHOLD,
    MIN_THRESHOLD,
    tissue_context,
    tissue_mask,
    tissue_signal,
    tissue_threshold,
)


@pytest.fixture(scope='module')
def slide5(cmu_svs):
    return SlideReader(str(cmu_svs), magnification=5)


@pytest.fixture(scope='module')
def image5(slide5):
    return slide5.region(0, 0, slide5.width, slide5.height)


@pytest.fixture(scope='module')
def threshold(slide5):
    return tissue_threshold(slide5.thumbnail())


def _pale_stroma(image):
    """Bright but clearly pink (eosin-only) pixels: the pale stroma a glass detector must keep."""
    red, green, blue = (image[..., i].astype(int) for i in range(3))
    return (red > 200) & (red - green > 25) & (blue - green > 10)


def test_threshold_separates_glass_from_tissue(threshold, slide5):
    assert MIN_THRESHOLD <= threshold <= MAX_THRESHOLD
    # one threshold per slide: the thumbnail's size barely moves it
    assert tissue_threshold(slide5.thumbnail(512)) == pytest.approx(threshold, abs=0.02)


def test_glass_is_not_tissue(image5, threshold):
    mask = tissue_mask(image5, threshold)
    # the sample's left side and top right are empty glass
    assert not mask[350:740, 0:100].any()
    assert not mask[0:120, 420:555].any()
    white = (image5 > 235).all(axis=-1)
    assert mask[white].mean() < 0.05
    assert 0.25 < mask.mean() < 0.5


def test_pale_stroma_is_tissue(image5, threshold, slide5):
    pale = _pale_stroma(image5)
    assert pale.sum() > 10_000
    mask = tissue_mask(image5, threshold)
    assert mask[pale].mean() > 0.95
    # a plain Otsu split of the same signal cuts through the tissue and loses the pale stroma
    naive = tissue_signal(image5) > threshold_otsu(tissue_signal(slide5.thumbnail()))
    assert naive[pale].mean() < 0.2


def test_tiles_agree_with_the_whole_image(image5, threshold):
    clean = 12
    whole = tissue_mask(image5, threshold, clean)
    pad = tissue_context(clean)
    height, width = whole.shape
    for y0, x0, size in ((100, 150, 160), (300, 200, 128), (0, 0, 200), (600, 400, 300)):
        y1, x1 = min(height, y0 + size), min(width, x0 + size)
        py0, px0 = max(0, y0 - pad), max(0, x0 - pad)
        padded = image5[py0:min(height, y1 + pad), px0:min(width, x1 + pad)]
        tile = tissue_mask(padded, threshold, clean)[y0 - py0:y1 - py0, x0 - px0:x1 - px0]
        np.testing.assert_array_equal(tile, whole[y0:y1, x0:x1])


def test_specks_are_removed_and_holes_filled(image5, threshold):
    image = image5.copy()
    # a 6 × 6 white hole punched into dense tissue, and a 5 × 5 piece of tissue dropped on glass
    assert tissue_mask(image5, threshold)[400:406, 300:306].all()
    image[400:406, 300:306] = 245
    image[500:505, 40:45] = image5[400:405, 250:255]
    raw = tissue_signal(image) > threshold
    assert not raw[402:404, 302:304].any() and raw[501:504, 41:44].all()
    mask = tissue_mask(image, threshold, clean=10)
    assert mask[400:406, 300:306].all()
    assert not mask[495:510, 35:50].any()
    # with no cleanup both stay as they are
    assert not tissue_mask(image, threshold, clean=0)[402:404, 302:304].any()


def test_threshold_of_blank_and_uniform_images():
    white = np.full((64, 64, 3), 250, np.uint8)
    assert tissue_threshold(white) >= MIN_THRESHOLD
    assert not tissue_mask(white).any()
    noisy_glass = np.clip(np.random.default_rng(0).normal(240, 3, (128, 128, 3)), 0, 255).astype(np.uint8)
    assert not tissue_mask(noisy_glass).any()
    stained = np.full((64, 64, 3), (200, 120, 180), np.uint8)
    assert tissue_mask(stained).all()
