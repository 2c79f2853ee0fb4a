"""Batches spread over embedding space: coreset (k-center greedy), uncertainty then diversity, k-means cold start.

Every function takes the segments' embeddings ``(N, D)`` and the candidate rows the caller built: unlabeled
segments only, so segments labeled with an excluded category (background, pen, "unsure") are never candidates.
Functions that account for what is already labeled take those rows as ``labeled``; that includes segments labeled
with an excluded category, because a labeled region is covered whatever its category. Distances are Euclidean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError
from ..models.clustering import CHUNK, distances_to, kmeans_plus_plus, lloyd, nearest_centres
from .base import (
    JointAcquisition,
    Selection,
    acquisition_functions,
    candidate_rows,
    check_probabilities,
    empty_selection,
    row_count,
)
from .uncertainty import MaximumEntropy


@dataclass(frozen=True)
class DiverseBatch:
    """Chosen rows in pick order and one score per pick (what the score means depends on the function)."""

    rows: np.ndarray
    scores: np.ndarray


def k_center_greedy(embeddings: np.ndarray, candidates: np.ndarray, n: int,
                    centres: np.ndarray | None = None) -> DiverseBatch:
    """Farthest-first traversal: each pick is the candidate farthest from every centre so far (Sener & Savarese).

    Greedy k-center: the picks with the ``centres`` rows (the labeled segments) cover the candidates with a
    covering radius within a factor 2 of the best possible. With no centres the first pick is the candidate
    nearest the candidates' mean (a typical segment, not an outlier). Scores are each pick's distance to its nearest
    centre when it was picked. Ties go to the lower row.
    """
    embeddings = np.asarray(embeddings)
    candidates = np.asarray(candidates, np.int64)
    n = min(int(n), len(candidates))
    if n <= 0:
        return DiverseBatch(np.zeros(0, np.int64), np.zeros(0))
    if centres is not None and len(centres):
        nearest = nearest_centres(embeddings, embeddings[np.asarray(centres, np.int64)], rows=candidates)[1]
    else:
        nearest = np.full(len(candidates), np.inf)
    pool = _Pool(embeddings, candidates)
    picks, radii = [], []
    for _ in range(n):
        if np.isinf(nearest).all():
            mean = embeddings[candidates].mean(axis=0, dtype=np.float64)[None]
            position = int(distances_to(embeddings, candidates, mean)[:, 0].argmin())
        else:
            position = int(nearest.argmax())
        picks.append(position)
        radii.append(float(np.sqrt(nearest[position])) if np.isfinite(nearest[position]) else np.inf)
        nearest = np.minimum(nearest, pool.squared_distances(embeddings[candidates[position]]))
        nearest[position] = -1.0  # never picked twice
    return DiverseBatch(candidates[np.array(picks)], np.array(radii))


class _Pool:
    """The candidates' squared distances to one point after another, each a single pass over their embeddings.

    Farthest-first makes one pass per pick, so the pass is what costs: the rows are read where they lie in their
    own precision (a float32 matrix-vector product in bounded chunks; the whole matrix when most rows are candidates,
    else the candidates gathered once), with their float64 squared norms computed once. Gathering and widening the
    candidates' rows to float64 on every pick took three quarters of Coreset's time at 100,000 segments.
    """

    def __init__(self, embeddings: np.ndarray, candidates: np.ndarray) -> None:
        self.rows = None if 2 * len(candidates) > len(embeddings) else candidates
        self.points = embeddings if self.rows is None else embeddings[candidates]
        self.norms = np.concatenate([np.einsum('ij,ij->i', block, block, dtype=np.float64) for block in
                                     self._blocks()] or [np.zeros(0)])
        self.candidates = candidates

    def _blocks(self):
        for start in range(0, len(self.points), CHUNK):
            yield self.points[start:start + CHUNK]

    def squared_distances(self, point: np.ndarray) -> np.ndarray:
        """``‖candidate − point‖²`` for every candidate, in the candidates' order, never negative."""
        point = np.asarray(point)
        products = np.concatenate([block @ point.astype(block.dtype) for block in self._blocks()]).astype(np.float64)
        result = self.norms - 2.0 * products + float(np.dot(point, point.astype(np.float64)))
        if self.rows is None:
            result = result[self.candidates]
        return np.maximum(result, 0.0, out=result)


def covering_radius(embeddings: np.ndarray, pool: np.ndarray, centres: np.ndarray) -> float:
    """Largest distance from a ``pool`` row to its nearest ``centres`` row: how well the centres cover the pool."""
    embeddings = np.asarray(embeddings)
    pool = np.asarray(pool, np.int64)
    if not len(pool):
        return 0.0
    return float(np.sqrt(nearest_centres(embeddings, embeddings[np.asarray(centres, np.int64)], rows=pool)[1].max()))


def uncertain_and_diverse(embeddings: np.ndarray, uncertainty: np.ndarray, candidates: np.ndarray, n: int,
                          shortlist_factor: float = 10.0) -> DiverseBatch:
    """A batch of uncertain segments that are not near-duplicates of each other.

    Shortlist the ``ceil(shortlist_factor · n)`` candidates of highest ``uncertainty`` (ties by row), then run
    farthest-first within the shortlist starting from its most uncertain segment, so every next pick is the
    shortlisted segment least like those already picked. Scores are the picks' uncertainties.
    """
    if shortlist_factor < 1:
        raise ValueError(f'The shortlist factor must be at least 1, not {shortlist_factor}')
    uncertainty = np.asarray(uncertainty, np.float64)
    candidates = np.asarray(candidates, np.int64)
    n = min(int(n), len(candidates))
    if n <= 0:
        return DiverseBatch(np.zeros(0, np.int64), np.zeros(0))
    size = min(len(candidates), int(np.ceil(shortlist_factor * n)))
    shortlist = candidates[np.lexsort((candidates, -uncertainty[candidates]))[:size]]
    picked = k_center_greedy(embeddings, shortlist[1:], n - 1, centres=shortlist[:1]).rows
    rows = np.concatenate([shortlist[:1], picked])
    return DiverseBatch(rows, uncertainty[rows])


def kmeans_cold_start(embeddings: np.ndarray, candidates: np.ndarray, n: int, labeled: np.ndarray | None = None,
                      seed: int = 0, iterations: int = 50, max_points: int = 20_000) -> DiverseBatch:
    """A first batch spread over embedding space, needing no model: one segment per k-means cluster.

    Runs k-means with the labeled segments as fixed centres (what is labeled is covered) and ``n`` new centres
    placed by seeded k-means++ on the candidates (at most ``max_points`` of them, a seeded sample, to bound the
    time), then picks the candidate nearest each new centre. Picks are ordered by their cluster's size, largest
    first, and scored with the share of the fitted segments in that cluster. Same seed, same picks.
    """
    embeddings = np.asarray(embeddings)
    candidates = np.asarray(candidates, np.int64)
    n = min(int(n), len(candidates))
    if n <= 0:
        return DiverseBatch(np.zeros(0, np.int64), np.zeros(0))
    rng = np.random.default_rng(seed)
    fit_rows = candidates if len(candidates) <= max_points else \
        np.sort(rng.choice(candidates, max_points, replace=False))
    points = embeddings[fit_rows].astype(np.float64)
    fixed = embeddings[np.asarray(labeled, np.int64)].astype(np.float64) if labeled is not None and len(labeled) \
        else np.zeros((0, embeddings.shape[1]))
    new = points[kmeans_plus_plus(points, n, rng, existing=fixed)]
    centres = np.concatenate([fixed, new])
    is_fixed = np.arange(len(centres)) < len(fixed)
    centres, assignment, _ = lloyd(points, centres, fixed=is_fixed, iterations=iterations)
    sizes = np.bincount(assignment, minlength=len(centres))[len(fixed):]
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    distance = distances_to(embeddings, candidates, centres[len(fixed):])  # (candidates, n)
    rows, shares = [], []
    for cluster in order:
        position = int(distance[:, cluster].argmin())
        distance[position] = np.inf  # each candidate is picked once
        rows.append(candidates[position])
        shares.append(sizes[cluster] / len(points))
    return DiverseBatch(np.array(rows, np.int64), np.array(shares, np.float64))


@acquisition_functions.register('coreset')
class Coreset(JointAcquisition):
    """Coreset by k-center greedy (Sener & Savarese 2018): the batch that, with the labeled segments as centres,
    best covers the unlabeled pool in embedding space. Ignores the model; scores are each pick's distance to its
    nearest centre when it was picked (the covering radius it removes).
    """

    needs = ('embeddings', 'labeled')
    uses_model = False

    def select(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
               **context) -> Selection:
        values, n_rows = self.inputs(context, row_count(probabilities))
        rows = candidate_rows(candidates, n_rows)
        if n <= 0 or rows.size == 0:
            return empty_selection()
        batch = k_center_greedy(values['embeddings'], rows, n, centres=values['labeled'])
        return Selection(batch.rows, batch.scores)


@acquisition_functions.register('entropy_diverse')
class EntropyDiverse(JointAcquisition):
    """Uncertain but not alike: shortlist the ``shortlist_factor · n`` candidates of highest entropy, then pick
    farthest-first in embedding space within the shortlist, so a batch holds no near-duplicates. Scores are the
    picks' entropies.
    """

    needs = ('embeddings',)

    def __init__(self, shortlist_factor: float = 10.0) -> None:
        if shortlist_factor < 1:
            raise ConfigurationError(f'shortlist_factor must be at least 1, not {shortlist_factor}')
        self.shortlist_factor = float(shortlist_factor)

    def params(self) -> dict:
        return {**super().params(), 'shortlist_factor': self.shortlist_factor}

    def select(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
               **context) -> Selection:
        if probabilities is None:
            raise ConfigurationError(f'The {self.name!r} acquisition function needs the model\'s probabilities')
        probabilities = check_probabilities(probabilities)
        values, n_rows = self.inputs(context, len(probabilities))
        rows = candidate_rows(candidates, n_rows)
        if n <= 0 or rows.size == 0:
            return empty_selection()
        batch = uncertain_and_diverse(values['embeddings'], MaximumEntropy().scores(probabilities), rows, n,
                                      self.shortlist_factor)
        return Selection(batch.rows, batch.scores)


@acquisition_functions.register('kmeans_cold_start')
class KMeansColdStart(JointAcquisition):
    """The first batch, before any model: seeded k-means in embedding space with the labeled segments as fixed
    centres, and the candidate nearest each new centre. Picks come largest cluster first, scored by the share of
    segments in their cluster. ``probabilities`` may be ``None``.
    """

    needs = ('embeddings', 'labeled')
    uses_model = False
    cold_start = True

    def __init__(self, iterations: int = 50, max_points: int = 20_000) -> None:
        if iterations < 1 or max_points < 1:
            raise ConfigurationError('iterations and max_points must be positive')
        self.iterations = int(iterations)
        self.max_points = int(max_points)

    def params(self) -> dict:
        return {**super().params(), 'iterations': self.iterations, 'max_points': self.max_points}

    def select(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
               **context) -> Selection:
        values, n_rows = self.inputs(context, row_count(probabilities))
        rows = candidate_rows(candidates, n_rows)
        if n <= 0 or rows.size == 0:
            return empty_selection()
        batch = kmeans_cold_start(values['embeddings'], rows, n, values['labeled'], seed=seed,
                                  iterations=self.iterations, max_points=self.max_points)
        return Selection(batch.rows, batch.scores)
