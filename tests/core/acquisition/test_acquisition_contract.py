"""The contract every registered acquisition function keeps, checked on each of them the way scikit-learn's
``parametrize_with_checks`` checks every estimator: the tests are parametrised over ``acquisition_functions.names()``,
so a function registered later (here or through the entry-point group) is checked without touching this file.

Every function sees the same real posterior: the DSB2018 segments (its 125 real nuclei and the nucleus-free 16-pixel
blocks of its background) described by features computed from the image, a linear model fitted on five labels of
each of three classes (background, small nucleus, large nucleus), its class probabilities and MC-dropout samples for
every segment, the features as embeddings, and the labeled rows. Candidates are the unlabeled segments less every
seventh one, which stands for a segment held out of suggestions (labeled with an excluded category elsewhere).
"""

import json

import numpy as np
import pytest
from helpers.dsb2018_segments import nuclei_and_background

from histomics_label.core.acquisition import JointAcquisition, acquisition_functions
from histomics_label.core.errors import ConfigurationError
from histomics_label.core.models import models

N = 8
OPTIONS = {
    'batchbald': {'num_configurations': 300},
    'confidence': {},
    'coreset': {},
    'entropy_diverse': {},
    'kmeans_cold_start': {},
    'margin': {},
    'negative_entropy': {},
    'random': {},
}
"""Construction options of each registered function for this contract; a function missing here fails the contract."""
def make(name: str):
    if name not in OPTIONS:
        pytest.fail(f'Acquisition function {name!r} is registered but has no entry in OPTIONS of the acquisition '
                    'contract; add one')
    return acquisition_functions.create(name, **OPTIONS[name])


@pytest.fixture(scope='module')
def posterior(dsb2018):
    """Probabilities ``(N, 3)``, MC samples ``(8, N, 3)``, embeddings ``(N, 19)``, labeled rows and candidate mask."""
    rgb, raster, n_nuclei = nuclei_and_background(*dsb2018, 16)
    n = int(raster.max())
    flat = raster.ravel().astype(np.int64)
    area = np.bincount(flat, minlength=n + 1)[1:].astype(np.float64)
    grey = rgb[:, :, 0].astype(np.float64).ravel() / 255
    mean = np.bincount(flat, grey, minlength=n + 1)[1:] / area
    spread = np.sqrt(np.maximum(np.bincount(flat, grey ** 2, minlength=n + 1)[1:] / area - mean ** 2, 0))
    rows, cols = np.indices(raster.shape)
    x = np.bincount(flat, cols.ravel(), minlength=n + 1)[1:] / area
    # the grey level of each segment's pixels in 16 rings around its centroid: a real texture description
    y = np.bincount(flat, rows.ravel(), minlength=n + 1)[1:] / area
    distance = np.hypot(cols.ravel() - x[flat - 1], rows.ravel() - y[flat - 1])
    ring = np.minimum((distance / 1.5).astype(np.int64), 15)
    ring_sums = np.zeros((n + 1, 16))
    np.add.at(ring_sums, (flat, ring), grey)
    ring_counts = np.maximum(np.bincount(flat * 16 + ring, minlength=(n + 1) * 16).reshape(n + 1, 16), 1)
    embeddings = np.concatenate([(ring_sums / ring_counts)[1:], np.stack([mean, spread, np.log(area)], 1)], 1)
    nucleus = np.arange(1, n + 1) <= n_nuclei
    classes = np.where(nucleus, 1 + (area > np.median(area[nucleus])), 0)
    rng = np.random.default_rng(0)
    labeled = np.sort(np.concatenate([rng.choice(np.flatnonzero(classes == c), 5, replace=False) for c in range(3)]))
    model = models.create('linear', seed=0).fit(embeddings[labeled], classes[labeled], 3)
    unlabeled = np.setdiff1d(np.arange(n), labeled)
    candidates = np.zeros(n, bool)
    candidates[unlabeled] = True
    candidates[unlabeled[::7]] = False
    probabilities = model.predict_proba(embeddings)
    assert 0.05 < (probabilities.max(axis=1) < 0.9).mean() < 0.95  # an uncertain posterior: something to rank
    return {'probabilities': probabilities, 'samples': model.predict_samples(embeddings, 8, seed=0),
            'embeddings': embeddings.astype(np.float32), 'labeled': labeled, 'candidates': candidates}


def needed(function, posterior) -> dict:
    return {key: posterior[key] for key in function.needs}


def select(function, posterior, n=N, seed=0, candidates=None, probabilities='given', **overrides):
    probabilities = posterior['probabilities'] if probabilities == 'given' else probabilities
    candidates = posterior['candidates'] if candidates is None else candidates
    return function.select(probabilities, candidates, n, seed, **{**needed(function, posterior), **overrides})


def test_contract_covers_every_registered_function():
    missing = sorted(set(acquisition_functions.names()) - set(OPTIONS))
    assert not missing, f'registered acquisition functions without contract options: {missing}'


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_selects_at_most_n_distinct_candidates_with_one_finite_score_each(name, posterior):
    selection = select(make(name), posterior)
    rows, scores = selection.rows, selection.scores
    assert rows.ndim == 1 and np.issubdtype(rows.dtype, np.integer)
    assert len(rows) == N and len(set(rows.tolist())) == len(rows)  # plenty of candidates: the batch is full
    assert posterior['candidates'][rows].all()  # never a labeled row, never a row left out of the candidates
    assert not set(rows.tolist()) & set(posterior['labeled'].tolist())
    assert scores.shape == rows.shape and np.issubdtype(scores.dtype, np.floating) and np.all(np.isfinite(scores))
    few = np.flatnonzero(posterior['candidates'])[:5]
    small = select(make(name), posterior, candidates=few)
    assert sorted(small.rows.tolist()) == few.tolist()  # asked for more than there are: every candidate, once


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_candidates_as_mask_or_rows_give_the_same_batch(name, posterior):
    function = make(name)
    by_mask = select(function, posterior)
    by_rows = select(function, posterior, candidates=np.flatnonzero(posterior['candidates'])[::-1])
    np.testing.assert_array_equal(by_rows.rows, by_mask.rows)
    np.testing.assert_array_equal(by_rows.scores, by_mask.scores)


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_is_deterministic_for_a_seed_and_rank_agrees_with_select(name, posterior):
    function = make(name)
    first = select(function, posterior, seed=5)
    again = select(make(name), posterior, seed=5)
    np.testing.assert_array_equal(first.rows, again.rows)
    np.testing.assert_array_equal(first.scores, again.scores)
    ranked = function.rank(posterior['probabilities'], posterior['candidates'], N, 5, **needed(function, posterior))
    np.testing.assert_array_equal(ranked, first.rows)


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_per_segment_scores_order_the_batch(name, posterior):
    """A function scoring segments alone picks the top-scored candidates; a joint one refuses to score alone."""
    function = make(name)
    probabilities = posterior['probabilities']
    if isinstance(function, JointAcquisition):
        with pytest.raises(ConfigurationError):
            function.scores(probabilities)
        return
    scores = function.scores(probabilities, seed=0)
    assert scores.shape == (len(probabilities),) and np.all(np.isfinite(scores))
    selection = select(function, posterior)
    np.testing.assert_array_equal(selection.scores, scores[selection.rows])
    candidates = np.flatnonzero(posterior['candidates'])
    assert scores[selection.rows].min() >= np.sort(scores[candidates])[-N]
    assert np.all(np.diff(selection.scores) <= 0)  # best first


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_nothing_asked_or_nothing_to_choose_gives_an_empty_batch(name, posterior):
    function = make(name)
    for selection in (select(function, posterior, n=0),
                      select(function, posterior, candidates=np.zeros(len(posterior['candidates']), bool)),
                      select(function, posterior, candidates=np.zeros(0, np.int64))):
        assert len(selection.rows) == 0 and len(selection.scores) == 0
    assert len(function.rank(posterior['probabilities'], posterior['candidates'], 0,
                             **needed(function, posterior))) == 0


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_a_missing_needed_input_is_a_configuration_error(name, posterior):
    function = make(name)
    for missing in function.needs:
        with pytest.raises(ConfigurationError, match=missing):
            select(function, posterior, **{missing: None})
    if not function.needs:  # nothing beyond probabilities: extra inputs are ignored, not required
        plain = select(function, posterior)
        with_extras = select(function, posterior, samples=posterior['samples'], embeddings=posterior['embeddings'],
                             labeled=posterior['labeled'])
        np.testing.assert_array_equal(plain.rows, with_extras.rows)


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_without_probabilities_a_function_works_or_says_it_needs_them(name, posterior):
    """``uses_model=False`` functions rank without a model, exactly as with one; the others may need the model's
    probabilities, and then say so with a ConfigurationError."""
    function = make(name)
    with_model = select(function, posterior)
    try:
        without = select(function, posterior, probabilities=None)
    except ConfigurationError:
        assert function.uses_model, f'{name} does not use a model yet refuses to run without probabilities'
        return
    np.testing.assert_array_equal(without.rows, with_model.rows)
    np.testing.assert_array_equal(without.scores, with_model.scores)


@pytest.mark.parametrize('name', acquisition_functions.names())
def test_params_are_json_name_the_function_and_rebuild_it(name):
    function = make(name)
    params = function.params()
    assert params['name'] == name == function.name
    assert json.loads(json.dumps(params)) == params
    rebuilt = acquisition_functions.create(name, **{key: value for key, value in params.items() if key != 'name'})
    assert rebuilt.params() == params
    assert isinstance(function.needs, tuple) and set(function.needs) <= {'samples', 'embeddings', 'labeled'}
    assert isinstance(function.uses_model, bool)
