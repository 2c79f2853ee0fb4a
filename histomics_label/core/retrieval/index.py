"""More like this: nearest-neighbour retrieval of segments across slides, and CNFP sampling to refine a concept.

An index holds the embeddings of one or more slides; a segment is known by ``(slide, segment)`` where ``segment``
is the row of that slide's embedding array (segment id − 1 in the slide store). A query is a vector, one segment,
or a set of segments (their mean: the prototype of a concept). With ``metric='cosine'`` the vectors are
L2-normalised and searched by inner product, and distances are ``1 − cos``; with ``'l2'`` distances are Euclidean.

The search uses faiss (exact, ``IndexFlatIP`` / ``IndexFlatL2``) when it can be imported and scikit-learn's brute
force ``NearestNeighbors`` otherwise; both give the same ranking. Results are ordered by distance, then by slide
order and row, so equal distances never depend on the library.

Excluding segments (already labeled ones, those labeled with an excluded category) is the caller's choice, through
``exclude``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError, FeaturesError

Key = tuple[str, int]


@dataclass(frozen=True)
class Neighbour:
    """A retrieved segment and its distance to the query (``1 − cos`` or Euclidean)."""

    slide: str
    segment: int
    distance: float


@dataclass(frozen=True)
class Suggestion:
    """A segment to show for a concept, with why: ``'unlabeled'`` (a near neighbour not yet labeled),
    ``'negative'`` (labeled not-the-concept yet close to it) or ``'positive'`` (labeled the concept yet far)."""

    slide: str
    segment: int
    distance: float
    kind: str


def faiss_available() -> bool:
    """Whether faiss can be imported here."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


class SegmentIndex:
    """What every index shares: keys ``(slide, row)`` and their positions, the vector a query stands for, distances
    in the index's metric, and the query itself. A kind of index says where its vectors are (``rows``) and how it
    finds the nearest positions (``nearest``)."""

    dim: int

    def __init__(self, slides: Sequence[str], counts: Sequence[int], metric: str) -> None:
        self.slides = [str(name) for name in slides]
        self.metric = metric
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._slide_index = {name: i for i, name in enumerate(self.slides)}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def rows(self, positions: Sequence[int]) -> np.ndarray:
        """The vectors of index rows."""
        raise NotImplementedError

    def nearest(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``count`` nearest index rows and their distances, ordered by (distance to 1e-6, row)."""
        raise NotImplementedError

    def position(self, slide: str, segment: int) -> int:
        """The index row of ``(slide, segment)``, or a ``KeyError`` naming it."""
        index = self._slide_index.get(slide)
        if index is None or not 0 <= segment < self.offsets[index + 1] - self.offsets[index]:
            raise KeyError(f'No segment {segment} in slide {slide!r} of this index')
        return int(self.offsets[index] + segment)

    def key(self, position: int) -> Key:
        """``(slide, segment)`` of an index row."""
        index = int(np.searchsorted(self.offsets, position, side='right')) - 1
        return self.slides[index], int(position - self.offsets[index])

    def query_vector(self, query: np.ndarray | Key | Iterable[Key]) -> np.ndarray:
        """The vector a query stands for: itself, a segment's embedding, or the mean of several segments'."""
        if isinstance(query, np.ndarray):
            vector = query.astype(np.float32).reshape(-1)
            if vector.shape != (self.dim,):
                raise FeaturesError(f'A query vector must have {self.dim} values, not {query.shape}')
        else:
            keys = [query] if _is_key(query) else list(query)
            if not keys:
                raise ValueError('A query needs at least one segment')
            vector = self.rows([self.position(*key) for key in keys]).mean(axis=0)
        return normalise(vector[None])[0] if self.metric == 'cosine' else vector

    def distances(self, vector: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Distances (in this index's metric) from a query vector to the given index rows."""
        return metric_distances(self.metric, self.rows(np.asarray(positions, np.int64)), vector)

    def query(self, query: np.ndarray | Key | Iterable[Key], k: int = 10,
              exclude: Iterable[Key] = ()) -> list[Neighbour]:
        """The ``k`` segments nearest the query, nearest first, leaving out the ``exclude`` keys."""
        excluded = {self.position(*key) for key in exclude}
        count = min(len(self), int(k) + len(excluded))
        if k <= 0 or count == 0:
            return []
        positions, distances = self.nearest(self.query_vector(query), count)
        keep = np.array([p not in excluded for p in positions], bool)
        positions, distances = positions[keep][:k], distances[keep][:k]
        return [Neighbour(*self.key(p), float(d)) for p, d in zip(positions, distances, strict=True)]


def metric_distances(metric: str, vectors: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Distances from ``vector`` to each row of ``vectors``: 1 − cosine similarity (rows and vector normalised) for
    ``'cosine'``, Euclidean for ``'l2'``; in float64, so either index kind orders ties the same way."""
    if metric == 'cosine':
        return (1.0 - vectors.astype(np.float64) @ vector.astype(np.float64)).clip(min=0.0)
    return np.sqrt(((vectors.astype(np.float64) - vector) ** 2).sum(axis=1))


class NeighbourIndex(SegmentIndex):
    """Exact nearest-neighbour search over the segments of several slides, held in memory."""

    def __init__(self, vectors: np.ndarray, slides: Sequence[str], counts: Sequence[int], metric: str,
                 backend: str) -> None:
        super().__init__(slides, counts, metric)
        self.vectors = vectors
        self.dim = vectors.shape[1]
        self.backend = backend
        if backend == 'faiss':
            import faiss

            self._search = faiss.IndexFlatIP(vectors.shape[1]) if metric == 'cosine' \
                else faiss.IndexFlatL2(vectors.shape[1])
            self._search.add(vectors)
        else:
            from sklearn.neighbors import NearestNeighbors

            self._search = NearestNeighbors(algorithm='brute', metric='euclidean').fit(vectors)

    @classmethod
    def build(cls, embeddings_by_slide: Mapping[str, np.ndarray], metric: str = 'cosine',
              backend: str = 'auto') -> NeighbourIndex:
        """An index of every row of every slide's ``(N_i, D)`` embeddings, keyed ``(slide, row)``.

        ``backend`` is ``'faiss'``, ``'sklearn'`` or ``'auto'`` (faiss when importable).
        """
        if metric not in ('cosine', 'l2'):
            raise ConfigurationError(f'Unknown metric {metric!r}; use "cosine" or "l2"')
        if backend == 'auto':
            backend = 'faiss' if faiss_available() else 'sklearn'
        elif backend not in ('faiss', 'sklearn'):
            raise ConfigurationError(f'Unknown search backend {backend!r}; use "faiss", "sklearn" or "auto"')
        if not embeddings_by_slide:
            raise FeaturesError('There are no slides to search')
        arrays = [np.asarray(value) for value in embeddings_by_slide.values()]
        dims = {a.shape[1] if a.ndim == 2 else -1 for a in arrays}
        if len(dims) != 1 or -1 in dims:
            raise FeaturesError('Every slide\'s embeddings must be an (N, D) array with the same D; got shapes '
                                + ', '.join(str(a.shape) for a in arrays))
        vectors = np.ascontiguousarray(np.concatenate(arrays), dtype=np.float32)
        if not np.all(np.isfinite(vectors)):
            raise FeaturesError('Some embeddings are not finite numbers')
        if metric == 'cosine':
            vectors = normalise(vectors)
        return cls(vectors, [str(name) for name in embeddings_by_slide], [len(a) for a in arrays], metric, backend)

    def rows(self, positions: Sequence[int]) -> np.ndarray:
        return self.vectors[np.asarray(positions, np.int64)]

    def nearest(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        if self.backend == 'faiss':
            scores, positions = self._search.search(vector[None].astype(np.float32), count)
            positions = positions[0].astype(np.int64)
            positions = positions[positions >= 0]
        else:
            positions = self._search.kneighbors(vector[None], count, return_distance=False)[0].astype(np.int64)
        # Distances recomputed the same way for either library, so the order does not depend on it.
        distances = self.distances(vector, positions)
        order = np.lexsort((positions, np.round(distances, 6)))
        return positions[order], distances[order]


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _is_key(value) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)


def cnfp(index: SegmentIndex, positives: Sequence[Key], negatives: Sequence[Key] = (), k: int = 10,
         exclude: Iterable[Key] = ()) -> list[Suggestion]:
    """Closest negatives, farthest positives, nearest unlabeled: what to show next to refine a concept.

    The concept is the mean of the ``positives`` (its prototype). The negatives closest to it are where the concept's
    boundary is least sure; the positives farthest from it are its atypical members, which a single prototype
    explains worst; the nearest segments not labeled either way extend the concept. The three lists, each in that
    order, are interleaved (unlabeled, negative, positive, unlabeled, …; an exhausted list is skipped) up to ``k``
    suggestions. ``exclude`` leaves further segments out of the unlabeled list (e.g. labeled with other categories).
    """
    if not positives:
        raise ValueError('CNFP needs at least one positive segment of the concept')
    vector = index.query_vector(list(positives))
    labeled = set(positives) | set(negatives)
    unlabeled = [Suggestion(n.slide, n.segment, n.distance, 'unlabeled')
                 for n in index.query(vector, k, exclude=labeled | set(exclude))]
    lists = [unlabeled, _by_distance(index, vector, negatives, 'negative', nearest_first=True),
             _by_distance(index, vector, positives, 'positive', nearest_first=False)]
    result: list[Suggestion] = []
    depth = 0
    while len(result) < k and any(depth < len(items) for items in lists):
        result.extend(items[depth] for items in lists if depth < len(items))
        depth += 1
    return result[:k]


def _by_distance(index: SegmentIndex, vector: np.ndarray, keys: Sequence[Key], kind: str,
                 nearest_first: bool) -> list[Suggestion]:
    """``keys`` as suggestions of one kind, sorted by distance to the query vector (ties by index row)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    positions = np.array([index.position(*key) for key in keys], np.int64)
    distances = index.distances(vector, positions)
    order = np.lexsort((positions, distances if nearest_first else -distances))
    return [Suggestion(str(keys[i][0]), int(keys[i][1]), float(distances[i]), kind) for i in order]
