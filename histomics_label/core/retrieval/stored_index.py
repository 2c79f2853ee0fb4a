"""A nearest-neighbour index kept on disk beside each slide store and searched in bounded chunks.

``NeighbourIndex`` holds every vector in memory: right for a CLI run, wrong for a server route that a reader can call
on a project of a million segments. Here each slide's index is one ``.npy`` file of its search-ready vectors
(float32, L2-normalised for the cosine metric), in ``<store>.index/``, built once from the store's feature vectors
(at the end of a training round, or on first use) and reused by every request until the features change. Its name
carries the store file's identity (inode, modification time, size): features are rewritten only by replacing the
store, which gives a new identity, so an index of stale features is never read, and a round (which writes round files
beside the store, not the store) keeps the index. A search reads ``CHUNK_BYTES`` of vectors at a time with plain file
reads (no memory map, whose pages would stay in the server's resident memory), keeps the best ``k`` (plus the excluded
ones), and so needs memory for one chunk and ``k`` results whatever the number of segments.

The answer is the exact search's: distances computed in float64 as ``NeighbourIndex.distances`` does, ordered by
(distance rounded to 1e-6, slide order, row) as ``NeighbourIndex`` orders them. The object answers the same calls
(``position``, ``key``, ``query_vector``, ``distances``, ``query``), so ``index.cnfp`` runs on it unchanged.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigurationError, FeaturesError
from ..io.store import SlideStore
from .index import SegmentIndex, metric_distances, normalise

CHUNK_BYTES = 4 << 20
"""Bytes of float64 vectors one search step holds (the float32 rows read are half that): the memory a search
needs beyond its ``k`` results."""
METRICS = ('cosine', 'l2')


def index_folder(store_path: str | os.PathLike) -> str:
    """The folder of a store's index files."""
    return f'{os.fspath(store_path)}.index'


def index_path(store_path: str | os.PathLike, extractor: str, metric: str) -> str:
    """The index file of ``extractor``'s vectors for ``metric``, named by the store file's current identity."""
    stat = os.stat(store_path)
    identity = hashlib.sha256(f'{stat.st_ino}/{stat.st_mtime_ns}/{stat.st_size}'.encode()).hexdigest()[:16]
    return os.path.join(index_folder(store_path), f'{extractor}.{metric}.{identity}.npy')


def build(store_path: str | os.PathLike, extractor: str, metric: str = 'cosine') -> str:
    """Write the index file of a store's ``extractor`` vectors (unless it is current) and return its path.

    Reads and writes the vectors in chunks, so building needs no more memory than a search; written beside its
    final name and renamed into place, so a reader never sees half an index. Older index files of the same
    extractor and metric are removed."""
    if metric not in METRICS:
        raise ConfigurationError(f'Unknown metric {metric!r}; use "cosine" or "l2"')
    path = index_path(store_path, extractor, metric)
    if os.path.exists(path):
        return path
    folder = index_folder(store_path)
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f'.{uuid.uuid4().hex[:12]}.tmp')
    try:
        with SlideStore(store_path) as store, open(temp, 'wb') as stream:
            if extractor not in store.feature_names():
                raise FeaturesError(f'{os.fspath(store_path)} has no {extractor} feature vectors; compute them first '
                                    '(SuperpixelClassification with --feature vector)')
            n, dim = store.n_segments, store.features(extractor, slice(0, 1)).shape[1]
            np.lib.format.write_array_header_1_0(stream, {'descr': '<f4', 'fortran_order': False, 'shape': (n, dim)})
            step = _chunk_rows(dim)
            for start in range(0, n, step):
                vectors = np.asarray(store.features(extractor, slice(start, min(start + step, n))), np.float32)
                if not np.all(np.isfinite(vectors)):
                    raise FeaturesError('Some embeddings are not finite numbers')
                stream.write(np.ascontiguousarray(normalise(vectors) if metric == 'cosine' else vectors,
                                                  '<f4').tobytes())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    prefix = f'{extractor}.{metric}.'
    for name in os.listdir(folder):
        if name.startswith(prefix) and os.path.join(folder, name) != path:
            os.remove(os.path.join(folder, name))
    return path


def _chunk_rows(dim: int) -> int:
    return max(1, CHUNK_BYTES // (8 * max(1, dim)))


class _VectorFile:
    """One slide's index file: its shape and where its rows start, read row ranges or rows on demand."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, 'rb') as stream:
            if np.lib.format.read_magic(stream) != (1, 0):
                raise FeaturesError(f'{path} is not an index file written by this version')
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
            self.offset = stream.tell()
        if len(shape) != 2 or np.dtype(dtype) != np.dtype('<f4'):
            raise FeaturesError(f'{path} is not an index file of float32 rows')
        self.n, self.dim = (int(v) for v in shape)

    def rows(self, start: int, stop: int) -> np.ndarray:
        with open(self.path, 'rb') as stream:
            stream.seek(self.offset + 4 * self.dim * start)
            return np.fromfile(stream, '<f4', (stop - start) * self.dim).reshape(stop - start, self.dim)

    def pick(self, rows: Sequence[int]) -> np.ndarray:
        return np.stack([self.rows(int(r), int(r) + 1)[0] for r in rows]) if len(rows) \
            else np.zeros((0, self.dim), np.float32)


class StoredIndex(SegmentIndex):
    """Exact search over the index files of several slides, in bounded memory; keys are ``(slide, row)``."""

    def __init__(self, files: Sequence[str], slides: Sequence[str], metric: str) -> None:
        self.files = [_VectorFile(path) for path in files]
        dims = {f.dim for f in self.files}
        if len(dims) != 1:
            raise FeaturesError('Every slide\'s embeddings must have the same length; got ' + ', '.join(map(str, dims)))
        super().__init__(slides, [f.n for f in self.files], metric)
        self.dim = dims.pop()

    @classmethod
    def open(cls, stores: Sequence[str], extractor: str, metric: str = 'cosine') -> StoredIndex:
        """The index of ``stores`` (building any index file that is missing or stale), keyed by store path."""
        if not stores:
            raise FeaturesError('There are no slides to search')
        return cls([build(path, extractor, metric) for path in stores], stores, metric)

    def rows(self, positions: Sequence[int]) -> np.ndarray:
        """The stored vectors of index rows, read from disk."""
        keys = [self.key(int(p)) for p in positions]
        return np.concatenate([self.files[self._slide_index[s]].pick([r]) for s, r in keys]) if keys \
            else np.zeros((0, self.dim), np.float32)

    def nearest(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` nearest index rows and their distances, ordered by (distance to 1e-6, row), read chunk by
        chunk: memory for one chunk and ``count`` results."""
        best_positions, best_distances = np.zeros(0, np.int64), np.zeros(0)
        step = _chunk_rows(self.dim)
        for file, offset in zip(self.files, self.offsets[:-1], strict=True):
            for start in range(0, file.n, step):
                stop = min(start + step, file.n)
                distances = metric_distances(self.metric, file.rows(start, stop), vector)
                if len(distances) > count:
                    keep = np.argpartition(distances, count - 1)[:count]
                    # ties at the boundary: keep every row as close as the count-th, so the order below decides
                    keep = np.flatnonzero(np.round(distances, 6) <= np.round(distances[keep].max(), 6))
                else:
                    keep = np.arange(len(distances))
                positions = np.concatenate([best_positions, offset + start + keep])
                merged = np.concatenate([best_distances, distances[keep]])
                order = np.lexsort((positions, np.round(merged, 6)))[:count]
                best_positions, best_distances = positions[order], merged[order]
        return best_positions, best_distances
