"""Masked patches cut from real images: the right pixels, centred and masked, from one read per tile."""

import h5py
import numpy as np
import pytest
import skimage.data
from skimage.measure import regionprops
from skimage.segmentation import slic

from histomics_label.core.errors import SegmentsError
from histomics_label.core.features.patches import FILL_VALUE, READ_MARGIN, ArraySlide, iter_patches
from histomics_label.core.io.slide import SlideReader
from histomics_label.core.segments import SegmentTable


def segment_table(raster: np.ndarray) -> SegmentTable:
    """The SegmentTable of a raster whose segments are numbered 1..N."""
    props = regionprops(raster)
    return SegmentTable(bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props]),
                        centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
                        area=np.array([p.area for p in props]))


def expected_mask(raster: np.ndarray, table: SegmentTable, segment: int, size: int) -> np.ndarray:
    """Where the segment lies in its patch, found the slow, obvious way: pad, slice round the rounded centroid."""
    ids = np.pad(raster, size)
    cx, cy = (int(np.floor(v + 0.5)) for v in table.centroid[segment - 1])
    y0, x0 = cy - size // 2 + size, cx - size // 2 + size
    return ids[y0:y0 + size, x0:x0 + size] == segment


def expected_patch(image: np.ndarray, raster: np.ndarray, table: SegmentTable, segment: int, size: int):
    """The segment's masked patch, cut from the whole padded image."""
    padded = np.pad(image, ((size, size), (size, size), (0, 0)))
    cx, cy = (int(np.floor(v + 0.5)) for v in table.centroid[segment - 1])
    y0, x0 = cy - size // 2 + size, cx - size // 2 + size
    window = padded[y0:y0 + size, x0:x0 + size]
    return np.where(expected_mask(raster, table, segment, size)[:, :, None], window, FILL_VALUE).astype(np.uint8)


class CountingSlide(ArraySlide):
    """Records every region read, to check each tile window is read once."""

    def __init__(self, image):
        super().__init__(image)
        self.reads = []

    def region(self, x0, y0, x1, y1):
        self.reads.append((x0, y0, x1, y1))
        return super().region(x0, y0, x1, y1)


class CountingRaster:
    """A read-only raster that records its window reads."""

    def __init__(self, array):
        self.array = array
        self.shape = array.shape
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


@pytest.fixture(scope='module')
def ihc():
    """The real IHC micrograph (512 × 512) cut into ~300 SLIC superpixels numbered 1..N."""
    image = skimage.data.immunohistochemistry()
    raster = slic(image, n_segments=300, compactness=10, start_label=1).astype(np.uint32)
    return image, raster, segment_table(raster)


def collect(batches):
    ids, patches = zip(*batches, strict=True)
    return np.concatenate(ids), np.concatenate(patches)


@pytest.mark.parametrize('size', [33, 64])
def test_patches_are_centred_masked_crops(ihc, size):
    image, raster, table = ihc
    ids, patches = collect(iter_patches(ArraySlide(image), raster, table, size, batch_size=50, tile_size=128))
    assert patches.shape == (len(table), size, size, 3) and patches.dtype == np.uint8
    assert sorted(ids.tolist()) == table.ids.tolist()
    for segment, patch in zip(ids, patches, strict=True):
        np.testing.assert_array_equal(patch, expected_patch(image, raster, table, segment, size))
    # The centroid's pixel is at row and column size // 2, and a segment whose box fits in its patch keeps every
    # one of its pixels there.
    for k, segment in enumerate(ids):
        cx, cy = np.floor(table.centroid[segment - 1] + 0.5).astype(int)
        if raster[cy, cx] == segment:
            np.testing.assert_array_equal(patches[k, size // 2, size // 2], image[cy, cx])
    inside = [k for k, s in enumerate(ids)
              if np.all(np.abs(table.bbox[s - 1] - np.tile(np.floor(table.centroid[s - 1] + 0.5), 2)) < size // 2)]
    assert inside or size < 64
    for k in inside:
        assert expected_mask(raster, table, ids[k], size).sum() == table.area[ids[k] - 1]


def test_each_tile_window_is_read_once(ihc):
    image, raster, table = ihc
    slide, counting = CountingSlide(image), CountingRaster(raster)
    tile, size = 128, 40
    batches = list(iter_patches(slide, counting, table, size, batch_size=64, tile_size=tile))
    centres = np.floor(table.centroid + 0.5).astype(int) // tile
    n_tiles = len({tuple(c) for c in centres})
    assert len(slide.reads) == counting.reads == n_tiles
    assert len(set(slide.reads)) == n_tiles
    for x0, y0, x1, y1 in slide.reads:
        assert x1 - x0 <= tile + size + 2 * READ_MARGIN and y1 - y0 <= tile + size + 2 * READ_MARGIN
    assert all(len(ids) == 64 for ids, _ in batches[:-1]) and 0 < len(batches[-1][0]) <= 64


def test_hdf5_raster_subset_and_order(ihc, tmp_path):
    """A disk-backed raster gives the same patches; a subset of ids yields exactly those ids."""
    image, raster, table = ihc
    with h5py.File(tmp_path / 'store.h5', 'w') as store:
        dataset = store.create_dataset('labels', data=raster, chunks=(64, 64))
        subset = np.array([table.ids[-1], 5, 17, 2])
        ids, patches = collect(iter_patches(ArraySlide(image), dataset, table, 40, ids=subset, batch_size=3))
    assert sorted(ids.tolist()) == sorted(subset.tolist())
    for segment, patch in zip(ids, patches, strict=True):
        np.testing.assert_array_equal(patch, expected_patch(image, raster, table, segment, 40))


def test_real_slide_edges_are_masked(cmu_svs):
    """On a real H&E slide read through large_image, patches at the edges are filled beyond the slide."""
    reads = []

    class Counting(SlideReader):
        def region(self, x0, y0, x1, y1):
            reads.append((x0, y0, x1, y1))
            return super().region(x0, y0, x1, y1)

    slide = Counting(str(cmu_svs), scale=4)
    whole = SlideReader(str(cmu_svs), scale=4).region(0, 0, slide.width, slide.height)
    raster = slic(whole, n_segments=150, compactness=10, start_label=1).astype(np.uint32)
    table = segment_table(raster)
    ids, patches = collect(iter_patches(slide, raster, table, 64, batch_size=32, tile_size=256))
    assert len(reads) <= 9  # 555 × 741 pixels in 256-pixel tiles
    for segment, patch in zip(ids, patches, strict=True):
        # Masks match exactly. Colours match closely but not always exactly: large_image resamples a window
        # of a downsampled slide a little differently from the whole slide.
        mask = expected_mask(raster, table, segment, 64)
        assert np.all(patch[~mask] == FILL_VALUE)
        difference = np.abs(patch.astype(int) - expected_patch(whole, raster, table, segment, 64))[mask]
        assert difference.mean() < 1 and np.percentile(difference, 99) <= 12
    leftmost = int(np.argmin(table.centroid[:, 0])) + 1
    cx = int(np.floor(table.centroid[leftmost - 1, 0] + 0.5))
    assert cx < 32  # its patch reaches beyond the slide's left edge, where pixels must be masked
    assert np.all(patches[ids.tolist().index(leftmost)][:, :32 - cx] == FILL_VALUE)


def test_rejects_mismatched_raster_and_bad_ids(ihc):
    image, raster, table = ihc
    with pytest.raises(SegmentsError, match='raster'):
        next(iter_patches(ArraySlide(image), raster[:-1], table, 32))
    with pytest.raises(ValueError, match='1..'):
        next(iter_patches(ArraySlide(image), raster, table, 32, ids=[0]))
    assert list(iter_patches(ArraySlide(image), raster, table, 32, ids=[])) == []
