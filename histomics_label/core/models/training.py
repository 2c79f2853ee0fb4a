"""Framework-independent training bookkeeping shared by every model.

The models differ in what they learn (a softmax regression on feature vectors, CNNs on patches, in torch or in
keras), but not in how a round of labels is used: a seeded stratified split holds some labels out, training stops
when the held-out balanced accuracy (then loss) stops improving, mini-batches and augmentations come from one
seeded numpy generator, and the classifier's output layer is what a change of categories rewrites. Keeping those
here (with ``PatchClassifier``, the framework-independent half of the patch CNNs) means every model makes the
same choices and the torch and keras CNNs differ only in how their framework builds and runs the network.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigurationError, FeaturesError, LabelsError


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


def check_options(**options: float) -> None:
    """Raise ``ConfigurationError`` for a training option out of range (names say the rule, see below).

    ``epochs``, ``warm_epochs``, ``batch_size``, ``width`` and ``blocks`` must be ≥ 1; ``patience`` (0: no early
    stopping) and ``weight_decay`` ≥ 0; ``learning_rate`` > 0; ``validation`` and ``dropout`` in [0, 1).
    """
    for name, value in options.items():
        if name in ('epochs', 'warm_epochs', 'batch_size', 'width', 'blocks') and value < 1:
            raise ConfigurationError(f'{name} must be at least 1, not {value}')
        if name in ('patience', 'weight_decay') and value < 0:
            raise ConfigurationError(f'{name} must not be negative, not {value}')
        if name == 'learning_rate' and not value > 0:
            raise ConfigurationError(f'learning_rate must be positive, not {value}')
        if name in ('validation', 'dropout') and not 0 <= value < 1:
            raise ConfigurationError(f'{name} must be in [0, 1), not {value}')


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``truth``: chance is ``1 / K`` whatever the balance."""
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def balanced_log_loss(probabilities: np.ndarray, truth: np.ndarray, weights: np.ndarray) -> float:
    """Class-weighted cross-entropy ``Σ w_y · −log p_y / Σ w_y`` (the training loss, in numpy)."""
    rows = np.arange(len(truth))
    chosen = np.clip(np.asarray(probabilities, np.float64)[rows, truth], 1e-12, 1.0)
    weight = weights[truth]
    return float(-(weight * np.log(chosen)).sum() / max(weight.sum(), 1e-12))


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, validation)`` of a seeded split stratified by class, both sorted.

    Each class present gives ``round(fraction · count)`` labels (at least one, and never all) to validation.
    When ``fraction`` is 0 or some class has a single label there is nothing fair to hold out, and every row
    trains (validation is empty). The split depends only on the labels and the seed.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels)
    present = np.flatnonzero(counts)
    everything = np.arange(len(labels))
    if fraction <= 0 or counts[present].min() < 2:
        return everything, everything[:0]
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    for cls in present:
        members = np.flatnonzero(labels == cls)
        n_held = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        held[rng.permutation(members)[:n_held]] = True
    return everything[~held], everything[held]


@dataclass
class EarlyStopping:
    """Keeps the best epoch by held-out balanced accuracy, ties broken by the lower held-out loss.

    Balanced accuracy on a few held-out labels saturates quickly; the loss keeps telling a better-calibrated
    model from a worse one, so training goes on while it falls. ``stop`` is true once ``patience`` epochs
    in a row brought no improvement (never with ``patience`` 0: then every epoch runs and the best is kept).
    """

    patience: int
    best_epoch: int = -1
    best_accuracy: float = -np.inf
    best_loss: float = np.inf
    waited: int = 0
    history: list[dict] = field(default_factory=list)

    def update(self, epoch: int, accuracy: float, loss: float, **extra) -> bool:
        """Record an epoch's held-out scores; true when it is the best so far (keep its weights)."""
        self.history.append({'epoch': int(epoch), 'validation_balanced_accuracy': float(accuracy),
                             'validation_loss': float(loss), **extra})
        better = accuracy > self.best_accuracy or (accuracy == self.best_accuracy and loss < self.best_loss)
        if better:
            self.best_epoch, self.best_accuracy, self.best_loss, self.waited = int(epoch), accuracy, loss, 0
        else:
            self.waited += 1
        return better

    @property
    def stop(self) -> bool:
        return 0 < self.patience <= self.waited


def summary(history: list[dict], best_epoch: int, n_train: int, n_validation: int, warm_start: bool) -> dict:
    """The JSON-able metrics of one fit (see ``Model.metrics``)."""
    best = next((h for h in history if h['epoch'] == best_epoch), {})
    return {
        'epochs_run': int(max((h['epoch'] for h in history), default=0)),
        'best_epoch': int(best_epoch),
        'validation_balanced_accuracy': best.get('validation_balanced_accuracy'),
        'validation_loss': best.get('validation_loss'),
        'train_labels': int(n_train),
        'validation_labels': int(n_validation),
        'warm_start': bool(warm_start),
    }


def batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Row indices of one epoch's mini-batches, in an order drawn from ``rng``."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each ``(B, P, P, C)`` image turned by one of the 8 symmetries of the square, drawn from ``rng``.

    Tissue has no up or left, so every rotation by 90° and every mirror image is as real as the original;
    these transforms move pixels without resampling them, so the masked fill value stays exact.
    """
    out = np.empty_like(images)
    choice = rng.integers(0, 8, len(images))
    for k in range(8):
        rows = np.flatnonzero(choice == k)
        if rows.size:
            turned = np.rot90(images[rows], k % 4, axes=(1, 2))
            out[rows] = turned[:, :, ::-1] if k >= 4 else turned
    return out


def dropout_masks(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """Inverted-dropout multipliers: 0 with probability ``rate``, else ``1 / (1 − rate)`` (float32)."""
    if rate <= 0:
        return np.ones(shape, np.float32)
    keep = rng.random(shape) >= rate
    return (keep / (1.0 - rate)).astype(np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax over the last axis, stable for large logits; float32."""
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def mc_dropout_samples(features: np.ndarray, weight: np.ndarray, bias: np.ndarray, rate: float, n_samples: int,
                       seed: int) -> np.ndarray:
    """``(S, N, C)`` class probabilities of the head ``softmax(W (m_s ⊙ f) + b)`` under S dropout masks.

    Each sample ``s`` draws ONE mask ``m_s`` over the feature units and applies it to every row: a sample is
    one thinned network, as BatchBALD needs (its joint entropies assume the same model for all points; fresh
    masks per row would make the points look independent). Masks come from ``seed`` alone, so the samples do
    not depend on how the rows are chunked.
    """
    if n_samples < 1:
        raise ValueError(f'n_samples must be at least 1, not {n_samples}')
    masks = dropout_masks(np.random.default_rng(seed), (n_samples, features.shape[1]), rate)
    out = np.empty((n_samples, len(features), len(bias)), np.float32)
    for s, mask in enumerate(masks):
        out[s] = softmax((features * mask) @ weight.T + bias)
    return out


def check_images(images, expected: tuple[int, ...] | None = None, min_size: int = 1) -> None:
    """Raise ``FeaturesError`` unless ``images`` is ``(N, P, P, 3)`` uint8 (and of ``expected`` ``(P, P, 3)``)."""
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[3] != 3 or shape[1] != shape[2]:
        raise FeaturesError(f'Image models need (N, P, P, 3) masked patches, not shape {shape}; '
                            'choose the patch representation for this model')
    if np.dtype(images.dtype) != np.uint8:
        raise FeaturesError(f'Patches must be uint8 RGB, not {images.dtype}')
    if expected is not None and shape[1:] != tuple(expected):
        raise FeaturesError(f'The model was trained on {expected[0]} × {expected[1]} patches with {expected[2]} '
                            f'channels but was given {shape[1]} × {shape[2]} × {shape[3]}; use the patch size '
                            'it was trained with or train a new model')
    if shape[1] < min_size:
        raise FeaturesError(f'Patches of {shape[1]} pixels are too small for this network (at least {min_size})')


def remap_head(state: dict[str, np.ndarray], class_axes: dict[str, int], mapping: Sequence[int],
               n_classes: int | None = None) -> dict[str, np.ndarray]:
    """A copy of ``state`` whose output-layer arrays (``class_axes``: key → class axis) follow new categories.

    ``mapping[old]`` is the new index of old class ``old``, or −1 when that category is gone. Old classes that
    map to the same new class (a merge) are combined: weights by their mean and biases (1-D arrays) by
    log-sum-exp, so the merged logit starts near the larger of the two; this is exact only where the merged
    classes' weights agree, which is why a short warm-started fit should follow. New classes nobody maps to
    (a category added) start with zero weights and the lowest old bias: no evidence yet, until trained.
    Everything else (the network body, the feature standardisation) is kept as it is.
    """
    mapping = np.asarray(mapping, np.int64)
    if mapping.ndim != 1 or mapping.size == 0:
        raise LabelsError('The class mapping must list the new index of each old class')
    if n_classes is None:
        n_classes = int(mapping.max()) + 1
    if n_classes < 1 or mapping.max() >= n_classes or mapping.min() < -1:
        raise LabelsError(f'The class mapping {mapping.tolist()} does not fit {n_classes} classes')
    out = {key: np.array(value, copy=True) for key, value in state.items()}
    for key, axis in class_axes.items():
        if key not in state:
            raise FeaturesError(f'The model state lacks its {key!r} array')
        old = np.moveaxis(np.asarray(state[key]), axis, 0)
        if len(old) != len(mapping):
            raise LabelsError(f'The class mapping has {len(mapping)} entries but the model has {len(old)} classes')
        new = np.zeros((n_classes, *old.shape[1:]), old.dtype)
        for target in range(n_classes):
            sources = old[mapping == target]
            if len(sources) == 0:
                new[target] = old.min() if old.ndim == 1 else 0
            elif old.ndim == 1:
                top = sources.max()
                new[target] = top + np.log(np.exp(sources - top).sum())
            else:
                new[target] = sources.mean(axis=0)
        out[key] = np.moveaxis(new, 0, axis)
    return out


class PatchClassifier:
    """The framework-independent half of the patch CNNs (``cnn_torch``, ``cnn_keras``), mixed into ``Model``.

    The network is a few blocks of 3 × 3 convolution, batch normalisation, ReLU and 2 × 2 max pooling, the
    channel count doubling from ``width`` at each block, then global average pooling, dropout and one linear
    layer. Masked patches come in as ``(N, P, P, 3)`` uint8 and are scaled to [−1, 1] (the masked grey becomes
    ~0). This class owns everything but the framework: options, the held-out split and early stopping, seeded
    mini-batches, the 8 symmetries of the square as augmentation, the dropout masks, warm starts, and the
    output layer, which is applied in numpy to features the network computes (so ``predict_proba`` and the
    MC-dropout ``predict_samples`` share one pass of the convolutional body).

    Every random choice of training (batch order, augmentation, dropout masks) comes from one numpy generator
    seeded with ``seed``, and the framework initialises the weights from ``seed`` too; the frameworks' own
    global random state is neither used nor changed (keras: see ``cnn_keras``). A subclass implements the
    framework hooks ``_setup_device``, ``_initialise``, ``_set_weights``, ``_weights``, ``_start_training`` (a
    fresh optimiser), ``_train_step``, ``_features`` and ``_head``, and names its output layer in ``class_axes``.
    """

    representation = 'image'
    framework = ''

    def __init__(self, seed: int = 0, epochs: int = 30, warm_epochs: int | None = None, batch_size: int = 32,
                 learning_rate: float = 1e-3, weight_decay: float = 1e-4, dropout: float = 0.5, patience: int = 5,
                 validation: float = 0.2, width: int = 16, blocks: int = 3, augment: bool = True,
                 device: str = 'cpu') -> None:
        warm_epochs = max(1, epochs // 3) if warm_epochs is None else warm_epochs
        check_options(epochs=epochs, warm_epochs=warm_epochs, batch_size=batch_size, learning_rate=learning_rate,
                      weight_decay=weight_decay, dropout=dropout, patience=patience, validation=validation,
                      width=width, blocks=blocks)
        self.seed = int(seed)
        self.epochs = int(epochs)
        self.warm_epochs = int(warm_epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.patience = int(patience)
        self.validation = float(validation)
        self.width = int(width)
        self.blocks = int(blocks)
        self.augment = bool(augment)
        self.device = str(device)
        self.input_shape: tuple[int, int, int] | None = None
        self.history: list[dict] = []
        self._metrics: dict | None = None
        self._setup_device(self.device)

    def params(self) -> dict:
        """Options that change what is learnt (not ``device``, which only says where it runs)."""
        return {'name': self.name, 'seed': self.seed, 'epochs': self.epochs, 'warm_epochs': self.warm_epochs,
                'batch_size': self.batch_size, 'learning_rate': self.learning_rate,
                'weight_decay': self.weight_decay, 'dropout': self.dropout, 'patience': self.patience,
                'validation': self.validation, 'width': self.width, 'blocks': self.blocks, 'augment': self.augment}

    @property
    def feature_width(self) -> int:
        """Units after global pooling: the last block's channels."""
        return self.width * 2 ** (self.blocks - 1)

    def fit(self, images: np.ndarray, labels: np.ndarray, n_classes: int,
            warm_start: dict[str, np.ndarray] | None = None) -> PatchClassifier:
        """Train on masked patches (see ``Model.fit``). A warm start is the starting point of at most ``warm_epochs``
        epochs, never a candidate itself: the kept weights are a trained epoch's, so a round learns its labels."""
        images, labels = check_training_set(images, labels, n_classes)
        check_images(images, min_size=2 ** self.blocks)
        if warm_start is not None:
            self.load_state(self._warm_state(warm_start, n_classes))
            check_images(images, self.input_shape)
        else:
            self.input_shape = tuple(int(v) for v in images.shape[1:])
            self._initialise(n_classes)
        self._start_training()
        train, held = validation_split(labels, self.validation, self.seed)
        balance = class_weights(labels[train], n_classes).astype(np.float32)
        held_balance = class_weights(labels[held], n_classes)
        rng = np.random.default_rng(self.seed)
        stopper = EarlyStopping(self.patience)
        best = self._weights()
        history = []

        def check(epoch: int, **extra) -> None:
            nonlocal best
            probabilities = self.predict_proba(images[held])
            if stopper.update(epoch, balanced_accuracy(probabilities.argmax(axis=1), labels[held]),
                              balanced_log_loss(probabilities, labels[held], held_balance), **extra):
                best = self._weights()

        for epoch in range(1, (self.epochs if warm_start is None else self.warm_epochs) + 1):
            losses = []
            for rows in batches(len(train), self.batch_size, rng):
                chosen = train[rows]
                batch = augment(images[chosen], rng) if self.augment else images[chosen]
                masks = dropout_masks(rng, (len(chosen), self.feature_width), self.dropout)
                losses.append(self._train_step(batch, labels[chosen], balance[labels[chosen]], masks))
            if len(held):
                check(epoch, train_loss=float(np.mean(losses)))
                if stopper.stop:
                    break
            else:
                history.append({'epoch': epoch, 'train_loss': float(np.mean(losses))})
        if len(held):
            self._set_weights(best)
            history = stopper.history
        self.history = history
        self._metrics = summary(history, stopper.best_epoch if len(held) else history[-1]['epoch'], len(train),
                                len(held), warm_start is not None)
        return self

    def features(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """``(N, F)`` float32 pooled features of the network body (inference mode), batch by batch.

        ``images`` may be anything sliceable with ``shape`` and ``dtype`` (an h5py dataset): only one batch is
        read into memory at a time.
        """
        self._trained()
        check_images(images, self.input_shape)
        out = np.empty((len(images), self.feature_width), np.float32)
        for start in range(0, len(images), batch_size):
            out[start:start + batch_size] = self._features(np.asarray(images[start:start + batch_size]))
        return out

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        weight, bias = self._head()
        return softmax(self.features(images) @ weight.T + bias)

    def predict_samples(self, images: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
        """MC dropout: the head under ``n_samples`` seeded dropout masks, one mask per sample for every row.

        Dropout sits only before the output layer, so a sample is the trained network with some of the pooled
        features switched off; the body runs once and the samples cost one small matrix product each.
        """
        weight, bias = self._head()
        return mc_dropout_samples(self.features(images), weight, bias, self.dropout, n_samples, seed)

    def state(self) -> dict[str, np.ndarray]:
        """The network's weights and normalisation statistics plus ``input_shape`` ``(P, P, 3)``."""
        self._trained()
        return {**self._weights(), 'input_shape': np.array(self.input_shape, np.int64)}

    def load_state(self, state: dict[str, np.ndarray]) -> PatchClassifier:
        if 'input_shape' not in state:
            raise FeaturesError(f'The stored {self.name} model lacks its input_shape; it is not a {self.name} state')
        shape = tuple(int(v) for v in np.asarray(state['input_shape']).ravel())
        if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3:
            raise FeaturesError(f'The stored {self.name} model has an unusable input shape {shape}')
        weights = {key: np.asarray(value) for key, value in state.items() if key != 'input_shape'}
        self._set_weights(weights)
        self.input_shape = shape
        return self

    def _trained(self) -> None:
        if self.input_shape is None:
            raise ConfigurationError('The model must be trained (fit) or loaded (load_state) before predicting')

    def _check_weights(self, weights: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]]) -> None:
        """Raise ``FeaturesError`` unless ``weights`` has exactly the ``expected`` keys and shapes."""
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        wrong = [f'{k} {tuple(weights[k].shape)} instead of {expected[k]}' for k in expected
                 if k in weights and tuple(weights[k].shape) != expected[k]]
        if missing or extra or wrong:
            raise FeaturesError(
                f'The stored weights do not fit a {self.name} network of width {self.width} with {self.blocks} '
                f'blocks: ' + '; '.join(filter(None, [missing and f'missing {missing}',
                                                      extra and f'unexpected {extra}', ', '.join(wrong)])))

    def _n_classes_of(self, weights: dict[str, np.ndarray]) -> int:
        """The class count stored in the output layer (checked for shape later)."""
        key, axis = next(iter(self.class_axes.items()))
        if key not in weights or np.asarray(weights[key]).ndim <= axis:
            raise FeaturesError(f'The stored {self.name} model lacks its {key!r} array')
        return int(np.asarray(weights[key]).shape[axis])
