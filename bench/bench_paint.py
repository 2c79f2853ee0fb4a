"""Paint latency: milliseconds per brush stroke, the rasterised stroke against the per-pixel shapely test it replaced.

One run writes a slide store with a large segment raster (``--side`` pixels square, default 8192, in square
segments of ``--cell`` pixels: 262,144 at the defaults; at scale 1, so base and analysis pixels agree) and times
brush strokes of five kinds, each drawn at seeded random places and angles on the slide:

* **thin short** / **thin long**: radius 0 (the paint route's default), a 300 / 4,000 pixel line;
* **wide short** / **wide long**: radius 48, a 300 / 4,000 pixel line;
* **scribble**: radius 16, a 100-point random walk about 2,000 pixels long (a browser sends a point per move).

For each kind it prints p50 and p95 milliseconds and the peak Python memory of one stroke (tracemalloc: numpy's
arrays included) of

* **engine**: ``core.segments.strokes.segments_under_stroke`` on the store (open store, no server);
* **shapely per pixel** (the peer): the approach it replaced, reimplemented here only as the reference: every pixel
  centre of the stroke's bounding box tested against the buffered line with ``shapely.contains_xy``. Same store,
  same strokes, same run; it selects the same segments up to the brush's polygonal approximation and the radius-0
  rule (it covers no pixel for a dab on a pixel corner), which the engine's tests check;
* **REST route** (unless ``--no-server``): ``POST /histomics_label/project/{id}/labels/paint`` on the local live
  stack (``histomics_label.devtools.stack``, started in ``bench-output/paint-stack``), the whole request, for two
  projects on the sample slide whose stores are written into the server's data folder: one over a raster of
  background (the same size, written out; nothing under any stroke, so no label is written: the route's own
  cost), and one over the segments, for the kinds in ``LABELED`` (the request labels what the stroke covers: the
  label writes' cost is added, which grows with the segments covered and is the label model's, not the stroke's).

Goal (issue 15): ≤ 150 ms per brush stroke. ``python bench/bench_paint.py --help``.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from bench_latency import benchmark_stack, upload_image  # noqa: E402

KINDS = {  # name: (radius, length, points)
    'thin short': (0.0, 300, 2),
    'thin long': (0.0, 4000, 2),
    'wide short': (48.0, 300, 2),
    'wide long': (48.0, 4000, 2),
    'scribble': (16.0, 2000, 100),
}
LABELED = ('thin short', 'wide short', 'scribble')
"""Kinds also timed labeling what they cover (tens to a hundred segments; a long stroke labels hundreds, whose
label writes are the label model's cost, not the stroke's)."""
CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}]
GOAL_MS = 150


def grid_store(path: Path, side: int, cell: int, blank: bool = False) -> int:
    """A slide store whose ``side``-pixel square raster is cut into ``cell``-pixel square segments, at scale 1
    (``blank``: the same table over a raster of background, written out so that reading it costs what reading
    segments does); returns the number of segments."""
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.segments.base import SegmentTable

    per_row = side // cell
    n = per_row * per_row
    info = SlideInfo(str(path), side, side, 20.0, 20.0, 1.0, side, side)
    with SlideStore.create(path, info, {'source': 'grid', 'cell': cell}) as writer:
        raster = writer.create_label_raster(side, side)
        block = 1024
        for y in range(0, side, block):
            rows = (np.arange(y, min(y + block, side)) // cell)[:, None]
            cols = (np.arange(side) // cell)[None, :]
            ids = (rows * per_row + cols + 1).astype(np.uint32)
            ids[(rows >= per_row) | (cols >= per_row) | blank] = 0  # background: where no whole cell fits
            raster[y:y + len(rows)] = ids
        index = np.arange(n)
        x0, y0 = (index % per_row) * cell, (index // per_row) * cell
        bbox = np.stack([x0, y0, x0 + cell, y0 + cell], 1).astype(np.int64)
        writer.write_segments(SegmentTable(bbox=bbox, centroid=bbox[:, :2] + cell / 2,
                                           area=np.full(n, cell * cell, np.int64)))
    return n


def strokes(kind: str, count: int, side: int, seed: int) -> list[tuple[list[list[float]], float]]:
    """``count`` strokes of ``kind`` in integer base pixels (as a pointer reports them), inside the slide."""
    radius, length, points = KINDS[kind]
    rng = np.random.default_rng(seed)
    made = []
    while len(made) < count:
        if points == 2:
            angle = rng.uniform(np.pi / 9, 4 * np.pi / 9) * rng.choice([-1, 1])  # diagonal: a large bounding box
            start = rng.uniform(0, side, 2)
            path = np.array([start, start + length * np.array([np.cos(angle), np.sin(angle)])])
        else:
            steps = rng.normal(size=(points - 1, 2))
            steps *= length / (points - 1) / np.linalg.norm(steps, axis=1, keepdims=True)
            path = rng.uniform(0, side, 2) + np.concatenate([[[0, 0]], np.cumsum(steps, axis=0)])
        path = np.round(path)
        box = path.max(0) - path.min(0) + 2 * radius + 1
        if (path >= 0).all() and (path < side).all() and box[0] * box[1] <= 4096 * 4096:
            made.append((path.tolist(), radius))
    return made


def shapely_per_pixel(store, points: list[list[float]], radius: float) -> np.ndarray:
    """The peer: every pixel centre of the stroke's bounding box tested against the buffered line (the approach
    the engine replaced; at least half a pixel of reach, as it had)."""
    import shapely

    path = np.asarray(points, np.float64) / store.slide_info.scale
    reach = max(radius / store.slide_info.scale, 0.5)
    height, width = store.label_raster.shape
    x0, y0 = max(0, int(np.floor(path[:, 0].min() - reach))), max(0, int(np.floor(path[:, 1].min() - reach)))
    x1 = min(width, int(np.ceil(path[:, 0].max() + reach)) + 1)
    y1 = min(height, int(np.ceil(path[:, 1].max() + reach)) + 1)
    line = shapely.Point(path[0]) if len(path) == 1 else shapely.LineString(path)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    inside = shapely.contains_xy(line.buffer(reach), xs.ravel() + 0.5, ys.ravel() + 0.5).reshape(xs.shape)
    ids = store.label_raster[y0:y1, x0:x1][inside]
    return np.unique(ids[ids > 0]).astype(np.int64)


def timings(function: Callable, strokes_: list, memory: bool = True) -> dict:
    """p50 / p95 ms of ``function(points, radius)`` over the strokes, the mean number of segments they covered,
    and (``memory``) the peak Python memory of one more call on the first stroke (MB)."""
    seconds, covered = [], []
    for points, radius in strokes_:
        started = time.perf_counter()
        covered.append(len(function(points, radius)))
        seconds.append(time.perf_counter() - started)
    peak = None
    if memory:
        tracemalloc.start()
        try:
            function(*strokes_[0])
            peak = tracemalloc.get_traced_memory()[1] / 1e6
        finally:
            tracemalloc.stop()
    ms = np.array(seconds) * 1000
    return {'p50_ms': float(np.percentile(ms, 50)), 'p95_ms': float(np.percentile(ms, 95)), 'n': len(ms),
            'peak_mb': peak, 'segments': round(float(np.mean(covered)))}


def engine_figures(store_path: Path, side: int, repeat: int, peer_repeat: int, seed: int) -> dict:
    """The engine and the peer on every kind of stroke."""
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.segments.strokes import segments_under_stroke

    figures = {}
    with SlideStore(store_path) as store:
        for k, kind in enumerate(KINDS):
            drawn = strokes(kind, repeat, side, seed + k)
            engine = timings(lambda p, r: segments_under_stroke(store, p, r), drawn)
            peer = timings(lambda p, r: shapely_per_pixel(store, p, r), drawn[:peer_repeat])
            figures[kind] = {'engine': engine, 'shapely per pixel': peer}
            print(f'  {kind:<11} engine p50 {engine["p50_ms"]:7.1f} ms  p95 {engine["p95_ms"]:7.1f} ms  '
                  f'peak {engine["peak_mb"]:6.1f} MB | shapely per pixel p50 {peer["p50_ms"]:8.1f} ms  '
                  f'peak {peer["peak_mb"]:7.1f} MB', flush=True)
    return figures


def route_figures(stores: dict[str, Path], side: int, repeat: int, label_repeat: int, seed: int, data: Path) -> dict:
    """The paint route on the live stack, for two projects on the sample slide: one whose store is a copy of
    ``stores['grid']`` (the stroke's segments are labeled: ``label_repeat`` strokes of each kind), one whose store
    is ``stores['blank']`` (nothing under any stroke, so no label is written: the route's own cost, ``repeat``
    strokes of each kind)."""
    import shutil

    from girder_client import HttpError

    figures: dict[str, dict] = {'labeling': {}, 'nothing under': {}}
    with benchmark_stack(data) as (_, client, data_dir, slide):
        me = client.get('user/me')
        private = next(client.listFolder(me['_id'], 'user', name='Private'))
        categories = itertools.cycle([c['name'] for c in CATEGORIES])
        routes = {}
        for name in ('grid', 'blank'):
            folder = client.createFolder(private['_id'], f'paint-{name}-{int(time.time())}')
            item = upload_image(client, folder['_id'], slide)
            client.put(f'histomics_label/project/{folder["_id"]}',
                       json={'categories': CATEGORIES, 'retrainEvery': 0})
            target = data_dir / folder['_id'] / f'{item["_id"]}.h5'
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(stores[name], target)
            routes[name] = (f'histomics_label/project/{folder["_id"]}/labels/paint', item['_id'])

        def painter(name: str) -> Callable:
            route, item = routes[name]

            def paint(points, radius):
                body = {'item': item, 'points': points, 'radius': radius, 'category': next(categories)}
                return client.post(route, json=body)['segments']
            return paint

        painter('blank')([[side / 2, side / 2]], 0.0)  # the route's first request imports and opens what it needs
        drawn = {kind: strokes(kind, max(repeat, label_repeat), side, seed + 100 + k) for k, kind in enumerate(KINDS)}
        for kind in KINDS:  # first, so that no label write still going on in the server disturbs them
            bare = figures['nothing under'][kind] = timings(painter('blank'), drawn[kind][:repeat], memory=False)
            print(f'  {kind:<11} REST route, nothing under p50 {bare["p50_ms"]:7.1f} ms  p95 {bare["p95_ms"]:7.1f} ms',
                  flush=True)
        for kind in LABELED:
            try:
                labeling = figures['labeling'][kind] = timings(painter('grid'), drawn[kind][:label_repeat],
                                                               memory=False)
                print(f'  {kind:<11} REST route, labeling {labeling["segments"]} segments: p50 '
                      f'{labeling["p50_ms"]:8.1f} ms', flush=True)
            except HttpError as exc:  # the label writes timed out in the database: say so, and go on
                figures['labeling'][kind] = {'error': f'HTTP {exc.status}: {exc.responseText[:200]}'}
                print(f'  {kind:<11} REST route, labeling: HTTP {exc.status}', flush=True)
    return figures


def report(figures: dict) -> str:
    """The figures as a table (ms per stroke; MB: peak Python memory of one stroke) and the goal's verdict on the
    engine and the route without label writes."""
    header = (f'{"stroke":<12}{"radius":>7}{"length":>7}{"segments":>9}{"engine p50":>11}{"p95":>7}{"MB":>6}'
              f'{"REST p50":>10}{"p95":>7}{"+labels p50":>12}{"shapely p50":>13}{"p95":>8}{"MB":>7}{"speed-up":>10}')
    lines = [header, '-' * len(header)]
    route = figures.get('route', {})
    worst = 0.0
    for kind, (radius, length, _) in KINDS.items():
        engine, peer = figures['engine'][kind]['engine'], figures['engine'][kind]['shapely per pixel']
        bare, labeling = route.get('nothing under', {}).get(kind), route.get('labeling', {}).get(kind)
        rest = f'{bare["p50_ms"]:>10.1f}{bare["p95_ms"]:>7.1f}' if bare else f'{"-":>10}{"-":>7}'
        rest += (f'{"error":>12}' if labeling and 'error' in labeling else
                 f'{labeling["p50_ms"]:>12.1f}' if labeling else f'{"-":>12}')
        lines.append(f'{kind:<12}{radius:>7.0f}{length:>7}{engine["segments"]:>9}{engine["p50_ms"]:>11.1f}'
                     f'{engine["p95_ms"]:>7.1f}{engine["peak_mb"]:>6.1f}{rest}{peer["p50_ms"]:>13.1f}'
                     f'{peer["p95_ms"]:>8.1f}{peer["peak_mb"]:>7.1f}{peer["p50_ms"] / engine["p50_ms"]:>9.0f}×')
        worst = max(worst, engine['p95_ms'], bare['p95_ms'] if bare else 0.0)
    lines.append(f'\ngoal: <= {GOAL_MS} ms per brush stroke (engine, and the route without label writes): '
                 f'{"met" if worst <= GOAL_MS else "NOT met"} (worst p95 {worst:.1f} ms)')
    return '\n'.join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--side', type=int, default=8192, help='raster side in pixels (default 8192)')
    parser.add_argument('--cell', type=int, default=16, help='segment side in pixels (default 16)')
    parser.add_argument('--repeat', type=int, default=20, help='strokes of each kind for the engine and route')
    parser.add_argument('--peer-repeat', type=int, default=3, help='strokes of each kind for the shapely peer')
    parser.add_argument('--label-repeat', type=int, default=3,
                        help='strokes of each kind through the route that label what they cover')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--no-server', action='store_true', help='time the engine and the peer only')
    parser.add_argument('--work', type=Path, default=ROOT / 'bench-output' / 'paint',
                        help='where the store is written')
    parser.add_argument('--data', type=Path, default=ROOT / 'bench-output' / 'paint-stack',
                        help='data folder of the live stack this run starts')
    parser.add_argument('--json', type=Path, help='write every figure to this JSON file')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    stores = {name: args.work / f'{name}-{args.side}-{args.cell}.h5' for name in ('grid', 'blank')}
    for name, store in stores.items():
        if not store.exists():
            started = time.perf_counter()
            n = grid_store(store, args.side, args.cell, blank=name == 'blank')
            print(f'{name} store of {n:,} segments ({args.side}² pixels) written in '
                  f'{time.perf_counter() - started:.1f} s')
    figures = {'date': str(datetime.date.today()), 'side': args.side, 'cell': args.cell,
               'engine': engine_figures(stores['grid'], args.side, args.repeat, args.peer_repeat, args.seed)}
    if not args.no_server:
        figures['route'] = route_figures(stores, args.side, args.repeat, args.label_repeat, args.seed, args.data)
    print(f'\n{figures["date"]}, {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; '
          f'{args.side}² pixel raster, {args.cell} px segments\n{report(figures)}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
