"""Soak test of issue 15's "Done when" on the live stack, bounded in time: a multi-slide project segmented through
the heavy-work queue, four labelers (WRITE) labeling at once through REST from threads (guided suggestions, relabels
of their own segments, brush dabs), automatic retraining every few labels so that many rounds run, a category
rename and a merge, a re-segmentation of a labeled slide with a new radius followed by its carry-over report and
apply, and a server restart (the database persists). At the end every acknowledged label must be where the test's
own ledger says: same labeler, slide and segment, the category after rename and merge, the segment the carry-over
report names on the re-segmented slide (the report checked against the two rasters here), nothing duplicated; and
the Girder process' memory and open files must be flat.

Scaled down from the issue's 20 slides, 4 labelers and 50 rounds so that it runs in minutes on 2 shared cores:
``SLIDES`` small slides (crops of the real H&E sample), 4 labelers, eight labeling phases of ``STEPS`` steps
each (32 steps per labeler, some 115 labels each) and more after the restart while fewer than ``MIN_ROUNDS`` rounds
ran; rounds are as many as the server trains in that time (a CNN round on patches takes some seconds here).
``HISTOMICS_LABEL_SOAK=full`` runs it at the issue's size instead (20 slides, 20 steps per phase, at least 50
rounds: some 25 minutes here), a run made by hand, not by CI. The labelers pause while the admin renames, merges,
re-segments and restarts the server: a label written during a rename with the old name is a different race, not
this test's.

Flatness: the server's RSS (``VmRSS`` of ``/proc/<pid>/status``) and open descriptors (``/proc/<pid>/fd``) are
read, each time with no round running, after a warm-up and again after two more phases of the same process (the
restart makes a new process, so each process is compared with itself). The warm-up has every kind of work once,
because some costs are one-off steps, not growth: large_image's tile-source cache keeps each opened slide and
segment image open (a few descriptors each, bounded by that cache), and allocators keep the arenas of the first
rounds, rankings and re-segmentation (whose Apply starts a round; until it ends, that slide's suggestions are drawn
at random, never ranked in the Girder process). Tolerance: RSS growth under ``RSS_GROWTH`` (a model's tensors,
an allocator's arenas and caches move by some MB run to run; a leak per round or per request adds up far beyond
that over the rounds in between), descriptors growth under ``FD_GROWTH`` (round files, stores or sockets left open
grow by one per round or slide).
"""

import os
import random
import shutil
import threading
import time
from pathlib import Path

import girder_client
import numpy as np
import pytest
import tifffile
from helpers import carry_over_oracle
from helpers.carry_over_oracle import store_raster
from helpers.crops import write_crop
from helpers.live_stack import add_user, slides_project, store_path

from histomics_label.devtools.stack.jobs import wait_for_job

pytestmark = pytest.mark.live
FULL = os.environ.get('HISTOMICS_LABEL_SOAK') == 'full'
SLIDES = 20 if FULL else 8
LABELERS = 4
STEPS = 20 if FULL else 4
"""Steps per labeler and phase: one suggestion batch labeled, and now and then a relabel or a brush dab."""
MIN_ROUNDS = 50 if FULL else 10
MAX_PHASES = 16
"""Labeling phases after the eighth run until ``MIN_ROUNDS`` rounds ran, up to this many in all: a round takes
as long as training takes, however fast labels come, so the number of rounds follows the time spent labeling."""
PHASE_LIMIT = 300 * STEPS / 4
"""Seconds a labeler's phase may take."""
RSS_GROWTH = 0.25
FD_GROWTH = 20
CONFIG = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
                         {'name': 'necrosis', 'color': '#4363d8'}],
          'magnification': 5, 'radius': 10, 'patchSize': 32, 'feature': 'image', 'model': 'cnn_torch',
          'epochs': 3, 'retrainEvery': 12, 'batchSize': 6, 'auditEvery': 0}
NEW_RADIUS = 14
RENAME = ('stroma', 'connective')
MERGE = ('necrosis', 'tumor')
CROP = 1024
PASSWORD = 'password1'


class Ledger:
    """What the server acknowledged, per labeler: ``{(item, segment): category}``; only its labeler's thread
    writes a labeler's entries, so the threads need no lock."""

    def __init__(self, labelers: list[str]) -> None:
        self.labels: dict[str, dict[tuple[str, int], str]] = {labeler: {} for labeler in labelers}

    def rename(self, old: str, new: str) -> None:
        for own in self.labels.values():
            for key, category in own.items():
                if category == old:
                    own[key] = new

    def all(self) -> dict[tuple[str, str, int], str]:
        return {(labeler, item, segment): category for labeler, own in self.labels.items()
                for (item, segment), category in own.items()}


def labeler_steps(api_url: str, login: str, labeler: str, base: str, items: list[str], categories: list[str],
                  ledger: Ledger, seed: int, errors: list) -> None:
    """One labeler's phase: ``STEPS`` times, label a suggestion batch (as guided), and by the seeded draw relabel one
    of its own segments with another category or dab the brush on a slide; every acknowledged write goes into the
    ledger. A failure is kept in ``errors`` with who and what."""
    rng = random.Random(seed)
    client = girder_client.GirderClient(apiUrl=api_url)
    client.authenticate(login, PASSWORD)
    own = ledger.labels[labeler]
    try:
        for _ in range(STEPS):
            suggested = client.get(f'{base}/suggestions', parameters={'limit': CONFIG['batchSize']})
            batch = {(s['item'], s['segment']): rng.choice(categories) for s in suggested[:rng.randint(2, 5)]}
            if own and rng.random() < 0.4:
                key = rng.choice(sorted(own))
                batch[key] = rng.choice([c for c in categories if c != own[key]])
            if batch:
                client.put(f'{base}/labels', json={'view': 'guided', 'labels': [
                    {'item': item, 'segment': segment, 'category': category}
                    for (item, segment), category in batch.items()]})
                own.update(batch)
            if rng.random() < 0.35:
                item, category = rng.choice(items), rng.choice(categories)
                point = [rng.randint(40, CROP - 40), rng.randint(40, CROP - 40)]
                painted = client.post(f'{base}/labels/paint', json={'item': item, 'points': [point],
                                                                   'radius': rng.choice([0, 24]),
                                                                   'category': category})
                own.update({(item, segment): category for segment in painted['segments']})
    except Exception as error:  # the main thread fails the test with it
        errors.append(f'labeler {login}: {error!r} {getattr(error, "responseText", "")}')


def run_phase(stack, base: str, items: list[str], categories: list[str], labelers: list[dict], ledger: Ledger,
              phase: int) -> None:
    """The labelers label at once for one phase; then the test waits until no round runs or waits."""
    errors: list[str] = []
    api_url = stack.info().api_url
    threads = [threading.Thread(target=labeler_steps, args=(
        api_url, user['login'], user['_id'], base, items, categories, ledger, 1000 * phase + k, errors))
        for k, user in enumerate(labelers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(PHASE_LIMIT)
    assert not any(thread.is_alive() for thread in threads), (f'phase {phase}: a labeler still runs after '
                                                               f'{PHASE_LIMIT:g} s')
    assert errors == [], f'phase {phase}: a labeler\'s request failed: {errors}'
    wait_for_idle_training(stack.client(), base)


def wait_for_idle_training(client, base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f'{base}/rounds')['state']
        if not state.get('running') and not state.get('pending'):
            return
        time.sleep(0.5)
    raise TimeoutError(f'training still runs after {timeout:g} s')


def rounds_so_far(client, base: str) -> int:
    return len(client.get(f'{base}/rounds')['rounds'])


def resources(pid: int) -> tuple[int, int]:
    """The process' resident memory (kB, ``VmRSS``) and its number of open file descriptors."""
    status = Path(f'/proc/{pid}/status').read_text()
    rss = int(next(line for line in status.splitlines() if line.startswith('VmRSS:')).split()[1])
    return rss, len(list(Path(f'/proc/{pid}/fd').iterdir()))


def open_files(pid: int) -> list[str]:
    """What the process' descriptors point at (files by name, sockets and pipes by kind), for failure messages."""
    targets = []
    for fd in Path(f'/proc/{pid}/fd').iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        targets.append(target.split(':[')[0] if target.startswith(('socket:', 'pipe:', 'anon_inode:')) else target)
    return sorted(targets)


def settled_resources(stack, step: str, timeline: list) -> tuple[int, int, int]:
    """The Girder process' pid, RSS and descriptors a moment after the work stopped (the round's background
    annotation publishing included): the smallest of a few readings, so a request in flight does not count. The
    reading goes into ``timeline`` under ``step``."""
    pid = stack.info().pids['girder']
    time.sleep(2)
    readings = []
    for _ in range(5):
        readings.append(resources(pid))
        time.sleep(0.4)
    reading = pid, min(r[0] for r in readings), min(r[1] for r in readings)
    timeline.append((step, *reading))
    return reading


def assert_flat(early: tuple[int, int, int], late: tuple[int, int, int], what: str, timeline: list) -> None:
    """RSS and descriptors of one process grew less than the tolerance; the message has every reading taken."""
    readings = ', '.join(f'{step}: pid {pid} {rss / 1024:.0f} MiB {fds} fds' for step, pid, rss, fds in timeline)
    if late[2] - early[2] >= FD_GROWTH:
        readings += f'; open now: {open_files(late[0])}'
    assert early[0] == late[0], f'{what}: the Girder process changed ({early[0]} -> {late[0]}) between readings'
    rss_growth = late[1] / early[1] - 1
    assert rss_growth < RSS_GROWTH, (f'{what}: Girder RSS grew {100 * rss_growth:.0f} % ({early[1] / 1024:.0f} -> '
                                     f'{late[1] / 1024:.0f} MiB), more than {100 * RSS_GROWTH:.0f} %; {readings}')
    assert late[2] - early[2] < FD_GROWTH, (f'{what}: Girder open files grew by {late[2] - early[2]} '
                                            f'({early[2]} -> {late[2]}), {FD_GROWTH} or more; {readings}')


@pytest.fixture(scope='module')
def soak_slides(cmu_svs, tmp_path_factory) -> list[Path]:
    """``SLIDES`` different small slides cut from the real H&E sample (2220 x 2967 px), overlapping crops on a grid
    of up to 4 x 5."""
    source = tifffile.imread(cmu_svs, key=0)
    folder = tmp_path_factory.mktemp('soak-crops')
    height, width = source.shape[:2]
    corners = [(int(top), int(left)) for top in np.linspace(0, height - CROP, 4)
               for left in np.linspace(0, width - CROP, 5)][:SLIDES]
    return [write_crop(source, top, left, folder / f'soak-{top}-{left}.tiff') for top, left in corners]


def make_project(client, slides: list[Path]) -> tuple[dict, list[dict], str]:
    return slides_project(client, slides, 'Soak', CONFIG)


def segment_all(client, base: str) -> list[dict]:
    """POST .../segments and wait for every job it answers; each must succeed."""
    answers = client.post(f'{base}/segments')
    jobs = [wait_for_job(client, answer['job'], timeout=600) for answer in answers if 'job' in answer]
    failed = [''.join(job['log'])[-2000:] for job in jobs if job['status'] != 3]
    assert failed == [], f'a segment job failed: {failed}'
    return answers


def resegment_one_slide(client, base: str, folder: dict, chosen: dict, ledger: Ledger,
                        work: Path) -> tuple[set, dict]:
    """New radius, segments again (every labeled slide's new segmentation waits), the chosen slide's report
    checked against the rasters and applied keeping unmatched labels detached, the others discarded, the radius put
    back. The ledger follows the report; returns the labels expected detached and the report's counts."""
    client.put(base, json={'radius': NEW_RADIUS})
    answers = segment_all(client, base)
    assert {answer['status'] for answer in answers} <= {'started', 'queued'}, answers
    reports = {report['item']: report for report in client.get(f'{base}/resegmentation')}
    assert chosen['_id'] in reports, f'no carry-over report for the labeled slide {chosen["name"]}: {list(reports)}'
    report = reports[chosen['_id']]
    path = store_path(client, folder, chosen)
    old_copy = work / 'old.h5'
    shutil.copyfile(path, old_copy)
    on_slide = {(labeler, segment): category for (labeler, item, segment), category in ledger.all().items()
                if item == chosen['_id']}
    reported = {(entry['labeler'], entry['segment']): entry['category'] for entry in report['labels']}
    recategorised = [key for key in reported if key in on_slide and reported[key] != on_slide[key]]
    assert reported == on_slide, ('the carry-over report does not list exactly the acknowledged labels of the slide: '
                                  f'missing {sorted(set(on_slide) - set(reported))[:10]}, '
                                  f'extra {sorted(set(reported) - set(on_slide))[:10]}, '
                                  f'other category {recategorised[:10]}')
    applied = client.post(f'{base}/slide/{chosen["_id"]}/resegmentation', parameters={'unmatched': 'keep'})
    for item_id in reports:
        if item_id != chosen['_id']:
            client.delete(f'{base}/slide/{item_id}/resegmentation')
    client.put(base, json={'radius': CONFIG['radius']})

    fates = carry_over_oracle.fates(store_raster(old_copy), store_raster(path))
    assert report['segments']['new'] == int(store_raster(path).max())
    detached = set()
    for entry in report['labels']:
        assert (entry['fate'], entry['target']) == fates[entry['segment']], (
            f'carry-over of segment {entry["segment"]}: the report says {entry["fate"]} -> {entry["target"]}, '
            f'the rasters say {fates[entry["segment"]]}')
        own = ledger.labels[entry['labeler']]
        category = own.pop((chosen['_id'], entry['segment']))
        if entry['fate'] == 'moved':
            own[(chosen['_id'], entry['target'])] = category
        else:
            detached.add((entry['labeler'], entry['segment'], category))
    counts = report['counts']
    assert (applied['moved'], applied['detached']) == (counts['moved'], counts['ambiguous'] + counts['dropped'])
    assert counts['moved'] > 0, f'no label moved: {counts}'
    return detached, counts


def test_soak_many_labelers_rounds_rename_merge_resegmentation_and_restart(stack, soak_slides, tmp_path):
    started = time.monotonic()
    client = stack.client()
    client.put('system/setting', parameters={'key': 'histomics_label.heavy_jobs_per_process', 'value': 1})
    folder, items, base = make_project(client, soak_slides)
    answers = segment_all(client, base)
    assert len(answers) == SLIDES and all(answer['status'] in ('started', 'queued') for answer in answers)
    labelers = [add_user(client, folder['_id'], {'login': f'soak{k}', 'password': PASSWORD}, 1)
                for k in range(LABELERS)]
    ledger = Ledger([user['_id'] for user in labelers])
    item_ids = [item['_id'] for item in items]
    categories = [c['name'] for c in CONFIG['categories']]

    timeline: list = []
    settled_resources(stack, 'segmented', timeline)
    # process 1 warms up on every kind of work once (rounds, rankings, a renamed and a merged round re-stored, a
    # re-segmentation and the suggestions ranked in the server after it): read then, and again after two more phases
    # of labeling and rounds
    run_phase(stack, base, item_ids, categories, labelers, ledger, 1)
    renamed = client.post(f'{base}/categories/rename', parameters={'old': RENAME[0], 'new': RENAME[1]})
    ledger.rename(*RENAME)
    categories = [RENAME[1] if c == RENAME[0] else c for c in categories]
    assert RENAME[1] in [c['name'] for c in renamed['config']['categories']]
    run_phase(stack, base, item_ids, categories, labelers, ledger, 2)
    settled_resources(stack, f'phase 2, renamed ({rounds_so_far(client, base)} rounds)', timeline)
    client.post(f'{base}/categories/merge', parameters={'source': MERGE[0], 'target': MERGE[1]})
    ledger.rename(*MERGE)
    categories.remove(MERGE[0])
    labeled_slides = {item for (_, item, _) in ledger.all()}
    chosen = next(item for item in items if item['_id'] in labeled_slides)
    detached, counts = resegment_one_slide(client, base, folder, chosen, ledger, tmp_path)
    settled_resources(stack, 'merged, resegmented', timeline)
    run_phase(stack, base, item_ids, categories, labelers, ledger, 3)
    early = settled_resources(stack, f'phase 3 ({rounds_so_far(client, base)} rounds)', timeline)
    run_phase(stack, base, item_ids, categories, labelers, ledger, 4)
    run_phase(stack, base, item_ids, categories, labelers, ledger, 5)
    late = settled_resources(stack, f'phase 5 ({rounds_so_far(client, base)} rounds)', timeline)
    assert_flat(early, late, 'before the restart', timeline)

    stack.stop()
    stack.start()  # the same data: database, assetstore, stores
    client = stack.client()
    settled_resources(stack, 'restarted', timeline)
    run_phase(stack, base, item_ids, categories, labelers, ledger, 6)  # warm-up of the new process
    early = settled_resources(stack, f'phase 6 ({rounds_so_far(client, base)} rounds)', timeline)
    run_phase(stack, base, item_ids, categories, labelers, ledger, 7)
    phase = 8
    run_phase(stack, base, item_ids, categories, labelers, ledger, phase)
    while rounds_so_far(client, base) < MIN_ROUNDS and phase < MAX_PHASES:  # rounds are paced by training
        phase += 1
        run_phase(stack, base, item_ids, categories, labelers, ledger, phase)
    late = settled_resources(stack, f'phase {phase} ({rounds_so_far(client, base)} rounds)', timeline)
    assert_flat(early, late, 'after the restart', timeline)

    listed = client.get(f'{base}/labels', parameters={'limit': 0})
    keys = [(label['labeler'], label['item'], label['segment']) for label in listed]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    assert duplicated == [], f'labels duplicated (labeler, slide, segment): {duplicated[:10]}'
    stored = {(label['labeler'], label['item'], label['segment']): label['category'] for label in listed}
    expected = ledger.all()
    missing = sorted(set(expected) - set(stored))
    assert missing == [], f'{len(missing)} acknowledged labels are missing, e.g. {missing[:10]}'
    wrong = sorted((key, expected[key], stored[key]) for key in expected if stored[key] != expected[key])
    assert wrong == [], f'{len(wrong)} labels have another category than acknowledged: {wrong[:10]}'
    unknown = sorted(set(stored) - set(expected))
    assert unknown == [], f'{len(unknown)} labels nobody acknowledged (or on the wrong segment): {unknown[:10]}'
    stale = {(label['labeler'], label['segment'], label['category'])
             for label in client.get(f'{base}/stale_labels') if label['item'] == chosen['_id']}
    assert stale == detached, f'detached labels: expected {sorted(detached)[:10]}, listed {sorted(stale)[:10]}'

    rounds = client.get(f'{base}/rounds')['rounds']
    assert len(rounds) >= MIN_ROUNDS, f'only {len(rounds)} rounds ran'
    names = {c['name'] for c in client.get(base)['config']['categories']}
    assert names == {'tumor', RENAME[1]}, names
    print(f'soak: {SLIDES} slides, {len(expected)} labels, {len(rounds)} rounds, carry-over {counts}, '
          f'{time.monotonic() - started:.0f} s; Girder: ' + ', '.join(
              f'{step}: {rss / 1024:.0f} MiB {fds} fds' for step, _, rss, fds in timeline))
