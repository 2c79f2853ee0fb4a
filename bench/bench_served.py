"""What a suggestions request costs served from the round's stored ranking, against ranking on request, and what the
ranking adds to a round; and what a /similar search of the index on disk costs.

Builds ``--slides`` stores of ``--segments`` segments each with ``--dim``-dimensional features in two clusters, a
linear round on 20 labels per slide, then, per acquisition function, in this process: the time and traced peak
memory (tracemalloc) of ranking on request (``suggestions.suggest_across``, what a GET did before) and of serving
from storage (``served.served_suggestions``, median of ``--repeat``), and the time the round spends storing that
function's ranking. Then the time and peak of a more-like-this search over the on-disk index. Prints one JSON object.

Run ``python bench/bench_served.py --segments 50000 --dim 256``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from histomics_label.core.acquisition import acquisition_functions, ranking_store, served
from histomics_label.core.acquisition.suggestions import suggest_across
from histomics_label.core.io.labels import Category, LabelSet
from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore, append_round
from histomics_label.core.models import models
from histomics_label.core.pipeline import PipelineConfig, representation
from histomics_label.core.retrieval.similar import similar_segments
from histomics_label.core.retrieval.stored_index import build
from histomics_label.core.segments import SegmentTable

KEY = 'efficientnet_lite0'
CATEGORIES = [Category('tumor', '#ff0000'), Category('stroma', '#00ff00')]


def project(folder: Path, n_slides: int, segments: int, dim: int) -> list[tuple[str, LabelSet]]:
    """``n_slides`` stores of synthetic segments and features, and one linear round over all of them."""
    rng = np.random.default_rng(0)
    slides, training = [], []
    for index in range(n_slides):
        classes = rng.integers(0, 2, segments)
        vectors = (rng.normal(size=(segments, dim)) + 1.5 * classes[:, None]).astype(np.float32)
        path = folder / f'{index}.h5'
        info = SlideInfo(f'{index}', 4000, 4000, 20.0, 5.0, 4.0, 1000, 1000)
        corners = rng.integers(0, 990, (segments, 2))
        with SlideStore.create(path, info, {'source': 'bench'}) as writer:
            writer.write_segments(SegmentTable(bbox=np.concatenate([corners, corners + 10], axis=1),
                                               centroid=corners + 5.0, area=np.full(segments, 100)))
            writer.write_features(KEY, vectors, {'name': KEY, 'dim': dim})
        labeled = np.concatenate([np.flatnonzero(classes == c)[:10] for c in (0, 1)])
        slides.append((str(path), LabelSet(CATEGORIES, labeled + 1, classes[labeled])))
        training.append((vectors[labeled], classes[labeled]))
    model = models.create('linear', seed=0)
    model.fit(np.concatenate([v for v, _ in training]), np.concatenate([c for _, c in training]), 2)
    params = {**model.params(), 'representation': f'features/{KEY}', 'classes': [0, 1]}
    for path, labels in slides:
        with SlideStore(path) as store:
            probabilities = model.predict_proba(store.features(KEY))
        append_round(path, categories=[c.as_dict() for c in CATEGORIES], label_ids=labels.segment_ids,
                     label_categories=labels.category_index, probabilities=probabilities, model_name='linear',
                     model_params=params, model_state=model.state(), metrics={})
    return slides


def measure(call) -> tuple[float, int]:
    """Seconds and traced peak bytes of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        call()
        return time.perf_counter() - start, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--slides', type=int, default=2)
    parser.add_argument('--segments', type=int, default=50_000, help='per slide')
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--count', type=int, default=8)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--mc-samples', type=int, default=20)
    parser.add_argument('--functions', nargs='*', default=acquisition_functions.names())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        slides = project(folder, args.slides, args.segments, args.dim)
        rep = representation(PipelineConfig(slide='bench', store=slides[0][0]))
        directory = folder / 'rankings'
        result = {'slides': args.slides, 'segments': args.slides * args.segments, 'dim': args.dim,
                  'count': args.count, 'functions': {}}
        for certainty in args.functions:
            on_request = measure(lambda c=certainty: suggest_across(slides, c, args.count, rep=rep,
                                                                    embedding_key=KEY, mc_samples=args.mc_samples))
            stored = measure(lambda c=certainty: ranking_store.ranking_for(directory, slides, c, 0, rep, KEY,
                                                                           args.mc_samples, args.count))
            runs = [measure(lambda c=certainty: served.served_suggestions(
                directory, slides, c, args.count, rep=rep, embedding_key=KEY, mc_samples=args.mc_samples,
                batch=args.count)) for _ in range(args.repeat)]
            result['functions'][certainty] = {
                'on_request_s': round(on_request[0], 3), 'on_request_peak_mib': round(on_request[1] / 2**20, 1),
                'round_stores_s': round(stored[0], 3),
                'served_s': round(statistics.median(r[0] for r in runs), 4),
                'served_peak_mib': round(max(r[1] for r in runs) / 2**20, 2)}
        paths = [path for path, _ in slides]
        built = measure(lambda: [build(path, KEY) for path in paths])
        searches = [measure(lambda: similar_segments(paths, [1, 2], 20)) for _ in range(args.repeat)]
        result['similar'] = {'index_build_s': round(built[0], 3), 'index_build_peak_mib': round(built[1] / 2**20, 1),
                             'search_s': round(statistics.median(s[0] for s in searches), 4),
                             'search_peak_mib': round(max(s[1] for s in searches) / 2**20, 2)}
        print(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
