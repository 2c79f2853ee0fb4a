"""Classifiers trained on the labeled segments and applied to every segment.

A model learns from ``(N, …)`` inputs and labels ``0..C−1`` and predicts ``(M, C)`` class probabilities. Its learnt
state is a flat ``dict`` of numpy arrays so the slide store can keep it in HDF5 and a later run can predict
without retraining. ``representation`` says which input a model expects: ``'vector'`` models take feature vectors
``(N, D)``; models that learn from the masked patches themselves (CNNs) declare ``'image'`` and take ``(N, P, P, 3)``.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigurationError, FeaturesError, LabelsError
from .registry import Registry


class Model:
    """A classifier over one representation of the segments, with a storable state."""

    name: str
    representation = 'vector'

    def params(self) -> dict:
        """The options that change what is learnt, as JSON-able values."""
        return {'name': self.name}

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int) -> Model:  # pragma: no cover
        raise NotImplementedError

    def predict_proba(self, features: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def load_state(self, state: dict[str, np.ndarray]) -> Model:  # pragma: no cover - interface
        raise NotImplementedError


models: Registry[Model] = Registry('model')


def check_training_set(features: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate a training set, raising the error a user can act on; returns the arrays as numpy."""
    features = np.asarray(features)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise LabelsError('There are no labeled segments to train on; label some segments first')
    if len(features) != len(labels):
        raise FeaturesError(f'{len(features)} feature rows were given for {len(labels)} labels')
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes:
        raise LabelsError(f'Labels must be class indices in 0..{n_classes - 1}')
    present = np.unique(labels)
    if len(present) < 2:
        raise LabelsError('Training needs labeled segments of at least two categories; '
                          f'only {len(present)} category has labels')
    if not np.all(np.isfinite(features)):
        raise FeaturesError('The features of some labeled segments are not finite numbers')
    return features, labels.astype(np.int64)


def class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Weights ``N / (K · count_c)`` for the K classes present (0 for absent ones): each class counts equally."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes, np.float64)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights


@models.register('linear')
class LinearModel(Model):
    """Multinomial logistic regression on standardised features, trained full-batch with L-BFGS in torch.

    Features are standardised with the training set's mean and standard deviation (kept in the state). The loss is
    class-balanced cross-entropy (each class weighs the same however many labels it has) plus
    ``weight_decay / 2 · ‖W‖²``. The problem is convex, so L-BFGS for ``epochs`` iterations reaches the same
    optimum every time; training runs in float64 on the CPU from a ``seed``-ed start, so the same seed and data
    give identical weights.
    """

    def __init__(self, seed: int = 0, epochs: int = 100, weight_decay: float = 1e-2) -> None:
        if epochs < 1:
            raise ConfigurationError(f'epochs must be at least 1, not {epochs}')
        if weight_decay < 0:
            raise ConfigurationError(f'weight_decay must not be negative, not {weight_decay}')
        self.seed = int(seed)
        self.epochs = int(epochs)
        self.weight_decay = float(weight_decay)
        self._state: dict[str, np.ndarray] | None = None

    def params(self) -> dict:
        return {**super().params(), 'seed': self.seed, 'epochs': self.epochs, 'weight_decay': self.weight_decay}

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int) -> LinearModel:
        import torch

        features, labels = check_training_set(features, labels, n_classes)
        if features.ndim != 2:
            raise FeaturesError(f'The linear model needs (N, D) feature vectors, not shape {features.shape}')
        data = features.astype(np.float64)
        mean = data.mean(axis=0)
        scale = data.std(axis=0)
        scale[scale < 1e-8] = 1.0
        inputs = torch.from_numpy((data - mean) / scale)
        targets = torch.from_numpy(labels)
        generator = torch.Generator().manual_seed(self.seed)
        weight = (0.01 * torch.randn(n_classes, data.shape[1], generator=generator, dtype=torch.float64))
        weight.requires_grad_(True)
        bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
        balance = torch.from_numpy(class_weights(labels, n_classes))
        optimiser = torch.optim.LBFGS([weight, bias], lr=1, max_iter=self.epochs, history_size=20,
                                      tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn='strong_wolfe')

        def closure():
            optimiser.zero_grad()
            logits = inputs @ weight.T + bias
            loss = torch.nn.functional.cross_entropy(logits, targets, weight=balance)
            loss = loss + 0.5 * self.weight_decay * (weight * weight).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        self._state = {'weight': weight.detach().numpy().copy(), 'bias': bias.detach().numpy().copy(),
                       'mean': mean, 'scale': scale}
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        if self._state is None:
            raise ConfigurationError('The model must be trained (fit) or loaded (load_state) before predicting')
        features = np.asarray(features)
        weight = self._state['weight']
        if features.ndim != 2 or features.shape[1] != weight.shape[1]:
            raise FeaturesError(f'The model was trained on {weight.shape[1]}-dimensional features but was given '
                                f'shape {features.shape}')
        probabilities = np.empty((len(features), weight.shape[0]), np.float32)
        for start in range(0, len(features), 65536):  # bounded memory for a slide's worth of segments
            chunk = (features[start:start + 65536].astype(np.float64) - self._state['mean']) / self._state['scale']
            logits = chunk @ weight.T + self._state['bias']
            logits -= logits.max(axis=1, keepdims=True)
            exp = np.exp(logits)
            probabilities[start:start + len(chunk)] = exp / exp.sum(axis=1, keepdims=True)
        return probabilities

    def state(self) -> dict[str, np.ndarray]:
        if self._state is None:
            raise ConfigurationError('The model has no state until it is trained')
        return {key: value.copy() for key, value in self._state.items()}

    def load_state(self, state: dict[str, np.ndarray]) -> LinearModel:
        try:
            loaded = {key: np.asarray(state[key], np.float64) for key in ('weight', 'bias', 'mean', 'scale')}
        except KeyError as exc:
            raise FeaturesError(f'The stored linear model lacks its {exc.args[0]!r} array') from None
        n_classes, dim = loaded['weight'].shape if loaded['weight'].ndim == 2 else (0, 0)
        if (loaded['weight'].ndim != 2 or loaded['bias'].shape != (n_classes,)
                or loaded['mean'].shape != (dim,) or loaded['scale'].shape != (dim,)):
            raise FeaturesError('The stored linear model\'s arrays have inconsistent shapes: '
                                + ', '.join(f'{k} {v.shape}' for k, v in loaded.items()))
        self._state = loaded
        return self
