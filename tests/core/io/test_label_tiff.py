"""Pixelmap TIFFs: real segmentations survive the round trip exactly, at every level, through large_image too."""

import io
import os

import h5py
import large_image
import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.segmentation import find_boundaries, slic

from histomics_label.core.errors import ConfigurationError
from histomics_label.core.io.label_tiff import (
    decode_rgb,
    encode_rgb,
    level_shapes,
    outline_mask,
    read_segment_ids,
    write_segment_tiff,
)

OFFSET = 70_000  # pushes ids past 65,535 so the blue channel carries data


@pytest.fixture(scope='module')
def segmentation(cmu_svs):
    """SLIC superpixels of a real H&E region (700 × 900, not a multiple of the tile size), ids offset past 2¹⁶,
    with the segments of one corner set to background (0)."""
    pixels = tifffile.imread(cmu_svs, key=0)[1000:1700, 1200:2100]
    ids = slic(pixels, n_segments=600, compactness=10, start_label=1).astype(np.uint32) + OFFSET
    ids[ids < OFFSET + 40] = 0
    return ids


@pytest.fixture(scope='module')
def written(segmentation, tmp_path_factory):
    path = tmp_path_factory.mktemp('labels') / 'segments.tiff'
    write_segment_tiff(segmentation, path, tile_size=128)
    return path


def test_rgb_encoding_is_r_plus_256g_plus_65536b():
    values = np.array([[0, 1, 255, 256], [65535, 65536, 70_000, 2**24 - 1]], np.uint32)
    rgb = encode_rgb(values)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 4, 3)
    assert rgb[1, 2].tolist() == [70_000 % 256, (70_000 // 256) % 256, 70_000 // 65536]
    red, green, blue = (rgb[..., c].astype(np.int64) for c in range(3))
    recomputed = red + 256 * green + 65536 * blue
    assert (recomputed == values).all()
    assert (decode_rgb(rgb) == values).all()


def test_round_trip_at_every_level(segmentation, written):
    assert segmentation.max() > 65535 and (segmentation == 0).any()
    height, width = segmentation.shape
    assert (read_segment_ids(written, 0, 0, width, height) == segmentation).all()
    assert (read_segment_ids(written, 77, 130, 611, 333) == segmentation[130:333, 77:611]).all()
    for level, (h, w) in enumerate(level_shapes(height, width, 128)):
        step = 2**level
        assert (read_segment_ids(written, 0, 0, w, h, level=level) == segmentation[::step, ::step]).all()
    assert level_shapes(height, width, 128) == [(700, 900), (350, 450), (175, 225), (88, 113)]


def test_file_is_a_lossless_rgb_pyramid_of_ifds(written):
    with tifffile.TiffFile(written) as tif:
        pages = list(tif.pages)
        assert [page.shape for page in pages] == [(700, 900, 3), (350, 450, 3), (175, 225, 3), (88, 113, 3)]
        assert [page.subfiletype for page in pages] == [0, 1, 1, 1]
        for page in pages:
            assert not page.subifds and page.is_tiled and page.tile == (128, 128)
            assert page.dtype == np.uint8 and page.photometric == 2
            assert page.compression in (5, 8, 32946)  # LZW or deflate: lossless


def test_large_image_serves_exact_ids(segmentation, written):
    source = large_image.open(str(written))
    meta = source.getMetadata()
    assert (meta['sizeX'], meta['sizeY']) == (900, 700)
    assert meta['levels'] >= 2 and meta['levels'] == 4
    top = meta['levels'] - 1
    for y in range(6):
        for x in range(8):
            tile = source.getTile(x, y, top, numpyAllowed='always')
            expected = segmentation[y * 128:(y + 1) * 128, x * 128:(x + 1) * 128]
            assert (decode_rgb(tile[:expected.shape[0], :expected.shape[1], :3]) == expected).all()
    # The DSA viewer asks for PNG tiles (?encoding=PNG); lower levels must be the file's nearest-neighbour levels.
    png_source = large_image.open(str(written), encoding='PNG')
    for level in (1, 2):
        tile = np.array(Image.open(io.BytesIO(png_source.getTile(1, 0, top - level))))
        expected = segmentation[::2**level, ::2**level][:128, 128:256]
        assert (decode_rgb(tile[:expected.shape[0], :expected.shape[1]]) == expected).all()


def test_boundaries_use_the_doubled_encoding(dsb2018, tmp_path):
    _, mask = dsb2018  # real nuclei: instance ids on a background of 0
    path = tmp_path / 'nuclei.tiff'
    write_segment_tiff(mask, path, tile_size=128, boundaries=True)
    raw = read_segment_ids(path, 0, 0, 512, 512)
    assert (raw >> 1 == mask).all()
    assert (raw[mask == 0] == 0).all()  # background is 0, never an outline
    assert ((raw & 1) == find_boundaries(mask, connectivity=1, mode='inner')).all()
    assert (read_segment_ids(path, 0, 0, 512, 512, boundaries=True) == mask).all()
    # Each level outlines its own (downsampled) segments, so outlines stay one pixel wide when zoomed out.
    level1 = read_segment_ids(path, 0, 0, 256, 256, level=1)
    assert ((level1 & 1) == find_boundaries(mask[::2, ::2], connectivity=1, mode='inner')).all()


def test_outline_mask_matches_skimage_on_superpixels(segmentation):
    assert (outline_mask(segmentation) == find_boundaries(segmentation, connectivity=1, mode='inner')).all()


def test_h5py_dataset_input(segmentation, written, tmp_path):
    with h5py.File(tmp_path / 'store.h5', 'w') as store:
        raster = store.create_dataset('segments', data=segmentation, chunks=(64, 64), compression='gzip')
        write_segment_tiff(raster, tmp_path / 'from_h5.tiff', tile_size=128)
    with tifffile.TiffFile(tmp_path / 'from_h5.tiff') as a, tifffile.TiffFile(written) as b:
        assert len(a.pages) == len(b.pages)
        for page_a, page_b in zip(a.pages, b.pages, strict=True):
            assert (page_a.asarray() == page_b.asarray()).all()


def test_ids_beyond_24_bits_fail_and_leave_nothing(segmentation, tmp_path):
    path = tmp_path / 'too_many.tiff'
    with pytest.raises(ConfigurationError, match='between 0 and 8,388,607'):
        write_segment_tiff(segmentation + 2**23, path, tile_size=128, boundaries=True)
    with pytest.raises(ConfigurationError, match='between 0 and 16,777,215'):
        write_segment_tiff(segmentation.astype(np.int64) + 2**24, path, tile_size=128)
    assert os.listdir(tmp_path) == []


def test_rejects_non_integer_rasters(tmp_path):
    with pytest.raises(ConfigurationError, match='integer'):
        write_segment_tiff(np.zeros((10, 10), np.float32), tmp_path / 'x.tiff')
    with pytest.raises(ConfigurationError, match='2-D'):
        write_segment_tiff(np.zeros((10, 10, 3), np.uint32), tmp_path / 'x.tiff')
