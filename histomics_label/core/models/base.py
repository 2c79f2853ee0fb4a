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

from ..errors import ConfigurationError, FeaturesError, LabelsError
from ..registry import Registry
from .training import remap_head


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
    population_points = 0
    """How many of the slides' segments, labeled or not, ``fit`` takes as ``population=`` to learn the features'
    statistics from (never their labels); 0 for models that need none."""
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
