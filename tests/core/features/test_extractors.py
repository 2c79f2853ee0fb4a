"""The EfficientNet-Lite0 extractor on real images: shape, determinism, meaningful embeddings, clear errors."""

import numpy as np
import pytest
import skimage.data
import skimage.transform
import torch
from helpers.dsb2018_segments import nuclei_and_background
from skimage.measure import regionprops

from histomics_label.core.errors import ConfigurationError, FeaturesError
from histomics_label.core.features.extractors import extract_features, extractors, iter_features
from histomics_label.core.features.patches import ArraySlide, iter_patches
from histomics_label.core.models import models
from histomics_label.core.segments import SegmentTable

PATCH = 40
BLOCK = 32


def segment_table(raster: np.ndarray) -> SegmentTable:
    props = regionprops(raster)
    return SegmentTable(bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props]),
                        centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
                        area=np.array([p.area for p in props]))


@pytest.fixture(scope='module')
def extractor():
    return extractors.create('efficientnet_lite0', batch_size=32)


@pytest.fixture(scope='module')
def nuclei(dsb2018):
    """DSB2018 as segments: each real nucleus, plus the background of each nucleus-free 32-pixel block.

    Returns the RGB image, the raster, its table, whether each segment is a nucleus, and every segment's
    embedding with the progress reports made while extracting them.
    """
    rgb, raster, n_nuclei = nuclei_and_background(*dsb2018, BLOCK)
    table = segment_table(raster)
    is_nucleus = table.ids <= n_nuclei
    reports = []
    batches = iter_patches(ArraySlide(rgb), raster, table, PATCH, batch_size=48, tile_size=128)
    features = extract_features(extractors.create('efficientnet_lite0'), batches, len(table),
                                lambda done, total, message='': reports.append((done, total)))
    return rgb, raster, table, is_nucleus, features, reports


def test_registered_and_described(extractor):
    assert 'efficientnet_lite0' in extractors.names()
    params = extractor.params()
    assert params['name'] == 'efficientnet_lite0' and params['dim'] == extractor.dim == 1280
    assert len(params['weights_sha256']) == 64


def test_imagenet_predictions_show_the_preprocessing_fits_the_weights(extractor):
    """The network's own classifier on our embeddings of real photos names what they show."""
    network = extractor.load()
    photos = np.stack([skimage.transform.resize(photo, (256, 256), preserve_range=True).astype(np.uint8)
                       for photo in (skimage.data.chelsea(), skimage.data.coffee())])
    with torch.inference_mode():
        logits = network._fc(torch.from_numpy(extractor.extract(photos)))
    cat, coffee = logits.argmax(dim=1).tolist()
    assert cat in range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert coffee in (504, 967, 968)  # coffee mug, espresso, cup


def test_embeddings_separate_nuclei_from_background(nuclei):
    """A linear model on embeddings from the left half of the image classifies the right half."""
    _, _, table, is_nucleus, features, _ = nuclei
    assert features.shape == (len(table), 1280) and features.dtype == np.float32
    assert np.all(np.isfinite(features)) and features.std(axis=0).max() > 0
    left = table.centroid[:, 0] < 256
    model = models.create('linear', seed=0).fit(features[left], is_nucleus[left].astype(int), 2)
    predicted = model.predict_proba(features[~left]).argmax(axis=1).astype(bool)
    truth = is_nucleus[~left]
    balanced = 0.5 * ((predicted[truth]).mean() + (~predicted[~truth]).mean())
    assert truth.sum() >= 20 and (~truth).sum() >= 20
    assert balanced >= 0.9


def test_extract_features_orders_rows_by_id_and_reports_progress(nuclei, extractor):
    rgb, raster, table, _, features, reports = nuclei
    assert reports[0] == (0, len(table)) and reports[-1] == (len(table), len(table))
    assert all(a[0] <= b[0] for a, b in zip(reports, reports[1:], strict=False))
    ids = np.array([3, len(table), 1, 40])
    batches = list(iter_features(extractor, iter_patches(ArraySlide(rgb), raster, table, PATCH, ids=ids)))
    for batch_ids, embedded in batches:
        np.testing.assert_allclose(embedded, features[batch_ids - 1], rtol=1e-4, atol=1e-4)


def test_deterministic_and_independent_of_batch_size(nuclei, extractor):
    rgb, raster, table, _, _, _ = nuclei
    _, patches = next(iter_patches(ArraySlide(rgb), raster, table, PATCH, batch_size=12))
    first = extractor.extract(patches)
    np.testing.assert_array_equal(first, extractor.extract(patches))
    small = extractors.create('efficientnet_lite0', batch_size=5)
    np.testing.assert_allclose(small.extract(patches), first, rtol=1e-4, atol=1e-4)
    assert extractor.extract(patches[:0]).shape == (0, 1280)


def test_bad_weights_raise_features_error(tmp_path, extractor):
    missing = extractors.create('efficientnet_lite0', weights_path=str(tmp_path / 'absent.pth'))
    with pytest.raises(FeaturesError, match='does not exist'):
        missing.load()
    with pytest.raises(FeaturesError, match='Cannot read'):
        missing.params()

    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'these are not weights')
    with pytest.raises(FeaturesError, match='not a torch weights file'):
        extractors.create('efficientnet_lite0', weights_path=str(garbage)).extract(np.zeros((1, 8, 8, 3), np.uint8))

    state = torch.load(extractor.weights_path, map_location='cpu', weights_only=True)
    state['_conv_head.weight'] = torch.zeros(640, 320, 1, 1)
    wrong = tmp_path / 'wrong_shape.pth'
    torch.save(state, wrong)
    other = extractors.create('efficientnet_lite0', weights_path=str(wrong))
    assert other.params() != extractor.params()  # different weights never reuse stored features
    with pytest.raises(FeaturesError, match='do not fit'):
        other.load()


def test_devices_and_inputs_are_checked(extractor):
    if not torch.cuda.is_available():
        with pytest.raises(FeaturesError, match='CUDA'):
            extractors.create('efficientnet_lite0', device='cuda')
    with pytest.raises(ConfigurationError, match='device'):
        extractors.create('efficientnet_lite0', device='tpu')
    with pytest.raises(FeaturesError, match='uint8'):
        extractor.extract(np.zeros((2, 8, 8), np.uint8))
