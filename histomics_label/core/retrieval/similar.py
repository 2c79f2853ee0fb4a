"""More like this across slide stores: the segments that look most like a labeler's examples, wherever they are.

A query is one or more segments of the first store (the slide the labeler is on), as segment ids; their mean
embedding is the concept's prototype. The search runs over the stored feature vectors of every store given, so a
pathologist who found one example of a rare pattern sees its look-alikes on all slides of a project. With
``negatives`` (segments the labeler said are *not* the concept), or ``cnfp=True``, the answer is a CNFP mix
(``retrieval.cnfp``): the nearest unlabeled segments, interleaved with the closest negatives and the farthest
positives, which is what refines a concept fastest.

The search reads each store's index file (``stored_index``: built once per set of features, at the end of a round or
on first use) in bounded chunks, and the segment table only at the rows it answers with, so a request needs memory
for one chunk of vectors and its ``count`` answers, not for every segment of every slide.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigurationError, FeaturesError
from ..io.store import SlideStore
from .index import cnfp
from .stored_index import StoredIndex


def similar_segments(stores: Sequence[str], query: Sequence[int], count: int = 20,
                     extractor: str = 'efficientnet_lite0', negatives: Sequence[int] = (), cnfp_mix: bool = False,
                     metric: str = 'cosine', exclude: Sequence[int] = ()) -> list[dict]:
    """The ``count`` segments most like the ``query`` segments (ids in ``stores[0]``), nearest first, as dicts.

    ``exclude`` (ids in ``stores[0]``, e.g. segments already labeled) never comes back as a near neighbour; the
    query segments themselves never do either. Each result names its store, segment id, distance, ``kind``
    (``'unlabeled'``, or for CNFP also ``'negative'`` / ``'positive'``) and its box in analysis and base pixels.
    """
    if not stores:
        raise ConfigurationError('More like this needs at least one slide store to search')
    if not query:
        raise ConfigurationError('More like this needs at least one query segment')
    if count <= 0:
        raise ConfigurationError(f'The number of similar segments must be positive, not {count}')
    names = [os.path.abspath(path) for path in stores]
    if len(set(names)) != len(names):
        raise ConfigurationError('A slide store is listed more than once')
    counts, scales = {}, {}
    for name in names:
        with SlideStore(name) as store:
            if extractor not in store.feature_names():
                raise FeaturesError(f'{name} has no {extractor} feature vectors; compute them first '
                                    '(SuperpixelClassification with --feature vector)')
            counts[name] = store.n_segments
            scales[name] = store.slide_info.scale
    first = names[0]
    index = StoredIndex.open(names, extractor, metric)
    positives = [(first, _row(first, segment, counts[first])) for segment in query]
    negative_keys = [(first, _row(first, segment, counts[first])) for segment in negatives]
    excluded = [(first, _row(first, segment, counts[first])) for segment in exclude]
    if cnfp_mix or negative_keys:
        found = cnfp(index, positives, negative_keys, k=count, exclude=excluded)
        results = [(item.slide, item.segment, item.distance, item.kind) for item in found]
    else:
        found = index.query(positives, count, exclude=set(positives) | set(excluded))
        results = [(item.slide, item.segment, item.distance, 'unlabeled') for item in found]
    tables = {}
    for name in {name for name, *_ in results}:
        rows = sorted({row for other, row, *_ in results if other == name})
        with SlideStore(name) as store:
            table = store.segments(np.array(rows, np.int64))
        tables[name] = {row: (table.bbox[k], table.centroid[k]) for k, row in enumerate(rows)}
    return [_describe(name, row, distance, kind, tables[name][row], scales[name], rank)
            for rank, (name, row, distance, kind) in enumerate(results, start=1)]


def _row(store: str, segment: int, n_segments: int) -> int:
    if not 1 <= int(segment) <= n_segments:
        raise ConfigurationError(f'Segment {segment} is not in {store}, whose segment ids run 1–{n_segments}')
    return int(segment) - 1


def _describe(store: str, row: int, distance: float, kind: str, box: tuple, scale: float, rank: int) -> dict:
    bbox, centroid = box
    x0, y0, x1, y1 = (int(v) for v in bbox)
    return {'rank': rank, 'store': store, 'segment': row + 1, 'distance': round(float(distance), 6), 'kind': kind,
            'bbox': [x0, y0, x1, y1], 'bbox_base': [round(v * scale) for v in (x0, y0, x1, y1)],
            'centroid': [float(v) for v in np.asarray(centroid)]}
