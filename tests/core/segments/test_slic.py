"""Tiled SLIC on the real H&E sample at 10× compared with one-shot SLIC of the same image.

Tolerances come from measurements on this slide (radius 12 px at 10×, 1110 × 1483 px): one-shot SLIC gives 487
segments and the tiled source 467 (256 px tiles) / 498 (384 px tiles), its segments under a quarter superpixel merged
into a neighbour or, as tissue specks, made glass; one-shot SLIC of the same image shifted by
4 px recovers 70% of the one-shot boundaries within 2 px, the tiled result 68%; 4-neighbour pairs across tile edges
carry different ids 3.7–4.4% of the time against 4.7% over every row and column.
"""

import socket
import time

import h5py
import numpy as np
import pytest
import scipy.ndimage as ndi
from skimage.segmentation import find_boundaries, slic

from histomics_label.core.distributed import dask_client
from histomics_label.core.errors import ConfigurationError, SchedulerError, SlideError
from histomics_label.core.io.slide import SlideReader
from histomics_label.core.segments import segment_sources
from histomics_label.core.segments.slic import TiledSLIC
from histomics_label.core.segments.tissue import tissue_mask, tissue_threshold

RADIUS = 12
COMPACTNESS = 10


class RecordingRaster:
    """An h5py dataset that remembers the largest window read from or written to it."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.shape = dataset.shape
        self.largest = 0

    def _note(self, key):
        rows, cols = key
        self.largest = max(self.largest, (rows.stop - rows.start) * (cols.stop - cols.start))

    def __getitem__(self, key):
        self._note(key)
        return self.dataset[key]

    def __setitem__(self, key, value):
        self._note(key)
        self.dataset[key] = value


@pytest.fixture(scope='module')
def slide10(cmu_svs):
    return SlideReader(str(cmu_svs), magnification=10)


@pytest.fixture(scope='module')
def image10(slide10):
    return slide10.region(0, 0, slide10.width, slide10.height)


@pytest.fixture(scope='module')
def mask10(slide10, image10):
    source = TiledSLIC(radius=RADIUS, compactness=COMPACTNESS)
    return tissue_mask(image10, tissue_threshold(slide10.thumbnail()), source.clean)


def _one_shot(image, mask):
    n_segments = int(round(mask.sum() / (2 * RADIUS) ** 2))
    return slic(image, n_segments=n_segments, compactness=COMPACTNESS, mask=mask, start_label=1, channel_axis=-1)


@pytest.fixture(scope='module')
def one_shot(image10, mask10):
    return _one_shot(image10, mask10)


@pytest.fixture(scope='module')
def shifted_one_shot(image10, mask10):
    """One-shot SLIC of the image without its first 4 rows and columns: how much SLIC moves by itself."""
    labels = np.zeros(mask10.shape, np.int64)
    labels[4:, 4:] = _one_shot(image10[4:, 4:], mask10[4:, 4:])
    return labels


def _tiled(slide, tmp_path_factory, tile_size, **options):
    path = tmp_path_factory.mktemp('raster') / 'raster.h5'
    calls = []
    with h5py.File(path, 'w') as store:
        dataset = store.create_dataset('ids', (slide.height, slide.width), np.uint32, chunks=(128, 128))
        raster = RecordingRaster(dataset)
        source = TiledSLIC(radius=RADIUS, compactness=COMPACTNESS, tile_size=tile_size, **options)
        table = source.segment(slide, raster, lambda done, total, message='': calls.append((done, total)))
        return dataset[:], table, calls, raster.largest, source


@pytest.fixture(scope='module')
def tiled256(slide10, tmp_path_factory):
    return _tiled(slide10, tmp_path_factory, 256)


@pytest.fixture(scope='module')
def tiled384(slide10, tmp_path_factory):
    return _tiled(slide10, tmp_path_factory, 384)


def _boundaries(labels, mask):
    return find_boundaries(labels, mode='inner') & mask


def _recall(reference, other, mask):
    """Fraction of ``reference`` boundary pixels within 2 px of an ``other`` boundary."""
    distance = ndi.distance_transform_edt(~_boundaries(other, mask))
    return float((distance[_boundaries(reference, mask)] <= 2).mean())


def _split_fraction(labels, columns, rows):
    """Of the 4-neighbour tissue pixel pairs across the given column / row lines, the fraction with different ids."""
    pairs = differ = 0
    for a, b in [(labels[:, x - 1], labels[:, x]) for x in columns] + [(labels[y - 1], labels[y]) for y in rows]:
        both = (a > 0) & (b > 0)
        pairs += both.sum()
        differ += (a[both] != b[both]).sum()
    return differ / pairs


def test_registered_as_slic():
    assert segment_sources.get('slic') is TiledSLIC


def test_ids_are_contiguous_and_the_table_describes_them(tiled256):
    raster, table, calls, _, _ = tiled256
    ids = np.unique(raster)
    assert ids[0] == 0
    np.testing.assert_array_equal(ids, np.arange(len(table) + 1))
    np.testing.assert_array_equal(np.bincount(raster.ravel())[1:], table.area)
    boxes = ndi.find_objects(raster)
    expected = np.array([(b[1].start, b[0].start, b[1].stop, b[0].stop) for b in boxes])
    np.testing.assert_array_equal(table.bbox, expected)
    centroids = np.array(ndi.center_of_mass(np.ones(raster.shape), raster, table.ids))[:, ::-1]
    np.testing.assert_allclose(table.centroid, centroids, atol=1e-6)


def test_every_segment_is_one_4_connected_piece(tiled256, tiled384):
    for raster, *_ in (tiled256, tiled384):
        for segment_id, box in enumerate(ndi.find_objects(raster), start=1):
            assert ndi.label(raster[box] == segment_id)[1] == 1, segment_id


def specks(mask, min_area):
    """Tissue islands (4-connected) smaller than ``min_area``: debris that segmentation makes glass."""
    islands, _ = ndi.label(mask, structure=ndi.generate_binary_structure(2, 1))
    return (np.bincount(islands.ravel()) < min_area)[islands] & mask


def test_tissue_is_labelled_and_glass_is_background(tiled256, mask10):
    raster, source = tiled256[0], tiled256[4]
    small = specks(mask10, source.min_area)
    assert small.sum() > 500 and not raster[small].any()
    # large_image resamples overlapping reads slightly differently, so a handful of edge pixels may differ
    assert np.count_nonzero(((raster > 0) != mask10) & ~small) <= 1e-4 * mask10.sum()
    assert not raster[700:1480, 0:200].any()
    assert not raster[0:240, 840:1110].any()


def test_slide_not_a_multiple_of_the_tile_size(tiled256, mask10, slide10):
    raster = tiled256[0]
    assert slide10.width % 256 and slide10.height % 256
    # the partial last row and column of tiles are segmented like the rest
    for edge in (np.s_[1280:, :], np.s_[:, 1024:]):
        assert mask10[edge].sum() > 500
        differ = ((raster[edge] > 0) != mask10[edge]) & ~specks(mask10, tiled256[4].min_area)[edge]
        assert np.count_nonzero(differ) <= 1e-3 * mask10[edge].sum()


def test_progress_and_bounded_windows(tiled256, slide10):
    _, _, calls, largest, source = tiled256
    tiles = -(-slide10.width // 256) * -(-slide10.height // 256)
    assert calls[0] == (0, tiles) and calls[-1] == (tiles, tiles)
    assert [done for done, _ in calls] == list(range(tiles + 1))
    # the raster is only ever touched a window (core plus overlap) at a time
    assert largest <= (256 + 2 * source.overlap) ** 2 < slide10.width * slide10.height


def test_close_to_one_shot_slic(tiled256, one_shot, shifted_one_shot, mask10):
    raster, table = tiled256[:2]
    assert abs(len(table) - one_shot.max()) <= 0.15 * one_shot.max()
    baseline = _recall(one_shot, shifted_one_shot, mask10)
    assert baseline > 0.6
    assert _recall(one_shot, raster, mask10) >= 0.9 * baseline
    assert _recall(raster, one_shot, mask10) >= 0.9 * _recall(shifted_one_shot, one_shot, mask10)


def test_no_segment_is_cut_at_tile_edges(tiled256, image10, mask10, slide10):
    raster = tiled256[0]
    edges = _split_fraction(raster, range(256, slide10.width, 256), range(256, slide10.height, 256))
    everywhere = _split_fraction(raster, range(1, slide10.width), range(1, slide10.height))
    assert edges <= 1.5 * everywhere
    # independent per-tile SLIC, for contrast, splits (nearly) every pair across a tile edge
    region = (slice(256, 768), slice(256, 768))
    naive = np.zeros((512, 512), np.int64)
    for y in (0, 256):
        for x in (0, 256):
            tile = (slice(y, y + 256), slice(x, x + 256))
            labels = _one_shot(image10[region][tile], mask10[region][tile])
            naive[tile] = np.where(labels > 0, labels + naive.max(), 0)
    assert _split_fraction(naive, [256], [256]) > 0.9
    assert _split_fraction(raster[region], [256], [256]) < 0.2


def test_two_tile_sizes_agree(tiled256, tiled384, shifted_one_shot, one_shot, mask10):
    (small, small_table), (large, large_table) = tiled256[:2], tiled384[:2]
    assert abs(len(small_table) - len(large_table)) <= 0.1 * len(large_table)
    baseline = _recall(one_shot, shifted_one_shot, mask10)
    assert _recall(small, large, mask10) >= 0.9 * baseline
    assert _recall(large, small, mask10) >= 0.9 * baseline


def test_slide_smaller_than_one_tile(cmu_svs):
    slide = SlideReader(str(cmu_svs), magnification=1.25)
    assert slide.width < 256 and slide.height < 256
    raster = np.zeros((slide.height, slide.width), np.uint32)
    table = TiledSLIC(radius=6, compactness=COMPACTNESS, tile_size=256).segment(slide, raster)
    assert len(table) > 5
    np.testing.assert_array_equal(np.unique(raster), np.arange(len(table) + 1))


def test_slide_smaller_than_a_superpixel_is_refused(cmu_svs):
    slide = SlideReader(str(cmu_svs), scale=64)
    raster = np.zeros((slide.height, slide.width), np.uint32)
    with pytest.raises(SlideError, match='smaller than one superpixel'):
        TiledSLIC(radius=40, tile_size=256).segment(slide, raster)


def test_no_tissue_and_bad_parameters_are_refused(slide10):
    raster = np.zeros((slide10.height, slide10.width), np.uint32)
    with pytest.raises(SlideError, match='No tissue'):
        TiledSLIC(radius=RADIUS, tile_size=512, tissue_threshold=50.0).segment(slide10, raster)
    with pytest.raises(ConfigurationError):
        TiledSLIC(radius=RADIUS, tile_size=16)
    with pytest.raises(ConfigurationError):
        TiledSLIC(radius=RADIUS, overlap=4)
    with pytest.raises(ConfigurationError):
        TiledSLIC(radius=RADIUS).segment(slide10, np.zeros((10, 10), np.uint32))


def test_without_tissue_detection_everything_is_segmented(cmu_svs):
    slide = SlideReader(str(cmu_svs), magnification=2.5)
    raster = np.zeros((slide.height, slide.width), np.uint32)
    table = TiledSLIC(radius=RADIUS, compactness=COMPACTNESS, tile_size=128, tissue=False).segment(slide, raster)
    assert raster.all()
    image = slide.region(0, 0, slide.width, slide.height)
    whole = slic(image, n_segments=int(round(raster.size / (2 * RADIUS) ** 2)), compactness=COMPACTNESS,
                 start_label=1, channel_axis=-1)
    assert abs(len(table) - whole.max()) <= 0.15 * whole.max()


def test_dask_workers_give_the_inline_result(tiled256, slide10):
    raster, table = tiled256[:2]
    with dask_client(workers=2) as client:
        assert len(client.scheduler_info()['workers']) == 2
        distributed = np.zeros_like(raster)
        source = TiledSLIC(radius=RADIUS, compactness=COMPACTNESS, tile_size=256, client=client, in_flight=3)
        result = source.segment(slide10, distributed)
    np.testing.assert_array_equal(distributed, raster)
    np.testing.assert_array_equal(result.area, table.area)
    np.testing.assert_array_equal(result.bbox, table.bbox)


def test_unreachable_scheduler_fails_fast():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(SchedulerError, match='Cannot reach the dask scheduler'):
        with dask_client(f'tcp://127.0.0.1:{port}', timeout=2):
            pass
    assert time.monotonic() - start < 10
