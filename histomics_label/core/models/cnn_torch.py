"""The patch CNN in torch (``cnn_torch``): a small network learnt from the masked patches themselves.

Torch is imported only when the model is created, so that choosing the linear model does not pay for it. The
architecture, training loop and sampling are shared with ``cnn_keras`` (see ``training.PatchClassifier``); this
module only says how torch builds, initialises, trains and runs the network.

Determinism: weights are initialised from a local ``torch.Generator`` seeded with ``seed`` (building the layers
happens under ``torch.random.fork_rng``, so torch's global random state is left as it was) and every other random
choice comes from numpy. Training and inference run with ``torch.use_deterministic_algorithms(True)`` (restored
afterwards). On the CPU the same seed, data, torch version and thread count give bit-identical weights and
probabilities; a different thread count may change the last bits of reductions. On CUDA the deterministic mode
runs with ``warn_only`` and ``CUBLAS_WORKSPACE_CONFIG`` is set if it was not (it must be set before CUDA starts
to take effect), so results are reproducible wherever cuDNN and cuBLAS honour it, and close otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from ..errors import ConfigurationError
from .base import Model, models
from .training import PatchClassifier


@models.register('cnn_torch')
class TorchCNN(PatchClassifier, Model):
    """The patch CNN of ``training.PatchClassifier`` in torch, on ``device`` ``'cpu'`` or ``'cuda'`` (``'cuda:1'``)."""

    framework = 'torch'
    class_axes = {'head.weight': 0, 'head.bias': 0}

    def _setup_device(self, device: str) -> None:
        import torch

        try:
            self._device = torch.device(device)
        except RuntimeError:
            raise ConfigurationError(f'Unknown device {device!r}; use "cpu" or "cuda"') from None
        if self._device.type not in ('cpu', 'cuda'):
            raise ConfigurationError(f'The torch CNN runs on "cpu" or "cuda", not {device!r}')
        if self._device.type == 'cuda':
            if not torch.cuda.is_available():
                raise ConfigurationError(f'Device {device!r} was asked for but torch sees no CUDA GPU here '
                                         '(or this torch build has no CUDA support); use device "cpu"')
            os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
        self._body = self._head_layer = self._optimiser = None

    def _build(self, n_classes: int) -> None:
        """Fresh layers for ``n_classes`` outputs (values set by the caller); global RNG state untouched."""
        import torch
        from torch import nn

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 3
        for block in range(1, self.blocks + 1):
            out = self.width * 2 ** (block - 1)
            layers[f'conv{block}'] = nn.Conv2d(channels, out, 3, padding=1, bias=False)
            layers[f'bn{block}'] = nn.BatchNorm2d(out, eps=1e-5, momentum=0.1)
            layers[f'relu{block}'] = nn.ReLU()
            layers[f'pool{block}'] = nn.MaxPool2d(2)
            channels = out
        with torch.random.fork_rng(devices=[]):  # the layers' default initialisation draws from the global RNG
            self._body = nn.Sequential(layers)
            self._head_layer = nn.Linear(channels, n_classes)

    def _initialise(self, n_classes: int) -> None:
        import torch
        from torch import nn

        self._build(n_classes)
        generator = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for name, module in self._body.named_children():
                if name.startswith('conv'):
                    nn.init.kaiming_normal_(module.weight, nonlinearity='relu', generator=generator)
            nn.init.normal_(self._head_layer.weight, std=0.01, generator=generator)
            nn.init.zeros_(self._head_layer.bias)
        self._body.to(self._device)
        self._head_layer.to(self._device)

    def _weights(self) -> dict[str, np.ndarray]:
        weights = {key: value.detach().cpu().numpy().copy() for key, value in self._body.state_dict().items()}
        for key, value in self._head_layer.state_dict().items():
            weights[f'head.{key}'] = value.detach().cpu().numpy().copy()
        return weights

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        import torch

        n_classes = self._n_classes_of(weights)
        if self._head_layer is None or self._head_layer.out_features != n_classes:
            self._build(n_classes)
            self._body.to(self._device)
            self._head_layer.to(self._device)
            self._optimiser = None
        current = self._weights()
        self._check_weights(weights, {key: value.shape for key, value in current.items()})
        body = {key: torch.from_numpy(np.array(weights[key], current[key].dtype)) for key in current
                if not key.startswith('head.')}
        head = {key[5:]: torch.from_numpy(np.array(weights[key], current[key].dtype)) for key in current
                if key.startswith('head.')}
        self._body.load_state_dict(body)
        self._head_layer.load_state_dict(head)

    def _start_training(self) -> None:
        import torch

        parameters = list(self._body.parameters()) + list(self._head_layer.parameters())
        self._optimiser = torch.optim.AdamW(parameters, lr=self.learning_rate, weight_decay=self.weight_decay,
                                            eps=1e-8)

    def _inputs(self, images: np.ndarray):
        """uint8 ``(B, P, P, 3)`` → float ``(B, 3, P, P)`` in [−1, 1] on the device."""
        import torch

        tensor = torch.from_numpy(np.ascontiguousarray(images)).to(self._device)
        return tensor.permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def _train_step(self, images: np.ndarray, labels: np.ndarray, weights: np.ndarray, masks: np.ndarray) -> float:
        import torch

        with self._deterministic():
            self._body.train()
            features = self._body(self._inputs(images)).mean(dim=(2, 3))
            logits = self._head_layer(features * torch.from_numpy(masks).to(self._device))
            weight = torch.from_numpy(weights).to(self._device)
            losses = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels).to(self._device),
                                                       reduction='none')
            loss = (weight * losses).sum() / weight.sum()
            self._optimiser.zero_grad()
            loss.backward()
            self._optimiser.step()
        return float(loss.detach().cpu())

    def _features(self, images: np.ndarray) -> np.ndarray:
        import torch

        with self._deterministic(), torch.inference_mode():
            self._body.eval()
            return self._body(self._inputs(images)).mean(dim=(2, 3)).cpu().numpy()

    def _head(self) -> tuple[np.ndarray, np.ndarray]:
        self._trained()
        return (self._head_layer.weight.detach().cpu().numpy().astype(np.float32),
                self._head_layer.bias.detach().cpu().numpy().astype(np.float32))

    @contextlib.contextmanager
    def _deterministic(self) -> Iterator[None]:
        """Torch's deterministic algorithms for the duration, then the caller's setting back."""
        import torch

        enabled = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        benchmark = torch.backends.cudnn.benchmark
        torch.use_deterministic_algorithms(True, warn_only=self._device.type == 'cuda')
        torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
            torch.backends.cudnn.benchmark = benchmark
