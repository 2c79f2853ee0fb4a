"""Acquisition functions that score each segment alone from the model's class probabilities (the published Histomics
Label's ``--certainty`` measures), and the random baseline every function is measured against."""

from __future__ import annotations

import numpy as np

from .base import AcquisitionFunction, acquisition_functions, check_probabilities


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
