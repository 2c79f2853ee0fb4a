"""Representations: what a model learns from, chosen by name (the CLI's ``--feature``).

Every segment is shown to a model through one representation, computed once per slide and kept in the slide store:

- ``vector``: a fixed-length embedding of the segment's masked patch by a registered feature extractor
  (``/features/<extractor>``), for models that learn from feature vectors (the linear model);
- ``image``: the masked patch itself, uint8 pixels (``/patches/<size>``), for models that learn from pixels (CNNs).

Both share one interface, so the pipeline asks the selected representation whether the store already holds it
(``is_current``), has it computed (``compute``) and reads it (``load``) without knowing which it is. Computing
streams batches of patches into a store dataset, so memory is bounded by a batch and a tile window, never by the
number of segments, and it writes through ``SlideStore.update``, so a failure leaves the previous store as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import h5py
import numpy as np

from ..errors import ConfigurationError, FeaturesError
from ..io.store import Rows, SlideStore, StoreWriter
from ..progress import Progress, no_progress
from ..registry import Registry
from .extractors import FeatureExtractor, extractors, iter_features
from .patches import FILL_VALUE, PixelSource, iter_patches

DEFAULT_EXTRACTOR = 'efficientnet_lite0'

DESCRIPTIONS = {
    'vector': 'feature vectors (an embedding of each segment\'s patch)',
    'image': 'images (the pixels of each segment\'s masked patch)',
}


class Representation:
    """One way of showing segments to a model, stored in and read from the slide store.

    ``patch_size`` is the side of the square masked patch cut around each segment (analysis pixels);
    ``batch_size`` how many patches are cut (and embedded) at a time; ``tile_size`` the side of the slide windows
    patches are cut from (memory is about one window; see ``patches.iter_patches``). ``extractor`` (a registered
    name or an extractor object), ``device``, ``weights`` and ``extractor_options`` choose and configure the
    feature extractor of the ``vector`` representation; the ``image`` representation ignores them, since it
    stores the patches themselves.
    """

    name: str
    progress_message = 'computing'
    """What progress reports say while ``compute`` runs."""

    def __init__(self, patch_size: int = 100, extractor: str | FeatureExtractor | None = None, device: str = 'cpu',
                 batch_size: int = 64, weights: str | None = None, extractor_options: dict | None = None,
                 tile_size: int = 1024) -> None:
        for option, value in (('patch_size', patch_size), ('batch_size', batch_size), ('tile_size', tile_size)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ConfigurationError(f'{option} must be a positive whole number, not {value!r}')
        self.patch_size = int(patch_size)
        self.batch_size = int(batch_size)
        self.tile_size = int(tile_size)
        self.device = device
        self.weights = weights
        self.extractor_options = dict(extractor_options or {})
        if isinstance(extractor, FeatureExtractor):
            self.extractor_name = extractor.name
            self._extractor: FeatureExtractor | None = extractor
        else:
            self.extractor_name = extractor or DEFAULT_EXTRACTOR
            self._extractor = None

    # -- what each representation defines -------------------------------------------------------------------------

    @property
    def key(self) -> str:  # pragma: no cover - interface
        """Where the store keeps this representation, e.g. ``features/efficientnet_lite0`` or ``patches/100``."""
        raise NotImplementedError

    def params(self) -> dict:  # pragma: no cover - interface
        """Everything that changes the stored values, as JSON-able values; stored data is reused only if equal."""
        raise NotImplementedError

    def is_current(self, store: SlideStore | StoreWriter) -> bool:  # pragma: no cover - interface
        """Whether ``store`` holds this representation made with the same parameters (and of the right shape)."""
        raise NotImplementedError

    def load(self, store: SlideStore | StoreWriter, rows: Rows = None) -> np.ndarray:  # pragma: no cover - interface
        """The stored representation of every segment, or of ``rows`` (0-based, i.e. segment id − 1)."""
        raise NotImplementedError

    def create(self, writer: StoreWriter) -> h5py.Dataset:  # pragma: no cover - interface
        """An empty dataset of one row per segment, to be filled by ``batches``."""
        raise NotImplementedError

    def row_layout(self) -> tuple[tuple[int, ...], np.dtype]:  # pragma: no cover - interface
        """The shape and type of one segment's row (what a part of the representation holds: ``parts``)."""
        raise NotImplementedError

    def batches(self, patches: Iterator[tuple[np.ndarray, np.ndarray]]
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # pragma: no cover - interface
        """``(ids, rows)`` batches of values to store, from ``(ids, patches)`` batches."""
        raise NotImplementedError

    # -- shared behaviour -----------------------------------------------------------------------------------------

    def compute(self, slide: PixelSource, store_path: str, progress: Progress = no_progress) -> None:
        """Compute the representation of every segment into the store at ``store_path``, replacing any older one.

        ``slide`` is the ``SlideReader`` (or ``ArraySlide``) the store's segments were made from. Batches are
        written as they come, so memory stays one batch plus one tile window; the store is replaced only if every
        segment got its row.
        """
        self.prepare()
        with SlideStore.update(store_path) as writer:
            table = writer.segments()
            dataset = self.create(writer)
            patches = iter_patches(slide, writer.label_raster, table, self.patch_size, batch_size=self.batch_size,
                                   tile_size=self.tile_size)
            fill_rows(dataset, self.batches(patches), progress, self.progress_message)

    def ensure(self, slide: PixelSource, store_path: str, progress: Progress = no_progress) -> bool:
        """Compute the representation unless the store already has it; returns True when it was reused."""
        with SlideStore(store_path) as store:
            if self.is_current(store):
                progress(1, 1, f'{self.name} representation reused')
                return True
        self.compute(slide, store_path, progress)
        return False

    def prepare(self) -> None:
        """Anything that may fail before the store is copied (e.g. loading a network's weights)."""

    def _same_params(self, stored: dict) -> bool:
        """``stored`` (read back from JSON) equals ``params()``, comparing both as JSON (tuples become lists)."""
        return stored == json.loads(json.dumps(self.params()))


representations: Registry[Representation] = Registry('representation')


@representations.register('vector')
class VectorRepresentation(Representation):
    """Embeddings of each segment's masked patch by a feature extractor, float32 (N, D), in ``/features/<name>``.

    The stored parameters are the extractor's (name, dimension, input size, normalisation, weights digest) plus the
    patch size, the same as earlier versions of the pipeline recorded, so their stores stay current.
    """

    progress_message = 'extracting features'

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, **options)
        if self._extractor is None:
            extractors.get(self.extractor_name)  # an unknown name fails here, before any work

    @property
    def extractor(self) -> FeatureExtractor:
        """The feature extractor, created on first use (creating one checks its options and finds its weights)."""
        if self._extractor is None:
            options = {'device': self.device, 'batch_size': self.batch_size, **self.extractor_options}
            if self.weights:
                options['weights_path'] = self.weights
            self._extractor = extractors.create(self.extractor_name, **options)
        return self._extractor

    @property
    def key(self) -> str:
        return f'features/{self.extractor_name}'

    def params(self) -> dict:
        return {**self.extractor.params(), 'patch_size': self.patch_size}

    def is_current(self, store: SlideStore | StoreWriter) -> bool:
        name = self.extractor_name
        if name in store.feature_names() and not self.extractor.computes:
            return True  # embeddings imported for this slide: current whatever file they came from
        if name not in store.feature_names() or not self._same_params(store.feature_params(name)):
            return False
        stored = store.features(name, rows=slice(0, 1)).shape[1]
        if stored != self.extractor.dim:
            raise FeaturesError(f'The store\'s {name!r} features have {stored} dimensions but the {name} extractor '
                                f'gives {self.extractor.dim}; delete {store.path} to recompute them')
        return True

    def load(self, store: SlideStore | StoreWriter, rows: Rows = None) -> np.ndarray:
        return store.features(self.extractor_name, rows)

    def prepare(self) -> None:
        self.params()  # finds and digests the weights
        load = getattr(self.extractor, 'load', None)
        if load is not None:
            load()

    def row_layout(self) -> tuple[tuple[int, ...], np.dtype]:
        return (self.extractor.dim,), np.dtype(np.float32)

    def create(self, writer: StoreWriter) -> h5py.Dataset:
        return writer.create_features(self.extractor_name, writer.n_segments, self.extractor.dim, self.params())

    def batches(self, patches):
        dim = self.extractor.dim
        for ids, features in iter_features(self.extractor, patches):
            if features.shape != (len(ids), dim):
                raise FeaturesError(f'The {self.extractor_name} extractor returned features of shape '
                                    f'{features.shape} for {len(ids)} patches; expected ({len(ids)}, {dim})')
            if not np.isfinite(features).all():
                raise FeaturesError(f'The {self.extractor_name} extractor returned NaN or infinite features')
            yield ids, features


@representations.register('image')
class ImageRepresentation(Representation):
    """Each segment's masked patch itself, uint8 (N, P, P, 3), in ``/patches/<P>``, for models that learn pixels.

    Pixels outside the segment are ``FILL_VALUE`` grey, exactly as the ``vector`` representation's extractor sees
    them. Several patch sizes may be kept side by side.
    """

    progress_message = 'cutting patches'

    @property
    def key(self) -> str:
        return f'patches/{self.patch_size}'

    def params(self) -> dict:
        return {'patch_size': self.patch_size, 'fill': FILL_VALUE}

    def is_current(self, store: SlideStore | StoreWriter) -> bool:
        size = self.patch_size
        if size not in store.patch_sizes() or not self._same_params(store.patch_params(size)):
            return False
        shape = store.patches(size, rows=slice(0, 0)).shape[1:]
        if shape != (size, size, 3):
            raise FeaturesError(f'The store\'s {size} px patches have shape {shape}, not ({size}, {size}, 3); '
                                f'delete {store.path} to recompute them')
        return True

    def load(self, store: SlideStore | StoreWriter, rows: Rows = None) -> np.ndarray:
        return store.patches(self.patch_size, rows)

    def row_layout(self) -> tuple[tuple[int, ...], np.dtype]:
        return (self.patch_size, self.patch_size, 3), np.dtype(np.uint8)

    def create(self, writer: StoreWriter) -> h5py.Dataset:
        return writer.create_patches(self.patch_size, writer.n_segments, FILL_VALUE)

    def batches(self, patches):
        return patches


def fill_rows(dataset: h5py.Dataset, batches: Iterator[tuple[np.ndarray, np.ndarray]], progress: Progress,
               message: str) -> None:
    """Write ``(ids, values)`` batches into rows ``id − 1`` of ``dataset``; every row exactly once.

    Only a boolean per segment is kept besides the current batch. Each batch is written as runs of consecutive
    rows (one HDF5 write per run) rather than as a point selection, which HDF5 handles many times slower.
    """
    n = len(dataset)
    seen = np.zeros(n, bool)
    done = 0
    progress(0, n, message)
    for ids, values in batches:
        ids = np.asarray(ids, np.int64)
        if ids.size and (ids.min() < 1 or ids.max() > n):
            raise FeaturesError(f'Segment ids must lie in 1..{n}')
        if seen[ids - 1].any() or len(np.unique(ids)) != len(ids):
            raise FeaturesError('A segment was given two rows')
        seen[ids - 1] = True
        order = np.argsort(ids, kind='stable')
        rows, values = ids[order] - 1, np.asarray(values)[order]
        starts = np.flatnonzero(np.r_[True, np.diff(rows) != 1])
        for start, stop in zip(starts, np.r_[starts[1:], len(rows)], strict=True):
            dataset[rows[start]:rows[stop - 1] + 1] = values[start:stop]
        done += len(ids)
        progress(done, n, message)
    if done != n:
        raise FeaturesError(f'Only {done} of {n} segments got a row')


def model_fits(model, representation: str) -> bool:
    """Whether ``model`` (a registered model name, class or instance) learns from ``representation``."""
    return getattr(_model_class(model), 'representation', 'vector') == representations.get(representation).name


def check_model_fits(model, representation: str) -> None:
    """Raise a ``ConfigurationError`` that says what to choose when ``model`` cannot learn from ``representation``.

    E.g. the ``linear`` model learns from feature vectors, so it needs ``--feature vector``.
    """
    if model_fits(model, representation):
        return
    from ..models import models

    cls = _model_class(model)
    wanted = getattr(cls, 'representation', 'vector')
    others = [name for name in models.names() if models.get(name).representation == representation]
    message = (f'The {cls.name!r} model learns from {DESCRIPTIONS.get(wanted, wanted)}, but --feature '
               f'{representation} gives {DESCRIPTIONS.get(representation, representation)}: use --feature {wanted}')
    if others:
        message += f', or a model that learns from {representation}s: {", ".join(others)}'
    raise ConfigurationError(message)


def _model_class(model) -> type:
    if isinstance(model, str):
        from ..models import models

        return models.get(model)
    return model if isinstance(model, type) else type(model)
