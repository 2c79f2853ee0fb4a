"""How well a round's model does, measured so that the estimate can be trusted.

The held-out split a model stops its training on is the data its best epoch was chosen with, so its accuracy there
is biased upwards (on a few actively chosen labels it swung from 100 % to 58 % and back between rounds). The round
reports instead a stratified k-fold cross-validation over its labels: each fold trains a fresh model of the same
kind and options on the other folds and predicts the fold, and the balanced accuracy of the pooled out-of-fold
predictions comes with a 95 % interval and ``n``. It is what the model does on labels like those it was given;
labels chosen by an acquisition function are harder than a random sample of the slide, so it errs low rather than
high. The same out-of-fold predictions, restricted to the audit sample (``acquisition.audit``: segments drawn at
random), estimate the accuracy on the slide itself without that bias, and feed the calibration (``calibration``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .base import Model
from .training import balanced_accuracy

MAX_FOLDS = 5
POSTERIOR_DRAWS = 4000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class OutOfFold:
    """Each label's class probabilities from the model of the folds that did not hold it, and the fold it was in."""

    probabilities: np.ndarray
    fold: np.ndarray
    folds: int


def out_of_fold(make_model: Callable[[], Model], features: np.ndarray, labels: np.ndarray, n_classes: int,
                seed: int = 0, **fit_options) -> OutOfFold | None:
    """Out-of-fold probabilities of ``make_model()``'s models over stratified folds of the labels. None when some
    trained class has fewer than two labels (no fold could hold it out and still train on it)."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    counts = np.bincount(labels, minlength=n_classes)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < 2:
        return None
    folds = int(min(MAX_FOLDS, present.min()))
    probabilities = np.empty((len(labels), n_classes), np.float64)
    fold_of = np.empty(len(labels), np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        model = make_model().fit(features[train], labels[train], n_classes, **fit_options)
        probabilities[test] = model.predict_proba(features[test])
        fold_of[test] = fold
    return OutOfFold(probabilities, fold_of, folds)


def cross_validated_accuracy(make_model: Callable[[], Model], features: np.ndarray, labels: np.ndarray,
                             n_classes: int, seed: int = 0, **fit_options) -> dict | None:
    """Balanced accuracy of ``make_model()``'s models over stratified folds of the labels, with a ``CONFIDENCE``
    interval: ``{balanced_accuracy, low, high, labels, folds}``; None as for ``out_of_fold``."""
    found = out_of_fold(make_model, features, labels, n_classes, seed, **fit_options)
    if found is None:
        return None
    return {**accuracy_with_interval(found.probabilities.argmax(axis=1), labels, seed), 'folds': found.folds}


def accuracy_with_interval(predicted: np.ndarray, truth: np.ndarray, seed: int = 0) -> dict:
    """``{balanced_accuracy, low, high, labels}`` of predictions against the truth, over the classes present in
    the truth, with the central ``CONFIDENCE`` interval of ``_interval``."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    low, high = _interval(predicted, truth, seed)
    return {'balanced_accuracy': balanced_accuracy(predicted, truth), 'low': low, 'high': high,
            'labels': int(len(truth))}


def _interval(predicted: np.ndarray, truth: np.ndarray, seed: int) -> tuple[float, float]:
    """Central ``CONFIDENCE`` interval of the balanced accuracy: each class's recall gets its Jeffreys posterior
    Beta(right + ½, wrong + ½), and the mean of draws from them gives the interval. Unlike a bootstrap of the labels
    it stays honest when every label was predicted right (17 of 17 right still leaves a recall of 87 % plausible)."""
    rng = np.random.default_rng(seed)
    recalls = []
    for cls in np.unique(truth):
        right = int((predicted[truth == cls] == cls).sum())
        wrong = int((truth == cls).sum()) - right
        recalls.append(rng.beta(right + 0.5, wrong + 0.5, POSTERIOR_DRAWS))
    scores = np.mean(recalls, axis=0)
    tail = (1 - CONFIDENCE) / 2
    return float(np.quantile(scores, tail)), float(np.quantile(scores, 1 - tail))
