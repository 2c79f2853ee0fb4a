"""Acquisition orderings on probability arrays whose right order is known by construction."""

import numpy as np
import pytest

from histomics_label.core.acquisition import Selection, acquisition_functions
from histomics_label.core.errors import ConfigurationError

# Rows chosen so that the three uncertainty measures disagree:
#   row 0: sure of class 0            → least worth labeling by every measure
#   row 1: split between two classes  → smallest margin
#   row 2: spread over three classes  → highest entropy and least confidence
#   row 3: fairly sure of class 2
PROBABILITIES = np.array([
    [0.98, 0.01, 0.01],
    [0.50, 0.49, 0.01],
    [0.40, 0.30, 0.30],
    [0.10, 0.10, 0.80],
])


def test_registered_names():
    assert acquisition_functions.names() == ['batchbald', 'confidence', 'coreset', 'entropy_diverse',
                                             'kmeans_cold_start', 'margin', 'negative_entropy', 'random']
    needs = {name: acquisition_functions.get(name).needs for name in acquisition_functions.names()}
    assert needs['batchbald'] == ('samples',) and needs['coreset'] == ('embeddings', 'labeled')
    assert needs['entropy_diverse'] == ('embeddings',) and needs['kmeans_cold_start'] == ('embeddings', 'labeled')
    assert all(not needs[name] for name in ('confidence', 'margin', 'negative_entropy', 'random'))


@pytest.mark.parametrize('name, order', [
    ('confidence', [2, 1, 3, 0]),        # 1 − max p: 0.60, 0.50, 0.20, 0.02
    ('margin', [1, 2, 3, 0]),            # 1 − (p1 − p2): 0.99, 0.90, 0.30, 0.03
    ('negative_entropy', [2, 1, 3, 0]),  # entropy: 1.09, 0.74, 0.64, 0.11
])
def test_most_uncertain_first(name, order):
    function = acquisition_functions.create(name)
    assert function.rank(PROBABILITIES, np.ones(4, bool), 4).tolist() == order
    scores = function.scores(PROBABILITIES)
    assert scores.shape == (4,) and np.all(np.diff(scores[order]) <= 0)


def test_scores_match_their_definitions():
    p = PROBABILITIES
    np.testing.assert_allclose(acquisition_functions.create('confidence').scores(p), 1 - p.max(axis=1))
    top = np.sort(p, axis=1)
    np.testing.assert_allclose(acquisition_functions.create('margin').scores(p), 1 - (top[:, -1] - top[:, -2]))
    np.testing.assert_allclose(acquisition_functions.create('negative_entropy').scores(p),
                               -(p * np.log(p)).sum(axis=1))
    certain = np.array([[1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(acquisition_functions.create('negative_entropy').scores(certain), [0, np.log(2)])


def test_candidates_mask_and_indices_are_honoured():
    function = acquisition_functions.create('confidence')
    mask = np.array([True, True, False, True])  # row 2 (the most uncertain) is already labeled
    assert function.rank(PROBABILITIES, mask, 2).tolist() == [1, 3]
    assert function.rank(PROBABILITIES, np.array([0, 3]), 5).tolist() == [3, 0]
    assert function.rank(PROBABILITIES, np.zeros(4, bool), 3).tolist() == []
    assert function.rank(PROBABILITIES, mask, 0).tolist() == []
    with pytest.raises(ValueError, match='mask'):
        function.rank(PROBABILITIES, np.ones(3, bool), 2)
    with pytest.raises(ValueError, match='0..3'):
        function.rank(PROBABILITIES, np.array([4]), 2)


def test_ties_are_broken_by_row():
    tied = np.tile([[0.6, 0.4]], (6, 1))
    for name in ('confidence', 'margin', 'negative_entropy'):
        assert acquisition_functions.create(name).rank(tied, np.ones(6, bool), 4).tolist() == [0, 1, 2, 3]
        assert acquisition_functions.create(name).rank(tied, np.array([5, 2, 4]), 2).tolist() == [2, 4]


def test_random_is_reproducible_per_seed_and_respects_candidates():
    probabilities = np.full((500, 2), 0.5)
    candidates = np.arange(500) % 3 != 0
    function = acquisition_functions.create('random')
    first = function.rank(probabilities, candidates, 50, seed=7)
    assert first.tolist() == function.rank(probabilities, candidates, 50, seed=7).tolist()
    assert first.tolist() != function.rank(probabilities, candidates, 50, seed=8).tolist()
    assert len(set(first.tolist())) == 50 and np.all(candidates[first])
    assert first.tolist() != sorted(first.tolist())


def test_select_returns_the_ranked_rows_with_their_scores():
    function = acquisition_functions.create('negative_entropy')
    selection = function.select(PROBABILITIES, np.array([True, True, False, True]), 2)
    assert isinstance(selection, Selection) and selection.rows.tolist() == [1, 3]
    np.testing.assert_allclose(selection.scores, function.scores(PROBABILITIES)[[1, 3]])


# Three tight, well-separated groups of points in 2-D: rows 0-9 near (0, 0), 10-19 near (10, 0), 20-29 near (0, 10).
GROUPS = np.concatenate([centre + np.random.default_rng(0).normal(scale=0.1, size=(10, 2))
                         for centre in ([0, 0], [10, 0], [0, 10])])


def test_joint_functions_need_their_inputs_and_score_no_segment_alone():
    for name in ('batchbald', 'coreset', 'entropy_diverse', 'kmeans_cold_start'):
        function = acquisition_functions.create(name)
        with pytest.raises(ConfigurationError, match='needs'):
            function.rank(np.full((30, 2), 0.5), np.ones(30, bool), 3)
        with pytest.raises(ConfigurationError, match='jointly'):
            function.scores(np.full((30, 2), 0.5))
    with pytest.raises(ValueError, match='rows'):
        acquisition_functions.create('coreset').rank(np.full((29, 2), 0.5), np.ones(29, bool), 3,
                                                     embeddings=GROUPS, labeled=[])


def test_coreset_and_cold_start_cover_what_the_labels_do_not():
    """With group 0 labeled (one row of it labeled with an excluded category, which counts as covered), two
    picks go to the two other groups, one each; the candidates exclude every labeled row."""
    labeled = np.array([0, 1])
    candidates = np.ones(30, bool)
    candidates[labeled] = False
    for name in ('coreset', 'kmeans_cold_start'):
        selection = acquisition_functions.create(name).select(None, candidates, 2, embeddings=GROUPS, labeled=labeled)
        assert sorted(row // 10 for row in selection.rows) == [1, 2], name
        assert selection.scores.shape == (2,)


def test_batchbald_by_name_honours_candidates():
    rng = np.random.default_rng(1)
    samples = rng.dirichlet(np.ones(3) * 0.3, size=(40, 40))  # (S, N, C): 5 picks hold under ln 40 nats
    candidates = np.arange(40) % 4 != 0
    function = acquisition_functions.create('batchbald', num_configurations=500)
    selection = function.select(samples.mean(axis=0), candidates, 5, samples=samples)
    assert len(selection.rows) == 5 and np.all(candidates[selection.rows])
    assert np.all(np.diff(selection.scores) <= 1e-12)  # gains of a greedy submodular choice fall
    assert function.rank(samples.mean(axis=0), candidates, 5, samples=samples).tolist() == selection.rows.tolist()
    with pytest.raises(ValueError, match='samples has 40 rows for 39 segments'):
        function.rank(samples.mean(axis=0)[:39], np.ones(39, bool), 5, samples=samples)


def test_entropy_diverse_skips_near_duplicates_that_entropy_alone_takes():
    """Rows 0-9 are copies of one uncertain segment; entropy ranks them all first, the mix takes one."""
    probabilities = np.tile([[0.9, 0.1]], (30, 1))
    probabilities[:10] = [0.5, 0.5]
    probabilities[10:20] = [0.6, 0.4]
    embeddings = GROUPS.copy()
    embeddings[:10] = embeddings[0]
    plain = acquisition_functions.create('negative_entropy').rank(probabilities, np.ones(30, bool), 3)
    mixed = acquisition_functions.create('entropy_diverse', shortlist_factor=7).select(
        probabilities, np.ones(30, bool), 3, embeddings=embeddings)
    assert plain.tolist() == [0, 1, 2]
    assert mixed.rows[0] == 0 and sorted(row // 10 for row in mixed.rows) == [0, 1, 2]
    assert mixed.scores[0] == pytest.approx(np.log(2))


@pytest.mark.parametrize('probabilities, strategy, expected', [
    ({'tumor': 0.55, 'stroma': 0.45}, 'batchbald', 'the model is torn between tumor (55 %) and stroma (45 %)'),
    ({'tumor': 0.3, 'stroma': 0.6, 'fat': 0.1}, 'margin', 'the model is torn between stroma (60 %) and tumor (30 %)'),
    ({'tumor': 0.95, 'stroma': 0.05}, 'batchbald',
     'versions of the model that fit the labels equally well disagree about it (on average tumor, 95 %)'),
    ({'tumor': 0.6, 'stroma': 0.2, 'fat': 0.2}, 'confidence', 'the model is unsure: tumor, 60 %'),
    ({'tumor': 0.05, 'stroma': 0.95}, 'negative_entropy',
     'among the segments the model is least sure of, though it says stroma, 95 %'),
])
def test_a_suggestions_reason_agrees_with_its_numbers(probabilities, strategy, expected):
    from histomics_label.core.acquisition.suggestions import uncertainty_reason

    assert uncertainty_reason(probabilities, strategy) == expected
