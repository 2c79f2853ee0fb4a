"""What the painting view draws over the slide, pixel by pixel, against the server's segment raster (Chromium, the live
stack, the real H&E sample with the segment job's segments): a segment opened as a card's "Show on slide" does, at
the analysis magnification, zoomed in and zoomed out. The thin outline must lie on the segment's edge and leave its
inside visible; the segment borders must be the raster's outlines at the resolution drawn (not a coarser level
stretched, not lower levels showing through); the view, scale bar, magnification, overview rectangle and legend must
say what is shown."""

import math

import numpy as np
import pytest
from helpers.live_stack import make_segments, slide_project, store_path
from PIL import Image
from scipy.ndimage import binary_fill_holes, distance_transform_edt
from skimage.measure import label as connected

from histomics_label.core.io.store import SlideStore

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}]
ANALYSIS_MAGNIFICATION = 5
CONFIG = {'categories': CATEGORIES, 'magnification': ANALYSIS_MAGNIFICATION, 'radius': 10, 'patchSize': 48,
          'retrainEvery': 0}
MAGNIFICATIONS = [ANALYSIS_MAGNIFICATION, 2 * ANALYSIS_MAGNIFICATION, 4 * ANALYSIS_MAGNIFICATION]
"""At the analysis magnification (one segment-image pixel per screen pixel) and zoomed in (2 and 4 screen pixels);
the sample slide is small enough that 5× already shows all of it, so no coarser level is ever drawn here."""


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A segmented project, the slide's raster and one segment of middling size near the middle of the tissue."""
    client = stack.client()
    folder, item, base = slide_project(client, cmu_svs, 'Overlay pixels', CONFIG)
    make_segments(client, base)
    with SlideStore(store_path(client, folder, item)) as store:
        raster = store.label_raster[:]
        scale = store.slide_info.scale
        table = store.segments()
    areas = table.area
    middling = np.flatnonzero((areas >= np.percentile(areas, 50)) & (areas <= np.percentile(areas, 90)))
    centre = table.centroid[areas > 0].mean(axis=0)
    segment = int(middling[np.argmin(np.hypot(*(table.centroid[middling] - centre).T))]) + 1
    tiles = client.get(f'item/{item["_id"]}/tiles')
    return {'folder': folder, 'item': item, 'raster': raster, 'scale': scale, 'segment': segment, 'tiles': tiles,
            'region': [float(v) * scale for v in table.bbox[segment - 1]]}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    request = {'projectId': project['folder']['_id'], 'itemId': project['item']['_id'],
               'segment': project['segment'], 'magnifications': MAGNIFICATIONS}
    return browser_driver.run('overlay_pixels.mjs', stack, request, timeout=600)


def _pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert('RGB')).astype(np.int32)


def _on_screen(raster: np.ndarray, box, shape, base_per_pixel: float) -> np.ndarray:
    """The value of ``raster`` (one pixel per ``base_per_pixel`` base pixels) under each screen pixel's centre (0
    off the raster)."""
    left, top, right, bottom = box
    height, width = shape
    xs = left + (np.arange(width) + 0.5) * (right - left) / width
    ys = top + (np.arange(height) + 0.5) * (bottom - top) / height
    columns = np.floor(xs / base_per_pixel).astype(int)
    rows = np.floor(ys / base_per_pixel).astype(int)
    inside = (rows[:, None] >= 0) & (rows[:, None] < raster.shape[0]) & (columns >= 0) & (columns < raster.shape[1])
    values = raster[np.clip(rows, 0, raster.shape[0] - 1)][:, np.clip(columns, 0, raster.shape[1] - 1)]
    return np.where(inside, values, np.zeros((), values.dtype))


def _outer_shape(mask: np.ndarray) -> np.ndarray:
    """A segment's largest edge-connected part with its holes filled: what its outline encloses."""
    parts = connected(mask, connectivity=1)
    return binary_fill_holes(parts == 1 + int(np.argmax(np.bincount(parts.ravel())[1:])))


def _edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    edge = np.zeros(mask.shape, bool)
    for axis in (0, 1):
        differs = np.diff(mask, axis=axis) != 0
        lead = [slice(None)] * 2
        lead[axis] = slice(1, None)
        trail = [slice(None)] * 2
        trail[axis] = slice(None, -1)
        edge[tuple(lead)] |= differs
        edge[tuple(trail)] |= differs
    return edge & mask


def _outlines(ids: np.ndarray) -> np.ndarray:
    """Pixels of a segment (id ≠ 0) with a 4-neighbour of another id."""
    edge = np.zeros(ids.shape, bool)
    vertical, horizontal = ids[1:] != ids[:-1], ids[:, 1:] != ids[:, :-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge & (ids != 0)


def _yellow(pixels: np.ndarray) -> np.ndarray:
    """Pixels of the outline's yellow, also where antialiasing blends it half with its dark halo: red and green
    well above blue, which no H&E stain (pink, purple) and no glass (grey) has."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return (r - b > 50) & (g - b > 40)


def _free(shape, covered) -> np.ndarray:
    """Screen pixels not under the scale bar, the overview map or the legend (with a margin)."""
    free = np.ones(shape, bool)
    for x, y, width, height in covered:
        free[max(0, y - 3):y + height + 3, max(0, x - 3):x + width + 3] = False
    return free


def _near(mask: np.ndarray, distance: float) -> np.ndarray:
    return distance_transform_edt(~mask) <= distance


def test_the_view_is_the_one_asked_for_and_says_so(observed, project):
    tiles = project['tiles']
    x0, y0, x1, y1 = project['region']
    for view in observed['views']:
        magnification = view['magnification']
        left, top, right, bottom = view['box']
        width, height = Image.open(view['outlined']).size
        base_per_pixel = tiles['magnification'] / magnification
        assert (right - left) / width == pytest.approx(base_per_pixel, rel=0.01)
        assert (bottom - top) / height == pytest.approx(base_per_pixel, rel=0.01)
        # the segment in view, centred unless the view would then leave the slide (geojs keeps the slide in view)
        assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom
        if left > 0 and right < tiles['sizeX']:
            assert abs((left + right) / 2 - (x0 + x1) / 2) <= 2 * base_per_pixel
        if top > 0 and bottom < tiles['sizeY']:
            assert abs((top + bottom) / 2 - (y0 + y1) / 2) <= 2 * base_per_pixel
        assert view['shownMagnification'] == view['magnificationText'] == f'{magnification:g}×'
        # the scale bar: a round length, drawn as long as that length is on the screen
        bar = view['scaleBar']
        microns_per_pixel = tiles['mm_x'] * 1000 * base_per_pixel
        assert bar['width'] * microns_per_pixel == pytest.approx(bar['micrometres'], rel=0.02)
        assert 40 <= bar['width'] <= 111
        mantissa = bar['micrometres'] / 10 ** math.floor(math.log10(bar['micrometres']))
        assert round(mantissa, 6) in (1, 2, 5)
        assert bar['text'] == (f'{bar["micrometres"]:g} µm' if bar['micrometres'] < 1000
                               else f'{bar["micrometres"] / 1000:g} mm')
        assert np.abs(np.subtract(view['overviewRect'], view['box'])).max() <= 1
        assert [row['kind'] for row in view['legend']] == ['labels', 'outline']
        assert f'segment {project["segment"]}' in view['legend'][1]['text']
        assert view['legendWithBorders'] == ['labels', 'borders', 'outline']
        assert view['back'] == 1
    assert not observed['consoleErrors']


def test_the_outline_follows_the_segments_edge_and_leaves_it_visible(observed, project):
    for view in observed['views']:
        pixels = _pixels(view['outlined'])
        shape = pixels.shape[:2]
        inside = _on_screen(_outer_shape(project['raster'] == project['segment']), view['box'], shape,
                            project['scale'])
        edge = _edges(inside) | _edges(~inside)  # the two pixels either side of the segment's edge
        free = _free(shape, view['covered'])
        yellow = _yellow(pixels) & free
        assert yellow.sum() > 0.5 * edge.sum() / 2, view['magnification']
        # every yellow pixel lies on the edge and the edge is drawn all round: within 2 screen pixels, or the
        # outline's simplification (half an analysis pixel) plus marching squares' corner cuts where those are wider
        per_analysis_pixel = view['magnification'] / ANALYSIS_MAGNIFICATION
        slack = max(2.0, 0.75 * per_analysis_pixel + 1)
        on_edge = _near(edge, slack)[yellow].mean()
        drawn_round = _near(yellow, slack)[edge & free].mean()
        # the inside stays tissue: almost nothing yellow farther in from the edge
        deep = inside & ~_near(edge, slack + 2)
        covered_inside = yellow[deep].mean() if deep.any() else 0.0
        assert on_edge >= 0.95 and drawn_round >= 0.9 and covered_inside < 0.01, (
            view['magnification'], on_edge, drawn_round, covered_inside)


def test_the_borders_are_the_rasters_outlines_at_the_resolution_drawn(observed, project):
    for view in observed['views']:
        plain, bordered = _pixels(view['outlined']), _pixels(view['bordered'])
        shape = plain.shape[:2]
        # the segment image level drawn: one of its pixels per screen pixel or finer (every 2^k-th raster pixel)
        level = max(0, math.ceil(math.log2(ANALYSIS_MAGNIFICATION / view['magnification'])))
        step = 2 ** level
        truth = _on_screen(_outlines(project['raster'][::step, ::step]), view['box'], shape, project['scale'] * step)
        outline_line = _near(_yellow(plain), 3)
        free = _free(shape, view['covered']) & ~outline_line
        drawn = ((plain - bordered).sum(axis=2) > 45) & free
        assert drawn.sum() > 200, view['magnification']
        precision = _near(truth, 1)[drawn].mean()
        # where the slide is light enough for a border to darken it visibly
        visible = truth & free & (plain.sum(axis=2) > 200)
        recall = _near(drawn, 1)[visible].mean()
        assert precision >= 0.95 and recall >= 0.9, (view['magnification'], precision, recall)


def test_a_click_in_the_overview_centres_the_view_there(observed, project):
    click = observed['overviewClick']
    tiles = project['tiles']
    left, top, right, bottom = click['after']
    # the overview shows the whole slide centred in its box: its middle is the slide's middle
    assert (left + right) / 2 == pytest.approx(tiles['sizeX'] / 2, abs=tiles['sizeX'] * 0.03)
    assert (top + bottom) / 2 == pytest.approx(tiles['sizeY'] / 2, abs=tiles['sizeY'] * 0.03)
    assert right - left == pytest.approx(click['before'][2] - click['before'][0], rel=0.001)  # same zoom
    assert np.abs(np.subtract(click['rect'], click['after'])).max() <= 1
