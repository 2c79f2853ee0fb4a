"""The segments under a brush stroke, on the real H&E sample's segments."""

import numpy as np
import pytest

from histomics_label.core.errors import ConfigurationError
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import strokes
from histomics_label.core.segments.strokes import segments_under_stroke


@pytest.fixture(scope='module')
def store(embedded_cmu):
    with SlideStore(embedded_cmu) as opened:
        yield opened


def _base(store, segment):
    """A base-pixel point inside a segment: the centre of one of its pixels."""
    x0, y0, x1, y1 = store.segments(np.array([segment - 1])).bbox[0]
    region = store.label_region(x0, y0, x1, y1)
    ys, xs = np.nonzero(region == segment)
    k = len(ys) // 2
    return [(x0 + xs[k] + 0.5) * store.slide_info.scale, (y0 + ys[k] + 0.5) * store.slide_info.scale]


def test_a_dab_finds_the_segment_under_it(store):
    for segment in (5, 60, store.n_segments - 3):
        assert segments_under_stroke(store, [_base(store, segment)]).tolist() == [segment]


def test_a_stroke_covers_what_it_crosses_and_a_wider_brush_more(store):
    start, end = _base(store, 10), _base(store, 40)
    thin = segments_under_stroke(store, [start, end])
    wide = segments_under_stroke(store, [start, end], radius=20 * store.slide_info.scale)
    assert {10, 40} <= set(thin.tolist())
    assert set(thin.tolist()) < set(wide.tolist())
    # every pixel on the line is in a covered segment: sample the line densely and compare
    t = np.linspace(0, 1, 400)[:, None]
    samples = (np.array(start) + t * (np.array(end) - np.array(start))) / store.slide_info.scale
    raster = store.label_raster[()]
    under = {int(raster[int(y), int(x)]) for x, y in samples} - {0}
    assert under <= set(thin.tolist())


def test_strokes_off_the_slide_and_bad_strokes(store, monkeypatch):
    assert segments_under_stroke(store, [[-500, -500], [-100, -100]]).tolist() == []
    for bad in ([], [[1, 2, 3]], [[np.nan, 1]], 'here'):
        with pytest.raises(ConfigurationError):
            segments_under_stroke(store, bad)
    with pytest.raises(ConfigurationError, match='radius'):
        segments_under_stroke(store, [[10, 10]], radius=-1)
    whole = segments_under_stroke(store, [[0, 0]], radius=10**6)  # a brush bigger than the slide: all of it
    assert whole.tolist() == sorted(set(np.unique(store.label_raster[()]).tolist()) - {0})
    monkeypatch.setattr(strokes, 'MAX_STROKE_PIXELS', 100)
    with pytest.raises(ConfigurationError, match='shorter pieces'):
        segments_under_stroke(store, [[0, 0], [200, 200]], radius=10)
