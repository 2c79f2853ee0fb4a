"""The seeded k-means model on real handwritten digits (scikit-learn's UCI digits) and on hand-built blobs."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from histomics_label.core.errors import ConfigurationError, FeaturesError, LabelsError
from histomics_label.core.models import models
from histomics_label.core.models.clustering import SeededKMeans, lloyd


@pytest.fixture(scope='module')
def digits():
    features, classes = load_digits(return_X_y=True)
    return features.astype(np.float32), classes


def few_labels(classes: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(classes == c), per_class, replace=False)
                           for c in np.unique(classes)])


def test_registered_as_a_model():
    assert 'seeded_kmeans' in models.names()
    model = models.create('seeded_kmeans', seed=3, epochs=40)
    assert model.params() == {'name': 'seeded_kmeans', 'seed': 3, 'epochs': 40, 'centres_per_class': 2,
                              'max_points': 20_000}


def test_one_label_per_blob_labels_every_point():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(centre, 0.5, size=(50, 2)) for centre in ([0, 0], [6, 0], [0, 6])])
    truth = np.repeat([0, 1, 2], 50)
    labeled = np.array([0, 50, 100])
    model = SeededKMeans(centres_per_class=1).fit(points[labeled], truth[labeled], 3, unlabeled=points)
    probabilities = model.predict_proba(points)
    assert probabilities.shape == (150, 3) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    assert (probabilities.argmax(axis=1) == truth).all()
    assert probabilities.max(axis=1).mean() > 0.9
    state = model.state()
    centres = state['centres'] * state['scale'] + state['mean']  # back from standardised units
    middle = model.predict_proba(centres[[0, 1]].mean(axis=0, keepdims=True))[0]  # halfway between classes 0, 1
    assert middle[0] == pytest.approx(middle[1], abs=1e-5) and middle[2] < 0.05


def test_few_labels_on_real_digits_beat_chance_and_are_not_overconfident(digits):
    features, classes = digits
    for seed in range(2):
        labeled = few_labels(classes, 2, seed)  # 20 labels for 1797 digits
        rest = np.setdiff1d(np.arange(len(features)), labeled)
        model = SeededKMeans(seed=seed).fit(features[labeled], classes[labeled], 10, unlabeled=features[rest])
        probabilities = model.predict_proba(features[rest])
        accuracy = (probabilities.argmax(axis=1) == classes[rest]).mean()
        assert accuracy > 0.6  # chance is 0.1
        assert probabilities.max(axis=1).mean() < accuracy + 0.15


def test_deterministic_and_state_round_trips(digits):
    features, classes = digits
    labeled = few_labels(classes, 3, 0)
    first = SeededKMeans(seed=5).fit(features[labeled], classes[labeled], 10, unlabeled=features)
    second = SeededKMeans(seed=5).fit(features[labeled], classes[labeled], 10, unlabeled=features)
    np.testing.assert_array_equal(first.predict_proba(features), second.predict_proba(features))
    loaded = SeededKMeans().load_state(first.state())
    np.testing.assert_array_equal(loaded.predict_proba(features), first.predict_proba(features))
    subsampled = SeededKMeans(seed=5, max_points=500).fit(features[labeled], classes[labeled], 10, unlabeled=features)
    assert (subsampled.predict_proba(features).argmax(axis=1) == classes).mean() > 0.6


def test_labeled_points_stay_with_their_class_and_absent_classes_get_nothing():
    points = np.array([[0.0], [0.2], [0.4], [5.0], [5.2]])
    labels = np.array([0, 0, 2, 2, 2])  # row 2 sits with class 0 but is labeled 2; class 1 has no labels
    model = SeededKMeans(centres_per_class=1).fit(points, labels, 3)
    probabilities = model.predict_proba(points)
    assert np.all(probabilities[:, 1] == 0)
    centres, assignment, ran = lloyd(points, np.array([[0.0], [5.0]]), fixed=np.array([True, False]))
    assert centres[0, 0] == 0.0 and assignment.tolist() == [0, 0, 0, 1, 1] and ran == 2


def test_errors_say_what_is_wrong():
    with pytest.raises(ConfigurationError, match='fit'):
        SeededKMeans().predict_proba(np.zeros((2, 2)))
    with pytest.raises(LabelsError, match='two categories'):
        SeededKMeans().fit(np.zeros((3, 2)), np.zeros(3, int), 2)
    model = SeededKMeans().fit(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 1]), 2)
    with pytest.raises(FeaturesError, match='2-dimensional'):
        model.predict_proba(np.zeros((1, 3)))
    with pytest.raises(FeaturesError, match='Unlabeled'):
        SeededKMeans().fit(np.zeros((2, 2)), np.array([0, 1]), 2, unlabeled=np.zeros((4, 3)))
    with pytest.raises(FeaturesError, match='lacks'):
        SeededKMeans().load_state({'centres': np.zeros((2, 2))})
    with pytest.raises(ConfigurationError, match='centres_per_class'):
        SeededKMeans(centres_per_class=0)


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = np.concatenate([rng.normal(centre, 0.5, size=(50, 2)) for centre in ([0, 0], [6, 0], [0, 6])])
    return points, np.repeat([0, 1, 2], 50)


def test_posterior_samples_disagree_between_clusters_not_inside_them():
    from histomics_label.core.acquisition.batchbald import bald

    points, truth = blobs()
    labeled = np.array([0, 1, 50, 51, 100, 101])
    model = SeededKMeans(centres_per_class=1).fit(points[labeled], truth[labeled], 3, unlabeled=points)
    queries = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 0.0], [3.0, 3.0]])  # two centres, two in-between
    samples = model.predict_samples(queries, 30, seed=1)
    assert samples.shape == (30, 4, 3) and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, model.predict_samples(queries, 30, seed=1))
    np.testing.assert_allclose(samples.mean(axis=0), model.predict_proba(queries), atol=0.1)
    information = bald(samples)
    assert information[2:].min() > 10 * information[:2].max()
    assert model.metrics()['train_labels'] == 6 and model.metrics()['epochs_run'] >= 1


def test_warm_start_and_class_changes_keep_the_centres():
    points, truth = blobs(1)
    labeled = np.array([0, 50, 100])
    first = SeededKMeans(centres_per_class=1).fit(points[labeled], truth[labeled], 3, unlabeled=points)
    # merge classes 1 and 2 into class 1; the merged class keeps both centres, so nothing needs retraining
    merged_state = SeededKMeans.remap_classes(first.state(), [0, 1, 1])
    merged = SeededKMeans().load_state(merged_state).predict_proba(points)
    assert merged.shape == (150, 2) and (merged.argmax(axis=1) == np.minimum(truth, 1)).all()
    # drop class 0, then warm-start with a new class appended (index 1), seeded from its labels
    dropped = SeededKMeans.remap_classes(first.state(), [-1, 0, 1], 3)
    labels = np.array([0, 1, 2])  # rows 50 (old 1), 100 (old 2), 0 (new class)
    warm = SeededKMeans(centres_per_class=1).fit(points[[50, 100, 0]], labels, 3, warm_start=dropped,
                                                 unlabeled=points)
    assert (warm.predict_proba(points).argmax(axis=1) == np.array([2, 0, 1])[truth]).all()
    assert warm.metrics()['warm_start'] is True
    with pytest.raises(LabelsError, match='entries'):
        SeededKMeans.remap_classes(first.state(), [0, 1])
