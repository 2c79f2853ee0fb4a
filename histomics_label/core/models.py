"""Classifiers trained on the labeled segments and applied to every segment.

A model learns from ``(N, …)`` inputs and labels ``0..C−1`` and predicts ``(M, C)`` class probabilities. Its learnt
state is a flat ``dict`` of numpy arrays so the slide store can keep it in HDF5 and a later run can predict
without retraining, or continue training from it (``fit(..., warm_start=state)``) when a few labels were added.
``representation`` says which input a model expects: ``'vector'`` models take feature vectors ``(N, D)``; models
that learn from the masked patches themselves (CNNs, ``cnn_torch`` and ``cnn_keras``) declare ``'image'`` and
take ``(N, P, P, 3)`` uint8.

Every model trains the same way (see ``training``): class-balanced loss, a seeded stratified held-out split for
early stopping, and the same seed and data give the same weights. ``predict_samples`` draws posterior samples of
the probabilities for acquisition functions that need them (BatchBALD).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np

from .errors import ConfigurationError, FeaturesError, LabelsError
from .registry import Registry
from .training import (
    EarlyStopping,
    balanced_accuracy,
    balanced_log_loss,
    check_options,
    check_training_set,
    class_weights,
    mc_dropout_samples,
    remap_head,
    softmax,
    summary,
    validation_split,
)

__all__ = ['LinearModel', 'Model', 'check_training_set', 'class_weights', 'models']


class Model:
    """A classifier over one representation of the segments, with a storable state.

    ``class_axes`` names the state arrays of the output layer and their class axis: they are what a change of
    categories rewrites (``remap_classes``).
    """

    name: str
    representation = 'vector'
    class_axes: dict[str, int] = {}
    unlabeled_points = 0
    """How many unlabeled segments ``fit`` also learns from (passed as ``unlabeled=``); 0 for supervised models."""
    history: list[dict]

    def params(self) -> dict:
        """The options that change what is learnt, as JSON-able values."""
        return {'name': self.name}

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int,
            warm_start: dict[str, np.ndarray] | None = None) -> Model:  # pragma: no cover - interface
        """Train on ``features`` and labels ``0..n_classes−1``; from ``warm_start`` (a ``state()``) if given.

        A warm start keeps everything the state learnt and continues training, so a round after a few new labels
        needs few epochs. If the state has fewer classes than ``n_classes``, the new classes are appended
        (categories added at the end); any other change of classes needs ``remap_classes`` first.
        """
        raise NotImplementedError

    def predict_proba(self, features: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """``(N, C)`` float32 class probabilities."""
        raise NotImplementedError

    def predict_samples(self, features: np.ndarray, n_samples: int,
                        seed: int = 0) -> np.ndarray:  # pragma: no cover - interface
        """``(S, N, C)`` float32 class probabilities under ``n_samples`` draws from the model's posterior.

        Sample ``s`` is one plausible model applied to every row (what BatchBALD's joint entropies need). The
        draws depend only on ``seed``; their mean is close to ``predict_proba``.
        """
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def load_state(self, state: dict[str, np.ndarray]) -> Model:  # pragma: no cover - interface
        raise NotImplementedError

    def metrics(self) -> dict:
        """What the last fit did, JSON-able.

        ``epochs_run`` and ``best_epoch`` (the epoch whose weights were kept; for the linear model, L-BFGS
        iterations, and the iteration count of its final fit on every label), ``validation_balanced_accuracy``
        and ``validation_loss`` at that epoch (None without a held-out split), ``train_labels`` and
        ``validation_labels`` (the split; 0 held out when some class has a single label) and ``warm_start``.
        Per-epoch values are in ``self.history``.
        """
        metrics = getattr(self, '_metrics', None)
        if metrics is None:
            raise ConfigurationError('The model has no training metrics until it is trained')
        return dict(metrics)

    @classmethod
    def remap_classes(cls, state: dict[str, np.ndarray], mapping: Sequence[int],
                      n_classes: int | None = None) -> dict[str, np.ndarray]:
        """A state whose classes follow a change of categories, ready for ``load_state`` or a warm start.

        ``mapping[old]`` is the new class index of old class ``old`` (−1: dropped); ``n_classes`` defaults to
        ``max(mapping) + 1``. Merging two categories maps both to one index; adding one leaves an index nobody
        maps to. Only the output layer changes (see ``training.remap_head``); the rest of what was learnt is
        kept, so a short warm-started fit adapts the model instead of training it from scratch.
        """
        return remap_head(state, cls.class_axes, mapping, n_classes)

    def _warm_state(self, warm_start: dict[str, np.ndarray], n_classes: int) -> dict[str, np.ndarray]:
        """``warm_start`` with ``n_classes`` outputs: extended when categories were appended, else an error."""
        key, axis = next(iter(self.class_axes.items()))
        if key not in warm_start:
            raise FeaturesError(f'The warm-start state lacks its {key!r} array; it is not a {self.name} state')
        old = np.asarray(warm_start[key]).shape[axis]
        if old == n_classes:
            return warm_start
        if old > n_classes:
            raise LabelsError(f'The previous model has {old} classes but {n_classes} are being trained; map the old '
                              'classes to the new ones with remap_classes before warm-starting')
        return self.remap_classes(warm_start, list(range(old)), n_classes)


    def _trained(self) -> dict[str, np.ndarray]:
        """The learnt state of a model kept as ``self._state``, or the error saying it has none yet."""
        if getattr(self, '_state', None) is None:
            raise ConfigurationError('The model must be trained (fit) or loaded (load_state) before predicting')
        return self._state


models: Registry[Model] = Registry('model')


def check_feature_width(features: np.ndarray, dim: int) -> np.ndarray:
    """``features`` as an array, or a FeaturesError when it is not ``(N, dim)`` like the features trained on."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != dim:
        raise FeaturesError(f'The model was trained on {dim}-dimensional features but was given '
                            f'shape {features.shape}')
    return features


LBFGS_CHECK_EVERY = 10
"""L-BFGS iterations between two held-out checks of the linear model."""


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one intra-op thread for the duration, then the caller's count back.

    The linear model's tensors are small (labels × features); splitting each of its many tiny operations over
    threads costs more than it gains, and on a busy machine every parallel region can wait a scheduler slice
    (measured: 15 ms for a 560 × 7 product on 2 contended cores, against microseconds on one). One thread also
    makes its float64 results independent of the caller's thread count.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@models.register('linear')
class LinearModel(Model):
    """Multinomial logistic regression on standardised features, trained full-batch with L-BFGS in torch.

    Features are standardised with the training rows' mean and standard deviation (kept in the state). The loss
    is class-balanced cross-entropy (each class weighs the same however many labels it has) plus
    ``weight_decay / 2 · ‖W‖²`` plus the dropout penalty below. Training runs in float64 on the CPU from a
    ``seed``-ed start, so the same seed and data give identical weights. With ``validation`` > 0 and ≥ 2 labels
    per class, a seeded stratified part of the labels is held out: every ``LBFGS_CHECK_EVERY`` iterations its
    balanced accuracy (then loss) is measured, stopping after ``patience`` iterations without improvement; the
    model is then trained again on every label (held-out ones included: with a handful of labels per class none
    can be spared) for the best iteration count. With ``validation=0`` every label trains for ``epochs``
    iterations. A warm start converts the previous weights to the new standardisation exactly and continues from
    there (in both passes).

    Posterior samples (``predict_samples``) are MC dropout on the standardised inputs (Gal & Ghahramani, 2016):
    sample ``s`` switches off each feature with probability ``dropout`` (a dropped feature reads as its training
    mean) and scales the rest by ``1 / (1 − dropout)``, which is the weight matrix with some columns removed. For
    those samples to be a posterior of *this* model it must be trained with the same dropout; L-BFGS cannot train
    on random masks, so the expected dropout loss is used in its second-order form (Wager, Wang & Liang, 2013):
    ``½ · dropout / (1 − dropout) · Σ_d x_d² W_{:,d}ᵀ (diag p − ppᵀ) W_{:,d}`` per row, added to the loss. It is
    deterministic, cheap (``O(N D C)``), and it drives the model to spread its evidence over features so that
    losing a few barely moves a confident prediction: the samples' mean stays close to ``predict_proba``.

    A Laplace approximation around the MAP weights was considered and measured: on hundreds of labels with
    1280-dimensional embeddings the softmax regression is nearly separable, the curvature is tiny and the prior
    weak, so the Gaussian posterior is so wide that its samples are close to random (mean far from
    ``predict_proba``); an exact Hessian would also need ``(C(D+1))²`` numbers per round.
    """

    class_axes = {'weight': 0, 'bias': 0}

    def __init__(self, seed: int = 0, epochs: int = 100, weight_decay: float = 1e-2, validation: float = 0.2,
                 patience: int = 30, dropout: float = 0.2) -> None:
        check_options(epochs=epochs, weight_decay=weight_decay, validation=validation, patience=patience,
                      dropout=dropout)
        self.seed = int(seed)
        self.epochs = int(epochs)
        self.weight_decay = float(weight_decay)
        self.validation = float(validation)
        self.patience = int(patience)
        self.dropout = float(dropout)
        self._state: dict[str, np.ndarray] | None = None
        self.history = []

    def params(self) -> dict:
        return {**super().params(), 'seed': self.seed, 'epochs': self.epochs, 'weight_decay': self.weight_decay,
                'validation': self.validation, 'patience': self.patience, 'dropout': self.dropout}

    def fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int,
            warm_start: dict[str, np.ndarray] | None = None) -> LinearModel:
        features, labels = check_training_set(features, labels, n_classes)
        with one_torch_thread():
            return self._fit(features, labels, n_classes, warm_start)

    def _fit(self, features: np.ndarray, labels: np.ndarray, n_classes: int,
             warm_start: dict[str, np.ndarray] | None) -> LinearModel:
        """Find the iteration count on a held-out split, then train on every label for that many iterations."""
        if features.ndim != 2:
            raise FeaturesError(f'The linear model needs (N, D) feature vectors, not shape {features.shape}')
        train, held = validation_split(labels, self.validation, self.seed)
        if len(held):
            _, stopper = self._train(features[train], labels[train], n_classes, warm_start, self.epochs,
                                     features[held], labels[held])
            self.history, iterations = stopper.history, stopper.best_epoch
        else:
            self.history, iterations = [], self.epochs
        weights, ran = self._train(features, labels, n_classes, warm_start, iterations)
        if not len(held):
            self.history = [{'epoch': ran}]
        self._state = {**weights, 'dropout': np.float64(self.dropout)}
        self._metrics = summary(self.history, iterations if len(held) else ran, len(train), len(held),
                                warm_start is not None)
        return self

    def _train(self, features: np.ndarray, labels: np.ndarray, n_classes: int,
               warm_start: dict[str, np.ndarray] | None, max_iterations: int, held_features: np.ndarray | None = None,
               held_labels: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], EarlyStopping | int]:
        """L-BFGS on ``features`` for at most ``max_iterations``: ``(weights, iterations run)``.

        With held-out rows, training is checked every ``LBFGS_CHECK_EVERY`` iterations and returns the best
        weights with the ``EarlyStopping`` record instead of the count.
        """
        import torch

        data = features.astype(np.float64)
        mean = data.mean(axis=0)
        scale = data.std(axis=0)
        scale[scale < 1e-8] = 1.0
        inputs = torch.from_numpy((data - mean) / scale)
        targets = torch.from_numpy(labels)
        if warm_start is not None:
            start_weight, start_bias = self._warm_weights(warm_start, n_classes, mean, scale)
            weight = torch.from_numpy(start_weight)
            bias = torch.from_numpy(start_bias)
        else:
            generator = torch.Generator().manual_seed(self.seed)
            weight = 0.01 * torch.randn(n_classes, data.shape[1], generator=generator, dtype=torch.float64)
            bias = torch.zeros(n_classes, dtype=torch.float64)
        weight.requires_grad_(True)
        bias.requires_grad_(True)
        balance = torch.from_numpy(class_weights(labels, n_classes))
        row_weights = balance[targets]
        squares = inputs * inputs
        spread = self.dropout / (1 - self.dropout)

        def dropout_penalty(logits, weight):
            """Weighted mean over rows of ``½ · spread · Σ_d x_d² W_{:,d}ᵀ (diag p − ppᵀ) W_{:,d}``."""
            probabilities = torch.softmax(logits, dim=1)
            diagonal = ((squares @ (weight * weight).T) * probabilities).sum(dim=1)
            outer = (squares * (probabilities @ weight) ** 2).sum(dim=1)
            return 0.5 * spread * (row_weights * (diagonal - outer)).sum() / row_weights.sum()

        def closure():
            optimiser.zero_grad()
            logits = inputs @ weight.T + bias
            loss = torch.nn.functional.cross_entropy(logits, targets, weight=balance)
            loss = loss + 0.5 * self.weight_decay * (weight * weight).sum()
            if self.dropout > 0:
                loss = loss + dropout_penalty(logits, weight)
            loss.backward()
            return loss

        def snapshot() -> dict[str, np.ndarray]:
            return {'weight': weight.detach().numpy().copy(), 'bias': bias.detach().numpy().copy(),
                    'mean': mean, 'scale': scale}

        checking = held_features is not None
        chunk = LBFGS_CHECK_EVERY if checking else max(1, max_iterations)
        optimiser = torch.optim.LBFGS([weight, bias], lr=1, max_iter=chunk, history_size=20,
                                      tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn='strong_wolfe')
        stopper = EarlyStopping(patience=-(-self.patience // LBFGS_CHECK_EVERY))
        best = snapshot()
        iterations = 0

        def check() -> None:
            nonlocal best
            current = snapshot()
            probabilities = softmax(((held_features.astype(np.float64) - mean) / scale) @ current['weight'].T
                                    + current['bias'])
            if stopper.update(iterations, balanced_accuracy(probabilities.argmax(axis=1), held_labels),
                              balanced_log_loss(probabilities, held_labels, class_weights(held_labels, n_classes))):
                best = current

        if checking and warm_start is not None:
            check()
        while iterations < max_iterations and not stopper.stop:
            before = weight.detach().clone()
            optimiser.param_groups[0]['max_iter'] = min(chunk, max_iterations - iterations)
            optimiser.step(closure)
            iterations += optimiser.param_groups[0]['max_iter']
            if checking:
                check()
            else:
                best = snapshot()
            if torch.equal(before, weight.detach()):
                break  # converged: L-BFGS no longer moves
        return best, stopper if checking else iterations

    def _warm_weights(self, warm_start: dict[str, np.ndarray], n_classes: int, mean: np.ndarray,
                      scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous weights expressed on the new standardisation (the same logits for every input)."""
        previous = self._checked(self._warm_state(warm_start, n_classes))
        if previous['weight'].shape[1] != len(mean):
            raise FeaturesError(f'The previous model was trained on {previous["weight"].shape[1]}-dimensional '
                                f'features but these are {len(mean)}-dimensional; train it from scratch')
        weight = previous['weight'] * (scale / previous['scale'])
        bias = previous['bias'] + previous['weight'] @ ((mean - previous['mean']) / previous['scale'])
        return np.ascontiguousarray(weight), bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        state = self._trained()
        features = self._check_features(features)
        # The standardisation folded into the weights, so each chunk is one float32 product (sgemm) rather than a
        # float64 copy of the features: 10x faster on a million 1280-d rows, probabilities within 1e-5.
        weight = state['weight'] / state['scale']
        bias = state['bias'] - weight @ state['mean']
        weight32 = np.ascontiguousarray(weight.T, np.float32)
        probabilities = np.empty((len(features), weight.shape[0]), np.float32)
        for start in range(0, len(features), 65536):  # bounded memory for a slide's worth of segments
            chunk = np.asarray(features[start:start + 65536], np.float32)
            probabilities[start:start + len(chunk)] = softmax((chunk @ weight32).astype(np.float64) + bias)
        return probabilities

    def predict_samples(self, features: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
        """MC dropout on the standardised features at the rate the weights were trained with (class docstring).

        One mask per sample for every row; the masks depend only on ``seed``, not on how rows are chunked.
        """
        state = self._trained()
        features = self._check_features(features)
        if n_samples < 1:
            raise ValueError(f'n_samples must be at least 1, not {n_samples}')
        rate = float(state.get('dropout', self.dropout))
        out = np.empty((n_samples, len(features), state['weight'].shape[0]), np.float32)
        for start in range(0, len(features), 16384):
            chunk = (features[start:start + 16384].astype(np.float64) - state['mean']) / state['scale']
            out[:, start:start + len(chunk)] = mc_dropout_samples(chunk, state['weight'], state['bias'], rate,
                                                                  n_samples, seed)
        return out

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        return check_feature_width(features, self._state['weight'].shape[1])

    def state(self) -> dict[str, np.ndarray]:
        if self._state is None:
            raise ConfigurationError('The model has no state until it is trained')
        return {key: np.array(value, copy=True) for key, value in self._state.items()}

    def load_state(self, state: dict[str, np.ndarray]) -> LinearModel:
        self._state = self._checked(state)
        return self

    @staticmethod
    def _checked(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The state's arrays as float64, or a ``FeaturesError`` naming what is missing or inconsistent."""
        try:
            loaded = {key: np.asarray(state[key], np.float64) for key in ('weight', 'bias', 'mean', 'scale')}
        except KeyError as exc:
            raise FeaturesError(f'The stored linear model lacks its {exc.args[0]!r} array') from None
        n_classes, dim = loaded['weight'].shape if loaded['weight'].ndim == 2 else (0, 0)
        if (loaded['weight'].ndim != 2 or loaded['bias'].shape != (n_classes,)
                or loaded['mean'].shape != (dim,) or loaded['scale'].shape != (dim,)):
            raise FeaturesError('The stored linear model\'s arrays have inconsistent shapes: '
                                + ', '.join(f'{k} {v.shape}' for k, v in loaded.items()))
        if 'dropout' in state:
            loaded['dropout'] = np.float64(state['dropout'])
            if not 0 <= loaded['dropout'] < 1:
                raise FeaturesError(f'The stored linear model has an impossible dropout rate {loaded["dropout"]}')
        return loaded


from . import cnn_keras, cnn_torch  # noqa: E402, F401  (register the CNN models in ``models``)
