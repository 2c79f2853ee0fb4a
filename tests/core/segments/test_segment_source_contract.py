"""The contract every registered segment source keeps, checked on each of them the way scikit-learn's
``parametrize_with_checks`` checks every estimator: the tests are parametrised over ``segment_sources.names()``, so a
source registered later (here or through the entry-point group) is checked without touching this file.

Every source segments the same real slide, the DSB2018 fluorescence image written as a tiled TIFF (512 × 512 px),
into a zero-filled raster, and must return the segment form of ``segments/base.py``: ids 1..N contiguous (0 for
background), a table of N rows whose boxes are the tight boxes of the segments' pixels, areas their pixel counts,
and centroids the mean of their pixel coordinates. SLIC segments the image itself; the polygon source gets the
outline of each real nucleus of the DSB2018 instance mask, and the label-image source gets the mask itself written
as a segment TIFF (as HistomicsTK writes superpixels: every pixel is one, the mask's background is superpixel 0).
Tiles are smaller than the slide so that every source stitches several.
"""

import numpy as np
import pytest
import scipy.ndimage as ndi
import tifffile
from skimage.measure import find_contours
from skimage.segmentation import relabel_sequential

from histomics_label.core.io.label_tiff import write_segment_tiff
from histomics_label.core.io.slide import SlideReader
from histomics_label.core.segments import SegmentTable, segment_sources

OPTIONS = {
    'slic': lambda inputs: {'radius': 12, 'tile_size': 200, 'tissue': False},
    'polygons': lambda inputs: {'source': inputs['geojson'], 'tile_size': 200},
    'label_image': lambda inputs: {'source': inputs['label_tiff'], 'tile_size': 200},
}
"""Construction options of each registered source for this contract, from the inputs built from the DSB2018 mask;
a source missing here fails the contract."""
@pytest.fixture(scope='module')
def inputs(dsb2018, tmp_path_factory):
    """The slide path, the polygons of the real nuclei (GeoJSON) and the mask as a segment TIFF."""
    image, mask = dsb2018
    folder = tmp_path_factory.mktemp('segment-contract')
    slide = folder / 'dsb2018.tif'
    tifffile.imwrite(slide, (image / image.max() * 255).astype(np.uint8), tile=(256, 256))
    features = []
    for label in np.unique(mask)[1:]:
        contour = max(find_contours(np.pad(mask == label, 1).astype(float), 0.5), key=len)
        # find_contours puts pixel centres at integers (of the padded mask); slide coordinates put them at +0.5
        ring = np.stack([contour[:, 1] - 0.5, contour[:, 0] - 0.5], 1)
        features.append({'type': 'Feature', 'properties': {},
                         'geometry': {'type': 'Polygon', 'coordinates': [ring.tolist()]}})
    label_tiff = folder / 'superpixels.tiff'
    write_segment_tiff(relabel_sequential(mask)[0].astype(np.uint32), label_tiff, boundaries=True)
    return {'slide': str(slide), 'geojson': {'type': 'FeatureCollection', 'features': features},
            'label_tiff': str(label_tiff)}


@pytest.fixture(scope='module')
def segmented(inputs):
    """``segmented(name)``: the raster and table source ``name`` makes of the slide, made once for the module."""
    done = {}

    def get(name: str):
        if name not in done:
            if name not in OPTIONS:
                pytest.fail(f'Segment source {name!r} is registered but has no entry in OPTIONS of the segment '
                            'source contract; add one')
            slide = SlideReader(inputs['slide'], scale=1)
            raster = np.zeros((slide.height, slide.width), np.uint32)
            table = segment_sources.create(name, **OPTIONS[name](inputs)).segment(slide, raster)
            done[name] = raster, table
        return done[name]
    return get


def test_contract_covers_every_registered_source():
    missing = sorted(set(segment_sources.names()) - set(OPTIONS))
    assert not missing, f'registered segment sources without contract options: {missing}'


@pytest.mark.parametrize('name', segment_sources.names())
def test_ids_are_contiguous_and_the_table_has_a_row_each(name, segmented):
    raster, table = segmented(name)
    assert isinstance(table, SegmentTable) and raster.dtype == np.uint32
    n = len(table)
    assert n >= 50  # the slide holds 125 nuclei; every source finds many segments
    present = np.unique(raster)
    np.testing.assert_array_equal(present[present > 0], np.arange(1, n + 1))
    assert table.bbox.shape == (n, 4) and np.issubdtype(table.bbox.dtype, np.integer)
    assert table.centroid.shape == (n, 2) and np.issubdtype(table.centroid.dtype, np.floating)
    assert table.area.shape == (n,) and np.issubdtype(table.area.dtype, np.integer)
    np.testing.assert_array_equal(table.ids, np.arange(1, n + 1))


@pytest.mark.parametrize('name', segment_sources.names())
def test_boxes_are_the_tight_boxes_of_the_segments_pixels(name, segmented):
    raster, table = segmented(name)
    boxes = ndi.find_objects(raster.astype(np.int64), max_label=len(table))
    expected = np.array([[box[1].start, box[0].start, box[1].stop, box[0].stop] for box in boxes])
    np.testing.assert_array_equal(table.bbox, expected)  # (x0, y0, x1, y1), x1 and y1 exclusive


@pytest.mark.parametrize('name', segment_sources.names())
def test_areas_are_pixel_counts(name, segmented):
    raster, table = segmented(name)
    counts = np.bincount(raster.ravel().astype(np.int64), minlength=len(table) + 1)[1:]
    np.testing.assert_array_equal(table.area, counts)
    assert (table.area > 0).all()


@pytest.mark.parametrize('name', segment_sources.names())
def test_centroids_lie_inside_their_boxes(name, segmented):
    _, table = segmented(name)
    x, y = table.centroid[:, 0], table.centroid[:, 1]
    assert np.all(np.isfinite(table.centroid))
    assert np.all((table.bbox[:, 0] <= x) & (x <= table.bbox[:, 2]) & (table.bbox[:, 1] <= y) & (y <= table.bbox[:, 3]))


@pytest.mark.parametrize('name', segment_sources.names())
def test_centroids_are_the_mean_pixel_index_every_source_shares(name, segmented):
    """One convention for all sources: the mean (column, row) of the segment's pixels, which ``iter_patches``
    rounds to the patch centre."""
    raster, table = segmented(name)
    flat = raster.ravel().astype(np.int64)
    rows, cols = np.indices(raster.shape)
    area = np.maximum(np.bincount(flat, minlength=len(table) + 1)[1:], 1)
    expected = np.stack([np.bincount(flat, cols.ravel(), minlength=len(table) + 1)[1:] / area,
                         np.bincount(flat, rows.ravel(), minlength=len(table) + 1)[1:] / area], axis=1)
    np.testing.assert_allclose(table.centroid, expected, atol=1e-6)
