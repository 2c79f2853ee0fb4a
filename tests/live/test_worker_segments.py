"""The plugin's own heavy work on girder_worker (issue 17), rehearsed as two machines on one: two girder_worker
processes with separate working folders, sharing only the broker (the stack's Redis) and Girder's API, take a
4-slide project's segment jobs under the ``girder_worker`` executor. The jobs split across both workers, the
Girder server never runs the pipeline, each worker fetches its slide through the API (workers are not told the
server's paths), and every store the server puts in place is the store the engine makes from that slide here.
A cancelled slide stops its task on the worker, leaves no store, and runs again on a rerun; a Girder restarted
alone mid-task takes the store of the task it had sent. A CNN project's rounds train on the workers too, from copies
of the stores the workers keep between rounds.

Both checks that Girder's process never mapped torch come before the one step that trains a round in Girder's own
thread (the ``server`` executor, at the end of the torch test), which may load it.

Real processes, no mocks: the stack's Girder and Redis, two Celery workers and their child processes.
"""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pymongo
import pytest
from helpers.live_stack import running_stack, seeded_project, slides_project, store_path
from helpers.processes import descendants

from histomics_label.core.features.representations import ImageRepresentation
from histomics_label.core.io.labels import Category, LabelSet
from histomics_label.core.io.store import SlideStore
from histomics_label.core.pipeline import PipelineConfig, model_options, representation, run_pipeline
from histomics_label.core.rounds import train_slides_round
from histomics_label.devtools.stack.jobs import wait_for_job
from histomics_label.projects.segment_images import SEGMENT_IMAGE_KEY, SEGMENTS_FOLDER

pytestmark = pytest.mark.live

CONFIG = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}],
          'magnification': 5, 'radius': 10, 'patchSize': 32, 'feature': 'image', 'model': 'cnn_torch',
          'retrainEvery': 0, 'batchSize': 8}
RUNNING, SUCCESS, CANCELED = 2, 3, 5
CANCELING = 824
"""girder_worker's status of a task job whose cancel no worker has confirmed yet."""
SEGMENT_CHILD = b'histomics_label.jobs.workers.segments'
WORKER_JOB_TYPE = 'histomics_label.segments.worker'


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp('worker-segments') / 'data', workers=2) as stack:
        client = stack.client()
        client.put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor',
                                                 'value': 'girder_worker'})
        yield stack


def follow(client, stack, job_ids: list[str], timeout: float = 900,
           child: bytes = SEGMENT_CHILD) -> tuple[list[dict], dict[str, int]]:
    """Wait for the jobs to end, sampling whose processes run ``child`` meanwhile; the ended jobs, and how many
    samples saw the child under Girder and under each worker."""
    pids = stack.info().pids
    seen = {name: 0 for name in ('girder', 'worker-1', 'worker-2')}
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        for name in seen:
            seen[name] += any(child in command for command in descendants(pids[name]).values())
        pending = {job for job in pending if client.get(f'job/{job}')['status'] not in (SUCCESS, 4, CANCELED)}
        time.sleep(0.2)
    return [wait_for_job(client, job, timeout=10) for job in job_ids], seen


def test_a_projects_segment_jobs_split_across_two_workers(stack, crops, tmp_path):
    client = stack.client()
    folder, items, base = slides_project(client, crops[:4], 'Segments on workers', CONFIG)
    started = client.post(f'{base}/segments')
    ended, seen = follow(client, stack, [entry['job'] for entry in started])
    assert [job['status'] for job in ended] == [SUCCESS] * 4, [''.join(job['log'])[-1500:] for job in ended]
    assert seen['girder'] == 0 and seen['worker-1'] and seen['worker-2'], seen

    # each slide's job sent one task, which one worker received and ran
    logs = {name: stack.info().logs[name].read_text(errors='replace') for name in ('worker-1', 'worker-2')}
    ran_by = {}
    for job in ended:
        tasks = client.get('job', parameters={'parentId': job['_id'], 'types': f'["{WORKER_JOB_TYPE}"]'})
        assert [task['status'] for task in tasks] == [SUCCESS], tasks
        received = [name for name, log in logs.items() if f'[{tasks[0]["celeryTaskId"]}] received' in log]
        assert len(received) == 1, received
        ran_by[job['_id']] = received[0]
        assert job['progress']['current'] == job['progress']['total']
    assert sorted(set(ran_by.values())) == ['worker-1', 'worker-2'], ran_by
    # the tokens the tasks were sent with (the admin's, to read the slide and write the upload) are gone
    assert task_tokens(stack) == 0

    # every store in place is the engine's store of that slide, made here from the same file
    for item, crop in zip(items, crops[:4], strict=True):
        with SlideStore(store_path(client, folder, item)) as store:
            params = store.segment_params
            served = store.label_raster[...], store.n_segments
        assert params['slide']['file'] == item['largeImage']['fileId']
        local = run_pipeline(PipelineConfig(slide=str(crop), store=str(tmp_path / f'{item["_id"]}.h5'),
                                            magnification=5, radius=10, compactness=params['compactness'],
                                            feature='image', patch_size=32, model='cnn_torch'))
        with SlideStore(local.store) as store:
            np.testing.assert_array_equal(served[0], store.label_raster[...])
            assert served[1] == store.n_segments
        assert client.getItem(item['_id'])['meta'][SEGMENT_IMAGE_KEY]

    # the uploads the stores came through are gone; the segment images stay
    segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER))
    names = sorted(entry['name'] for entry in client.listItem(segments_folder['_id']))
    assert names == sorted(f'{item["_id"]}.segments.tiff' for item in items), names


def task_tokens(stack) -> int:
    """How many tokens sent with tasks (to read inputs and write outputs) the database holds."""
    with pymongo.MongoClient(stack.info().mongo_uri) as mongo:
        return mongo.get_default_database()['token'].count_documents({'scope': ['core.data.read',
                                                                               'core.data.write']})


def task_jobs(client, job_id: str) -> list[dict]:
    return client.get('job', parameters={'parentId': job_id, 'types': f'["{WORKER_JOB_TYPE}"]'})


def running_task(client, job_id: str) -> dict:
    """The slide job's task job, once a worker runs it."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        tasks = task_jobs(client, job_id)
        if tasks and tasks[0]['status'] == RUNNING:
            return tasks[0]
        time.sleep(0.1)
    raise AssertionError(f'no worker ran the task of job {job_id}: {tasks}')


def test_a_cancelled_slide_stops_on_its_worker_and_runs_again(stack, crops):
    client = stack.client()
    folder, items, base = slides_project(client, crops[4:5], 'Cancelled on a worker', CONFIG)
    job_id = client.post(f'{base}/segments')[0]['job']
    tasks = [running_task(client, job_id)]
    client.put(f'job/{job_id}/cancel')
    job = wait_for_job(client, job_id, timeout=120)
    assert job['status'] == CANCELED, job.get('log')
    task = wait_for_job(client, tasks[0]['_id'], timeout=120)
    assert task['status'] == CANCELED, task.get('log')
    assert not store_path(client, folder, items[0]).exists()

    rerun = wait_for_job(client, client.post(f'{base}/segments')[0]['job'], timeout=600)
    assert rerun['status'] == SUCCESS, rerun.get('log')
    with SlideStore(store_path(client, folder, items[0])) as store:
        assert store.n_segments > 0


def test_girder_restarted_mid_task_takes_the_store_of_the_task_it_had_sent(stack, crops):
    """Girder killed (SIGKILL) while a worker runs a slide's task, then started alone, as an admin restarts it while
    the workers go on: the queue starts the slide's job again, which waits on the task already sent instead of
    sending another, and takes its store (the worker kept its store until Girder answered again)."""
    client = stack.client()
    folder, items, base = slides_project(client, crops[5:6], 'Girder restarted', CONFIG)
    job_id = client.post(f'{base}/segments')[0]['job']
    task = running_task(client, job_id)
    os.kill(stack.info().pids['girder'], signal.SIGKILL)
    client = stack.restart('girder').client()
    job = wait_for_job(client, job_id, timeout=600)
    assert job['status'] == SUCCESS, job.get('log')
    assert 'Started again (attempt 2)' in ''.join(job['log'])
    tasks = task_jobs(client, job_id)
    assert [(t['_id'], t['status']) for t in tasks] == [(task['_id'], SUCCESS)], tasks
    with SlideStore(store_path(client, folder, items[0])) as store:
        assert store.n_segments > 0


CNN = {**CONFIG, 'epochs': 3, 'certainty': 'batchbald'}
ROUND_CHILD = b'histomics_label.jobs.workers.rounds'
ROUND_WORKER_JOB_TYPE = 'histomics_label.train.worker'
BATCHES = ((1, 2, 3, 4), (5,), (6,))
"""The segments labeled before each round, on each slide (the first crop has 7)."""


def test_a_cnn_rounds_train_on_the_workers_and_come_back_to_the_stores(stack, crops, tmp_path):
    """A CNN project's rounds under the ``girder_worker`` executor: each round's child runs on a worker, never in
    Girder's process tree; the first round's predictions are those of the engine's round on the same stores and
    labels here; later rounds warm-start from the server's latest round, and a worker that trained before reads
    the stores from its cache (each store is copied into Girder once); the suggestions the worker ranked are
    served with no torch in Girder's process, and no upload item or token is left."""
    client = stack.client()
    tokens_before = task_tokens(stack)  # a restart mid-task (above) leaves its token to expire
    folder, items, base = slides_project(client, crops[:2], 'Rounds on workers', CNN)
    for entry in client.post(f'{base}/segments'):
        assert wait_for_job(client, entry['job'], timeout=600)['status'] == SUCCESS
    paths = [store_path(client, folder, item) for item in items]
    before = [shutil.copy(path, tmp_path / path.name) for path in paths]
    rounds, task_logs = [], []
    for number, segments in enumerate(BATCHES, start=1):
        labels = [{'item': item['_id'], 'segment': s, 'category': ('tumor', 'stroma')[s % 2]}
                  for item in items for s in segments]
        client.put(f'{base}/labels', json={'labels': labels, 'view': 'api'})
        started = client.post(f'{base}/train')
        ended, seen = follow(client, stack, [started['job']], child=ROUND_CHILD)
        assert ended[0]['status'] == SUCCESS, ''.join(ended[0]['log'])[-1500:]
        assert seen['girder'] == 0 and seen['worker-1'] + seen['worker-2'] > 0, seen
        tasks = client.get('job', parameters={'parentId': started['job'], 'types': f'["{ROUND_WORKER_JOB_TYPE}"]'})
        assert [task['status'] for task in tasks] == [SUCCESS], tasks
        task_logs.append(''.join(wait_for_job(client, tasks[0]['_id'], timeout=10)['log']))
        rounds.append(client.get(f'{base}/rounds')['rounds'][-1])
        assert rounds[-1]['number'] == number and rounds[-1]['model'] == 'cnn_torch'
        assert rounds[-1]['labelsUsed'] == 2 * sum(len(batch) for batch in BATCHES[:number])
        with SlideStore(paths[0]) as store:
            assert store.latest_round().number == number
    assert [bool(r['warmStart']) for r in rounds] == [False, True, True], rounds
    assert not any(r['modelUnchanged'] for r in rounds)
    assert 'Stores: 0 of 2 from this worker\'s cache' in task_logs[0]
    assert any('Stores: 2 of 2 from this worker\'s cache' in log for log in task_logs[1:]), task_logs

    # round 1 is the engine's round on the same stores and labels
    pipeline = PipelineConfig(slide='', store=str(before[0]), magnification=5, radius=10, feature='image',
                              patch_size=32, model='cnn_torch', epochs=3, seed=0)
    categories = [Category('tumor', '#e6194b'), Category('stroma', '#3cb44b')]
    local = train_slides_round([(str(path), LabelSet(categories, [1, 2, 3, 4], [1, 0, 1, 0])) for path in before],
                               representation(pipeline), 'cnn_torch', model_options(pipeline))
    for path, record in zip(paths, local, strict=True):
        with SlideStore(path) as store:
            np.testing.assert_allclose(store.round(1).probabilities, record.probabilities, atol=1e-3)

    # the worker's rankings are served; ranking on request would have loaded torch into Girder
    assert len(client.get(f'{base}/suggestions', parameters={'limit': 8})) == 8
    maps = Path(f'/proc/{stack.info().pids["girder"]}/maps').read_text()
    assert 'libtorch' not in maps and 'libc10' not in maps

    segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER))
    copies = {entry['name']: [f['_id'] for f in client.listFile(entry['_id'])]
              for entry in client.listItem(segments_folder['_id']) if entry['name'].endswith('(copy for workers)')}
    assert sorted(copies) == sorted(f'{path.name} (copy for workers)' for path in paths)
    assert all(len(files) == 1 for files in copies.values())  # uploaded once, for round 1
    names = [entry['name'] for entry in client.listItem(segments_folder['_id'])]
    assert not [name for name in names if 'removed when taken' in name], names
    assert task_tokens(stack) == tokens_before


LINEAR = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
                         {'name': 'background', 'color': '#888888', 'excluded': True}],
          'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0, 'batchSize': 8, 'embeddingMap': True}
SEED_NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
FUNCTIONS = ('negative_entropy', 'confidence', 'margin', 'batchbald', 'coreset', 'entropy_diverse',
             'kmeans_cold_start', 'random')


def test_in_production_the_web_server_never_loads_torch(stack, cmu_svs):
    """With the ``girder_worker`` executor a labeler's whole loop (segments and embeddings on a worker, the linear
    head's rounds in a child process, suggestions of every function, more like this, every overlay, the export)
    leaves no torch library mapped in the Girder process; and a round trained in the child is the round the
    server trains on the same labels in its own thread."""
    client = stack.client()
    made = seeded_project(client, cmu_svs, 'No torch in the server', LINEAR, SEED_NAMES)
    base, item = made['base'], made['item']
    for function in FUNCTIONS:
        client.put(base, json={**LINEAR, 'certainty': function})
        assert client.get(f'{base}/suggestions', parameters={'limit': 8}), function
    examples = sorted(made['seeds'])[:2]
    assert client.get(f'{base}/similar', parameters={'item': item['_id'], 'segments': json.dumps(examples)})
    for kind in ('labels', 'predictions', 'certainty', 'embedding'):
        client.sendRestRequest('GET', f'{base}/overlay', parameters={'item': item['_id'], 'kind': kind},
                               jsonResp=False)
    client.sendRestRequest('GET', f'{base}/export', parameters={'format': 'csv', 'predictions': 'true'},
                           jsonResp=False)
    maps = Path(f'/proc/{stack.info().pids["girder"]}/maps').read_text()
    assert 'libtorch' not in maps and 'libc10' not in maps

    # the same labels trained in the server's thread give the same model
    client.put(base, json=LINEAR)
    client.put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor', 'value': 'server'})
    try:
        second = client.post(f'{base}/train', parameters={'wait': 'true'})['round']
    finally:
        client.put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor',
                                                 'value': 'girder_worker'})
    first = made['first']
    assert second['labelsUsed'] == first['labelsUsed']
    assert second['accuracy'] == first['accuracy'] and second['auditAccuracy'] == first['auditAccuracy']
    with SlideStore(store_path(client, made['folder'], item)) as store:
        child_round, thread_round = store.round(first['slides'][item['_id']]), store.round(
            second['slides'][item['_id']])
        np.testing.assert_allclose(child_round.probabilities, thread_round.probabilities, atol=1e-4)


FEATURE_PART_CHILD = b'histomics_label.jobs.workers.feature_part'
FEATURES_WORKER_JOB_TYPE = 'histomics_label.features.worker'
FEATURE_ROWS = 'histomics_label.feature_rows_per_task'


def test_a_large_slides_features_are_made_in_parts_across_the_workers(stack, crops, tmp_path):
    """A slide with more segments than one feature task takes: its segment task sends back segments only, four
    tasks compute a quarter of its rows each, on both workers (never in Girder), and the store Girder puts in place
    holds the very patches the engine computes here in one piece from the same slide. Each part's task job ends
    well, and nothing the parts travelled through is left."""
    client = stack.client()
    local = run_pipeline(PipelineConfig(slide=str(crops[0]), store=str(tmp_path / 'whole.h5'), magnification=5,
                                        radius=10, feature='image', patch_size=32, model='cnn_torch'))
    client.put('system/setting', parameters={'key': FEATURE_ROWS, 'value': -(-local.n_segments // 4)})
    try:
        folder, items, base = slides_project(client, crops[0:1], 'Features in parts', CONFIG)
        started = client.post(f'{base}/segments')
        ended, seen = follow(client, stack, [started[0]['job']], child=FEATURE_PART_CHILD)
    finally:
        client.put('system/setting', parameters={'key': FEATURE_ROWS, 'value': 100000})
    job = ended[0]
    assert job['status'] == SUCCESS, ''.join(job['log'])[-1500:]
    assert seen['girder'] == 0 and seen['worker-1'] and seen['worker-2'], seen
    parts = client.get('job', parameters={'parentId': job['_id'], 'types': f'["{FEATURES_WORKER_JOB_TYPE}"]'})
    assert sorted(part['title'].rsplit(': features, ', 1)[1] for part in parts) == [
        f'part {k} of 4 (on a worker)' for k in range(1, 5)]
    assert [part['status'] for part in parts] == [SUCCESS] * 4, [part.get('log') for part in parts]
    assert [task['status'] for task in task_jobs(client, job['_id'])] == [SUCCESS]

    with SlideStore(store_path(client, folder, items[0])) as served, SlideStore(local.store) as whole:
        np.testing.assert_array_equal(served.label_raster[...], whole.label_raster[...])
        assert served.patch_params(32) == whole.patch_params(32)
        np.testing.assert_array_equal(served.patches(32), whole.patches(32))
    segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER))
    names = [entry['name'] for entry in client.listItem(segments_folder['_id'])]
    assert names == [f'{items[0]["_id"]}.segments.tiff'], names
    assert task_tokens(stack) == 0


def test_a_cancelled_part_stops_the_other_parts_and_leaves_the_slide_as_it_was(stack, cmu_svs):
    """One part's job cancelled in the job list before it ended (several parts per worker, so that some wait for
    one): the slide's job stops, the other parts are cancelled (none goes on running), the slide has no
    store and nothing of the parts is left; a rerun makes the store."""
    client = stack.client()
    client.put('system/setting', parameters={'key': FEATURE_ROWS, 'value': 30})
    try:
        folder, items, base = slides_project(client, [cmu_svs], 'A part cancelled', CONFIG)
        job_id = client.post(f'{base}/segments')[0]['job']
        deadline, waiting, parts = time.monotonic() + 300, [], []
        while not (waiting and len(parts) > 2) and time.monotonic() < deadline \
                and client.get(f'job/{job_id}')['status'] not in (SUCCESS, 4, CANCELED):
            parts = client.get('job', parameters={'parentId': job_id, 'types': f'["{FEATURES_WORKER_JOB_TYPE}"]'})
            waiting = [part for part in parts if part['status'] in (1, RUNNING)][-1:]
            time.sleep(0.1)
        assert waiting and len(parts) > 2, (parts, client.get(f'job/{job_id}').get('log'))
        client.put(f'job/{waiting[0]["_id"]}/cancel')
        job = wait_for_job(client, job_id, timeout=120)
        assert job['status'] == CANCELED, job.get('log')
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            parts = client.get('job', parameters={'parentId': job_id, 'types': f'["{FEATURES_WORKER_JOB_TYPE}"]'})
            if all(part['status'] in (SUCCESS, CANCELED) for part in parts):
                break
            time.sleep(0.5)
        assert all(part['status'] in (SUCCESS, CANCELED) for part in parts), [p['status'] for p in parts]
        assert sum(part['status'] == CANCELED for part in parts) >= 1
        assert not store_path(client, folder, items[0]).exists()
        segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER))
        assert not list(client.listItem(segments_folder['_id']))

        rerun = wait_for_job(client, client.post(f'{base}/segments')[0]['job'], timeout=600)
        assert rerun['status'] == SUCCESS, rerun.get('log')
        with SlideStore(store_path(client, folder, items[0])) as store:
            assert ImageRepresentation(patch_size=32).is_current(store) and store.n_segments > 200
    finally:
        client.put('system/setting', parameters={'key': FEATURE_ROWS, 'value': 100000})


def test_with_no_worker_running_a_slide_waits_and_says_so_then_runs_when_one_starts(stack, crops):
    """Both workers stopped: the slide's job waits in the broker, its progress says it waits for a worker, and once
    a worker starts again it runs. A slide cancelled meanwhile while its task waits in the broker leaves the task
    "canceling" (the revoke reached no worker); the worker that takes it later ends it at once, fetching nothing
    and leaving no store. One cancelled while it waits in the server's queue never sends its task, whose job ends
    cancelled. (Last in the module: it leaves the workers restarted.)"""
    client = stack.client()
    pids = stack.info().pids
    for worker in ('worker-1', 'worker-2'):
        os.kill(pids[worker], signal.SIGTERM)
    deadline = time.monotonic() + 60
    while any(Path(f'/proc/{pids[w]}').exists() for w in ('worker-1', 'worker-2')) and time.monotonic() < deadline:
        time.sleep(0.2)
    folder, items, base = slides_project(client, crops[3:4], 'No worker', CONFIG)
    job_id = client.post(f'{base}/segments')[0]['job']
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f'job/{job_id}')
        if 'waiting for a girder_worker worker' in (job.get('progress') or {}).get('message', ''):
            break
        time.sleep(0.2)
    assert 'waiting for a girder_worker worker' in job['progress']['message'], job
    time.sleep(3)
    assert client.get(f'job/{job_id}')['status'] == RUNNING
    assert [task['status'] for task in task_jobs(client, job_id)] == [1]  # queued in the broker
    # a slide cancelled while it waits in the server's queue (one piece at a time: the one above holds it)
    client.put('system/setting', parameters={'key': 'histomics_label.worker_jobs_per_process', 'value': 1})
    try:
        _, _, unsent_base = slides_project(client, crops[1:2], 'Cancelled in the queue', CONFIG)
        unsent_id = client.post(f'{unsent_base}/segments')[0]['job']
        client.put(f'job/{unsent_id}/cancel')
        assert wait_for_job(client, unsent_id, timeout=60)['status'] == CANCELED
    finally:
        client.put('system/setting', parameters={'key': 'histomics_label.worker_jobs_per_process', 'value': 64})
    unsent = wait_for_job(client, task_jobs(client, unsent_id)[0]['_id'], timeout=10)
    assert unsent['status'] == CANCELED and 'Not sent' in ''.join(unsent['log']), unsent
    # a slide cancelled once its task waits in the broker
    cancelled_folder, cancelled_items, cancelled_base = slides_project(client, crops[2:3], 'Cancelled, no worker',
                                                                       CONFIG)
    cancelled_id = client.post(f'{cancelled_base}/segments')[0]['job']
    deadline = time.monotonic() + 60
    while [task['status'] for task in task_jobs(client, cancelled_id)] != [1] and time.monotonic() < deadline:
        time.sleep(0.2)
    client.put(f'job/{cancelled_id}/cancel')
    assert wait_for_job(client, cancelled_id, timeout=60)['status'] == CANCELED
    cancelled_task = task_jobs(client, cancelled_id)[0]
    deadline = time.monotonic() + 30  # the slide's job cancels its task at its next look
    while client.get(f'job/{cancelled_task["_id"]}')['status'] != CANCELING and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.get(f'job/{cancelled_task["_id"]}')['status'] == CANCELING

    stack.restart('worker-1', 'worker-2')
    job = wait_for_job(client, job_id, timeout=600)
    assert job['status'] == SUCCESS, job.get('log')
    with SlideStore(store_path(client, folder, items[0])) as store:
        assert store.n_segments > 0
    ended = wait_for_job(client, cancelled_task['_id'], timeout=120)
    assert ended['status'] == CANCELED and 'Stopped: it was cancelled' in ''.join(ended['log']), ended
    assert 'downloading' not in json.dumps(ended.get('progress'))
    assert not store_path(client, cancelled_folder, cancelled_items[0]).exists()
