"""The retrieval index on disk: built once per set of features, the exact search's answer, bounded memory."""

import os
import tracemalloc

import numpy as np
import pytest

from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore
from histomics_label.core.retrieval import stored_index
from histomics_label.core.retrieval.index import normalise
from histomics_label.core.retrieval.similar import similar_segments
from histomics_label.core.retrieval.stored_index import StoredIndex
from histomics_label.core.segments import SegmentTable

KEY = 'efficientnet_lite0'


def _store(path, vectors):
    n = len(vectors)
    info = SlideInfo(path=str(path), base_width=400, base_height=400, base_magnification=20.0, magnification=5.0,
                     scale=4.0, width=100, height=100)
    corners = np.stack([np.arange(n) % 90, np.arange(n) // 90 % 90], axis=1)
    with SlideStore.create(path, info, {'source': 'synthetic'}) as writer:
        writer.write_segments(SegmentTable(bbox=np.concatenate([corners, corners + 10], axis=1),
                                           centroid=corners + 5.0, area=np.full(n, 100)))
        writer.write_features(KEY, vectors, {'name': KEY})
    return str(path)


@pytest.fixture
def stores(tmp_path):
    """Two slides of clustered vectors, some exactly repeated (ties), small chunks so a search spans many."""
    rng = np.random.default_rng(7)
    arrays = []
    for count in (1500, 900):
        centres = rng.normal(size=(6, 24))
        vectors = centres[rng.integers(0, 6, count)] + 0.3 * rng.normal(size=(count, 24))
        vectors[::50] = vectors[1]  # exact duplicates: equal distances must be ordered by slide and row
        arrays.append(vectors.astype(np.float32))
    return [_store(tmp_path / 'a.h5', arrays[0]), _store(tmp_path / 'b.h5', arrays[1])], arrays


def _exact(arrays, query_keys, k, exclude, metric):
    """Brute force in float64 over the stored float32 vectors: ranked by (distance to 1e-6, slide, row)."""
    vectors = np.concatenate(arrays).astype(np.float64)
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])])
    if metric == 'cosine':
        vectors = np.concatenate([normalise(a.astype(np.float32)) for a in arrays]).astype(np.float64)
    query = vectors[[offsets[s] + r for s, r in query_keys]].mean(axis=0)
    if metric == 'cosine':
        query = normalise(query[None].astype(np.float32))[0].astype(np.float64)
        distances = np.clip(1.0 - vectors @ query, 0.0, None)
    else:
        distances = np.sqrt(((vectors - query.astype(np.float32).astype(np.float64)) ** 2).sum(axis=1))
    order = np.lexsort((np.arange(len(vectors)), np.round(distances, 6)))
    banned = {offsets[s] + r for s, r in exclude}
    kept = [p for p in order if p not in banned][:k]
    slide = np.searchsorted(offsets, kept, side='right') - 1
    return [(int(s), int(p - offsets[s]), float(distances[p])) for s, p in zip(slide, kept, strict=True)]


@pytest.mark.parametrize('metric', ['cosine', 'l2'])
def test_the_stored_index_answers_as_an_exact_search(stores, metric, monkeypatch):
    paths, arrays = stores
    monkeypatch.setattr(stored_index, 'CHUNK_BYTES', 24 * 8 * 97)  # 97 rows a chunk: many chunks, ragged ends
    index = StoredIndex.open(paths, KEY, metric)
    for query, exclude in (([(0, 1)], []), ([(0, 10), (1, 20), (1, 21)], [(0, 51), (1, 0)])):
        keys = [(paths[s], r) for s, r in query]
        found = index.query(keys, 40, exclude=[(paths[s], r) for s, r in exclude])
        expected = _exact(arrays, query, 40, exclude, metric)
        assert [(paths.index(n.slide), n.segment) for n in found] == [(s, r) for s, r, _ in expected]
        np.testing.assert_allclose([n.distance for n in found], [d for _, _, d in expected], atol=1e-9)


def test_similar_segments_read_the_index_not_the_features(stores, monkeypatch):
    paths, arrays = stores
    for path in paths:
        stored_index.build(path, KEY)  # as the end of a round does

    def forbidden(*args, **kwargs):
        raise AssertionError('a request read the feature vectors')

    monkeypatch.setattr(SlideStore, 'features', forbidden)
    found = similar_segments(paths, [2, 3], count=12, exclude=[5])
    expected = _exact(arrays, [(0, 1), (0, 2)], 12, [(0, 1), (0, 2), (0, 4)], 'cosine')
    assert [(paths.index(f['store']), f['segment']) for f in found] == [(s, r + 1) for s, r, _ in expected]
    assert all(f['bbox'][2] - f['bbox'][0] == 10 for f in found)


def test_an_index_is_built_once_and_rebuilt_only_when_the_features_change(stores):
    paths, arrays = stores
    first = stored_index.build(paths[0], KEY)
    built = os.stat(first).st_mtime_ns
    StoredIndex.open(paths, KEY).query((paths[0], 3), 5)
    assert stored_index.build(paths[0], KEY) == first and os.stat(first).st_mtime_ns == built
    changed = arrays[0][::-1].copy()
    with SlideStore.update(paths[0]) as writer:
        writer.write_features(KEY, changed, {'name': KEY})
    second = stored_index.build(paths[0], KEY)
    assert second != first and not os.path.exists(first)  # the stale index is gone
    found = StoredIndex.open(paths[:1], KEY).query((paths[0], 0), 1)
    assert found[0].segment == 0 and found[0].distance == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(StoredIndex.open(paths[:1], KEY).rows([0])[0],
                               normalise(changed[:1])[0])


def test_a_search_holds_one_chunk_however_many_segments(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60_000, 128)).astype(np.float32)  # 31 MB of float32 vectors
    path = _store(tmp_path / 'big.h5', vectors)
    index = StoredIndex.open([path], KEY)
    tracemalloc.start()
    try:
        found = index.query((path, 7), 50)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found[0].segment == 7 and len(found) == 50
    assert peak < 2 * stored_index.CHUNK_BYTES < vectors.nbytes / 3
