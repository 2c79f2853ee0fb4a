"""The contract every registered model keeps, checked on each of them the way scikit-learn's
``parametrize_with_checks`` checks every estimator: the tests are parametrised over ``models.names()``, so a model
registered later (here or through the entry-point group) is checked without touching this file.

The task is real: the DSB2018 fluorescence image cut into its 125 real nuclei and the nucleus-free 16-pixel blocks
of its background, in three classes (background, small nucleus, large nucleus). Vector models get per-segment
features computed from the image (a 4 × 4 grey thumbnail of the masked patch, mean and spread of the segment's
intensity, log area); image models get the masked 16-pixel patches themselves, cut by the real patch code. Models
train on the left half of the image and are scored on the spatially disjoint right half. Image models are kept
tiny (two blocks of width 8, ten epochs) so the file runs in seconds.
"""

import importlib
import json

import numpy as np
import pytest
import scipy.ndimage as ndi
from helpers.dsb2018_segments import nuclei_and_background

from histomics_label.core.errors import ConfigurationError, FeaturesError, LabelsError
from histomics_label.core.features.patches import ArraySlide, iter_patches
from histomics_label.core.models import models
from histomics_label.core.models.training import balanced_accuracy
from histomics_label.core.segments import SegmentTable

PATCH = 16
BLOCK = 16
N_CLASSES = 3
TINY_CNN = {'epochs': 10, 'width': 8, 'blocks': 2}
OPTIONS = {
    'linear': {},
    'seeded_kmeans': {},
    'cnn_torch': TINY_CNN,
    'cnn_keras': TINY_CNN,
}
"""Construction options of each registered model for this contract; a model missing here fails the contract."""
OPTIONAL_PACKAGES = {'cnn_keras': 'tensorflow'}
"""Models whose framework is an optional extra: skipped, saying why, where it cannot be imported."""


def make(name: str, **overrides):
    """A fresh model ``name`` with its contract options; skips where its optional framework cannot be imported."""
    if name not in OPTIONS:
        pytest.fail(f'Model {name!r} is registered but has no entry in OPTIONS of the model contract; add one')
    package = OPTIONAL_PACKAGES.get(name)
    if package:
        try:
            importlib.import_module(package)
        except Exception as exc:  # not installed, or installed but broken: either way the model cannot run here
            pytest.skip(f'{name} needs {package}, which cannot be imported here ({type(exc).__name__}: {exc})')
    return models.create(name, **{**OPTIONS[name], **overrides})


@pytest.fixture(scope='module')
def task(dsb2018):
    """Patches, features, 3-class labels, nucleus flags and the left-half mask of every DSB2018 segment."""
    rgb, raster, n_nuclei = nuclei_and_background(*dsb2018, BLOCK)
    n = int(raster.max())
    flat = raster.ravel().astype(np.int64)
    area = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    rows, cols = np.indices(raster.shape)
    centroid = np.stack([np.bincount(flat, cols.ravel(), minlength=n + 1)[1:] / area,
                         np.bincount(flat, rows.ravel(), minlength=n + 1)[1:] / area], axis=1)
    bbox = np.array([[box[1].start, box[0].start, box[1].stop, box[0].stop]
                     for box in ndi.find_objects(raster)])
    table = SegmentTable(bbox=bbox, centroid=centroid, area=area.astype(np.int64))
    patches = np.empty((n, PATCH, PATCH, 3), np.uint8)
    for ids, batch in iter_patches(ArraySlide(rgb), raster, table, PATCH, batch_size=256, tile_size=256):
        patches[ids - 1] = batch
    grey = rgb[:, :, 0].astype(np.float64).ravel()
    mean = np.bincount(flat, grey, minlength=n + 1)[1:] / area
    spread = np.sqrt(np.maximum(np.bincount(flat, grey ** 2, minlength=n + 1)[1:] / area - mean ** 2, 0))
    thumbnail = patches[:, :, :, 0].reshape(n, 4, PATCH // 4, 4, PATCH // 4).mean(axis=(2, 4)).reshape(n, 16)
    features = np.concatenate([thumbnail / 255, np.stack([mean / 255, spread / 255, np.log(area)], 1)], 1)
    nucleus = np.arange(1, n + 1) <= n_nuclei
    labels = np.where(nucleus, 1 + (area > np.median(area[nucleus])), 0).astype(np.int64)
    left = centroid[:, 0] < raster.shape[1] / 2
    assert n_nuclei == 125 and min(np.bincount(labels[left]).min(), np.bincount(labels[~left]).min()) >= 20
    return {'image': patches, 'vector': features.astype(np.float32), 'labels': labels, 'nucleus': nucleus,
            'left': left}


def inputs_of(model, task) -> np.ndarray:
    if model.representation not in ('vector', 'image'):
        pytest.fail(f'{model.name} declares representation {model.representation!r}, not "vector" or "image"')
    return task[model.representation]


def fit(model, task, n_classes: int = N_CLASSES, labels=None, **options):
    """``model`` fitted on the left half, with unlabeled right-half rows where the model learns from them."""
    inputs, left = inputs_of(model, task), task['left']
    labels = task['labels'] if labels is None else labels
    if model.unlabeled_points:
        options['unlabeled'] = inputs[~left]
    return model.fit(inputs[left], labels[left], n_classes, **options)


@pytest.fixture(scope='module')
def trained(task):
    """``trained(name)``: the model fitted once on the left half, shared by the module's tests (fitting is the slow
    part; tests only read it)."""
    fitted = {}

    def get(name: str):
        if name not in fitted:
            fitted[name] = fit(make(name), task)
        return fitted[name]
    return get


def assert_probabilities(probabilities: np.ndarray, rows: int, n_classes: int) -> None:
    assert probabilities.shape == (rows, n_classes) and probabilities.dtype == np.float32
    assert np.all(np.isfinite(probabilities)) and probabilities.min() >= 0 and probabilities.max() <= 1
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_contract_covers_every_registered_model():
    missing = sorted(set(models.names()) - set(OPTIONS))
    assert not missing, f'registered models without contract options: {missing}'


@pytest.mark.parametrize('name', models.names())
def test_params_are_json_name_the_model_and_rebuild_it(name):
    model = make(name)
    params = model.params()
    assert params['name'] == name == model.name
    assert json.loads(json.dumps(params)) == params
    rebuilt = models.create(name, **{key: value for key, value in params.items() if key != 'name'})
    assert rebuilt.params() == params
    with pytest.raises(ConfigurationError, match='trained'):
        model.predict_proba(inputs_of(model, {'vector': np.zeros((2, 19), np.float32),
                                              'image': np.zeros((2, PATCH, PATCH, 3), np.uint8)}))


@pytest.mark.parametrize('name', models.names())
def test_learns_the_held_out_half_better_than_chance(name, task, trained):
    model = trained(name)
    inputs, left, nucleus = inputs_of(model, task), task['left'], task['nucleus']
    probabilities = model.predict_proba(inputs[~left])
    assert_probabilities(probabilities, (~left).sum(), N_CLASSES)
    predicted = probabilities.argmax(axis=1)
    # measured: nucleus vs background 0.85–1.0, three classes 0.63–0.89 (chance 0.5 and 0.33)
    assert balanced_accuracy((predicted > 0).astype(int), nucleus[~left].astype(int)) >= 0.8
    assert balanced_accuracy(predicted, task['labels'][~left]) >= 0.5
    metrics = model.metrics()
    assert json.loads(json.dumps(metrics)) == metrics and metrics['warm_start'] is False


@pytest.mark.parametrize('name', models.names())
def test_state_is_a_flat_snapshot_that_round_trips(name, task, trained):
    model = trained(name)
    inputs = inputs_of(model, task)
    expected = model.predict_proba(inputs)
    state = model.state()
    assert state and all(isinstance(key, str) and '/' not in key for key in state)
    assert all(isinstance(value, np.ndarray) for value in state.values())
    restored = make(name).load_state(state)
    np.testing.assert_array_equal(restored.predict_proba(inputs), expected)
    np.testing.assert_array_equal(restored.predict_samples(inputs[:20], 4, seed=1),
                                  model.predict_samples(inputs[:20], 4, seed=1))
    for value in state.values():  # the returned state is a copy: changing it leaves the model alone
        value[...] = 0
    np.testing.assert_array_equal(model.predict_proba(inputs), expected)


@pytest.mark.parametrize('name', models.names())
def test_warm_starts_from_its_own_state(name, task, trained):
    model = trained(name)
    inputs, left, nucleus = inputs_of(model, task), task['left'], task['nucleus']
    warm = fit(make(name), task, warm_start=model.state())
    assert warm.metrics()['warm_start'] is True
    predicted = warm.predict_proba(inputs[~left]).argmax(axis=1)
    assert balanced_accuracy((predicted > 0).astype(int), nucleus[~left].astype(int)) >= 0.8
    # a category appended since the previous round: the state grows an output, as Model.fit documents
    extended = fit(make(name), task, n_classes=N_CLASSES + 1, warm_start=model.state())
    assert_probabilities(extended.predict_proba(inputs[:30]), 30, N_CLASSES + 1)


@pytest.mark.parametrize('name', models.names())
def test_remapped_classes_keep_the_predictions_of_kept_classes(name, task, trained):
    """Drop class 1 and swap the others: each kept class keeps its share of what the model predicted."""
    model = trained(name)
    inputs = inputs_of(model, task)
    before = model.predict_proba(inputs).astype(np.float64)
    state = model.state()
    remapped = models.get(name).remap_classes(state, [1, -1, 0])
    after = make(name).load_state(remapped).predict_proba(inputs)
    assert_probabilities(after, len(inputs), 2)
    kept = before[:, [2, 0]]
    np.testing.assert_allclose(after, kept / kept.sum(axis=1, keepdims=True), atol=1e-4)
    np.testing.assert_array_equal(make(name).load_state(state).predict_proba(inputs), before.astype(np.float32))
    with pytest.raises(LabelsError):
        models.get(name).remap_classes(state, [0, 1])  # a mapping must say where each old class goes


@pytest.mark.parametrize('name', models.names())
def test_posterior_samples_are_seeded_and_centred_on_the_prediction(name, task, trained):
    model = trained(name)
    inputs = inputs_of(model, task)[~task['left']]
    samples = model.predict_samples(inputs, 6, seed=3)
    assert samples.shape == (6, len(inputs), N_CLASSES) and samples.dtype == np.float32
    assert np.all(np.isfinite(samples))
    np.testing.assert_allclose(samples.sum(axis=2), 1, atol=1e-5)
    np.testing.assert_array_equal(samples, model.predict_samples(inputs, 6, seed=3))
    assert not np.array_equal(samples, model.predict_samples(inputs, 6, seed=4))
    assert np.abs(samples.mean(axis=0) - model.predict_proba(inputs)).mean() < 0.1


@pytest.mark.parametrize('name', models.names())
def test_wrong_inputs_raise_the_engines_errors(name, task, trained):
    model = trained(name)
    inputs, labels = inputs_of(model, task), task['labels']
    if model.representation == 'vector':
        wrong = [inputs[:8, :-1], inputs[:8, :, None]]
    else:
        wrong = [inputs[:8, :PATCH - 4, :PATCH - 4], inputs[:8, :, :, :2], inputs[:8].astype(np.float32)]
    for bad in wrong:
        with pytest.raises(FeaturesError):
            model.predict_proba(bad)
        with pytest.raises(FeaturesError):
            model.predict_samples(bad, 2)
    fresh = make(name)
    with pytest.raises(FeaturesError):
        fresh.fit(inputs[:10], labels[:9], N_CLASSES)
    with pytest.raises(LabelsError):
        fresh.fit(inputs[labels == 0][:10], labels[labels == 0][:10], N_CLASSES)
    with pytest.raises(LabelsError):
        fresh.fit(inputs[:10], np.full(10, N_CLASSES), N_CLASSES)
