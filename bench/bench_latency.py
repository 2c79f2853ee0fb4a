"""Interactive latency on the live stack: label → fresh suggestions, and fetching a slide's pixelmap annotation.

One run starts the local live stack (``histomics_label.devtools.stack``: Girder 5 with the plugin on a Mongo-wire server
and Redis) in ``bench-output/latency-stack`` (or uses a running Girder given by ``--api-url``), and for each size
(100,000 and 1,000,000 segments; ``--quick``: 10,000 and 100,000) makes a project whose one slide has that many
segments: the sample slide's item, with a slide store written directly in the server's data folder holding a grid
of square segments and synthetic 1280-d embeddings (three Gaussian clusters, one per category; the size of the
store is what matters here, not what it shows), and its segment-id image uploaded as a large image.

Then, through the REST API as a labeler's browser would call it:

* **first round**: 30 labels, ``POST .../train?wait=true`` (trains the linear head and predicts every segment);
* **label → fresh suggestions**, ``--rounds`` times: label the 5 best suggestions (``PUT .../labels``), retrain
  (``POST .../train?wait=true``: warm start, predicts every segment, publishes the annotations' new versions), and
  fetch the next 8 suggestions (``GET .../suggestions``). The figure is the sum; each part is printed too;
* **pixelmap fetch**: ``GET /annotation/{id}`` of the slide's predictions annotation (one value per segment): time
  and size, as sent and gzip-compressed.

Goals (issue "Girder 5 server plugin ..."): label → fresh suggestions ≤ 2 s at 1 M segments; pixelmap fetch ≤ 1 s
and ≤ 10 MB. Run ``python bench/bench_latency.py --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gzip
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from measure import best_of, timed  # noqa: E402
from report import publish  # noqa: E402

DIM = 1280  # the default extractor's embedding width: the store must be current for the project's representation
CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'necrosis', 'color': '#4363d8'}]
ROW_BLOCK = 65_536


def synthetic_store(path: Path, n: int, config: dict, seed: int = 0, cell: int = 8) -> None:
    """A slide store with ``n`` square segments of ``cell`` pixels (at most 256) on a grid and clustered
    embeddings, current for ``config``."""
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.pipeline import PipelineConfig, representation
    from histomics_label.core.segments import SegmentTable

    side = int(np.ceil(np.sqrt(n)))
    height = width = side * cell
    info = SlideInfo(str(path), width, height, 20.0, 20.0, 1.0, width, height)
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, DIM)).astype(np.float32)
    pipeline = PipelineConfig(slide='synthetic', store=str(path), extractor=config['extractor'],
                              patch_size=config['patchSize'], feature='vector')
    params = representation(pipeline).params()
    with SlideStore.create(path, info, {'source': 'synthetic', 'segments': n}) as writer:
        raster = writer.create_label_raster(height, width)
        ids = np.arange(1, side * side + 1, dtype=np.uint32).reshape(side, side)
        ids[ids > n] = 0
        block = 256 // cell
        for y in range(0, side, block):
            for x in range(0, side, block):
                tile = np.kron(ids[y:y + block, x:x + block], np.ones((cell, cell), np.uint32))
                raster[y * cell:y * cell + tile.shape[0], x * cell:x * cell + tile.shape[1]] = tile
        index = np.arange(n)
        x0, y0 = (index % side) * cell, (index // side) * cell
        writer.write_segments(SegmentTable(bbox=np.stack([x0, y0, x0 + cell, y0 + cell], 1).astype(np.int64),
                                           centroid=np.stack([x0 + cell / 2, y0 + cell / 2], 1).astype(float),
                                           area=np.full(n, cell * cell, np.int64)))
        features = writer.create_features(config['extractor'], n, DIM, params)
        for start in range(0, n, ROW_BLOCK):
            count = min(ROW_BLOCK, n - start)
            cluster = (np.arange(start, start + count) * 7919) % 3
            features[start:start + count] = centres[cluster] + rng.normal(scale=1.5, size=(count, DIM))


def truth(segment: int) -> str:
    """The category a synthetic segment was drawn from (its cluster)."""
    return CATEGORIES[((segment - 1) * 7919) % 3]['name']


def make_project(client, size: int, data_dir: Path, slide: Path, cell: int = 8) -> tuple[str, str]:
    """A project folder with one slide whose store has ``size`` segments of ``cell`` pixels; returns (folder id,
    item id)."""
    from histomics_label.core.io.label_tiff import write_segment_tiff
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects.segment_images import SEGMENT_IMAGE_FORMAT_KEY, SEGMENT_IMAGE_KEY

    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    folder = client.createFolder(private['_id'], f'latency-{size}-{int(time.time())}')
    item = upload_image(client, folder['_id'], slide)
    config = client.put(f'histomics_label/project/{folder["_id"]}', json={
        'categories': CATEGORIES, 'retrainEvery': 0, 'batchSize': 8, 'certainty': 'margin'})['config']
    store = data_dir / folder['_id'] / f'{item["_id"]}.h5'
    store.parent.mkdir(parents=True, exist_ok=True)
    writing, _ = timed(synthetic_store, store, size, config, cell=cell)
    print(f'  store of {size:,} segments written in {writing:.1f} s '
          f'({store.stat().st_size / 1e6:.0f} MB)', flush=True)
    segments = client.createFolder(folder['_id'], 'Histomics Label segments')
    with tempfile.TemporaryDirectory() as work:
        image = Path(work) / 'segments.tiff'
        with SlideStore(store) as reader:
            write_segment_tiff(reader.label_raster, image, boundaries=True)  # as segment generation does
        segment_item = upload_image(client, segments['_id'], image)
    client.addMetadataToItem(item['_id'], {SEGMENT_IMAGE_KEY: segment_item['_id'],
                                           SEGMENT_IMAGE_FORMAT_KEY: {'boundaries': True}})
    return folder['_id'], item['_id']


def item_file(client, item: dict) -> str:
    return next(client.listFile(item['_id']))['_id']


def upload_image(client, folder: str, path: Path, filename: str | None = None) -> dict:
    """The file at ``path`` uploaded into ``folder`` as a large-image item (tiles made when the upload did not make
    them); returns the item."""
    item = client.getItem(client.uploadFileToFolder(folder, str(path), filename=filename)['itemId'])
    if not item.get('largeImage'):
        client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': item_file(client, item)})
    return item


def measure(client, size: int, data_dir: Path, slide: Path, rounds: int) -> dict:
    print(f'{size:,} segments', flush=True)
    folder, item = make_project(client, size, data_dir, slide)
    base = f'histomics_label/project/{folder}'
    first = [{'item': item, 'segment': s, 'category': truth(s)} for s in range(1, 31)]
    client.put(f'{base}/labels', json={'labels': first, 'view': 'guided'})
    first_round, trained = timed(client.post, f'{base}/train', parameters={'wait': 'true'})
    if trained.get('round') is None:
        raise RuntimeError(f'The first round failed: {trained}')
    suggestions = client.get(f'{base}/suggestions', parameters={'limit': 8})
    loops = []
    for _ in range(rounds):
        labels = [{'item': s['item'], 'segment': s['segment'], 'category': truth(s['segment'])}
                  for s in suggestions[:5]]
        put, _ = timed(client.put, f'{base}/labels', json={'labels': labels, 'view': 'guided'})
        train, result = timed(client.post, f'{base}/train', parameters={'wait': 'true'})
        suggest, suggestions = timed(client.get, f'{base}/suggestions', parameters={'limit': 8})
        accuracy = (result['round']['accuracy'] or {}).get('balancedAccuracy')
        loops.append({'label': put, 'train': train, 'suggest': suggest, 'total': put + train + suggest,
                      'round': result['round']['number'], 'accuracy': accuracy})
        print(f'  round {result["round"]["number"]}: label {put:.2f} s + train {train:.2f} s + suggest '
              f'{suggest:.2f} s = {put + train + suggest:.2f} s', flush=True)
    annotations = client.get('annotation', parameters={'itemId': item, 'limit': 0})
    predictions = next(a for a in annotations if a['annotation']['name'] == 'Histomics Label predictions')
    pixelmap_fetch_s, response = best_of(3, client.sendRestRequest, 'GET', f'annotation/{predictions["_id"]}',
                                         jsonResp=False)
    body = response.content
    values = json.loads(body)['annotation']['elements'][0]['values']
    assert len(values) == size + 1
    overlay_fetch_s, response = best_of(3, client.sendRestRequest, 'GET', f'{base}/overlay',
                                        parameters={'item': item, 'kind': 'predictions'}, jsonResp=False)
    overlay = response.content
    assert len(overlay) == size + 1
    return {'segments': size, 'first_round_s': first_round, 'loops': loops,
            'overlay_fetch_s': overlay_fetch_s, 'overlay_bytes': len(overlay),
            'label_to_suggestions_s': statistics.median(loop['total'] for loop in loops),
            'train_s': statistics.median(loop['train'] for loop in loops),
            'suggest_s': statistics.median(loop['suggest'] for loop in loops),
            'pixelmap_fetch_s': pixelmap_fetch_s, 'pixelmap_bytes': len(body),
            'pixelmap_gzip_bytes': len(gzip.compress(body, 6))}


GOAL_SECONDS = 2.0
GOAL_FETCH_S, GOAL_FETCH_MB = 1.0, 10.0


def goals(results: list[dict]) -> list:
    """The issue's latency goals, judged on the largest size measured."""
    from report import Goal

    largest = max(results, key=lambda r: r['segments'])
    n = f'{largest["segments"]:,} segments'
    loop = largest['label_to_suggestions_s']
    fetch, megabytes = largest['pixelmap_fetch_s'], largest['pixelmap_bytes'] / 1e6
    return [
        Goal(f'label → fresh suggestions ≤ {GOAL_SECONDS:g} s at {n}', f'{loop:.2f} s (median of the rounds)',
             loop <= GOAL_SECONDS, '' if loop <= GOAL_SECONDS else
             f'{loop / GOAL_SECONDS:.2f}× the goal: training {largest["train_s"]:.2f} s (reading every embedding '
             f'and predicting every segment), suggestions {largest["suggest_s"]:.2f} s'),
        Goal(f'pixelmap fetch ≤ {GOAL_FETCH_S:g} s and ≤ {GOAL_FETCH_MB:g} MB at {n}',
             f'{fetch:.2f} s, {megabytes:.1f} MB (annotation JSON); web client overlay '
             f'{largest["overlay_fetch_s"]:.2f} s, {largest["overlay_bytes"] / 1e6:.1f} MB',
             fetch <= GOAL_FETCH_S and megabytes <= GOAL_FETCH_MB,
             '' if fetch <= GOAL_FETCH_S and megabytes <= GOAL_FETCH_MB else
             f'{fetch / GOAL_FETCH_S:.2f}× the time goal, {megabytes / GOAL_FETCH_MB:.2f}× the size goal: the '
             'annotation holds one JSON number per segment'),
    ]


def section(directory: Path, results: list[dict], rounds: int) -> str:
    """The benchmarks page's section (bench/report.py), its plot saved in ``directory``."""
    from report import figure, save_plot, table

    rows = [[f'{r["segments"]:,}', f'{r["first_round_s"]:.2f}', f'{r["label_to_suggestions_s"]:.2f}',
             f'{r["train_s"]:.2f}', f'{r["suggest_s"]:.2f}', f'{r["pixelmap_fetch_s"]:.2f}',
             f'{r["pixelmap_bytes"] / 1e6:.2f}', f'{r["overlay_fetch_s"]:.2f}', f'{r["overlay_bytes"] / 1e6:.2f}']
            for r in results]
    fig, ax = figure(6, 3.5)
    sizes = [r['segments'] for r in results]
    for key, label in (('label_to_suggestions_s', 'label → fresh suggestions'), ('train_s', 'of which training'),
                       ('suggest_s', 'of which suggestions'), ('pixelmap_fetch_s', 'pixelmap annotation fetch')):
        ax.plot(sizes, [r[key] for r in results], marker='o', label=label)
    ax.axhline(GOAL_SECONDS, color='grey', linestyle='--', linewidth=1, label=f'goal {GOAL_SECONDS:g} s')
    ax.set_xscale('log')
    ax.set_xlabel('segments in the slide')
    ax.set_ylabel('seconds')
    ax.legend(fontsize=8)
    plot = save_plot(fig, directory, 'latency', 'seconds')
    return f"""## Interactive latency on the live stack

`bench/bench_latency.py`: Girder 5 with the plugin on the local live stack; one project per size whose slide store
holds that many synthetic segments (1280-d embeddings in three clusters). Through the REST API as the browser
calls it: 30 labels and a first round, then {rounds} times *label → fresh suggestions* (PUT 5 labels,
`POST .../train?wait=true` with every segment predicted, `GET .../suggestions?limit=8`; medians), the predictions
annotation fetched as a DSA viewer fetches it (`GET /annotation/{{id}}`), and the web client's overlay of the same
predictions (`GET .../overlay`, one byte per segment).

{table(['segments', 'first round s', 'label → suggestions s', 'train s', 'suggest s', 'annotation fetch s',
        'annotation MB', 'overlay fetch s', 'overlay MB'], rows)}

![Latency against the number of segments]({plot})

Goals: label → fresh suggestions ≤ {GOAL_SECONDS:g} s, pixelmap fetch ≤ {GOAL_FETCH_S:g} s and ≤ {GOAL_FETCH_MB:g} MB.
The annotation's values are JSON (Girder sends it uncompressed); the web client uses the binary overlay instead.
"""


def report(results: list[dict]) -> str:
    lines = [f'{"segments":>10} {"first round s":>13} {"label→sugg. s":>13} {"  train s":>9} {"suggest s":>9} '
             f'{"pixelmap s":>10} {"pixelmap MB":>11} {"gzip kB":>8}', '-' * 92]
    for r in results:
        lines.append(f'{r["segments"]:>10,} {r["first_round_s"]:>13.2f} {r["label_to_suggestions_s"]:>13.2f} '
                     f'{r["train_s"]:>9.2f} {r["suggest_s"]:>9.2f} {r["pixelmap_fetch_s"]:>10.2f} '
                     f'{r["pixelmap_bytes"] / 1e6:>11.2f} {r["pixelmap_gzip_bytes"] / 1e3:>8.1f}')
    lines.append('label→sugg.: median over the rounds of PUT 5 labels + POST train?wait=true + GET 8 suggestions. '
                 'Goals: ≤ 2 s; pixelmap ≤ 1 s and ≤ 10 MB (as sent; gzip for reference).')
    return '\n'.join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', help='segment counts (default 100000 1000000)')
    parser.add_argument('--quick', action='store_true', help='10,000 and 100,000 segments, 2 rounds')
    parser.add_argument('--rounds', type=int, help='label → suggestions loops per size (default 5; 2 with --quick)')
    parser.add_argument('--data', type=Path, default=ROOT / 'bench-output' / 'latency-stack',
                        help='data folder of the live stack this run starts')
    parser.add_argument('--port', type=int, default=0, help='Girder port of that stack (default: a free one)')
    parser.add_argument('--keep', action='store_true', help='leave the stack running afterwards')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([10_000, 100_000] if args.quick else [100_000, 1_000_000])
    args.rounds = args.rounds or (2 if args.quick else 5)
    return args


@contextlib.contextmanager
def benchmark_stack(data: Path, port: int = 0, keep: bool = False) -> Iterator[tuple]:
    """A live stack for a benchmark, with its data in ``data`` on ``port`` (0: a free one), stopped at the end
    unless ``keep``. Yields its info, an admin client, the plugin's data folder (where the synthetic projects'
    stores go) and the sample slide those projects point at.

    ``data`` starts empty: a stack left there (``--keep``) is stopped and its data removed first, since the
    product's work queue resumes a stopped stack's queued work (a killed run's round at 1 M segments ran beside the
    next run's first round and made it 314 s instead of about 30)."""
    from histomics_label.devtools import sample_data
    from histomics_label.devtools.stack.launcher import Stack, _free_port

    Stack(data).stop()
    shutil.rmtree(data, ignore_errors=True)
    stack = Stack(data, port=port or _free_port())
    starting, info = timed(stack.start)
    print(f'live stack at {info.url} ({starting:.0f} s to start)', flush=True)
    try:
        client = info.client()
        data_dir = Path(client.get('system/setting', parameters={'key': 'histomics_label.data_dir'}))
        yield info, client, data_dir, Path(sample_data.cmu_small_region())
    finally:
        if not keep:
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with benchmark_stack(args.data, args.port, args.keep) as (_, client, data_dir, slide):
        results = [measure(client, size, data_dir, slide, args.rounds) for size in args.sizes]
    text = report(results)
    print(f'\n{datetime.date.today()}, {os.cpu_count()} CPUs, {platform.machine()}, Python '
          f'{platform.python_version()}\n{text}')
    figures = {'date': str(datetime.date.today()), 'rounds': args.rounds, 'results': results}
    publish(figures, args.json, args.report, 'latency', lambda directory: section(directory, results, args.rounds),
            goals(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
