"""The patch CNN in TensorFlow/keras (``cnn_keras``), for sites that standardise on TensorFlow.

TensorFlow is an optional extra: it is imported only when the model is created, and creating the model without
it raises ``ConfigurationError`` saying to install the ``tensorflow`` extra. Keras must run on its TensorFlow
backend (``KERAS_BACKEND`` defaults to it here; another backend already chosen is an error). The architecture,
training loop and sampling are shared with ``cnn_torch`` (see ``training.PatchClassifier``); this module only
says how keras builds, trains and runs the network.

Determinism: every initialiser has its own seed derived from ``seed``, dropout masks, batches and augmentation
come from numpy, ``keras.utils.set_random_seed(seed)`` is called before building (so anything drawing on keras'
global seed is seeded too; note that it also reseeds Python's ``random`` and numpy's global generator) and
``tf.config.experimental.enable_op_determinism()`` is switched on for the process (it stays on, and makes ops
without a deterministic kernel raise instead of running). TensorFlow documents that with op determinism the
same program and inputs on the same hardware and software give the same outputs, so on one machine the same
seed and data give bit-identical weights and probabilities; across machines, TensorFlow versions or CPU/GPU
they may differ in the last bits.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import ConfigurationError
from .base import Model, models
from .training import PatchClassifier


def import_keras():
    """``(tensorflow, keras)`` on the TensorFlow backend, or a ``ConfigurationError`` that says what to install."""
    os.environ.setdefault('KERAS_BACKEND', 'tensorflow')
    try:
        import tensorflow as tf
    except ImportError:
        raise ConfigurationError('The cnn_keras model needs TensorFlow, which is not installed; install the '
                                 '"tensorflow" extra (pip install "histomics-label[tensorflow]") or choose '
                                 'the cnn_torch model') from None
    import keras

    if keras.backend.backend() != 'tensorflow':
        raise ConfigurationError(f'The cnn_keras model needs keras on its TensorFlow backend, but keras runs on '
                                 f'{keras.backend.backend()!r}; unset KERAS_BACKEND or set it to "tensorflow"')
    return tf, keras


@models.register('cnn_keras')
class KerasCNN(PatchClassifier, Model):
    """The patch CNN of ``training.PatchClassifier`` in keras, on ``device`` ``'cpu'`` or ``'cuda'`` (``'cuda:1'``)."""

    framework = 'keras'
    class_axes = {'head.kernel': 1, 'head.bias': 0}

    def _setup_device(self, device: str) -> None:
        tf, _ = import_keras()
        kind, _, index = device.partition(':')
        if kind == 'cpu' and not index:
            self._tf_device = '/CPU:0'
        elif kind == 'cuda' and (not index or index.isdigit()):
            gpus = tf.config.list_physical_devices('GPU')
            if len(gpus) <= int(index or 0):
                raise ConfigurationError(f'Device {device!r} was asked for but TensorFlow sees '
                                         f'{len(gpus)} GPU(s) here; use device "cpu"')
            self._tf_device = f'/GPU:{int(index or 0)}'
        else:
            raise ConfigurationError(f'The keras CNN runs on "cpu" or "cuda", not {device!r}')
        tf.config.experimental.enable_op_determinism()
        self._body = self._head_layer = self._optimiser = None
        self._step = self._run_body = None

    def _build(self, n_classes: int) -> None:
        """Layers for ``n_classes`` outputs with seeded initialisers, and the compiled inference function."""
        tf, keras = import_keras()
        keras.utils.set_random_seed(self.seed)
        seeds = [int(s) for s in np.random.SeedSequence(self.seed).generate_state(self.blocks + 1)]
        layers = [keras.Input(shape=self.input_shape)]
        for block in range(1, self.blocks + 1):
            initialiser = keras.initializers.VarianceScaling(2.0, 'fan_in', 'untruncated_normal', seed=seeds[block])
            layers += [keras.layers.Conv2D(self.width * 2 ** (block - 1), 3, padding='same', use_bias=False,
                                           kernel_initializer=initialiser, name=f'conv{block}'),
                       keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f'bn{block}'),
                       keras.layers.ReLU(name=f'relu{block}'),
                       keras.layers.MaxPooling2D(2, name=f'pool{block}')]
        layers.append(keras.layers.GlobalAveragePooling2D(name='global_pool'))
        with tf.device(self._tf_device):
            self._body = keras.Sequential(layers, name='body')
            self._head_layer = keras.layers.Dense(
                n_classes, name='head', kernel_initializer=keras.initializers.RandomNormal(0.0, 0.01, seed=seeds[0]))
            self._head_layer.build((None, self.feature_width))
        self._optimiser = self._step = None
        body = self._body
        spec = tf.TensorSpec((None, *self.input_shape), tf.uint8)

        @tf.function(input_signature=[spec])
        def run_body(images):
            return body(tf.cast(images, tf.float32) / 127.5 - 1.0, training=False)

        self._run_body = run_body

    def _initialise(self, n_classes: int) -> None:
        self._build(n_classes)

    def _weights(self) -> dict[str, np.ndarray]:
        return {f'{layer.name}.{variable.name}': np.array(variable.numpy(), copy=True)
                for layer in [*self._body.layers, self._head_layer] for variable in layer.weights}

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        n_classes = self._n_classes_of(weights)
        if (self._head_layer is None or self._head_layer.units != n_classes
                or tuple(self._body.input_shape[1:]) != tuple(self.input_shape or ())):
            self._build(n_classes)
        current = self._weights()
        self._check_weights(weights, {key: value.shape for key, value in current.items()})
        for layer in [*self._body.layers, self._head_layer]:
            for variable in layer.weights:
                key = f'{layer.name}.{variable.name}'
                variable.assign(np.asarray(weights[key], current[key].dtype))

    def load_state(self, state: dict[str, np.ndarray]) -> KerasCNN:
        """As ``PatchClassifier.load_state``; the input shape is set first because keras layers are built for it."""
        previous = self.input_shape
        if 'input_shape' in state:
            self.input_shape = tuple(int(v) for v in np.asarray(state['input_shape']).ravel())
        try:
            return super().load_state(state)
        except Exception:
            self.input_shape = previous
            raise

    def _start_training(self) -> None:
        tf, keras = import_keras()
        body, head = self._body, self._head_layer
        variables = body.trainable_variables + head.trainable_variables
        with tf.device(self._tf_device):
            optimiser = keras.optimizers.AdamW(learning_rate=self.learning_rate, weight_decay=self.weight_decay,
                                               epsilon=1e-8)
            optimiser.build(variables)
        self._optimiser = optimiser
        specs = [tf.TensorSpec((None, *self.input_shape), tf.uint8), tf.TensorSpec((None,), tf.int64),
                 tf.TensorSpec((None,), tf.float32), tf.TensorSpec((None, self.feature_width), tf.float32)]

        @tf.function(input_signature=specs)
        def step(images, labels, weights, masks):
            with tf.GradientTape() as tape:
                features = body(tf.cast(images, tf.float32) / 127.5 - 1.0, training=True)
                logits = head(features * masks)
                losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
                loss = tf.reduce_sum(weights * losses) / tf.reduce_sum(weights)
            optimiser.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
            return loss

        self._step = step

    def _train_step(self, images: np.ndarray, labels: np.ndarray, weights: np.ndarray, masks: np.ndarray) -> float:
        tf, _ = import_keras()
        with tf.device(self._tf_device):
            return float(self._step(images, labels.astype(np.int64), weights.astype(np.float32), masks))

    def _features(self, images: np.ndarray) -> np.ndarray:
        tf, _ = import_keras()
        with tf.device(self._tf_device):
            return self._run_body(np.ascontiguousarray(images)).numpy()

    def _head(self) -> tuple[np.ndarray, np.ndarray]:
        self._trained()
        kernel, bias = self._head_layer.get_weights()
        return kernel.T.astype(np.float32), bias.astype(np.float32)
