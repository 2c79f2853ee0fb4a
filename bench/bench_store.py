"""What opening a slide store and reading its latest round costs after many rounds, and what an update costs.

Builds a store of ``--segments`` segments with ``--dim``-dimensional features (synthetic values: only sizes
matter here), appends ``--rounds`` rounds through ``append_round`` as training does, then measures, in this
process: the time to open the store and read its latest round, the files that holds open (``/proc/self/fd``), the
round files left on disk, and the time of an update that adds one small dataset (a copy of the store, see
``core/io/store.py``). Prints one JSON object.

Run ``python bench/bench_store.py --rounds 400``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import ROUNDS_KEPT, SlideStore, append_round, rounds_folder
from histomics_label.core.segments import SegmentTable

CATEGORIES = [{'name': 'tumor', 'color': '#ff0000', 'excluded': False},
              {'name': 'stroma', 'color': '#00ff00', 'excluded': False}]


def build(path: str, segments: int, dim: int) -> None:
    """A store of ``segments`` one-pixel segments in a row and their random features."""
    info = SlideInfo('/bench/slide.tiff', segments, 1, 20.0, 20.0, 1.0, segments, 1)
    rng = np.random.default_rng(0)
    with SlideStore.create(path, info, {'source': 'bench'}) as writer:
        writer.create_label_raster(1, segments)[0] = np.arange(1, segments + 1, dtype=np.uint32)
        x = np.arange(segments)
        writer.write_segments(SegmentTable(bbox=np.stack([x, 0 * x, x + 1, 0 * x + 1], 1),
                                           centroid=np.stack([x + 0.5, 0.5 + 0 * x], 1).astype(float),
                                           area=np.ones(segments, np.int64)))
        writer.write_features('bench', rng.random((segments, dim), np.float32), {'dim': dim})


def append(path: str, segments: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    append_round(path, categories=CATEGORIES, label_ids=np.array([1, segments]), label_categories=np.array([0, 1]),
                 probabilities=rng.dirichlet(np.ones(2), segments).astype(np.float32), model_name='linear',
                 model_params={'seed': seed}, model_state={'weight': rng.normal(size=(64, 2))}, metrics={})


def open_latest(path: str) -> tuple[float, int]:
    """Seconds to open the store and read its latest round, and the files that held open."""
    before = set(os.listdir('/proc/self/fd'))
    start = time.perf_counter()
    with SlideStore(path) as store:
        store.latest_round()
        held = len(set(os.listdir('/proc/self/fd')) - before)
    return time.perf_counter() - start, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--segments', type=int, default=100_000)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument('--rounds', type=int, default=400)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'slide.h5')
        build(path, args.segments, args.dim)
        start = time.perf_counter()
        for seed in range(1, args.rounds + 1):
            append(path, args.segments, seed)
        per_round = (time.perf_counter() - start) / args.rounds
        opened = [open_latest(path) for _ in range(args.repeats)]
        updates = []
        for k in range(args.repeats):
            start = time.perf_counter()
            with SlideStore.update(path) as writer:
                writer.write_embedding_map('bench', np.zeros((args.segments, 3), np.uint8), {'repeat': k})
            updates.append(time.perf_counter() - start)
        print(json.dumps({
            'segments': args.segments, 'dim': args.dim, 'rounds': args.rounds, 'rounds_kept': ROUNDS_KEPT,
            'store_mb': round(os.path.getsize(path) / 2**20, 1),
            'append_round_ms': round(per_round * 1000, 1),
            'open_latest_ms_median': round(statistics.median(t for t, _ in opened) * 1000, 1),
            'open_files_held': max(held for _, held in opened),
            'round_files_on_disk': sum(name.endswith('.h5') for name in os.listdir(rounds_folder(path))),
            'update_ms_median': round(statistics.median(updates) * 1000, 1)}))


if __name__ == '__main__':
    main()
