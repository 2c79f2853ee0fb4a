"""Acquisition functions: which unlabeled segments a person should label next.

A function scores segments from the model's class probabilities ``(N, C)``; a HIGHER score means more worth
labeling. The names are those of the published Histomics Label's ``--certainty`` option, which names the
certainty measure whose *lowest* values are suggested first: ``confidence`` (max p), ``margin`` (p1 − p2) and
``negative_entropy`` (Σ p log p). The scores here are the same orderings turned around, so the top score is the
least certain segment.

The probabilities come from a model trained without the excluded categories (background, pen, "unsure"), and
the caller passes the ``candidates``: unlabeled segments only, which also leaves out every segment labeled with an
excluded category. Functions that choose a batch jointly (BatchBALD, Coreset) override ``rank`` and name the extra
inputs they need in ``needs`` (e.g. ``('features',)``), which the caller passes as keyword arguments.
"""

from __future__ import annotations

import numpy as np

from .registry import Registry


class AcquisitionFunction:
    """Ranks candidate segments by a score computed from class probabilities, highest first."""

    name: str
    needs: tuple[str, ...] = ()

    def params(self) -> dict:
        return {'name': self.name}

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:  # pragma: no cover - interface
        """One float64 score per row of ``probabilities``; higher = more worth labeling next."""
        raise NotImplementedError

    def rank(self, probabilities: np.ndarray, candidates: np.ndarray, n: int, seed: int = 0,
             **context) -> np.ndarray:
        """Row indices of the (at most) ``n`` best candidates, best first.

        ``candidates`` is a boolean mask over the rows or an array of row indices. Equal scores are ordered by
        row index, so the ranking never depends on the sort algorithm.
        """
        probabilities = check_probabilities(probabilities)
        rows = candidate_rows(candidates, len(probabilities))
        if n <= 0 or rows.size == 0:
            return np.zeros(0, np.int64)
        scores = self.scores(probabilities, seed)[rows]
        order = np.lexsort((rows, -scores))
        return rows[order[:n]]


acquisition_functions: Registry[AcquisitionFunction] = Registry('certainty metric')


def check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """``probabilities`` as an ``(N, C)`` float64 array, or a ``ValueError`` saying what is wrong."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 1:
        raise ValueError(f'Probabilities must be an (N, C) array, not shape {probabilities.shape}')
    if not np.all(np.isfinite(probabilities)):
        raise ValueError('Probabilities must be finite')
    return probabilities


def candidate_rows(candidates: np.ndarray, n_rows: int) -> np.ndarray:
    """Sorted, unique row indices from a boolean mask or an index array."""
    candidates = np.asarray(candidates)
    if candidates.dtype == bool:
        if candidates.shape != (n_rows,):
            raise ValueError(f'The candidate mask has shape {candidates.shape}, not ({n_rows},)')
        return np.flatnonzero(candidates)
    rows = np.unique(candidates.astype(np.int64).ravel())
    if rows.size and (rows[0] < 0 or rows[-1] >= n_rows):
        raise ValueError(f'Candidate rows must lie in 0..{n_rows - 1}')
    return rows


@acquisition_functions.register('confidence')
class LeastConfidence(AcquisitionFunction):
    """``1 − max p``: the segments whose most likely class is least likely come first."""

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:
        return 1.0 - check_probabilities(probabilities).max(axis=1)


@acquisition_functions.register('margin')
class SmallestMargin(AcquisitionFunction):
    """``1 − (p1 − p2)``: the segments whose two most likely classes are closest come first."""

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:
        probabilities = check_probabilities(probabilities)
        if probabilities.shape[1] == 1:
            return 1.0 - probabilities[:, 0]
        top = np.sort(probabilities, axis=1)[:, -2:]
        return 1.0 - (top[:, 1] - top[:, 0])


@acquisition_functions.register('negative_entropy')
class MaximumEntropy(AcquisitionFunction):
    """Entropy ``−Σ p log p`` (with 0 log 0 = 0): the segments of most uncertain prediction come first.

    Named after the certainty measure Σ p log p, the negative entropy, whose lowest values are suggested first.
    """

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:
        probabilities = np.clip(check_probabilities(probabilities), 0.0, 1.0)
        logs = np.log(np.where(probabilities > 0, probabilities, 1.0))
        return -(probabilities * logs).sum(axis=1)


@acquisition_functions.register('random')
class RandomAcquisition(AcquisitionFunction):
    """Uniform random scores from ``seed``: a baseline that ignores the model, reproducible per seed.

    Each row's score depends only on the seed and the row count, so the same seed gives the same ranking.
    """

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:
        return np.random.default_rng(seed).random(len(check_probabilities(probabilities)))
