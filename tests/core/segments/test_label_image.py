"""Segments read from an existing segment-id image (superpixels made by another tool), through the pipeline."""

import numpy as np
import pytest

from histomics_label.core.errors import SegmentsError
from histomics_label.core.io.label_tiff import write_segment_tiff
from histomics_label.core.io.store import SlideStore
from histomics_label.core.pipeline import PipelineConfig, run_pipeline
from histomics_label.core.segments.label_image import LabelImageSegments


@pytest.fixture(scope='module')
def superpixel_image(embedded_cmu, tmp_path_factory):
    """The session store's segmentation written as HistomicsTK does (``2k`` inside, ``2k + 1`` on outlines; its
    superpixel 0 is our background): what a project of the published tool holds."""
    path = tmp_path_factory.mktemp('label-image') / 'superpixels.tiff'
    with SlideStore(embedded_cmu) as store:
        write_segment_tiff(store.label_raster, path, boundaries=True)
        raster = store.label_raster[()]
    return path, raster


def test_their_superpixel_k_becomes_segment_k_plus_1(cmu_svs, superpixel_image, tmp_path):
    path, original = superpixel_image
    store = tmp_path / 'imported.h5'
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), segments='label_image', label_image=str(path),
                            label_image_boundaries=True, label_image_offset=1, patch_size=48, workers=1)
    result = run_pipeline(config)
    with SlideStore(store) as reader:
        raster = reader.label_raster[()]
        table = reader.segments()
        assert reader.feature_names() == ['efficientnet_lite0']
        assert reader.slide_info.scale == pytest.approx(2220 / original.shape[1])
    np.testing.assert_array_equal(raster, original.astype(np.int64) + 1)  # every pixel is a superpixel there
    assert result.n_segments == original.max() + 1
    for segment in (1, 2, result.n_segments // 2, result.n_segments):
        ys, xs = np.nonzero(raster == segment)
        assert table.area[segment - 1] == len(ys)
        assert table.bbox[segment - 1].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        np.testing.assert_allclose(table.centroid[segment - 1], [xs.mean(), ys.mean()])
    again = run_pipeline(config)
    assert again.reused == {'segments': True, 'features': True}


def test_count_keeps_ids_the_labels_use(cmu_svs, superpixel_image, tmp_path):
    path, original = superpixel_image
    count = int(original.max()) + 1 + 3  # three superpixels the labels know but the image does not draw
    config = PipelineConfig(slide=str(cmu_svs), store=str(tmp_path / 's.h5'), segments='label_image',
                            label_image=str(path), label_image_count=count, patch_size=48, workers=1,
                            feature='image', model='cnn_torch')  # patches only: no embedding needed here
    run_pipeline(config)
    with SlideStore(tmp_path / 's.h5') as reader:
        table = reader.segments()
    assert len(table) == count and (table.area[-3:] == 0).all() and (table.area[:-3] > 0).all()


def test_an_image_of_another_size_is_refused(cmu_svs, tmp_path):
    path = tmp_path / 'small.tiff'
    write_segment_tiff(np.ones((40, 30), np.uint32), path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(tmp_path / 's.h5'), segments='label_image',
                            label_image=str(path), magnification=5)
    source = LabelImageSegments(path)
    with pytest.raises(SegmentsError, match='analyse the slide at the image'):
        source.segment(None, np.zeros((100, 100), np.uint32))
    assert config.slide_reader().width == 30  # the pipeline analyses the slide at the image's scale
