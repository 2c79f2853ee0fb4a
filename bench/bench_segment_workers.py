"""A multi-slide project's "Make segments" on the live stack with one girder_worker worker, then with two.

The path an admin runs: the local stack (``histomics_label.devtools.stack``) with ``girder_worker`` as the heavy-work
executor and N worker processes (each with its own working folder, sharing only Redis and Girder's API, Celery
concurrency 1), a project of ``--slides`` slides, and ``POST .../segments`` (one job per slide), timed from the
request to the last slide's job ending. The same project is made twice, on a stack with one worker and then on one
with two, and the figure is the ratio of the wall times. Every slide's store must come out the same from both runs
(the goal): same segment count and the same features.

The slides are copies of one slide (``--slide``, default the sample pyramid), so every job does the same work and the
ratio is about the workers, not about which slide went where; the project's settings are the product's defaults but
``--magnification``. With both workers on one machine they share its cores (each job's segmentation already runs a
dask cluster over them), so the ratio shows what a second worker gains on the same cores: the serial parts of a job
(start-up, the store's way back through Girder, publishing the segment image) overlapped with another's
segmentation. Separate machines would add their cores too.

``--report DIR`` writes the benchmarks page's section (``bench/report.py``). Run
``python bench/bench_segment_workers.py --help``; see bench/README.md.
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

NAME = 'segment_workers'
SUCCESS = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--slides', type=int, default=4, help='slides in the project (default 4)')
    parser.add_argument('--slide', type=Path, help='the slide copied into the project (default: the sample pyramid)')
    parser.add_argument('--magnification', type=float, default=10.0, help='analysis magnification (default 10)')
    parser.add_argument('--quick', action='store_true', help='2 slides')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    if args.quick:
        args.slides = 2
    if args.slides < 2:
        parser.error('--slides must be at least 2: one slide cannot use a second worker')
    return args


def segment_project(workers: int, slide: Path, slides: int, magnification: float, scratch: Path) -> dict:
    """Start a stack with ``workers`` workers, make a project of ``slides`` copies of ``slide`` and its segments;
    the seconds from the request to the last job's end, which worker ran each slide, and each slide's store."""
    from histomics_label.devtools.stack.launcher import Stack, _free_port

    stack = Stack(scratch / f'stack-{workers}', port=_free_port(), workers=workers)
    info = stack.start()
    try:
        client = info.client()
        client.put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor',
                                                 'value': 'girder_worker'})
        me = client.get('user/me')
        private = next(client.listFolder(me['_id'], 'user', name='Private'))
        folder = client.createFolder(private['_id'], f'{slides} slides, {workers} workers')
        for index in range(slides):
            upload_image(client, folder['_id'], slide, filename=f'slide{index}{slide.suffix}')
        base = f'histomics_label/project/{folder["_id"]}'
        client.put(base, json={'categories': [{'name': 'tumor', 'color': '#e6194b'},
                                              {'name': 'stroma', 'color': '#3cb44b'}],
                               'magnification': magnification, 'retrainEvery': 0})
        began = time.monotonic()
        queued = client.post(f'{base}/segments')
        jobs = [wait_for_job(client, entry['job'], timeout=3600) for entry in queued]
        seconds = time.monotonic() - began
        failed = [job for job in jobs if job['status'] != SUCCESS]
        if failed:
            raise RuntimeError(f'{len(failed)} segment jobs failed: {"".join(failed[0].get("log") or [])[-2000:]}')
        logs = {name: info.logs[name].read_text(errors='replace') for name in info.logs if name.startswith('worker')}
        ran = {name: 0 for name in logs}
        for job in jobs:
            for task in client.get('job', parameters={'parentId': job['_id']}):
                for name, log in logs.items():
                    ran[name] += bool(task.get('celeryTaskId')) and f'[{task["celeryTaskId"]}] received' in log
        data_dir = Path(client.get('system/setting', parameters={'key': 'histomics_label.data_dir'}))
        stores = {}
        for entry in queued:
            with SlideStore(data_dir / folder['_id'] / f'{entry["item"]}.h5') as store:
                extractor = next(iter(store.feature_names()))
                stores[entry['name']] = {'segments': store.n_segments, 'features': store.features(extractor)}
    finally:
        stack.stop()
    return {'workers': workers, 'seconds': seconds, 'ran': ran, 'stores': stores}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    slide = args.slide or Path(sample_data.sample_slide())
    with tempfile.TemporaryDirectory(prefix='bench-segment-workers-') as scratch:
        runs = [segment_project(workers, slide, args.slides, args.magnification, Path(scratch)) for workers in (1, 2)]
    one, two = runs
    differences = [float(np.abs(one['stores'][name]['features'] - two['stores'][name]['features']).max())
                   if one['stores'][name]['features'].shape == two['stores'][name]['features'].shape else float('inf')
                   for name in one['stores']]
    same_counts = all(one['stores'][name]['segments'] == two['stores'][name]['segments'] for name in one['stores'])
    figures = {'slide': slide.name, 'slides': args.slides, 'magnification': args.magnification,
               'cpus': os.cpu_count(), 'runs': [{k: v for k, v in run.items() if k != 'stores'} for run in runs],
               'segments': [store['segments'] for store in one['stores'].values()],
               'ratio': two['seconds'] / one['seconds'], 'largest_difference': max(differences),
               'same_counts': same_counts}
    text = section(figures)
    print(f'{time.strftime("%Y-%m-%d")}, {platform.machine()}, Python {platform.python_version()}\n{text}')
    met = same_counts and figures['largest_difference'] < 1e-3
    goals = [Goal(f'a {args.slides}-slide project\'s segments made by two workers equal those made by one',
                  f'segment counts {"equal" if same_counts else "differ"}; largest feature difference '
                  f'{figures["largest_difference"]:.1e}', met)]
    publish(figures, args.json, args.report, NAME, lambda directory: text, goals)
    return 0 if met else 1


def section(figures: dict) -> str:
    """The benchmarks page's section: both runs and what the ratio says."""
    rows = [[run['workers'], ', '.join(f'{name} {count}' for name, count in sorted(run['ran'].items())),
             f'{run["seconds"]:.1f}', f'{run["seconds"] / figures["runs"][0]["seconds"]:.2f}']
            for run in figures['runs']]
    return (f'## A {figures["slides"]}-slide project\'s segments over one and two workers\n\n'
            f'`bench/bench_segment_workers.py`: "Make segments" of a project of {figures["slides"]} copies of '
            f'{figures["slide"]} at {figures["magnification"]:g}x ({figures["segments"][0]} segments each, the '
            'product\'s default settings) on the live stack with the girder_worker executor, from the request to '
            f'the last job\'s end, first with one worker, then (a new stack) with two, on this machine\'s '
            f'{figures["cpus"]} CPUs:\n\n'
            + table(['workers', 'slides each worker ran', 'seconds', 'against one worker'], rows)
            + f'\n\nLargest difference between the two runs\' features: {figures["largest_difference"]:.1e}. Both '
              'workers share this machine\'s cores and each job\'s segmentation already runs over them, so a second '
              'worker gains only what one job leaves idle (start-up, the store\'s way back through Girder, '
              'publishing the segment image); workers on separate machines would add their cores too.\n')


if __name__ == '__main__':
    raise SystemExit(main())
