"""The heavy-work queue (``jobs/queue.py``): never more running than the limit, one piece per key, cancel and time
limit kill the child process, work of a process that died is queued again, work that keeps killing its process
stops. The work here is a real child process (a Python interpreter that sleeps), run the way the segment jobs run
theirs; the segment jobs themselves are tested through the queue in ``test_segments_and_annotations.py``."""

import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.plugin('histomics_label')


@pytest.fixture
def queue(server, admin):
    """The queue with a ``sleep`` kind whose handler runs a child that sleeps ``job.kwargs.seconds``, killed when the
    queue's context says to stop, recording when each ran; returns (module, records, make_job)."""
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.jobs import queue as work_queue
    from histomics_label.jobs.workers.child import follow_child

    records, lock = [], threading.Lock()

    def sleep(job, context):
        job = Job().updateJob(job, status=JobStatus.RUNNING)
        started = time.monotonic()
        command = [sys.executable, '-c', f'import time; time.sleep({job["kwargs"]["seconds"]})']
        try:
            stopped = follow_child(command, None, lambda line: None, context.stop_reason, work_queue.POLL_S, 'sleep')
            if stopped:
                context.stop_with(stopped)
        except work_queue.WorkStopped as exc:
            context.record_stop(job)
            outcome = str(exc)
        else:
            Job().updateJob(job, status=JobStatus.SUCCESS)
            outcome = 'done'
        with lock:
            records.append({'key': job['kwargs']['key'], 'start': started, 'end': time.monotonic(),
                            'outcome': outcome})

    work_queue.register('sleep', sleep)

    def make_job(key: str, seconds: float) -> dict:
        job = Job().createLocalJob(module='histomics_label.jobs.queue', function='position', title=f'sleep {key}',
                                   type='test.sleep', user=admin, kwargs={'key': key, 'seconds': seconds})
        return Job().updateJob(job, status=JobStatus.QUEUED)  # as the product's jobs are when they are queued

    yield work_queue, records, make_job
    work_queue.wait_until_idle(60)


def _most_at_once(records: list[dict]) -> int:
    edges = sorted([(r['start'], 1) for r in records] + [(r['end'], -1) for r in records], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def test_never_more_running_than_the_limit_and_each_piece_once(queue):
    from girder.models.setting import Setting

    from histomics_label.settings import HEAVY_JOBS

    work_queue, records, make_job = queue
    Setting().set(HEAVY_JOBS, 2)
    for k in range(8):
        _, new = work_queue.submit('sleep', f'slide-{k}', make_job(f'slide-{k}', 0.4))
        assert new
    work_queue.wait_until_idle(60)
    assert sorted(r['key'] for r in records) == [f'slide-{k}' for k in range(8)]
    assert all(r['outcome'] == 'done' for r in records)
    assert _most_at_once(records) == 2  # the limit, reached: the queue is not merely serial


def test_a_key_is_queued_once_at_a_time(queue):
    from girder.models.setting import Setting

    from histomics_label.settings import HEAVY_JOBS

    work_queue, records, make_job = queue
    Setting().set(HEAVY_JOBS, 1)
    first, new = work_queue.submit('sleep', 'slide', make_job('slide', 0.5))
    again, new_again = work_queue.submit('sleep', 'slide', make_job('slide', 0.5))
    assert new and not new_again and again['job'] == first['job']
    work_queue.wait_until_idle(60)
    assert [r['key'] for r in records] == ['slide']
    _, new_after = work_queue.submit('sleep', 'slide', make_job('slide', 0.1))  # finished: it may be queued again
    assert new_after


def test_cancel_withdraws_queued_work_and_kills_running_work(queue):
    from girder.models.setting import Setting
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.settings import HEAVY_JOBS

    work_queue, records, make_job = queue
    Setting().set(HEAVY_JOBS, 1)
    running, waiting = make_job('running', 60), make_job('waiting', 0.1)
    work_queue.submit('sleep', 'running', running)
    work_queue.submit('sleep', 'waiting', waiting)
    deadline = time.monotonic() + 20
    while work_queue.position(running['_id']) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert work_queue.position(running['_id']) == 0 and work_queue.position(waiting['_id']) == 1
    # the job list's Cancel (Girder's cancelJob and its jobs.cancel event): queued work leaves the queue at once
    Job().cancelJob(Job().load(waiting['_id'], force=True))
    cancelled = Job().load(waiting['_id'], force=True, includeLog=True)
    assert work_queue.position(waiting['_id']) is None and cancelled['status'] == JobStatus.CANCELED
    assert 'Cancelled while queued.\n' in cancelled['log']
    assert work_queue.position(running['_id']) == 0  # running work is stopped by its supervisor, which sees this:
    cancelled_at = time.monotonic()
    Job().cancelJob(Job().load(running['_id'], force=True))
    work_queue.wait_until_idle(30)
    assert [r['key'] for r in records] == ['running']  # the withdrawn work never ran
    assert records[0]['outcome'] == 'Stopped: it was cancelled'
    assert records[0]['end'] - cancelled_at < 10  # killed, not left to sleep its minute
    assert Job().load(running['_id'], force=True)['status'] == JobStatus.CANCELED


def test_work_past_its_time_limit_is_killed_and_fails(queue):
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.models.work_queue import HeavyWork

    work_queue, records, make_job = queue
    job = make_job('slow', 60)
    HeavyWork().enqueue('sleep', 'slow', job['_id'], timeout_s=1.0)
    work_queue.dispatcher().wake()
    work_queue.wait_until_idle(30)
    assert records[0]['outcome'].startswith('Stopped: it ran past its time limit')
    assert records[0]['end'] - records[0]['start'] < 10
    assert Job().load(job['_id'], force=True)['status'] == JobStatus.ERROR


def test_work_of_a_process_that_died_is_queued_again_and_run(queue):
    import datetime
    import socket

    from histomics_label.models.work_queue import RUNNING, HeavyWork

    work_queue, records, make_job = queue
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    owner = f'{socket.gethostname()}:{int(dead.stdout)}:0badc0de'  # a process of this host that has exited
    job = make_job('orphan', 0.1)
    entry, _ = HeavyWork().enqueue('sleep', 'orphan', job['_id'])
    HeavyWork().collection.update_one({'_id': entry['_id']}, {'$set': {
        'status': RUNNING, 'owner': owner, 'attempts': 1,
        'heartbeat': datetime.datetime.now(datetime.UTC)}})  # beating "now": only the dead pid gives it away
    fresh = work_queue.Dispatcher()  # what a restarted server makes at load, and starts
    assert fresh._is_gone(owner) and not fresh._is_gone(fresh.owner)
    assert fresh.requeue_gone() == 1
    work_queue.dispatcher().wake()
    work_queue.wait_until_idle(30)
    assert [(r['key'], r['outcome']) for r in records] == [('orphan', 'done')]


def test_a_zombie_or_a_pid_taken_by_another_process_is_gone_and_a_live_process_is_not(queue):
    """A killed server whose parent has not reaped it yet (a zombie) is gone, and so is a pid that a later process
    took (another start time): both lose their work at once, not after ``STALE_AFTER_S``."""
    import socket

    work_queue, _records, _make_job = queue
    host, fresh = socket.gethostname(), work_queue.Dispatcher()
    with subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']) as live:
        started = work_queue.process_start(live.pid)
        assert started is not None
        assert not fresh._is_gone(f'{host}:{live.pid}:{started}:feed')
        assert not fresh._is_gone(f'{host}:{live.pid}:feed')  # an owner named before start times were recorded
        assert fresh._is_gone(f'{host}:{live.pid}:{started + 1}:feed')  # the pid is another process's now
        live.kill()
        deadline = time.monotonic() + 10
        while work_queue.process_start(live.pid) is not None and time.monotonic() < deadline:
            time.sleep(0.02)  # exited, not reaped: a zombie until the ``with`` block waits for it
        assert fresh._is_gone(f'{host}:{live.pid}:{started}:feed')


def test_work_queued_in_the_same_millisecond_runs_in_the_order_queued(queue):
    from histomics_label.models.work_queue import RUNNING, HeavyWork

    work_queue, _records, make_job = queue
    busy, _ = work_queue.submit('sleep', 'busy', make_job('busy', 3))  # the dispatcher at its limit takes no more
    deadline = time.monotonic() + 10
    while HeavyWork().of_job(busy['job'])['status'] != RUNNING and time.monotonic() < deadline:
        time.sleep(0.02)
    entries = [HeavyWork().enqueue('held', f'same-{index}', make_job(f'same-{index}', 0)['_id'])[0]
               for index in range(4)]
    HeavyWork().collection.update_many({'key': {'$regex': '^same-'}}, {'$set': {'created': entries[0]['created']}})
    stored = [HeavyWork().of_job(entry['job']) for entry in entries]
    assert [HeavyWork().position(entry) for entry in stored] == [1, 2, 3, 4]
    assert [HeavyWork().claim('test:1:held')['key'] for _ in entries] == [f'same-{index}' for index in range(4)]
    for entry in entries:
        HeavyWork().finish(entry)


def test_a_silent_process_loses_its_work_to_the_others(queue):
    import datetime

    from histomics_label.models.work_queue import QUEUED, RUNNING, HeavyWork

    work_queue, _records, make_job = queue
    entry, _ = HeavyWork().enqueue('sleep', 'elsewhere', make_job('elsewhere', 0.1)['_id'])
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=work_queue.STALE_AFTER_S + 5)
    HeavyWork().collection.update_one({'_id': entry['_id']}, {'$set': {
        'status': RUNNING, 'owner': 'another-host:1:feed', 'heartbeat': long_ago}})
    assert not work_queue.Dispatcher()._is_gone('another-host:1:feed')  # another host: judged by its beat only
    assert HeavyWork().requeue_stale(long_ago + datetime.timedelta(seconds=1)) == 1
    assert HeavyWork().collection.find_one({'_id': entry['_id']})['status'] == QUEUED


def test_work_that_keeps_killing_its_process_stops(queue):
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.models.work_queue import HeavyWork

    work_queue, records, make_job = queue
    job = make_job('deadly', 0.1)
    entry, _ = HeavyWork().enqueue('sleep', 'deadly', job['_id'])
    HeavyWork().collection.update_one({'_id': entry['_id']}, {'$set': {'attempts': work_queue.MAX_ATTEMPTS}})
    work_queue.dispatcher().wake()
    work_queue.wait_until_idle(30)
    assert records == []
    failed = Job().load(job['_id'], force=True, includeLog=True)
    assert failed['status'] == JobStatus.ERROR and 'not started again' in ''.join(failed['log'])


def test_the_project_sees_its_queue_and_cancels_through_the_job_list(queue, server, admin, user, bare_project):
    from girder.models.setting import Setting
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job
    from pytest_girder.assertions import assertStatusOk

    from histomics_label.settings import HEAVY_JOBS

    work_queue, records, make_job = queue
    Setting().set(HEAVY_JOBS, 1)
    folder, item = bare_project['folder'], bare_project['item']
    blocker, waiting = make_job('blocker', 60), make_job('waiting', 0.1)
    work_queue.submit('sleep', 'blocker', blocker)  # another project's work, ahead in the server's queue
    work_queue.submit('sleep', str(item['_id']), waiting, folder['_id'], item['_id'])
    deadline = time.monotonic() + 20
    while work_queue.position(blocker['_id']) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    response = server.request(f'/histomics_label/project/{folder["_id"]}/work', user=user)
    assertStatusOk(response)
    assert response.json['perProcess'] == 1
    assert [(w['item'], w['job'], w['status'], w['position']) for w in response.json['work']] == [
        (str(item['_id']), str(waiting['_id']), 'queued', 1)]
    cancelled = server.request(f'/job/{waiting["_id"]}/cancel', method='PUT', user=admin, isJson=False)
    assert cancelled.output_status.startswith(b'200'), cancelled.body
    assert server.request(f'/histomics_label/project/{folder["_id"]}/work', user=user).json['work'] == []
    assert Job().load(waiting['_id'], force=True)['status'] == JobStatus.CANCELED
    Job().cancelJob(Job().load(blocker['_id'], force=True))
    work_queue.wait_until_idle(30)
    assert [r['key'] for r in records] == ['blocker']


def test_a_project_admin_cancels_work_another_user_started(queue, server, admin, user, bare_project):
    """Girder's job cancel lets only the job's owner; the project route lets any admin of the project, and only its
    own work."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.setting import Setting
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job
    from pytest_girder.assertions import assertStatus, assertStatusOk

    from histomics_label.settings import HEAVY_JOBS

    work_queue, records, make_job = queue
    Setting().set(HEAVY_JOBS, 1)
    folder, item = bare_project['folder'], bare_project['item']
    blocker, waiting = make_job('blocker', 60), make_job('waiting', 0.1)  # both started by admin
    work_queue.submit('sleep', 'blocker', blocker)  # another project's work, ahead in the server's queue
    work_queue.submit('sleep', str(item['_id']), waiting, folder['_id'], item['_id'])
    deadline = time.monotonic() + 20
    while work_queue.position(blocker['_id']) != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    route = f'/histomics_label/project/{folder["_id"]}/work'
    assertStatus(server.request(f'/job/{waiting["_id"]}/cancel', method='PUT', user=user), 403)
    assertStatus(server.request(f'{route}/{waiting["_id"]}/cancel', method='POST', user=user), 403)  # READ only
    Folder().setUserAccess(folder, user, AccessType.ADMIN, save=True)
    assertStatus(server.request(f'{route}/{blocker["_id"]}/cancel', method='POST', user=user), 400)  # not its own
    assertStatus(server.request(f'{route}/not-an-id/cancel', method='POST', user=user), 400)
    cancelled = server.request(f'{route}/{waiting["_id"]}/cancel', method='POST', user=user)
    assertStatusOk(cancelled)
    assert cancelled.json == {'job': str(waiting['_id']), 'status': JobStatus.CANCELED}
    assert server.request(route, user=user).json['work'] == []
    assert Job().load(waiting['_id'], force=True)['status'] == JobStatus.CANCELED
    assert Job().load(blocker['_id'], force=True)['status'] != JobStatus.CANCELED
    Job().cancelJob(Job().load(blocker['_id'], force=True))
    work_queue.wait_until_idle(30)
    assert [r['key'] for r in records] == ['blocker']


def test_a_kinds_limit_follows_the_setting_its_function_names(queue):
    """Segment work is limited by ``HEAVY_JOBS`` when it runs in the server and by ``WORKER_JOBS`` when it is handed
    to girder_worker: the limit is read when work is taken, so a change of executor applies to the next piece."""
    from girder.models.setting import Setting

    from histomics_label.settings import HEAVY_JOBS, WORKER_JOBS

    work_queue, records, make_job = queue
    named = {'setting': HEAVY_JOBS}
    work_queue.register('switched', work_queue._handlers['sleep'], limit_setting=lambda: named['setting'])
    Setting().set(HEAVY_JOBS, 1)
    Setting().set(WORKER_JOBS, 3)
    for k in range(3):
        work_queue.submit('switched', f'server-{k}', make_job(f'server-{k}', 0.4))
    work_queue.wait_until_idle(60)
    assert _most_at_once(records) == 1
    records.clear()
    named['setting'] = WORKER_JOBS
    for k in range(6):
        work_queue.submit('switched', f'worker-{k}', make_job(f'worker-{k}', 0.6))
    work_queue.wait_until_idle(60)
    assert sorted(r['key'] for r in records) == [f'worker-{k}' for k in range(6)]
    assert _most_at_once(records) == 3


@pytest.mark.parametrize(('value', 'accepted'), [('server', True), ('girder_worker', True), ('cli_image', True),
                                                 ('celery', False), ('', False)])
def test_the_executor_setting_takes_only_known_executors(server, value, accepted):
    from girder.exceptions import ValidationException
    from girder.models.setting import Setting

    from histomics_label.settings import EXECUTOR

    assert Setting().get(EXECUTOR) == 'server'  # without workers, the work runs where it always could
    if accepted:
        Setting().set(EXECUTOR, value)
        assert Setting().get(EXECUTOR) == value
    else:
        with pytest.raises(ValidationException, match='server, girder_worker, cli_image'):
            Setting().set(EXECUTOR, value)


@pytest.mark.parametrize(('environment', 'executor'), [('girder_worker', 'girder_worker'), ('server', 'server'),
                                                       ('cli_image', 'cli_image'), ('celery', 'server')])
def test_a_deployment_chooses_the_executor_by_its_environment(server, monkeypatch, environment, executor):
    """A compose file sets ``HISTOMICS_LABEL_HEAVY_WORK_EXECUTOR``; an unknown value leaves the work in the server
    (logged) instead of breaking every request that reads the setting."""
    from girder.models.setting import Setting

    from histomics_label.settings import EXECUTOR

    monkeypatch.setenv('HISTOMICS_LABEL_HEAVY_WORK_EXECUTOR', environment)
    assert Setting().get(EXECUTOR) == executor
