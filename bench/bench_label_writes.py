"""Label writes through the live REST API: seconds per ``PUT /histomics_label/project/{id}/labels`` on the local
live stack (Girder on the Mongo-wire server over SQLite), for new labels and for changing labels that exist.

One run starts a stack in ``--data`` (``bench_latency.benchmark_stack``), makes a project with one slide of
``--segments`` synthetic segments (``bench_latency.make_project``), then, per size in ``--sizes``, PUTs that many
new labels (segments not labeled yet) and PUTs the same segments again with other categories (each label's category
changes: a conditional update and an event per label). Each request's answer is checked: every label sent is
counted as labeled, and as changed on the second PUT.

Goal (issue 15): a 200-label write well under a second; no write of 1,000 labels near Girder's 60 s socket timeout.
``python bench/bench_label_writes.py --help``.

Figures (2026-12-05, the shared 2-core machine under other engineers' load, 2,000-segment slide, seconds per PUT,
new / changed):

| labels per PUT | as shipped (issue) | compound unique index seek | + insert_many | + id match, array facts |
|---:|---:|---:|---:|---:|
| 25 | 0.6-12 (paint) | 0.35 / 0.26 | 0.17 / 0.23 | 0.20 / 0.28 |
| 200 | timed out (paint, 150+) | 3.01 / 5.70 | 1.58 / 3.17 | 1.60 / 3.14 |
| 1,000 | ~170 (1,085 labels) | 50.6 / 48.3 | 12.2 / 58.4 | 8.85 / 23.65 |

(The last column ran beside the product-loop benchmark on the same two cores.) Changing existing labels is still
the slow write: each conditional update makes mongoeco's planner scan the collection once per field of its filter
and type it checks (its per-collection cache of such facts is cleared on every write; ``mongo_wire`` keeps only the
unique-index checks' "no array here" facts across writes), so a change still costs a fraction of a millisecond per
stored label of the collection. A real MongoDB, as a DSA runs, has none of these costs.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from bench_latency import CATEGORIES, benchmark_stack, make_project  # noqa: E402
from measure import timed  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', type=Path, default=ROOT / 'bench-output' / 'label-writes-stack')
    parser.add_argument('--port', type=int, default=0, help='0: a free port')
    parser.add_argument('--keep', action='store_true', help='leave the stack running')
    parser.add_argument('--segments', type=int, default=2000)
    parser.add_argument('--sizes', type=int, nargs='+', default=[25, 200, 1000])
    return parser.parse_args(argv)


def write(client, base: str, item: str, segments: range, shift: int) -> tuple[float, dict]:
    """PUT labels of ``segments``, category shifted by ``shift``; returns seconds and the answer."""
    labels = [{'item': item, 'segment': s, 'category': CATEGORIES[(s + shift) % len(CATEGORIES)]['name']}
              for s in segments]
    return timed(client.put, f'{base}/labels', json={'labels': labels, 'view': 'bulk'})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sum(args.sizes) > args.segments:
        raise SystemExit('--segments must cover the sum of --sizes')
    rows = []
    with benchmark_stack(args.data, args.port, args.keep) as (_, client, data_dir, slide):
        folder, item = make_project(client, args.segments, data_dir, slide)
        base = f'histomics_label/project/{folder}'
        start = 1
        for size in args.sizes:
            segments = range(start, start + size)
            start += size
            new, created = write(client, base, item, segments, 0)
            again, changed = write(client, base, item, segments, 1)
            if created['labeled'] != size or changed['changed'] != size:
                raise RuntimeError(f'{size} labels: answers {created} and {changed}')
            rows.append((size, new, again))
            print(f'  {size:5,} labels: new {new:7.2f} s, changed {again:7.2f} s', flush=True)
        stored = client.get(f'{base}/labels', parameters={'limit': args.segments})
        if len(stored) != sum(args.sizes):
            raise RuntimeError(f'{len(stored)} labels stored, {sum(args.sizes)} sent')
    print(f'\n{datetime.date.today()}, {os.cpu_count()} CPUs, {platform.machine()}, Python '
          f'{platform.python_version()}\n| labels per PUT | new (s) | changed (s) |\n|---:|---:|---:|')
    for size, new, again in rows:
        print(f'| {size:,} | {new:.2f} | {again:.2f} |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
