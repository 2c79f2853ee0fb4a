"""Tissue versus glass, so that segmentation never spends superpixels on empty slide.

HistomicsTK has its own tissue detection, but HistomicsTK cannot be installed here with its dependencies (it pulls
GDAL and mapnik), so this is a small scikit-image based detector written for this package.

How it works:

* Every pixel gets a *tissue signal*: the largest optical density of its three channels, ``-ln((I + 1) / 256)``,
  smoothed by a small Gaussian. Glass is near 0 in all channels; even pale eosin-stained stroma absorbs green
  strongly enough to stand out, which a grey-level or saturation threshold handles less well.
* ``tissue_threshold`` computes ONE threshold per slide from its thumbnail: Otsu's method on the *logarithm* of the
  signal. Glass forms a narrow peak and tissue a broad spread; on the linear scale Otsu splits the tissue itself
  (losing pale stroma), on the log scale it splits glass from tissue. The result is clipped to
  [``MIN_THRESHOLD``, ``MAX_THRESHOLD``] so white glass is never tissue and pale stroma always is, even on a slide
  that is nearly all glass or nearly all tissue.
* ``tissue_mask`` applies that threshold to any region (a tile), then removes isolated specks and fills enclosed
  holes whose bounding box is smaller than ``clean`` pixels each way. "Small" is judged by extent, not area, so the
  cleanup is local: a tile read with ``tissue_context(clean)`` extra pixels on every side gets exactly the mask the
  whole slide would get on its interior, and neighbouring tiles agree pixel for pixel.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.ndimage as ndi

MIN_THRESHOLD = 0.1
"""Optical density below which a pixel is always glass (every channel brighter than about 231 of 255)."""

MAX_THRESHOLD = 0.3
"""Optical density above which a pixel is always tissue, whatever the slide's histogram says."""

SMOOTHING_SIGMA = 1.0
"""Gaussian sigma (pixels) applied to the tissue signal before thresholding."""

_TRUNCATE = 3.0
_FOUR_CONNECTED = ndi.generate_binary_structure(2, 1)


def tissue_signal(rgb: np.ndarray) -> np.ndarray:
    """The smoothed per-pixel tissue signal (largest channel optical density) of an RGB uint8 image."""
    rgb = np.asarray(rgb)
    density = -np.log((rgb[..., :3].astype(np.float32) + 1.0) / 256.0).max(axis=-1)
    return ndi.gaussian_filter(density, SMOOTHING_SIGMA, mode='nearest', truncate=_TRUNCATE)


def tissue_threshold(thumbnail_rgb: np.ndarray) -> float:
    """The slide's tissue threshold (optical density), computed once from an RGB overview of the whole slide."""
    from skimage.filters import threshold_otsu

    signal = tissue_signal(thumbnail_rgb)
    log_signal = np.log(signal + 0.01)
    if float(log_signal.min()) == float(log_signal.max()):
        return MIN_THRESHOLD if float(signal.flat[0]) > MIN_THRESHOLD else MAX_THRESHOLD
    threshold = math.exp(threshold_otsu(log_signal)) - 0.01
    return float(min(MAX_THRESHOLD, max(MIN_THRESHOLD, threshold)))


def tissue_context(clean: int = 16) -> int:
    """Extra pixels to read around a tile so its ``tissue_mask`` equals the whole slide's on the tile."""
    # smoothing support, then one cleanup step (speck removal, then hole filling) after the other, each of which
    # looks at most ``clean + 1`` pixels away
    return int(math.ceil(_TRUNCATE * SMOOTHING_SIGMA)) + 1 + 2 * (int(clean) + 1)


def tissue_mask(rgb: np.ndarray, threshold: float | None = None, clean: int = 16) -> np.ndarray:
    """Boolean mask of tissue pixels in an RGB image.

    ``threshold`` should come from ``tissue_threshold`` on the slide's thumbnail so every tile of a slide uses the
    same one; when omitted it is computed from ``rgb`` itself. Tissue specks and enclosed glass holes that fit in a
    ``clean`` × ``clean`` box are removed / filled; components touching the image border are left alone (they may
    continue outside it), which is what keeps tiles consistent (see the module docstring).
    """
    if threshold is None:
        threshold = tissue_threshold(rgb)
    mask = tissue_signal(rgb) > threshold
    if clean > 1:
        mask = _flip_small_components(mask, True, clean)
        mask = _flip_small_components(mask, False, clean)
    return mask


def _flip_small_components(mask: np.ndarray, value: bool, extent: int) -> np.ndarray:
    """Set to ``not value`` every 4-connected component of ``value`` pixels that fits inside an ``extent`` box and
    does not touch the image border."""
    labels, count = ndi.label(mask == value, structure=_FOUR_CONNECTED)
    if count == 0:
        return mask
    small = np.zeros(count + 1, bool)
    for index, found in enumerate(ndi.find_objects(labels), start=1):
        if found is None:
            continue
        rows, cols = found
        small[index] = (rows.stop - rows.start < extent and cols.stop - cols.start < extent
                        and rows.start > 0 and cols.start > 0
                        and rows.stop < mask.shape[0] and cols.stop < mask.shape[1])
    flip = small[labels]
    out = mask.copy()
    out[flip] = not value
    return out
