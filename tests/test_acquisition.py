"""Acquisition orderings on probability arrays whose right order is known by construction."""

import numpy as np
import pytest

from histomics_label.core.acquisition import acquisition_functions

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
    assert acquisition_functions.names() == ['confidence', 'margin', 'negative_entropy', 'random']


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
