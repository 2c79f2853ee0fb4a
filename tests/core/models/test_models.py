"""The linear model on features of real IHC superpixels: learns, is balanced, is reproducible, fails clearly."""

import numpy as np
import pytest
from helpers.posterior_checks import assert_sound_posterior_samples

from histomics_label.core.errors import ConfigurationError, FeaturesError, LabelsError
from histomics_label.core.models import LinearModel, class_weights, models
from histomics_label.core.models.evaluation import cross_validated_accuracy
from histomics_label.core.models.linear import MAX_ITERATIONS
from histomics_label.core.models.training import softmax, validation_split


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
    assert first.params() == {'name': 'linear', 'seed': 3, 'weight_decay': 0.01, 'dropout': 0.2}


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


def test_predict_samples_are_seeded_mc_dropout_around_predict_proba(ihc):
    features, labels, x = ihc
    left = x < 256
    model = models.create('linear').fit(features[left], labels[left], 2)
    test = features[~left]
    # mean gap measured 0.040 (7 features: dropping one matters)
    samples = assert_sound_posterior_samples(model, test, 50, seed=2, min_median_spread=1e-3, max_mean_gap=0.05)
    np.testing.assert_allclose(model.predict_samples(test[:5], 50, seed=2), samples[:, :5], atol=1e-6)
    # the rate the weights were trained with travels in the state
    restored = models.create('linear', dropout=0.5).load_state(model.state())
    np.testing.assert_array_equal(restored.predict_samples(test, 50, seed=2), samples)
    plain = models.create('linear', dropout=0.0).fit(features[left], labels[left], 2)
    np.testing.assert_allclose(plain.predict_samples(test, 3, seed=0), np.stack([plain.predict_proba(test)] * 3),
                               atol=1e-6)


def test_linear_model_converges_on_every_label_whatever_it_starts_from(ihc):
    """The same labels give the same model from any seed or warm start: a round's changed predictions come from
    its labels, never from where training began."""
    features, labels, _ = ihc
    model = models.create('linear')
    with pytest.raises(ConfigurationError, match='trained'):
        model.metrics()
    metrics = model.fit(features, labels, 2).metrics()
    assert metrics['train_labels'] == len(labels) and metrics['validation_labels'] == 0
    assert metrics['converged'] and 0 < metrics['epochs_run'] < MAX_ITERATIONS and not metrics['warm_start']
    other_seed = models.create('linear', seed=7).fit(features, labels, 2)
    half = models.create('linear', seed=3).fit(features[::2], labels[::2], 2)
    warm = models.create('linear').fit(features, labels, 2, warm_start=half.state())
    reference = model.predict_proba(features)
    for other in (other_seed, warm):
        np.testing.assert_allclose(other.predict_proba(features), reference, atol=2e-3)
        np.testing.assert_array_equal(other.predict_proba(features).argmax(axis=1), reference.argmax(axis=1))


def test_a_few_labels_learn_more_with_the_slides_feature_statistics(ihc):
    """Standardised by every segment's features instead of two labels' per class, the model classifies the
    other half of the image better (the rounds pass such a sample as ``population``), and its statistics are the
    population's exactly."""
    features, labels, x = ihc
    left = x < 256
    alone, with_population = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        rows = np.concatenate([rng.choice(np.flatnonzero(left & (labels == c)), 2, replace=False) for c in (0, 1)])
        for scores, options in ((alone, {}), (with_population, {'population': features})):
            model = models.create('linear', seed=seed).fit(features[rows], labels[rows], 2, **options)
            scores.append(balanced_accuracy(model.predict_proba(features[~left]).argmax(axis=1), labels[~left]))
    alone, with_population = np.array(alone), np.array(with_population)
    assert with_population.mean() >= alone.mean() + 0.04  # measured: 0.893 against 0.809
    assert (with_population > alone).sum() >= 14  # measured: 18 of 20 draws better, 2 worse
    state = model.state()
    np.testing.assert_allclose(state['mean'], features.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(state['scale'], features.astype(np.float64).std(axis=0), rtol=1e-6)


def test_a_population_of_other_features_or_with_holes_is_refused(ihc):
    features, labels, _ = ihc
    with pytest.raises(FeaturesError, match='sampled segments.*shape \\(5, 3\\).*7-dimensional'):
        models.create('linear').fit(features, labels, 2, population=np.zeros((5, 3)))
    holes = features.copy()
    holes[3, 2] = np.nan
    with pytest.raises(FeaturesError, match='not finite'):
        models.create('linear').fit(features, labels, 2, population=holes)


def test_split_is_stratified_seeded_and_skipped_when_a_class_has_one_label(ihc):
    _, labels, _ = ihc
    train, held = validation_split(labels, 0.2, seed=4)
    assert np.intersect1d(train, held).size == 0 and len(train) + len(held) == len(labels)
    for cls in (0, 1):
        assert (labels[held] == cls).sum() == round(0.2 * (labels == cls).sum())
    np.testing.assert_array_equal(held, validation_split(labels, 0.2, seed=4)[1])
    assert not np.array_equal(held, validation_split(labels, 0.2, seed=5)[1])
    assert validation_split(np.array([0, 0, 1]), 0.5, seed=0)[1].size == 0


def test_warm_start_continues_from_the_previous_weights(ihc):
    features, labels, x = ihc
    left = np.flatnonzero(x < 256)
    previous = models.create('linear').fit(features[left[::2]], labels[left[::2]], 2)
    warm = models.create('linear').fit(features[left], labels[left], 2, warm_start=previous.state())
    # the previous weights, converted to the new feature standardisation, give the previous model's logits exactly
    mean, scale = features[left].mean(axis=0), features[left].std(axis=0)
    weight, bias = LinearModel()._warm_weights(previous.state(), 2, mean, scale)
    converted = softmax(((features[left] - mean) / scale) @ weight.T + bias)
    np.testing.assert_allclose(converted, previous.predict_proba(features[left]), atol=1e-5)
    # ... and are where training starts: it then runs on the new labels until it converges
    assert warm.metrics()['warm_start'] and warm.metrics()['converged'] and warm.metrics()['epochs_run'] > 0
    cold = models.create('linear').fit(features[left], labels[left], 2)
    right = x >= 256
    assert balanced_accuracy(warm.predict_proba(features[right]).argmax(axis=1), labels[right]) >= \
        balanced_accuracy(cold.predict_proba(features[right]).argmax(axis=1), labels[right]) - 0.02
    with pytest.raises(FeaturesError, match='7-dimensional'):
        models.create('linear').fit(features[:, :5], labels, 2, warm_start=previous.state())


def test_remap_merges_and_adds_categories(ihc):
    """Unstained segments split by size, then merged back: the remapped model still finds the stain."""
    features, labels, x = ihc
    left, right = x < 256, x >= 256
    three = np.where(labels == 1, 2, (features[:, 6] > np.median(features[labels == 0, 6])).astype(int))
    model = models.create('linear').fit(features[left], three[left], 3)
    merged = LinearModel.remap_classes(model.state(), [0, 0, 1])
    assert merged['weight'].shape == (2, 7) and merged['bias'].shape == (2,)
    remapped = models.create('linear').load_state(merged)
    assert balanced_accuracy(remapped.predict_proba(features[right]).argmax(axis=1), labels[right]) >= 0.9
    added = LinearModel.remap_classes(merged, [0, 1], 3)
    np.testing.assert_array_equal(added['weight'][:2], merged['weight'])
    assert not added['weight'][2].any() and added['bias'][2] == merged['bias'].min()
    extended = models.create('linear').fit(features[left], three[left], 3, warm_start=merged)
    assert extended.state()['weight'].shape == (3, 7)
    with pytest.raises(LabelsError, match='remap_classes'):
        models.create('linear').fit(features, labels, 2, warm_start=model.state())
    with pytest.raises(LabelsError, match='2 entries'):
        LinearModel.remap_classes(model.state(), [0, 1])
    with pytest.raises(LabelsError, match='does not fit'):
        LinearModel.remap_classes(model.state(), [0, 1, 5], 3)


def test_cross_validated_accuracy_covers_the_accuracy_on_unseen_segments(ihc):
    """An oracle check of the accuracy a round reports: on random sets of 40 labels, the cross-validated estimate's
    interval holds the balanced accuracy the model really has on every segment it was not given (the stain rule
    labels them all)."""
    features, labels, _ = ihc
    rng = np.random.default_rng(3)
    covered, widths = 0, []
    for seed in range(6):
        rows = np.sort(rng.choice(len(labels), 40, replace=False))
        unseen = np.setdiff1d(np.arange(len(labels)), rows)
        estimate = cross_validated_accuracy(lambda s=seed: models.create('linear', seed=s), features[rows],
                                            labels[rows], 2, seed=seed)
        assert estimate['labels'] == 40 and estimate['folds'] == 5
        assert 0 < estimate['low'] < estimate['high'] <= 1  # never a point: 40 of 40 right leaves room below
        model = models.create('linear', seed=seed).fit(features[rows], labels[rows], 2)
        truth = balanced_accuracy(model.predict_proba(features[unseen]).argmax(axis=1), labels[unseen])
        covered += estimate['low'] <= truth <= estimate['high']
        widths.append(estimate['high'] - estimate['low'])
    assert covered >= 5, covered
    assert 0 < np.mean(widths) < 0.4  # an interval that says something, on 40 labels


def test_no_cross_validated_accuracy_while_a_class_has_one_label(ihc):
    features, labels, _ = ihc
    rows = np.concatenate([np.flatnonzero(labels == 0)[:10], np.flatnonzero(labels == 1)[:1]])
    assert cross_validated_accuracy(lambda: models.create('linear'), features[rows], labels[rows], 2) is None
    two = np.concatenate([rows, np.flatnonzero(labels == 1)[1:2]])
    assert cross_validated_accuracy(lambda: models.create('linear'), features[two], labels[two], 2)['folds'] == 2
