"""Feature extractors: patches of segments → fixed-length embeddings.

An extractor turns a batch of uint8 RGB patches ``(B, P, P, 3)`` into float32 embeddings ``(B, dim)``. Its
``params()`` are recorded in the slide store next to the features, so stored features are reused only when they
were made the same way. ``TorchImageExtractor`` holds what every pretrained torch network shares (device,
batching, resizing, normalising, loading weights offline with clear errors); a new network is a subclass that
builds its module and says how to embed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator

import numpy as np

from ...errors import ConfigurationError, FeaturesError
from ...progress import Progress, no_progress
from ...registry import Registry


class FeatureExtractor:
    """Maps uint8 RGB patches ``(B, P, P, 3)`` to float32 embeddings ``(B, dim)``."""

    name: str
    dim: int
    computes = True
    """False for embeddings computed elsewhere and imported per slide (``imported``): a store's features of that
    name are current whatever their parameters, and nothing here can make them."""

    def params(self) -> dict:
        """Everything that changes the embeddings, as JSON-able values (not device or batch size)."""
        return {'name': self.name, 'dim': self.dim}

    def extract(self, patches: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


extractors: Registry[FeatureExtractor] = Registry('feature extractor')


class TorchImageExtractor(FeatureExtractor):
    """A pretrained torch network run in eval mode under ``torch.inference_mode``, offline.

    Subclasses set ``input_size``, ``mean`` and ``std`` (of 0–255 pixel values, as the weights expect) and
    implement ``build_network`` and ``embed``. The network is loaded on first use (or by ``load()``), so reading
    ``params()`` to decide whether stored features can be reused costs no model load.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __init__(self, device: str = 'cpu', batch_size: int = 64, weights_path: str | None = None) -> None:
        if batch_size < 1:
            raise ConfigurationError(f'The feature batch size must be positive, not {batch_size}')
        if device.startswith('cuda'):
            import torch  # only here: reading params() to see whether stored features are current loads no torch

            if not torch.cuda.is_available():
                raise FeaturesError(f'Device {device!r} was asked for but torch sees no CUDA GPU; use device "cpu"')
        elif device != 'cpu':
            raise ConfigurationError(f'Unknown device {device!r}; use "cpu" or "cuda"')
        self.device = device
        self.batch_size = int(batch_size)
        self.weights_path = os.path.abspath(weights_path or self.default_weights_path())
        self._network = None
        self._weights_digest: str | None = None

    def default_weights_path(self) -> str:  # pragma: no cover - interface
        raise NotImplementedError

    def build_network(self):  # pragma: no cover - interface
        """The torch module with the architecture of the weights (weights not loaded yet)."""
        raise NotImplementedError

    def embed(self, network, images):  # pragma: no cover - interface
        """Embeddings ``(B, dim)`` of normalised ``(B, 3, input_size, input_size)`` float images."""
        raise NotImplementedError

    def params(self) -> dict:
        return {**super().params(), 'input_size': self.input_size, 'mean': list(self.mean),
                'std': list(self.std), 'weights_sha256': self.weights_digest()}

    def weights_digest(self) -> str:
        """SHA-256 of the weights file: names differ between machines, contents are what matter."""
        if self._weights_digest is None:
            digest = hashlib.sha256()
            try:
                with open(self.weights_path, 'rb') as handle:
                    for block in iter(lambda: handle.read(1 << 20), b''):
                        digest.update(block)
            except OSError as exc:
                raise FeaturesError(f'Cannot read the {self.name} weights file {self.weights_path}: '
                                    f'{exc.strerror or exc}') from None
            self._weights_digest = digest.hexdigest()
        return self._weights_digest

    def load(self):
        """Build the network and load its weights (once), raising ``FeaturesError`` if they do not fit."""
        if self._network is not None:
            return self._network
        import torch

        if not os.path.isfile(self.weights_path):
            raise FeaturesError(f'The {self.name} weights file {self.weights_path} does not exist')
        try:
            state = torch.load(self.weights_path, map_location='cpu', weights_only=True)
        except Exception as exc:
            raise FeaturesError(f'{self.weights_path} is not a torch weights file ({exc})') from None
        if not isinstance(state, dict):
            raise FeaturesError(f'{self.weights_path} holds a {type(state).__name__}, not a state dict of weights')
        network = self.build_network()
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()
            raise FeaturesError(f'The weights in {self.weights_path} do not fit the {self.name} network: '
                                f'{" ".join(line.strip() for line in first[:4])}') from None
        # Channels-last runs the convolutions of these networks about twice as fast on CPU, same results.
        self._network = network.eval().to(self.device, memory_format=torch.channels_last)
        return self._network

    def extract(self, patches: np.ndarray) -> np.ndarray:
        patches = np.asarray(patches)
        if patches.ndim != 4 or patches.shape[3] != 3 or patches.dtype != np.uint8:
            raise FeaturesError(f'Patches must be uint8 (B, P, P, 3), not {patches.dtype} {patches.shape}')
        network = self.load()
        result = np.empty((len(patches), self.dim), np.float32)
        for start in range(0, len(patches), self.batch_size):
            chunk = patches[start:start + self.batch_size]
            result[start:start + len(chunk)] = self._extract_chunk(network, chunk)
        return result

    def _extract_chunk(self, network, chunk: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as functional

        with torch.inference_mode():
            images = torch.from_numpy(np.ascontiguousarray(chunk)).to(self.device)
            images = images.permute(0, 3, 1, 2).float()
            if images.shape[-2:] != (self.input_size, self.input_size):
                images = functional.interpolate(images, size=(self.input_size, self.input_size), mode='bilinear',
                                                align_corners=False, antialias=True)
            mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
            std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
            images = ((images - mean) / std).contiguous(memory_format=torch.channels_last)
            return self.embed(network, images).float().cpu().numpy()


def iter_features(extractor: FeatureExtractor,
                  batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Embed ``(ids, patches)`` batches one at a time, yielding ``(ids, features)``; memory stays one batch."""
    for ids, patches in batches:
        yield np.asarray(ids, np.int64), extractor.extract(patches)


def extract_features(extractor: FeatureExtractor, batches: Iterable[tuple[np.ndarray, np.ndarray]],
                     n_total: int, progress: Progress = no_progress) -> np.ndarray:
    """Features ``(n_total, dim)`` of segments 1..n_total, row ``id − 1`` for segment ``id``.

    ``batches`` yields ``(ids, patches)`` (as ``iter_patches`` does for every segment) and must cover each id of
    1..n_total exactly once, in any order; rows are written where they belong, so no second copy is made. For a
    subset of segments use ``iter_features``. ``progress(done, n_total, message)`` is called after each batch.
    """
    features = np.zeros((n_total, extractor.dim), np.float32)
    seen = np.zeros(n_total, bool)
    done = 0
    progress(0, n_total, 'extracting features')
    for ids, embedded in iter_features(extractor, batches):
        if ids.size and (ids.min() < 1 or ids.max() > n_total):
            raise FeaturesError(f'Segment ids must lie in 1..{n_total}')
        if seen[ids - 1].any() or len(np.unique(ids)) != len(ids):
            raise FeaturesError('A segment was embedded twice')
        seen[ids - 1] = True
        features[ids - 1] = embedded
        done += len(ids)
        progress(done, n_total, 'extracting features')
    if done != n_total:
        raise FeaturesError(f'Features were made for {done} of {n_total} segments')
    return features
