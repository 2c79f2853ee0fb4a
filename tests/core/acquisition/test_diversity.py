"""Coreset, uncertainty-then-diversity and the k-means cold start on real handwritten digits (scikit-learn's
copy of the UCI digits: 1797 real 8 × 8 scans in 10 classes) and on hand-built points."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from histomics_label.core.acquisition.diversity import (
    covering_radius,
    k_center_greedy,
    kmeans_cold_start,
    uncertain_and_diverse,
)


@pytest.fixture(scope='module')
def digits():
    features, classes = load_digits(return_X_y=True)
    return features.astype(np.float32), classes


def test_k_center_greedy_on_a_line_goes_farthest_first():
    points = np.arange(11, dtype=np.float64)[:, None]  # 0, 1, …, 10 on a line
    batch = k_center_greedy(points, np.arange(1, 11), 3, centres=np.array([0]))
    assert batch.rows.tolist() == [10, 5, 2]  # 2, 3, 7 and 8 tie at distance 2 from {0, 5, 10}: the lowest row wins
    np.testing.assert_allclose(batch.scores, [10, 5, 2])
    alone = k_center_greedy(points, np.arange(11), 2)
    assert alone.rows.tolist() == [5, 0] and np.isinf(alone.scores[0])  # no centres: start at the mean


def _farthest_first(points: np.ndarray, candidates: np.ndarray, n: int, centres: np.ndarray) -> list[int]:
    """Farthest-first by its definition, every distance in float64 from scratch at every pick."""
    points = points.astype(np.float64)
    chosen = list(centres)
    picks = []
    for _ in range(n):
        left = [row for row in candidates if row not in picks]
        gaps = [min(np.sum((points[row] - points[c]) ** 2) for c in chosen) for row in left]
        picks.append(int(left[int(np.argmax(gaps))]))
        chosen.append(picks[-1])
    return picks


@pytest.mark.parametrize('share', [0.9, 0.2])  # most rows are candidates (read in place) or few (gathered once)
def test_k_center_greedy_picks_what_the_definition_picks_on_real_digits(digits, share):
    features, _ = digits
    rng = np.random.default_rng(1)
    rows = rng.permutation(len(features))
    labeled, pool = rows[:4], np.sort(rows[4:4 + int(share * len(features))])
    batch = k_center_greedy(features, pool, 12, centres=labeled)
    assert batch.rows.tolist() == _farthest_first(features, pool, 12, labeled)


def test_coreset_covers_real_data_better_than_random(digits):
    features, _ = digits
    rng = np.random.default_rng(0)
    labeled = rng.choice(len(features), 5, replace=False)
    pool = np.setdiff1d(np.arange(len(features)), labeled)
    batch = k_center_greedy(features, pool, 30, centres=labeled)
    assert len(set(batch.rows.tolist())) == 30 and not set(batch.rows.tolist()) & set(labeled.tolist())
    radius = covering_radius(features, pool, np.concatenate([labeled, batch.rows]))
    randoms = [covering_radius(features, pool, np.concatenate([labeled, rng.choice(pool, 30, replace=False)]))
               for _ in range(20)]
    assert radius < min(randoms)
    assert batch.scores[-1] == pytest.approx(radius, rel=0.3)  # the last pick's distance is about the radius
    assert np.all(np.diff(batch.scores) <= 1e-9)


def test_uncertain_and_diverse_avoids_duplicates_and_stays_uncertain(digits):
    """40 uncertain digits come with four copies each; entropy alone fills a batch with copies."""
    features, classes = digits
    rng = np.random.default_rng(1)
    uncertain = rng.choice(len(features), 40, replace=False)
    embeddings = np.concatenate([features, features[np.repeat(uncertain, 4)]])
    uncertainty = np.concatenate([rng.uniform(0, 0.6, len(features)), np.zeros(160)])
    uncertainty[uncertain] = rng.uniform(0.6, 0.7, 40)
    uncertainty[len(features):] = np.repeat(uncertainty[uncertain], 4)
    candidates = np.arange(len(embeddings))
    plain = candidates[np.argsort(-uncertainty, kind='stable')[:20]]
    mixed = uncertain_and_diverse(embeddings, uncertainty, candidates, 20, shortlist_factor=10).rows

    def duplicate_pairs(rows):
        distances = np.linalg.norm(embeddings[rows, None] - embeddings[None, rows], axis=2)
        return int((distances[np.triu_indices(len(rows), 1)] < 1e-6).sum())

    assert duplicate_pairs(plain) == 40  # four digits, five copies each
    assert duplicate_pairs(mixed) == 0
    assert uncertainty[mixed].mean() > np.quantile(uncertainty, 0.9)
    np.testing.assert_array_equal(uncertain_and_diverse(embeddings, uncertainty, candidates, 20).rows,
                                  uncertain_and_diverse(embeddings, uncertainty, candidates, 20).rows)


def test_cold_start_hits_more_digit_classes_than_random(digits):
    features, classes = digits
    everything = np.arange(len(features))
    hits = [len(set(classes[kmeans_cold_start(features, everything, 10, seed=seed).rows])) for seed in range(4)]
    rng = np.random.default_rng(0)
    random_hits = [len(set(classes[rng.choice(len(features), 10, replace=False)])) for _ in range(200)]
    assert np.mean(hits) >= np.mean(random_hits) + 1.5  # random: about 6.5 of 10 classes
    first = kmeans_cold_start(features, everything, 10, seed=0)
    again = kmeans_cold_start(features, everything, 10, seed=0)
    np.testing.assert_array_equal(first.rows, again.rows)
    assert np.all(np.diff(first.scores) <= 0) and 0 < first.scores.sum() <= 1


def test_cold_start_uses_labels_as_centres_and_bounds_the_fit(digits):
    """With every 0, 1 and 2 labeled (so covered), new picks go to the other classes, also when fitting on a
    sample of the candidates."""
    features, classes = digits
    labeled = np.flatnonzero(classes < 3)
    candidates = np.flatnonzero(classes >= 3)
    for max_points in (20_000, 300):
        batch = kmeans_cold_start(features, candidates, 7, labeled, seed=2, max_points=max_points)
        assert set(batch.rows.tolist()) <= set(candidates.tolist()) and len(set(batch.rows.tolist())) == 7
        assert len(set(classes[batch.rows])) >= 5
