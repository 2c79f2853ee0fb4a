"""A slide's features in one worker task against the same features in parts over two workers, on the live stack.

The path an admin runs: the local stack with two girder_worker processes (separate working folders, sharing only
Redis and Girder's API) and the ``girder_worker`` executor; a one-slide project's "Make segments"
(``POST .../segments``) timed from the request to its job's end, twice on the same slide in two projects:

* ``one task``: ``feature_rows_per_task`` 0, so one worker makes the segments and every feature;
* ``parts``: ``feature_rows_per_task`` set so the slide's features come in ``--parts`` parts, which both workers
  take (``jobs.remote_features``).

Both stores must hold the same features (the largest difference is printed: batches differ, so the float sums may
differ in the last bits). The figure is the ratio of the two wall times on this machine: with both workers on one
machine the parts share its cores, so it shows the cost of splitting (the store travels to each part, the parts come
back and are put together) more than the gain, which comes with workers on separate machines.

``--quick`` uses the small H&E sample at 10x (about a thousand segments); ``--report DIR`` writes the benchmarks
page's section (``bench/report.py``). Run ``python bench/bench_feature_parts.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_latency import upload_image  # noqa: E402
from report import Goal, publish, table  # noqa: E402

from histomics_label.core.io.store import SlideStore  # noqa: E402
from histomics_label.devtools import sample_data  # noqa: E402
from histomics_label.devtools.stack.jobs import wait_for_job  # noqa: E402

NAME = 'feature_parts'
ROWS = 'histomics_label.feature_rows_per_task'


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--slide', type=Path, help='the slide (default: the sample pyramid, 8000² px or more; '
                                                   '--quick: the small H&E sample)')
    parser.add_argument('--magnification', type=float, help='default 5; --quick 10')
    parser.add_argument('--radius', type=int, default=12)
    parser.add_argument('--extractor', default='efficientnet_lite0')
    parser.add_argument('--parts', type=int, default=4)
    parser.add_argument('--data', type=Path, help='the stack\'s data folder (default: a temporary one)')
    parser.add_argument('--quick', action='store_true', help='the small sample at 10x: about a thousand segments')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    return parser.parse_args(argv)


def make_segments(client, folder_name: str, slide: Path, config: dict) -> tuple[float, dict, dict]:
    """A project holding ``slide``, made through the REST API; the seconds its "Make segments" took, its job, and
    its item."""
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    folder = client.createFolder(private['_id'], folder_name)
    item = upload_image(client, folder['_id'], slide)
    base = f'histomics_label/project/{folder["_id"]}'
    client.put(base, json=config)
    began = time.monotonic()
    job = wait_for_job(client, client.post(f'{base}/segments')[0]['job'], timeout=7200)
    seconds = time.monotonic() - began
    if job['status'] != 3:
        raise RuntimeError(f'The segment job of {folder_name} failed: {"".join(job.get("log") or [])[-2000:]}')
    return seconds, {**folder, 'item': item}, job


def features(client, project: dict, extractor: str) -> np.ndarray:
    data_dir = Path(client.get('system/setting', parameters={'key': 'histomics_label.data_dir'}))
    with SlideStore(data_dir / project['_id'] / f'{project["item"]["_id"]}.h5') as store:
        return store.features(extractor)


def main(argv: list[str] | None = None) -> int:
    from histomics_label.devtools.stack.launcher import Stack, _free_port

    args = parse_args(argv)
    slide = args.slide or Path(sample_data.cmu_small_region() if args.quick else sample_data.sample_slide())
    magnification = args.magnification or (10.0 if args.quick else 5.0)
    config = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}],
              'magnification': magnification, 'radius': args.radius, 'feature': 'vector',
              'extractor': args.extractor, 'model': 'linear', 'retrainEvery': 0}
    with tempfile.TemporaryDirectory(prefix='bench-parts-') as scratch:
        stack = Stack(args.data or Path(scratch) / 'stack', port=_free_port(), workers=2)
        info = stack.start()
        try:
            client = info.client()
            client.put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor',
                                                     'value': 'girder_worker'})
            client.put('system/setting', parameters={'key': ROWS, 'value': 0})
            whole_s, whole, _ = make_segments(client, 'one task', slide, config)
            reference = features(client, whole, args.extractor)
            rows = -(-len(reference) // args.parts)
            client.put('system/setting', parameters={'key': ROWS, 'value': rows})
            parts_s, split, job = make_segments(client, 'in parts', slide, config)
            split_features = features(client, split, args.extractor)
            parts = client.get('job', parameters={'parentId': job['_id'],
                                                  'types': '["histomics_label.features.worker"]'})
            logs = {name: info.logs[name].read_text(errors='replace') for name in ('worker-1', 'worker-2')}
            ran = {name: sum(f'[{part["celeryTaskId"]}] received' in log for part in parts)
                   for name, log in logs.items()}
        finally:
            stack.stop()
    if split_features.shape != reference.shape:
        raise RuntimeError(f'The stores hold features of shapes {split_features.shape} and {reference.shape}')
    figures = {'slide': slide.name, 'magnification': magnification, 'radius': args.radius,
               'extractor': args.extractor, 'segments': len(reference), 'cpus': os.cpu_count(),
               'one_task_s': whole_s, 'parts': len(parts), 'rows_per_part': rows, 'parts_s': parts_s,
               'parts_by_worker': ran, 'ratio': parts_s / whole_s,
               'largest_difference': float(np.abs(split_features - reference).max())}
    text = section(figures)
    print(f'{time.strftime("%Y-%m-%d")}, {platform.machine()}, Python {platform.python_version()}\n{text}')
    goals = [Goal('a slide\'s features made in parts over two workers equal those of one task',
                  f'largest difference {figures["largest_difference"]:.1e} over {len(reference)} segments',
                  figures['largest_difference'] < 1e-3)]
    publish(figures, args.json, args.report, NAME, lambda directory: text, goals)
    return 0 if goals[0].met else 1


def section(figures: dict) -> str:
    """The benchmarks page's section: the two runs and what the ratio says."""
    rows = [['one task', 1, f'{figures["one_task_s"]:.1f}', '1.00'],
            [f'{figures["parts"]} parts of {figures["rows_per_part"]} segments '
             f'(worker-1 ran {figures["parts_by_worker"]["worker-1"]}, worker-2 '
             f'{figures["parts_by_worker"]["worker-2"]})', figures['parts'], f'{figures["parts_s"]:.1f}',
             f'{figures["ratio"]:.2f}']]
    return (f'## A slide\'s features in parts over two workers\n\n`bench/bench_feature_parts.py`: '
            f'"Make segments" of one slide ({figures["slide"]} at {figures["magnification"]:g}x, radius '
            f'{figures["radius"]}: {figures["segments"]} segments, {figures["extractor"]} features) on the live '
            f'stack with two girder_worker workers on this machine ({figures["cpus"]} CPUs), from the request to '
            f'the job\'s end:\n\n'
            + table(['features made by', 'tasks', 'seconds', 'against one task'], rows)
            + f'\n\nLargest difference between the two stores\' features: {figures["largest_difference"]:.1e}. '
              'Both workers share this machine\'s cores, so the ratio shows what splitting costs (the store '
              'travels to each part, the parts come back and are put together) more than what it gains, which '
              'comes with workers on separate machines.\n')


if __name__ == '__main__':
    raise SystemExit(main())
