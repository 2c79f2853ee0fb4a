"""The minimum segment size: small segments merged into their longest-border neighbour, specks made glass.

On the real H&E sample at 5× (radius 10, 256 px tiles so that seams cross the tissue) the tiled SLIC is run with
and without the minimum, and the merged raster is checked against the unmerged one pixel by pixel.
"""

import numpy as np
import pytest
import scipy.ndimage as ndi

from histomics_label.core.io.slide import SlideReader
from histomics_label.core.segments.base import SegmentTable
from histomics_label.core.segments.merge import merge_small_segments, shared_borders
from histomics_label.core.segments.slic import MIN_SEGMENT_SHARE, TiledSLIC
from histomics_label.core.segments.tissue import tissue_mask, tissue_threshold

RADIUS = 10
FOUR = ndi.generate_binary_structure(2, 1)


def table_of(raster: np.ndarray) -> SegmentTable:
    """The table a raster with ids 1..N implies."""
    count = int(raster.max())
    area = np.bincount(raster.ravel(), minlength=count + 1)[1:]
    ys, xs = np.indices(raster.shape)
    sums = [np.bincount(raster.ravel(), weights=v.ravel(), minlength=count + 1)[1:] for v in (xs, ys)]
    boxes = ndi.find_objects(raster)
    bbox = np.array([(b[1].start, b[0].start, b[1].stop, b[0].stop) for b in boxes], np.int64)
    return SegmentTable(bbox=bbox, centroid=np.stack(sums, axis=1) / area[:, None], area=area)


@pytest.fixture(scope='module')
def slide5(cmu_svs):
    return SlideReader(str(cmu_svs), magnification=5)


@pytest.fixture(scope='module')
def both(slide5):
    """(unmerged raster, merged raster, merged table, source) of the same slide and tiling."""
    rasters = []
    for share in (0.0, MIN_SEGMENT_SHARE):
        raster = np.zeros((slide5.height, slide5.width), np.uint32)
        source = TiledSLIC(radius=RADIUS, tile_size=256, min_share=share)
        table = source.segment(slide5, raster)
        rasters.append(raster)
    return rasters[0], rasters[1], table, source


def test_no_segment_is_below_the_minimum_and_the_table_matches_the_raster(both):
    before, after, table, source = both
    assert source.min_area == MIN_SEGMENT_SHARE * (2 * RADIUS) ** 2 == 100
    assert (np.bincount(before.ravel())[1:] < source.min_area).sum() >= 10  # there was something to merge
    assert table.area.min() >= source.min_area
    np.testing.assert_array_equal(np.unique(after), np.arange(int(after.max()) + 1))  # contiguous ids
    expected = table_of(after)
    np.testing.assert_array_equal(table.area, expected.area)
    np.testing.assert_array_equal(table.bbox, expected.bbox)
    np.testing.assert_allclose(table.centroid, expected.centroid)


def test_every_tissue_pixel_keeps_one_segment_but_specks_smaller_than_the_minimum(both):
    before, after, _, source = both
    assert not np.any((after > 0) & (before == 0))  # nothing outside the segments before
    islands, _ = ndi.label(before > 0, structure=FOUR)
    island_area = np.bincount(islands.ravel())
    dropped = (before > 0) & (after == 0)
    assert dropped.any()  # the sample has specks of debris on the glass
    # every dropped pixel belongs to a whole island of tissue smaller than the minimum, and every such island went
    assert np.all(island_area[islands[dropped]] < source.min_area)
    small_islands = np.flatnonzero(island_area < source.min_area)
    assert not np.any(np.isin(islands, small_islands[small_islands > 0]) & (after > 0))


def test_merged_pieces_went_to_a_touching_segment(both):
    before, after, _, _ = both
    kept = after > 0
    # each old segment lies in exactly one new segment (merging never splits)
    pairs = np.unique(np.stack([before[kept], after[kept]]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1]
    # and every new segment is one 4-connected piece: each merged piece touched the segment it joined
    for index, box in enumerate(ndi.find_objects(after), start=1):
        assert ndi.label(after[box] == index, structure=FOUR)[1] == 1


def test_nothing_off_tissue(both, slide5):
    """Every segment lies on tissue: at least 99 % of its pixels are tissue in the slide's own mask."""
    _, after, table, source = both
    image = slide5.region(0, 0, slide5.width, slide5.height)
    mask = tissue_mask(image, tissue_threshold(slide5.thumbnail()), source.clean)
    on_tissue = np.bincount(after.ravel(), weights=mask.ravel(), minlength=len(table) + 1)[1:]
    assert np.all(on_tissue >= 0.99 * table.area)


def test_the_longest_border_wins_across_window_seams():
    """Segment 3 (4 px) touches 1 along 3 pixel pairs and 2 along 5: it joins 2, whatever the windows' size. 5 (1
    px) touches 4 along 2 pairs and 2 along 1: it joins 4. 6 is a 2-px island: glass. Ids stay contiguous in the
    order of each group's first id."""
    raster = np.array([
        [1, 1, 2, 2, 2, 2, 0, 0],
        [1, 1, 3, 3, 2, 2, 0, 6],
        [1, 1, 3, 3, 2, 2, 0, 6],
        [1, 1, 1, 2, 2, 2, 0, 0],
        [4, 4, 4, 4, 4, 5, 0, 0],
        [4, 4, 4, 4, 4, 4, 0, 0],
    ], np.uint32)
    for window in (3, 4, 100):
        ids = raster.copy()
        table = merge_small_segments(ids, table_of(raster), 5, window=window)
        expected = np.array([1, 2, 2, 3, 3, 0])[raster.astype(np.int64) - 1] * (raster > 0)
        np.testing.assert_array_equal(ids, expected)
        np.testing.assert_array_equal(table.area, [9, 15, 12])
        assert shared_borders(raster, window) == {(1, 2): 2, (1, 3): 3, (2, 3): 5, (1, 4): 3, (2, 4): 2,
                                                  (2, 5): 1, (4, 5): 2}


def test_a_merged_piece_still_too_small_keeps_merging():
    """1 and 2 (1 px each) are small: 1 touches only 2 and joins it; the pair, still small, joins 3."""
    raster = np.array([[1, 2, 3, 3, 3, 3, 3, 3, 3, 3]], np.uint32)
    ids = raster.copy()
    table = merge_small_segments(ids, table_of(raster), 4)
    np.testing.assert_array_equal(ids, np.ones_like(raster))
    np.testing.assert_array_equal(table.area, [10])
