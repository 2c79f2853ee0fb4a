"""A worker killed (SIGKILL, with its pool and child processes) while it runs a slide's segment task: nothing tells
Girder, so the slide's job waits on the task's beat, judges the worker lost after ten silent beats, and fails with a
message that says what happened and what to do; no store is left, and "Make segments" again runs it on a worker.
The beat is shortened to 3 s here (``HISTOMICS_LABEL_WORKER_BEAT_S``, read by Girder and the worker alike) so the
test waits 30 s, not the default 300 s."""

import os
import signal
import time

import pytest
from helpers.live_stack import running_stack, slides_project, store_path

from histomics_label.core.io.store import SlideStore
from histomics_label.devtools.stack.jobs import wait_for_job
from histomics_label.jobs.workers.celery_plugin import BEAT_ENV

pytestmark = pytest.mark.live

CONFIG = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}],
          'magnification': 5, 'radius': 10, 'patchSize': 32, 'feature': 'image', 'model': 'cnn_torch',
          'retrainEvery': 0}
RUNNING, SUCCESS, ERROR = 2, 3, 4
WORKER_JOB_TYPE = 'histomics_label.segments.worker'


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    os.environ[BEAT_ENV] = '3'  # the stack's processes inherit it
    try:
        with running_stack(tmp_path_factory.mktemp('worker-lost') / 'data', workers=1) as stack:
            stack.client().put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor',
                                                             'value': 'girder_worker'})
            yield stack
    finally:
        del os.environ[BEAT_ENV]


def test_a_worker_killed_mid_task_fails_the_slide_after_ten_silent_beats(stack, crops):
    client = stack.client()
    folder, items, base = slides_project(client, crops[:1], 'Worker killed', CONFIG)
    job_id = client.post(f'{base}/segments')[0]['job']
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        tasks = client.get('job', parameters={'parentId': job_id, 'types': f'["{WORKER_JOB_TYPE}"]'})
        if tasks and tasks[0]['status'] == RUNNING:
            break
        time.sleep(0.1)
    assert tasks and tasks[0]['status'] == RUNNING, tasks
    os.killpg(stack.info().pids['worker-1'], signal.SIGKILL)  # the worker, its pool process and the child
    killed = time.monotonic()

    job = wait_for_job(client, job_id, timeout=120)
    waited = time.monotonic() - killed
    assert job['status'] == ERROR, job
    log = ''.join(job['log'])
    assert 'The worker running it has not answered for 30 s (stopped or killed); make the segments again' in log, log
    assert 25 <= waited <= 90, waited  # ten beats of 3 s after the last one, and the queue's polling
    task = wait_for_job(client, tasks[0]['_id'], timeout=10)
    assert task['status'] == ERROR and 'has not answered for 30 s' in ''.join(task['log'])
    assert not store_path(client, folder, items[0]).exists()

    stack.restart('worker-1')
    rerun = wait_for_job(client, client.post(f'{base}/segments')[0]['job'], timeout=600)
    assert rerun['status'] == SUCCESS, rerun.get('log')
    with SlideStore(store_path(client, folder, items[0])) as store:
        assert store.n_segments > 0
