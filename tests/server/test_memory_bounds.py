"""A reader fuzzing the GET routes a reader may call (suggestions for several acquisition functions, /similar,
/export with predictions) on a large synthetic project keeps the server's memory under the bound docs/rest.md
("Memory each route may use") documents for that size; memory is asserted, times belong to ``bench/bench_scale.py``.

The project: ``SLIDES`` slides of ``PER_SLIDE`` segments (200,000 in all; the issue names 1 M, which CI's 2 cores
cannot build and train in a test's time: the bounds are linear in the segments with the slope documented, so a
route that held every embedding, ``4·S·D`` = 51 MB here, or BatchBALD's samples, ``20·S·C·4`` = 48 MB, breaks
them as it would at 1 M) written with the store API, ``DIM``-d imported embeddings in three clusters, one round
trained through ``POST .../train`` (which stores every function's ranking and the retrieval index).

Memory is Python's traced peak (tracemalloc: numpy's arrays included) over the whole request in this process, body
consumed chunk by chunk as a client reads it, so a body built whole in memory counts.
"""

import json
import tracemalloc

import numpy as np
import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')

SLIDES = 4
PER_SLIDE = 50_000
DIM = 64
CELL = 4
CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'necrosis', 'color': '#4363d8'}]
FUNCTIONS = ('margin', 'negative_entropy', 'random', 'coreset', 'entropy_diverse', 'kmeans_cold_start', 'batchbald')
MIB = 1 << 20
EXPORT_BYTES = 4 * MIB
"""The export's bound: docs/rest.md's table has no row for it; ``projects/export.py`` reads ``ROWS_PER_READ`` (4096)
segments of a store at a time and sends 64 KiB chunks, so its memory is a constant, independent of ``S``
(``tests/server/test_export_stream.py`` asserts 1.5 MB for one slide of 48,000 rows); 4 MiB leaves room for a slide's
labels and the CSV writer, and is far below what a CSV built whole takes (over 13 MB for these 200,000 rows)."""


def _cluster(ids: np.ndarray) -> np.ndarray:
    """The category index each synthetic segment is drawn from."""
    return (ids * 7919) % len(CATEGORIES)


def _synthetic_store(path, n: int, seed: int) -> None:
    """A store of ``n`` square segments of ``CELL`` pixels on a grid with clustered ``DIM``-d imported embeddings."""
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.segments import SegmentTable

    side = int(np.ceil(np.sqrt(n)))
    pixels = side * CELL
    ids = np.arange(1, side * side + 1, dtype=np.uint32).reshape(side, side)
    ids[ids > n] = 0
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(scale=3, size=(len(CATEGORIES), DIM)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with SlideStore.create(path, SlideInfo(str(path), pixels, pixels, 20.0, 20.0, 1.0, pixels, pixels),
                           {'source': 'synthetic', 'segments': n}) as writer:
        writer.create_label_raster(pixels, pixels)[:] = np.kron(ids, np.ones((CELL, CELL), np.uint32))
        index = np.arange(n)
        x0, y0 = (index % side) * CELL, (index // side) * CELL
        writer.write_segments(SegmentTable(bbox=np.stack([x0, y0, x0 + CELL, y0 + CELL], 1).astype(np.int64),
                                           centroid=np.stack([x0, y0], 1) + CELL / 2.0,
                                           area=np.full(n, CELL * CELL, np.int64)))
        features = writer.create_features('imported', n, DIM, {'name': 'imported'})
        features[:] = centres[_cluster(index + 1)] + rng.normal(size=(n, DIM)).astype(np.float32)


@pytest.fixture
def large_project(server, admin, user, fsAssetstore, data_dir, cmu_svs):
    """``SLIDES`` slides (the sample slide's file, each its own item) with synthetic stores, 15 labels per slide
    and one trained round; ``user`` reads."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.item import Item
    from girder.models.upload import Upload
    from girder_large_image.models.image_item import ImageItem

    from histomics_label.projects import folders

    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    folder = Folder().createFolder(home, 'Large project', creator=admin)
    folder = Folder().setUserAccess(folder, user, AccessType.READ, save=True)
    folders.save_config(folder, {'categories': CATEGORIES, 'extractor': 'imported', 'retrainEvery': 0,
                                 'auditEvery': 0})
    items, labels = [], []
    for slide in range(SLIDES):
        with open(cmu_svs, 'rb') as handle:
            file = Upload().uploadFromFile(handle, cmu_svs.stat().st_size, f'slide{slide}.svs',
                                           parentType='folder', parent=folder, user=admin)
        item = Item().load(file['itemId'], force=True)
        if not item.get('largeImage'):
            ImageItem().createImageItem(item, file, user=admin, createJob=False)
            item = Item().load(file['itemId'], force=True)
        items.append(item)
        _synthetic_store(folders.store_path(folder, item), PER_SLIDE, seed=slide)
        labels += [{'item': str(item['_id']), 'segment': s, 'category': CATEGORIES[_cluster(s)]['name']}
                   for s in range(1 + slide, 16 + slide)]
    path = f'/histomics_label/project/{folder["_id"]}'
    assertStatusOk(server.request(f'{path}/labels', method='PUT', user=admin, type='application/json',
                                  body=json.dumps({'labels': labels, 'view': 'guided'})))
    trained = server.request(f'{path}/train', method='POST', user=admin, params={'wait': 'true'})
    assertStatusOk(trained)
    assert trained.json['round'] is not None, trained.json
    return {'folder': Folder().load(folder['_id'], force=True), 'items': items, 'path': path}


def _peak(call, *args) -> tuple[int, object]:
    """The traced peak bytes of ``call(*args)`` above what was held when it started, and its result."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = call(*args)
        return tracemalloc.get_traced_memory()[1] - before, result
    finally:
        tracemalloc.stop()


def _get(server, user, path, params, streamed=False):
    """One GET as a reader sends it; a streamed body is read chunk by chunk and only its size kept."""
    response = server.request(path, user=user, params=params, isJson=not streamed)
    assertStatusOk(response)
    if streamed:
        return sum(len(chunk if isinstance(chunk, bytes) else chunk.encode()) for chunk in response.body)
    return response.json


def test_a_fuzzing_reader_stays_under_the_documented_bounds(server, user, large_project):
    from histomics_label.core.acquisition import served
    from histomics_label.core.retrieval import stored_index
    from histomics_label.projects import folders

    segments = SLIDES * PER_SLIDE
    suggestions_bound = served.BYTES_PER_SEGMENT * segments + served.FIXED_BYTES  # docs/rest.md, 28.2 MiB here
    similar_bound = 2 * stored_index.CHUNK_BYTES  # docs/rest.md: 1.5 chunks + answers + labeled segments, 8 MiB
    export_bound = EXPORT_BYTES
    rng = np.random.default_rng(1)
    path, items = large_project['path'], large_project['items']
    peaks = {}
    for certainty in FUNCTIONS:
        folders.save_config(large_project['folder'], {'certainty': certainty})
        limit = int(rng.integers(1, 200))
        peaks[certainty], got = _peak(_get, server, user, f'{path}/suggestions', {'limit': limit})
        assert len(got) == limit and len({(s['item'], s['segment']) for s in got}) == limit, certainty
        assert all(s['strategy'] for s in got)
    for _ in range(4):
        item = items[int(rng.integers(SLIDES))]
        first = int(rng.integers(1, PER_SLIDE - 100))
        examples = [s for s in range(first, first + 100) if _cluster(s) == _cluster(first)][:3]
        params = {'item': str(item['_id']), 'segments': json.dumps(examples), 'limit': int(rng.integers(5, 100))}
        peak, found = _peak(_get, server, user, f'{path}/similar', params)
        peaks['similar'] = max(peaks.get('similar', 0), peak)
        # three clusters 3σ apart in 64-d: the nearest segments are the examples' cluster
        assert len(found) == params['limit'] and {_cluster(f['segment']) for f in found} == {_cluster(first)}
    peaks['export'], size = _peak(_get, server, user, f'{path}/export', {'format': 'csv', 'predictions': 'true'},
                                  True)
    assert size > segments * 30  # every segment's row went out
    over = {route: peak for route, peak in peaks.items()
            if peak > {'similar': similar_bound, 'export': export_bound}.get(route, suggestions_bound)}
    assert not over, ({route: f'{peak / MIB:.1f} MiB' for route, peak in over.items()},
                      {route: f'{peak / MIB:.1f} MiB' for route, peak in peaks.items()})
