"""Segment outlines traced on the real H&E sample's SLIC raster: each ring, filled again, covers exactly the segment's
pixels (its largest part, holes filled: the ring is its outer boundary), in base pixels, and a simplified ring
strays from it by at most the tolerance."""

import numpy as np
import pytest
from scipy.ndimage import binary_fill_holes
from skimage.draw import polygon2mask
from skimage.measure import label as connected

from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments.outline import segment_ring


def _filled(ring: list[list[float]], scale: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """The analysis pixels of ``box`` whose centres lie inside the base-pixel ring."""
    x0, y0, x1, y1 = box
    points = np.asarray(ring) / scale
    # polygon2mask puts pixel (r, c)'s centre at (r, c); in analysis coordinates that centre is (y0 + r + 0.5, ...)
    rows, columns = points[:, 1] - y0 - 0.5, points[:, 0] - x0 - 0.5
    return polygon2mask((y1 - y0, x1 - x0), np.stack([rows, columns], axis=1))


def _outer_shape(mask: np.ndarray) -> np.ndarray:
    """The segment's largest edge-connected part with any hole (another segment inside it) filled."""
    parts = connected(mask, connectivity=1)
    sizes = np.bincount(parts.ravel())[1:]
    return binary_fill_holes(parts == 1 + int(np.argmax(sizes)))


@pytest.fixture(scope='module')
def store(embedded_cmu):
    with SlideStore(embedded_cmu) as opened:
        yield opened


def test_a_ring_filled_again_is_the_segment(store):
    scale = store.slide_info.scale
    table = store.segments()
    rng = np.random.default_rng(3)
    segments = rng.choice(np.flatnonzero(table.area > 0), 40, replace=False) + 1
    for segment in segments:
        ring = segment_ring(store, int(segment))
        assert ring[0] == ring[-1] and len(ring) >= 5
        x0, y0, x1, y1 = (int(v) for v in table.bbox[segment - 1])
        truth = _outer_shape(store.label_region(x0, y0, x1, y1) == segment)
        filled = _filled(ring, scale, (x0, y0, x1, y1))
        # marching squares cuts a corner pixel's outer corner only, never its centre
        assert (filled == truth).all(), (segment, int((filled != truth).sum()))
        xs, ys = np.asarray(ring).T
        assert x0 * scale <= xs.min() and xs.max() <= x1 * scale
        assert y0 * scale <= ys.min() and ys.max() <= y1 * scale


def test_a_simplified_ring_stays_within_its_tolerance(store):
    scale = store.slide_info.scale
    table = store.segments()
    big = np.argsort(table.area)[-10:] + 1
    for segment in big:
        exact = np.asarray(segment_ring(store, int(segment)))
        simple = np.asarray(segment_ring(store, int(segment), tolerance=0.5))
        assert len(simple) < len(exact)
        # every traced point lies within the tolerance (plus rounding) of the simplified ring's edges
        starts, ends = simple[:-1], simple[1:]
        for point in exact:
            along = ends - starts
            t = np.clip(((point - starts) * along).sum(1) / np.maximum((along ** 2).sum(1), 1e-9), 0, 1)
            nearest = np.hypot(*(starts + t[:, None] * along - point).T).min()
            assert nearest <= 0.5 * scale + 0.1, (segment, nearest)


def test_a_segment_without_pixels_gets_its_one_pixel_box(tmp_path):
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.segments.base import SegmentTable

    info = SlideInfo(path='empty', base_width=16, base_height=16, base_magnification=20.0, magnification=10.0,
                     scale=2.0, width=8, height=8)
    with SlideStore.create(tmp_path / 'empty.h5', info, {'source': 'pixels'}) as writer:
        writer.create_label_raster(8, 8)[...] = 1
        writer.write_segments(SegmentTable(bbox=np.array([[0, 0, 8, 8], [3, 4, 4, 5]]),
                                           centroid=np.array([[4.0, 4.0], [3.5, 4.5]]), area=np.array([64, 0])))
    with SlideStore(tmp_path / 'empty.h5') as opened:
        assert segment_ring(opened, 2) == [[6.0, 8.0], [8.0, 8.0], [8.0, 10.0], [6.0, 10.0], [6.0, 8.0]]
