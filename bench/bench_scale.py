"""A 50-slide, 1 M-segment project with 8 concurrent labelers: the live server's peak RSS and the p95 latency of
suggestions (every registered acquisition function), /similar, paint and label writes, from one run.

One run starts the local live stack (``histomics_label.devtools.stack``, in ``bench-output/scale-stack``) and makes a
project of ``--slides`` slides (each the sample slide's file uploaded as its own large-image item) whose stores are
written directly into the server's data folder with the store API: ``--segments`` segments in all, square cells of
8 pixels on a grid, ``--dim``-d embeddings in three clusters imported as the project's features (the ``imported``
extractor, so any width is current; 1280-d at 1 M segments would be 5 GB of store), 10 labels per category and one
round trained through ``POST .../train?wait=true`` (which stores the project's function's ranking, those of the
functions that score segments alone and the retrieval index), then the ranking of the other joint functions that the
round queues after it (``jobs.rankings``) awaited.

Then, measured: ``--labelers`` users (each its own login, WRITE) run in threads for the whole phase, each writing
labels (``PUT .../labels``, 1–3 segments of a random slide) and painting (``POST .../labels/paint``, a short stroke
of radius 8) in turn, ``--pace`` seconds apart (a labeler's pause between two answers; 0 writes as fast as the
server answers, which measures the server's queue, not a labeler's wait), while ``--readers`` reader threads (one
READ user) query: for each registered acquisition function the admin makes it the project's certainty, then each
reader sends ``--requests`` times ``GET .../suggestions?limit=8`` and ``GET .../similar`` (3 examples of one slide,
20 answers). No round runs in that phase (``retrainEvery`` 0): a round's memory is the round's (docs/rest.md),
reported apart as the setup's peak.

Peak RSS is the Girder process' ``VmHWM`` (``/proc/<pid>/status``), reset through ``/proc/<pid>/clear_refs`` before
each part, so the setup's round and the measured phase each have their own peak.

The peer, measured in the same run (``--no-peer`` skips it): each function ranked on request, as every GET did
before the rankings were stored, i.e. the request after the project's rankings folder is deleted: its time and the
server's peak RSS during it, against the served p95 and the phase's peak.

The lower bound of the round, measured in this process after the run: a linear model's scores over every
segment's embedding (one ``--dim`` × 3 matrix multiply) and a top-k (``bench_selection.lower_bound``), against
the first round's seconds per million segments (which also reads every store, fits the model and stores the
rankings of the project's function and of those that score segments alone, and the retrieval index).

``--report DIR`` writes the benchmarks page's section (``bench/report.py``): ``DIR/cohort.md``, ``.json`` and
``.goals.json``, the goal being that every acquisition function is served, with no failed request, while the
labelers write.

``python bench/bench_scale.py [--quick] [--slides 50] [--segments 1000000] [--json out.json] [--report DIR]``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))

from bench_latency import benchmark_stack, upload_image  # noqa: E402
from bench_selection import lower_bound  # noqa: E402
from measure import best_of  # noqa: E402
from report import Goal, publish, table  # noqa: E402

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'necrosis', 'color': '#4363d8'}]
CELL = 8
PASSWORD = 'bench-scale-password'


def truth(segment: int) -> int:
    """The category index a synthetic segment's embedding was drawn from (its cluster)."""
    return (segment * 7919) % len(CATEGORIES)


def synthetic_store(path: Path, n: int, dim: int, seed: int) -> int:
    """A store of ``n`` square segments of ``CELL`` pixels on a grid with clustered ``dim``-d imported embeddings;
    returns the raster's side in pixels."""
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.segments import SegmentTable

    side = int(np.ceil(np.sqrt(n)))
    pixels = side * CELL
    ids = np.arange(1, side * side + 1, dtype=np.uint32).reshape(side, side)
    ids[ids > n] = 0
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(scale=3, size=(len(CATEGORIES), dim)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    with SlideStore.create(path, SlideInfo(str(path), pixels, pixels, 20.0, 20.0, 1.0, pixels, pixels),
                           {'source': 'synthetic', 'segments': n}) as writer:
        writer.create_label_raster(pixels, pixels)[:] = np.kron(ids, np.ones((CELL, CELL), np.uint32))
        index = np.arange(n)
        x0, y0 = (index % side) * CELL, (index // side) * CELL
        writer.write_segments(SegmentTable(bbox=np.stack([x0, y0, x0 + CELL, y0 + CELL], 1).astype(np.int64),
                                           centroid=np.stack([x0, y0], 1) + CELL / 2.0,
                                           area=np.full(n, CELL * CELL, np.int64)))
        features = writer.create_features('imported', n, dim, {'name': 'imported'})
        for start in range(0, n, 65_536):
            rows = index[start:start + 65_536]
            features[start:start + len(rows)] = (centres[truth(rows + 1)]
                                                 + rng.normal(size=(len(rows), dim)).astype(np.float32))
    return pixels


class Memory:
    """The Girder process' resident memory, from ``/proc``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _field(self, name: str) -> int:
        for line in Path(f'/proc/{self.pid}/status').read_text().splitlines():
            if line.startswith(f'{name}:'):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f'no {name} for process {self.pid}')

    def rss(self) -> int:
        return self._field('VmRSS')

    def peak(self) -> int:
        return self._field('VmHWM')

    def reset_peak(self) -> None:
        """Start a new peak at the current RSS (Linux: writing 5 to clear_refs resets VmHWM)."""
        Path(f'/proc/{self.pid}/clear_refs').write_text('5')


def make_project(client, args, data_dir: Path, slide: Path) -> dict:
    """The project folder, its slides with synthetic stores and its users."""
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    folder = client.createFolder(private['_id'], f'scale-{args.slides}-{args.segments}-{int(time.time())}')
    base = f'histomics_label/project/{folder["_id"]}'
    client.put(base, json={'categories': CATEGORIES, 'extractor': 'imported', 'retrainEvery': 0, 'batchSize': 8})
    per_slide = args.segments // args.slides
    slides, started = [], time.perf_counter()
    for index in range(args.slides):
        item = upload_image(client, folder['_id'], slide, filename=f'slide{index:02d}.svs')
        side = synthetic_store(data_dir / folder['_id'] / f'{item["_id"]}.h5', per_slide, args.dim, index)
        slides.append({'item': item['_id'], 'segments': per_slide, 'side': side})
    print(f'{args.slides} slides of {per_slide:,} segments ({args.dim}-d) in {time.perf_counter() - started:.0f} s',
          flush=True)
    access = client.get(f'folder/{folder["_id"]}/access')
    users = {}
    for login, level in [(f'labeler{k}', 1) for k in range(args.labelers)] + [('reader', 0)]:
        login = f'{login}-{folder["_id"][-6:]}'
        created = client.post('user', parameters={'login': login, 'password': PASSWORD, 'firstName': 'B',
                                                  'lastName': 'Scale', 'email': f'{login}@example.com'})
        access['users'].append({'id': created['_id'], 'level': level})
        users[login] = level
    client.put(f'folder/{folder["_id"]}/access', parameters={'access': json.dumps(access)})
    return {'folder': folder['_id'], 'base': base, 'slides': slides, 'users': users}


def login(api_url: str, user: str):
    import girder_client

    client = girder_client.GirderClient(apiUrl=api_url)
    client.authenticate(user, PASSWORD)
    return client


def timed_call(times: list, errors: list, call, *args, **kwargs) -> None:
    started = time.perf_counter()
    try:
        call(*args, **kwargs)
        times.append(time.perf_counter() - started)
    except Exception as exc:  # a failed request is counted and reported, not timed
        errors.append(f'{type(exc).__name__}: {str(exc)[:160]}')


def labeler(client, project: dict, seed: int, pace: float, stop: threading.Event, record: dict) -> None:
    """Label 1–3 segments of a random slide, then paint a short stroke on one, ``pace`` seconds apart, until
    ``stop``."""
    rng = random.Random(seed)
    base = project['base']
    while not stop.wait(pace * rng.uniform(0.5, 1.5)):
        slide = rng.choice(project['slides'])
        segments = rng.sample(range(1, slide['segments'] + 1), rng.randint(1, 3))
        labels = [{'item': slide['item'], 'segment': s, 'category': CATEGORIES[truth(s)]['name']} for s in segments]
        timed_call(record['labels'], record['errors'], client.put, f'{base}/labels',
                   json={'labels': labels, 'view': 'guided'})
        if stop.wait(pace * rng.uniform(0.5, 1.5)):
            break
        slide = rng.choice(project['slides'])
        x, y = rng.uniform(16, slide['side'] - 80), rng.uniform(16, slide['side'] - 80)
        body = {'item': slide['item'], 'points': [[round(x), round(y)], [round(x + 60), round(y + 40)]],
                'radius': 8, 'category': rng.choice(CATEGORIES)['name']}
        timed_call(record['paint'], record['errors'], client.post, f'{base}/labels/paint', json=body)


def reader(client, project: dict, seed: int, requests: int, record: dict, function: str) -> None:
    """``requests`` times: 8 suggestions, then 20 segments like 3 examples of one slide."""
    rng = random.Random(seed)
    base = project['base']
    for _ in range(requests):
        timed_call(record['suggestions'].setdefault(function, []), record['errors'], client.get,
                   f'{base}/suggestions', parameters={'limit': 8})
        slide = rng.choice(project['slides'])
        first = rng.randint(1, slide['segments'] - 20)
        examples = [s for s in range(first, first + 20) if truth(s) == truth(first)][:3]
        timed_call(record['similar'], record['errors'], client.get, f'{base}/similar',
                   parameters={'item': slide['item'], 'segments': json.dumps(examples), 'limit': 20})


def p95_ms(times: list[float]) -> float | None:
    return float(np.percentile(np.array(times) * 1000, 95)) if times else None


def run(args) -> dict:
    from histomics_label.core.acquisition import acquisition_functions

    functions = acquisition_functions.names()
    with benchmark_stack(args.data, args.port, args.keep) as (info, client, data_dir, slide):
        memory = Memory(info.pids['girder'])
        project = make_project(client, args, data_dir, slide)
        base = project['base']
        seeds = [{'item': s['item'], 'segment': k, 'category': CATEGORIES[truth(k)]['name']}
                 for s in project['slides'][:3] for k in range(1, 11)]
        client.put(f'{base}/labels', json={'labels': seeds, 'view': 'guided'})
        memory.reset_peak()
        started = time.perf_counter()
        trained = client.post(f'{base}/train', parameters={'wait': 'true'})
        if trained.get('round') is None:
            raise RuntimeError(f'the first round failed: {trained}')
        figures = {'slides': args.slides, 'segments': args.segments, 'dim': args.dim, 'labelers': args.labelers,
                   'readers': args.readers, 'requests': args.requests, 'pace': args.pace, 'functions': functions,
                   'round_s': time.perf_counter() - started, 'round_peak_rss': memory.peak()}
        print(f'first round in {figures["round_s"]:.1f} s, server peak RSS {figures["round_peak_rss"] / 2**20:.0f} '
              'MiB', flush=True)
        started = time.perf_counter()
        while any(entry['kind'] == 'rankings' for entry in client.get(f'{base}/work')['work']):
            time.sleep(0.5)
        figures['rankings_s'] = time.perf_counter() - started
        print(f'the joint functions ranked after it in {figures["rankings_s"]:.1f} s', flush=True)
        record = {'labels': [], 'paint': [], 'suggestions': {}, 'similar': [], 'errors': []}
        stop = threading.Event()
        clients = {user: login(info.api_url, user) for user in project['users']}
        labelers = [threading.Thread(target=labeler, args=(clients[user], project, k, args.pace, stop, record))
                    for k, (user, level) in enumerate(project['users'].items()) if level == 1]
        reader_login = next(user for user, level in project['users'].items() if level == 0)
        reading = [login(info.api_url, reader_login) for _ in range(args.readers)]  # a session per thread
        figures['phase_start_rss'] = memory.rss()
        memory.reset_peak()
        started = time.perf_counter()
        for thread in labelers:
            thread.start()
        try:
            for function in functions:
                failed_before = len(record['errors'])
                client.put(base, json={'certainty': function})
                readers = [threading.Thread(target=reader, args=(reading[k], project, 100 + k, args.requests, record,
                                                                 function)) for k in range(args.readers)]
                for thread in readers:
                    thread.start()
                for thread in readers:
                    thread.join()
                p95 = p95_ms(record['suggestions'][function])
                failed = record['errors'][failed_before:]
                print(f'  {function}: suggestions p95 ' + (f'{p95:.0f} ms' if p95 is not None else 'none answered')
                      + (f'; {len(failed)} failed requests, e.g. {failed[0]}' if failed else ''), flush=True)
        finally:
            stop.set()
            for thread in labelers:
                thread.join()
        figures.update(phase_s=time.perf_counter() - started, phase_peak_rss=memory.peak(),
                       phase_end_rss=memory.rss(), errors=record['errors'][:20], error_count=len(record['errors']),
                       latency={'labels': summary(record['labels']), 'paint': summary(record['paint']),
                                'similar': summary(record['similar']),
                                'suggestions': {f: summary(t) for f, t in record['suggestions'].items()}})
        figures['peer'] = {} if args.no_peer else on_request(client, base, functions,
                                                             data_dir / project['folder'] / 'rankings', memory)
    return figures


def on_request(client, base: str, functions: list[str], rankings: Path, memory: Memory) -> dict:
    """Each function ranked on request (its stored rankings deleted first): seconds and the server's peak RSS."""
    peer = {}
    for function in functions:
        client.put(base, json={'certainty': function})
        shutil.rmtree(rankings, ignore_errors=True)
        memory.reset_peak()
        started = time.perf_counter()
        client.get(f'{base}/suggestions', parameters={'limit': 8})
        peer[function] = {'s': time.perf_counter() - started, 'peak_rss': memory.peak()}
        print(f'  peer, {function} ranked on request: {peer[function]["s"]:.1f} s, peak RSS '
              f'{peer[function]["peak_rss"] / 2**20:.0f} MiB', flush=True)
    return peer


def summary(times: list[float]) -> dict:
    return {'n': len(times), 'p50_ms': float(np.percentile(np.array(times) * 1000, 50)) if times else None,
            'p95_ms': p95_ms(times), 'mean_ms': statistics.fmean(times) * 1000 if times else None}


def bound_seconds(segments: int, dim: int, classes: int, batch: int) -> float:
    """The lower bound's seconds (best of 3) over ``segments`` seeded ``dim``-d float32 embeddings."""
    embeddings = np.random.default_rng(0).standard_normal((segments, dim), dtype=np.float32)
    return best_of(3, lower_bound, embeddings, classes, batch, 0)[0]


def request_rows(figures: dict) -> list[tuple[str, dict, dict | None]]:
    """(request, its latency summary, its on-request peer or None) for every measured route."""
    latency = figures['latency']
    rows = [(f'GET suggestions, {f}', s, figures['peer'].get(f)) for f, s in latency['suggestions'].items()]
    return rows + [('GET similar', latency['similar'], None), ('POST labels/paint', latency['paint'], None),
                   ('PUT labels', latency['labels'], None)]


def round_text(figures: dict) -> str:
    """The first round against the lower bound, per million segments."""
    millions = figures['segments'] / 1e6
    after = (f"; the other joint functions ranked {figures['rankings_s']:.1f} s after it"
             if 'rankings_s' in figures else '')
    return (f"first round {figures['round_s']:.1f} s for {figures['segments']:,} segments "
            f"({figures['round_s'] / millions:.1f} s per million), lower bound {figures['bound_s']:.2f} s "
            f"({figures['bound_s'] / millions:.2f} s per million): {figures['round_s'] / figures['bound_s']:.0f}×"
            f"{after}")


def goals(figures: dict) -> list[Goal]:
    """Every function served while the labelers write, no request failing."""
    served = {f: s for f, s in figures['latency']['suggestions'].items() if s['n']}
    functions = figures['functions']
    worst = max(served.items(), key=lambda item: item[1]['p95_ms'], default=None)
    measured = (f"{len(served)} of {len(functions)} functions served at {figures['segments']:,} segments on "
                f"{figures['slides']} slides with {figures['labelers']} labelers writing every {figures['pace']:g} s; "
                f"{figures['error_count']} "
                'failed requests' + (f"; slowest p95 {worst[0]} {worst[1]['p95_ms'] / 1000:.1f} s" if worst else ''))
    met = len(served) == len(functions) and figures['error_count'] == 0
    note = '' if met else '; '.join([f'not served: {f}' for f in functions if f not in served]
                                    + (figures['errors'][:3] if figures['error_count'] else []))
    return [Goal('every acquisition function is served while labelers write, no request failing', measured, met,
                 note)]


def markdown(figures: dict) -> str:
    """The benchmarks page's section."""
    mib = 2**20
    rows = [[name, stats['n'], f"{stats['p50_ms']:.0f}" if stats['n'] else '-',
             f"{stats['p95_ms']:.0f}" if stats['n'] else '-', f"{peer['s']:.1f}" if peer else '-',
             f"{peer['peak_rss'] / mib:.0f}" if peer else '-'] for name, stats, peer in request_rows(figures)]
    title = f"{figures['slides']} slides, {figures['segments']:,} segments, {figures['labelers']} labelers"
    peer = ('The peer: each function ranked on request (its stored ranking deleted first), as every request did '
            'before rankings were stored, on the same server.' if figures['peer'] else
            'No peer in this run (`--no-peer`): ranking each function on request is left to the full tier.')
    return f"""## A project at scale: {title}

`bench/bench_scale.py`: the live stack with a project of {figures['slides']} slides and {figures['segments']:,}
synthetic segments ({figures['dim']}-d imported embeddings in three clusters); one round trained through the REST
API, then {figures['labelers']} labelers write labels and paint strokes for the whole phase, one every
{figures['pace']:g} s each on average, while
{figures['readers']} readers ask for suggestions (each acquisition function in turn, served from the round's stored
ranking) and for more-like-this. Measured over {figures['phase_s']:.0f} s. {peer}

Server RSS: first round peak {figures['round_peak_rss'] / mib:,.0f} MiB; concurrent phase start
{figures['phase_start_rss'] / mib:,.0f} MiB, peak {figures['phase_peak_rss'] / mib:,.0f} MiB, end
{figures['phase_end_rss'] / mib:,.0f} MiB; {figures['error_count']} failed requests. The round: {round_text(figures)}.

{table(['request', 'n', 'p50 ms', 'p95 ms', 'on request s', 'on request peak MiB'], rows, 'lrrrrr')}

The database is mongoeco here (MongoDB's wire protocol over SQLite in one Python process, `shared/STACK.md`): it
serialises every label write and lookup, so under the labelers the latencies are mostly its queue; the memory
figures do not depend on it.
"""


def report(figures: dict) -> str:
    mib = 2**20
    lines = [f'{figures["slides"]} slides, {figures["segments"]:,} segments ({figures["dim"]}-d), '
             f'{figures["labelers"]} labelers + {figures["readers"]} readers, {figures["phase_s"]:.0f} s measured',
             f'server RSS: first round peak {figures["round_peak_rss"] / mib:.0f} MiB; concurrent phase start '
             f'{figures["phase_start_rss"] / mib:.0f} MiB, peak {figures["phase_peak_rss"] / mib:.0f} MiB, end '
             f'{figures["phase_end_rss"] / mib:.0f} MiB; {figures["error_count"]} failed requests', '',
             f'{"request":<34}{"n":>6}{"p50 ms":>9}{"p95 ms":>9}{"on request s":>14}{"on request peak MiB":>21}',
             '-' * 93]
    for name, stats, peer in request_rows(figures):
        p50 = f'{stats["p50_ms"]:>9.0f}{stats["p95_ms"]:>9.0f}' if stats['n'] else f'{"-":>9}{"-":>9}'
        ours = (f'{peer["s"]:>14.1f}{peer["peak_rss"] / mib:>21.0f}' if peer else f'{"-":>14}{"-":>21}')
        lines.append(f'{name:<34}{stats["n"]:>6}{p50}{ours}')
    lines.append('peer: suggestions ranked on request (the rankings folder deleted before one GET), same server and '
                 'project; /similar, paint and label writes have no peer in this run')
    lines.append(round_text(figures))
    return '\n'.join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--slides', type=int, help='slides in the project (default 50; --quick 10)')
    parser.add_argument('--segments', type=int, help='segments in all (default 1,000,000; --quick 100,000)')
    parser.add_argument('--dim', type=int, default=64, help='embedding width (default 64)')
    parser.add_argument('--labelers', type=int, default=8)
    parser.add_argument('--readers', type=int, default=2)
    parser.add_argument('--pace', type=float, default=2.0,
                        help="seconds between a labeler's writes, ±50 %% (default 2; 0: as fast as answered)")
    parser.add_argument('--requests', type=int, help='suggestions + similar per reader and function (default 10; '
                                                     '--quick 4)')
    parser.add_argument('--quick', action='store_true', help='10 slides, 100,000 segments, 4 requests')
    parser.add_argument('--no-peer', action='store_true', help='skip ranking on request')
    parser.add_argument('--data', type=Path, default=ROOT / 'bench-output' / 'scale-stack',
                        help='data folder of the live stack this run starts')
    parser.add_argument('--port', type=int, default=0, help='Girder port of that stack (default: a free one)')
    parser.add_argument('--keep', action='store_true', help='leave the stack running afterwards')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    args.slides = args.slides or (10 if args.quick else 50)
    args.segments = args.segments or (100_000 if args.quick else 1_000_000)
    args.requests = args.requests or (4 if args.quick else 10)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run(args)
    figures['bound_s'] = bound_seconds(args.segments, args.dim, len(CATEGORIES), 8)
    print(f'\n{datetime.date.today()}, {os.cpu_count()} CPUs, {platform.machine()}, Python '
          f'{platform.python_version()}\n{report(figures)}')
    verdicts = goals(figures)
    publish(figures, args.json, args.report, 'cohort', lambda directory: markdown(figures), verdicts)
    return 0


if __name__ == '__main__':
    sys.exit(main())
