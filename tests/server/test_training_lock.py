"""The training lock of a project: a worker whose lock was released or removed under it (a restart of another
server process clears running flags) stops after its round instead of running rounds forever."""

import threading
import time

import pytest
from bson.objectid import ObjectId

pytestmark = pytest.mark.plugin('histomics_label')

LOOP_TIMEOUT = 60
"""Seconds the worker gets to stop; a worker that spins is caught here instead of hanging the suite."""


def test_a_released_lock_is_not_read_as_another_round(db):
    from histomics_label.models.training_state import TrainingState

    state, project = TrainingState(), ObjectId()
    assert state.acquire(project)
    assert state.next_or_release(project) is False  # nothing pending: released
    assert state.state(project) == {'running': False, 'pending': False, 'labelsSince': 0}
    assert state.next_or_release(project) is False  # released already: still no round to run
    assert state.next_or_release(ObjectId()) is False  # no lock document at all


def test_a_request_while_the_round_runs_gives_exactly_one_more(db):
    from histomics_label.models.training_state import TrainingState

    state, project = TrainingState(), ObjectId()
    assert state.acquire(project)
    assert state.acquire(project) is False and state.acquire(project) is False  # two requests: one pending flag
    assert state.next_or_release(project) is True
    assert state.state(project)['running'] is True
    assert state.next_or_release(project) is False
    assert state.state(project)['running'] is False


def test_a_pending_flag_without_a_running_round_runs_nothing(db):
    from histomics_label.models.training_state import TrainingState

    state, project = TrainingState(), ObjectId()
    assert state.acquire(project)
    state.reset_interrupted([])  # another server process restarted: the lock is gone
    state.collection.update_one({'project': project}, {'$set': {'pending': True}})
    assert state.next_or_release(project) is False


def _worker_stops(job_id) -> bool:
    """Run the queue's handler of the project's rounds in a thread; whether it stopped within ``LOOP_TIMEOUT``."""
    from girder_jobs.models.job import Job

    from histomics_label.jobs import queue
    from histomics_label.jobs import rounds as round_jobs

    context = queue.WorkContext({'_id': None, 'job': job_id}, LOOP_TIMEOUT)
    thread = threading.Thread(target=round_jobs.run_rounds, args=(Job().load(job_id, force=True), context),
                              daemon=True)
    thread.start()
    thread.join(LOOP_TIMEOUT)
    return not thread.is_alive()


@pytest.mark.parametrize('lost', ['released', 'removed'])
def test_the_worker_loop_ends_when_its_lock_is_gone(server, project, admin, lost):
    from girder_jobs.models.job import Job

    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.models.training_state import TrainingState

    folder = project['folder']
    assert TrainingState().acquire(folder['_id'])
    job = round_jobs._create_job(folder, admin, 'test')
    if lost == 'released':
        TrainingState().reset_interrupted([])
    else:
        TrainingState().collection.delete_one({'project': folder['_id']})
    assert _worker_stops(job['_id'])
    # the one round ran (and failed: the project has no labels), and no other was started
    jobs = list(Job().find({'type': round_jobs.JOB_TYPE}))
    assert len(jobs) == 1 and jobs[0]['status'] == 4
    assert TrainingState().state(folder['_id'])['running'] is False


def test_a_change_while_a_round_runs_asks_for_exactly_one_more(db):
    from histomics_label.models.training_state import TrainingState

    state, project = TrainingState(), ObjectId()
    assert state.rerun_if_running(project) is False  # nothing runs: nothing to ask for
    assert state.state(project)['pending'] is False
    assert state.acquire(project)
    assert state.rerun_if_running(project) is True
    assert state.next_or_release(project) is True
    assert state.next_or_release(project) is False


def test_rounds_are_queue_work_a_cancel_releases_and_a_restart_runs_again(server, project, admin):
    """A round is work of the heavy-work queue (kind ``round``, one entry per project); cancelling it while it waits
    releases the project, so the next request queues a round; a round whose server died runs again after the
    restart and releases the project at its end."""
    import datetime
    import socket

    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.jobs import queue
    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.models.training_state import TrainingState
    from histomics_label.models.work_queue import QUEUED, RUNNING, HeavyWork
    from histomics_label.settings import TRAINING_JOBS

    folder = project['folder']
    ours = {'kind': 'round', 'project': folder['_id']}
    hold = threading.Event()
    queue.register('test-training-slot', lambda job, context: hold.wait(60), TRAINING_JOBS)
    blocker = round_jobs._create_job(folder, admin, 'test')  # holds the training slot: the round waits behind it
    queue.submit('test-training-slot', 'test-training-slot', blocker)
    deadline = time.monotonic() + 20
    while queue.position(blocker['_id']) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    started = round_jobs.request_round(folder, admin, 'test')
    entry = HeavyWork().collection.find_one(ours)
    assert started['status'] == 'started' and str(entry['job']) == started['job']
    assert round_jobs.request_round(folder, admin, 'again') == {'status': 'queued'}  # one round per project
    Job().cancelJob(Job().load(entry['job'], force=True))
    assert HeavyWork().collection.find_one(ours) is None
    assert TrainingState().state(folder['_id'])['running'] is False
    hold.set()
    queue.wait_until_idle(30)

    # a round whose server died mid-round: its entry runs again here, the flags cleared at load notwithstanding
    job = round_jobs._create_job(folder, admin, 'before the restart')
    dead = f'{socket.gethostname()}:999999999:0:dead'
    key = f'round:{folder["_id"]}:{job["_id"]}'
    HeavyWork().enqueue('round', key, job['_id'], folder['_id'])
    HeavyWork().collection.update_one({'key': key}, {'$set': {'status': RUNNING, 'owner': dead, 'attempts': 1,
                                                              'heartbeat': datetime.datetime.now(datetime.UTC)}})
    TrainingState().reset_interrupted([folder['_id']])
    assert queue.dispatcher().requeue_gone() == 1
    assert HeavyWork().collection.find_one({'key': key})['status'] in (QUEUED, RUNNING)
    queue.dispatcher().wake()
    round_jobs.wait_for_rounds(folder['_id'], timeout=120)
    ran = Job().load(job['_id'], force=True, includeLog=True)
    assert ran['status'] == JobStatus.ERROR and 'Started again (attempt 2)' in ''.join(ran['log'])  # no labels
    assert TrainingState().state(folder['_id'])['running'] is False


def test_label_writes_while_a_round_runs_ask_for_one_more_without_reading_every_label(server, project, admin,
                                                                                      monkeypatch):
    """Once ``retrainEvery`` labels have come in while a round runs, each further write only marks one more round
    wanted: none of them reads all of the project's labels (``Label.effective``, what checks that the labels can
    train), which at hundreds of thousands of labels took seconds per write. With no round running, the check is
    made and a round starts."""
    import json

    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.models.label import Label
    from histomics_label.models.training_state import TrainingState
    from histomics_label.projects import folders

    folder = project['folder']
    folders.save_config(folder, {**folders.config_of(folder), 'retrainEvery': 2})
    reads = []
    effective = Label.effective
    monkeypatch.setattr(Label, 'effective', lambda self, *args, **kwargs: reads.append(args) or effective(
        self, *args, **kwargs))

    def write(pairs):
        body = {'labels': [{'item': str(project['item']['_id']), 'segment': s, 'category': c} for s, c in pairs],
                'view': 'guided'}
        response = server.request(f'/histomics_label/project/{folder["_id"]}/labels', method='PUT', user=admin,
                                  type='application/json', body=json.dumps(body))
        assert response.status.startswith('200'), response.json
        return response.json['training']

    state = TrainingState()
    assert state.acquire(folder['_id'])  # a round runs
    assert write([(1, 'tumor'), (2, 'stroma')]) == {'status': 'queued'}
    assert write([(3, 'tumor'), (4, 'stroma')]) == {'status': 'queued'}
    assert reads == []
    assert state.state(folder['_id'])['pending'] is True
    state.release(folder['_id'])  # the round ended (without taking the pending one: a restart cleared it)
    started = write([(5, 'tumor'), (6, 'stroma')])
    assert started['status'] == 'started' and len(reads) == 1
    round_jobs.wait_for_rounds(folder['_id'], 120)


def test_a_round_asked_for_while_one_ran_does_not_start_when_the_labels_cannot_train(server, project, admin):
    """The round marked wanted during a round starts only if the labels still name two categories that train (its
    writes no longer check): here one label, so the running round fails and no second one is made."""
    import json

    from girder_jobs.models.job import Job

    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.models.training_state import TrainingState

    folder = project['folder']
    body = {'labels': [{'item': str(project['item']['_id']), 'segment': 1, 'category': 'tumor'}], 'view': 'guided'}
    assert server.request(f'/histomics_label/project/{folder["_id"]}/labels', method='PUT', user=admin,
                          type='application/json', body=json.dumps(body)).status.startswith('200')
    assert TrainingState().acquire(folder['_id'])
    assert TrainingState().rerun_if_running(folder['_id'])
    job = round_jobs._create_job(folder, admin, 'test')
    assert _worker_stops(job['_id'])
    jobs = list(Job().find({'type': round_jobs.JOB_TYPE}))
    assert [j['_id'] for j in jobs] == [job['_id']] and jobs[0]['status'] == 4  # the one round, failed
    assert TrainingState().state(folder['_id'])['running'] is False


def test_a_linear_round_cancelled_while_it_runs_stops_at_its_next_stage_and_writes_nothing(server, project, admin,
                                                                                         monkeypatch):
    """A linear round runs in the server's thread: cancelling its job stops it at the next stage (here the job is
    cancelled as the audit labels are read, before training), not after the whole round; no round is recorded and the
    slide's store keeps no new round. The job says which stage it had reached."""
    import json

    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import queue
    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.models.round import Round
    from histomics_label.projects import folders

    folder = project['folder']
    body = {'labels': [{'item': str(project['item']['_id']), 'segment': s, 'category': 'tumor' if s % 2 else 'stroma'}
                       for s in range(1, 21)], 'view': 'guided'}
    assert server.request(f'/histomics_label/project/{folder["_id"]}/labels', method='PUT', user=admin,
                          type='application/json', body=json.dumps(body)).status.startswith('200')
    job = round_jobs._create_job(folder, admin, 'test')
    audited_labels = round_jobs.audited_labels

    def cancelled_meanwhile(*args, **kwargs):
        Job().cancelJob(Job().load(job['_id'], force=True))
        return audited_labels(*args, **kwargs)

    monkeypatch.setattr(round_jobs, 'audited_labels', cancelled_meanwhile)
    context = queue.WorkContext({'_id': None, 'job': job['_id']}, 600)
    round_jobs.run_job(job, context)
    assert context.stopped == 'it was cancelled'
    stopped = Job().load(job['_id'], force=True, includeLog=True)
    assert stopped['status'] == JobStatus.CANCELED and 'Stopped: it was cancelled' in ''.join(stopped['log'])
    assert stopped['progress']['message'] == 'training'  # where it was: the first stage, not started
    assert Round().latest(folder['_id']) is None
    with SlideStore(folders.store_path(folder, project['item'])) as store:
        assert store.latest_round() is None
