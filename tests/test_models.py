"""The linear model on features of real IHC superpixels: learns, is balanced, is reproducible, fails clearly."""

import numpy as np
import pytest
import skimage.data
from skimage.color import rgb2hed
from skimage.measure import regionprops
from skimage.segmentation import slic

from histomics_label.core.errors import FeaturesError, LabelsError
from histomics_label.core.models import class_weights, models


@pytest.fixture(scope='module')
def ihc():
    """Colour features of ~700 SLIC superpixels of a real IHC image, labeled 1 where DAB (brown) stain is strong.

    The label comes from colour deconvolution (the DAB channel) and the features are plain RGB statistics, so the
    model must learn the stain's colour, as it would from a person's labels.
    """
    image = skimage.data.immunohistochemistry()
    raster = slic(image, n_segments=700, compactness=10, start_label=1)
    hed = rgb2hed(image)
    features, labels, x = [], [], []
    for region in regionprops(raster):
        pixels = image[region.coords[:, 0], region.coords[:, 1]].astype(np.float32)
        features.append(np.concatenate([pixels.mean(axis=0), pixels.std(axis=0), [region.area]]))
        labels.append(int(hed[region.coords[:, 0], region.coords[:, 1], 2].mean() > 0.04))
        x.append(region.centroid[1])
    return np.array(features, np.float32), np.array(labels), np.array(x)


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def test_learns_stain_from_colour(ihc):
    features, labels, x = ihc
    left = x < 256
    model = models.create('linear').fit(features[left], labels[left], 2)
    probabilities = model.predict_proba(features[~left])
    assert probabilities.shape == ((~left).sum(), 2) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert balanced_accuracy(probabilities.argmax(axis=1), labels[~left]) >= 0.9


def test_same_seed_gives_identical_weights_and_state_round_trips(ihc):
    features, labels, _ = ihc
    first = models.create('linear', seed=3).fit(features, labels, 2)
    second = models.create('linear', seed=3).fit(features, labels, 2)
    for key, value in first.state().items():
        np.testing.assert_array_equal(value, second.state()[key])
    np.testing.assert_array_equal(first.predict_proba(features), second.predict_proba(features))
    restored = models.create('linear').load_state(first.state())
    np.testing.assert_array_equal(restored.predict_proba(features), first.predict_proba(features))
    assert first.params() == {'name': 'linear', 'seed': 3, 'epochs': 100, 'weight_decay': 0.01}


def test_class_balance_keeps_the_minority_class(ihc):
    """With ten times more labels of one class, the minority class is still recognised."""
    features, labels, x = ihc
    left = x < 256
    rng = np.random.default_rng(0)
    train = np.flatnonzero(left)
    major, minor = train[labels[train] == 1], train[labels[train] == 0]
    minor = rng.choice(minor, max(4, len(major) // 10), replace=False)
    assert len(major) >= 10 * len(minor) - 10
    chosen = np.concatenate([major, minor])
    model = models.create('linear').fit(features[chosen], labels[chosen], 2)
    predicted = model.predict_proba(features[~left]).argmax(axis=1)
    assert (predicted[labels[~left] == 0] == 0).mean() >= 0.8
    weights = class_weights(labels[chosen], 2)
    assert weights[0] * len(minor) == pytest.approx(weights[1] * len(major))


def test_classes_without_labels_get_low_probability(ihc):
    features, labels, _ = ihc
    model = models.create('linear').fit(features, labels * 2, 3)  # classes 0 and 2; class 1 never labeled
    probabilities = model.predict_proba(features)
    assert probabilities.shape == (len(features), 3)
    assert probabilities[:, 1].max() < 0.5


def test_unusable_labels_raise_labels_error(ihc):
    features, labels, _ = ihc
    model = models.create('linear')
    with pytest.raises(LabelsError, match='no labeled'):
        model.fit(features[:0], labels[:0], 2)
    with pytest.raises(LabelsError, match='two categories'):
        model.fit(features[labels == 1], labels[labels == 1], 2)
    with pytest.raises(LabelsError, match='0..1'):
        model.fit(features, labels + 1, 2)


def test_feature_mismatch_raises_features_error(ihc):
    features, labels, _ = ihc
    state = models.create('linear').fit(features, labels, 2).state()
    loaded = models.create('linear').load_state(state)
    with pytest.raises(FeaturesError, match='7-dimensional'):
        loaded.predict_proba(features[:, :5])
    with pytest.raises(FeaturesError, match='inconsistent'):
        models.create('linear').load_state({**state, 'mean': state['mean'][:3]})
    with pytest.raises(FeaturesError, match='lacks'):
        models.create('linear').load_state({'weight': state['weight']})
