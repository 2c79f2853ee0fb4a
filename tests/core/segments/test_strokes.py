"""The segments under a brush stroke, on the real H&E sample's segments."""

import tracemalloc

import numpy as np
import pytest
import shapely
from scipy.ndimage import maximum_filter

from histomics_label.core.errors import ConfigurationError
from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import strokes
from histomics_label.core.segments.base import SegmentTable
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


def test_a_radius_0_dab_at_integer_coordinates_labels_the_segment_under_the_pointer(store):
    """The route's default radius is 0 and pointers report integer base pixels, which at scale 4 fall on the
    corners of analysis pixels: the dab labels the segment of the pixel the pointer is in."""
    scale = store.slide_info.scale
    raster = store.label_raster[()]
    rng = np.random.default_rng(0)
    for x, y in rng.integers([0, 0], [raster.shape[1] * scale, raster.shape[0] * scale], (200, 2)).tolist():
        under = int(raster[int(y // scale), int(x // scale)])
        assert segments_under_stroke(store, [[x, y]]).tolist() == ([under] if under else [])


def test_a_radius_0_line_labels_the_segments_it_passes_through(store):
    start, end = _base(store, 10), _base(store, 40)
    start, end = np.floor(start), np.floor(end)  # integer base pixels, as a pointer reports them
    got = segments_under_stroke(store, [start.tolist(), end.tolist()])
    t = np.linspace(0, 1, 20001)[:, None]
    samples = (start + t * (end - start)) / store.slide_info.scale
    raster = store.label_raster[()]
    assert set(got.tolist()) == {int(raster[int(y), int(x)]) for x, y in samples} - {0}


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


# -- exactness: the rasterised stroke against the geometric answer computed with shapely ---------------------------

def _reference_pixels(shape, path, reach):
    """The module's rule computed geometrically with shapely: pixel centres within ``reach`` of the line, and
    pixels whose square the line meets (closed squares: the same as the half-open rule for coordinates that fall
    on no pixel edge, which random coordinates do not). Shapely tests only the pixels near points sampled every
    quarter pixel along the line (every pixel it could cover), which keeps the reference quick."""
    line = shapely.Point(path[0]) if len(path) == 1 else shapely.LineString(path)
    samples = path if len(path) == 1 else shapely.get_coordinates(
        shapely.line_interpolate_point(line, np.arange(0, line.length + 0.25, 0.25)))
    cols, rows = np.floor(samples).astype(int).T
    near = np.zeros(shape, bool)  # clipped to the raster, a sample only gets nearer to the pixels in it
    near[np.clip(rows, 0, shape[0] - 1), np.clip(cols, 0, shape[1] - 1)] = True
    covered = np.zeros(shape, bool)
    for margin, test in ((1, lambda xs, ys: shapely.intersects(shapely.box(xs, ys, xs + 1, ys + 1), line)),
                         (int(reach) + 2, lambda xs, ys: shapely.dwithin(line, shapely.points(xs + .5, ys + .5),
                                                                         reach))):
        ys, xs = np.nonzero(maximum_filter(near, size=2 * margin + 1))
        hit = test(xs, ys)
        covered[ys[hit], xs[hit]] = True
        if reach == 0:
            break
    return covered


def _random_strokes(shape, scale, count, seed):
    """Strokes in base pixels: dabs, short and long polylines, thin and wide brushes, some leaving the slide."""
    rng = np.random.default_rng(seed)
    height, width = shape
    for k in range(count):
        n = (1, 2, 3, 6)[k % 4]
        points = rng.uniform([-40, -40], [width * scale + 40, height * scale + 40], (n, 2))
        if k % 3 == 0:  # short strokes: a few pixels long
            points = points[:1] + rng.uniform(-6 * scale, 6 * scale, (n, 2))
        yield points, float((0, 0.3, 2.0, 9.5, 31.0)[k % 5] * scale)


def test_the_segments_a_stroke_covers_are_the_geometric_answer(store):
    """On the real H&E segments: random strokes (dabs, thin and wide, short and long, crossing the raster's
    256-pixel chunk edges and leaving the slide) select exactly the segments shapely's geometry selects."""
    raster = store.label_raster[()]
    scale = store.slide_info.scale
    crossing = 0
    for points, radius in _random_strokes(raster.shape, scale, 40, seed=3):
        path = points / scale
        expected = np.unique(raster[_reference_pixels(raster.shape, path, radius / scale)])
        got = segments_under_stroke(store, points.tolist(), radius)
        assert got.tolist() == expected[expected > 0].tolist(), (points, radius)
        crossing += len(np.unique(np.floor(path[:, 0] / 256))) > 1
    assert crossing >= 8  # many strokes span two chunks of the raster


@pytest.fixture(scope='module')
def pixel_store(tmp_path_factory):
    """A store whose every pixel is a segment of its own (id = row × width + column + 1), in 64-pixel chunks at
    scale 4: the segments a stroke selects name exactly the pixels it covers."""
    height, width, scale = 150, 230, 4.0
    info = SlideInfo(path='pixels', base_width=int(width * scale), base_height=int(height * scale),
                     base_magnification=20.0, magnification=5.0, scale=scale, width=width, height=height)
    path = tmp_path_factory.mktemp('pixels') / 'pixels.h5'
    ys, xs = np.mgrid[0:height, 0:width]
    with SlideStore.create(path, info, {'source': 'pixels'}) as writer:
        writer.create_label_raster(height, width, chunk=64)[...] = (ys * width + xs + 1).astype(np.uint32)
        bbox = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + 1, ys.ravel() + 1], axis=1)
        writer.write_segments(SegmentTable(bbox=bbox, centroid=bbox[:, :2] + 0.5, area=np.ones(height * width)))
    with SlideStore(path) as opened:
        yield opened


def _pixels(store, points, radius=0.0):
    """The (column, row) pixels a stroke covers on ``pixel_store``."""
    ids = segments_under_stroke(store, points, radius) - 1
    return {(int(i % store.label_raster.shape[1]), int(i // store.label_raster.shape[1])) for i in ids}


def test_a_stroke_covers_exactly_the_pixels_of_its_geometry(pixel_store):
    shape = pixel_store.label_raster.shape
    for points, radius in _random_strokes(shape, 4.0, 30, seed=5):
        rows, cols = np.nonzero(_reference_pixels(shape, points / 4.0, radius / 4.0))
        assert _pixels(pixel_store, points.tolist(), radius) == set(zip(cols.tolist(), rows.tolist(), strict=True))


def test_ties_on_pixel_edges_follow_the_documented_rule(pixel_store):
    # a radius-0 dab at integer coordinates (a pixel corner at scale 4) labels the pixel below and right of it
    assert _pixels(pixel_store, [[40, 80]]) == {(10, 20)}
    assert _pixels(pixel_store, [[41, 83]]) == {(10, 20)}
    # a radius-0 line along a pixel edge covers the row below it; one through a pixel corner, the pixels it enters
    assert _pixels(pixel_store, [[40, 80], [60, 80]]) == {(10, 20), (11, 20), (12, 20), (13, 20), (14, 20), (15, 20)}
    assert _pixels(pixel_store, [[40, 80], [52, 92]]) == {(10, 20), (11, 21), (12, 22), (13, 23)}
    # a brush of radius 3 pixels centred on a pixel centre covers the centres at distance <= 3, those at 3 too
    covered = _pixels(pixel_store, [[(50 + 0.5) * 4, (30 + 0.5) * 4]], radius=3 * 4)
    assert covered == {(50 + i, 30 + j) for i in range(-3, 4) for j in range(-3, 4) if i * i + j * j <= 9}
    assert len(covered) == 29


def test_a_long_thin_stroke_holds_memory_for_its_area_not_its_bounding_box(tmp_path):
    """A radius-0 diagonal across a 4096² raster of 16-pixel square segments: its bounding box is 16 M pixels (the
    per-pixel test held hundreds of MB for it); the stroke covers 4,096 pixels and labels the 256 diagonal cells."""
    side, cell = 4096, 16
    info = SlideInfo(path='grid', base_width=side, base_height=side, base_magnification=20.0, magnification=20.0,
                     scale=1.0, width=side, height=side)
    per_row = side // cell
    with SlideStore.create(tmp_path / 'grid.h5', info, {'source': 'grid'}) as writer:
        raster = writer.create_label_raster(side, side)
        for y in range(0, side, 1024):
            rows, cols = np.mgrid[y:y + 1024, 0:side] // cell
            raster[y:y + 1024] = (rows * per_row + cols + 1).astype(np.uint32)
        index = np.arange(per_row * per_row)
        x0, y0 = index % per_row * cell, index // per_row * cell
        bbox = np.stack([x0, y0, x0 + cell, y0 + cell], axis=1)
        writer.write_segments(SegmentTable(bbox=bbox, centroid=bbox[:, :2] + cell / 2,
                                           area=np.full(len(index), cell * cell)))
    with SlideStore(tmp_path / 'grid.h5') as store:
        tracemalloc.start()
        try:
            got = segments_under_stroke(store, [[0.5, 0.5], [side - 0.5, side - 0.5]])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert got.tolist() == [c * per_row + c + 1 for c in range(per_row)]
    assert peak < 4e6, f'{peak / 1e6:.1f} MB'
