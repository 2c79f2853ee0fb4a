"""Heavy work queued, bounded and resumable: every Girder process runs a dispatcher that takes work from the queue
in the database (``models.work_queue``) while it runs fewer than its limit.

Why: "Make segments" on a 50-slide project used to start a thread and a child process per slide at once, each with
a dask cluster of one worker per core, and kept what ran in process memory, so a second Girder process or a restart
could start the same slide twice. Here the limit is per process (the ``HEAVY_JOBS`` setting, default one), the
queue and who runs what live in the database, a process that dies stops beating and its work is queued again
(at once by the next process on its host, else after ``STALE_AFTER_S``), and every piece of work has a time limit
and can be cancelled from the job list. Work runs as Girder jobs, so the job panel shows it; a handler is
``(job, context)`` and kills its child process (``workers.child``) as soon as ``context.stop_reason`` gives a reason
(a cancel, the time limit). With the ``girder_worker`` executor a slide's segment work and a CNN's rounds run as
Celery tasks on the workers instead (``jobs.remote``, ``jobs.remote_rounds``); the queue keeps its semantics (one
piece per slide, cancel, time limit, requeue after a restart) and only hands out more segment work at once
(``WORKER_JOBS``), since it no longer runs in this process.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import NoReturn

from bson.objectid import ObjectId
from girder.models.setting import Setting
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.errors import HistomicsLabelError
from ..models.work_queue import HeavyWork
from ..settings import HEAVY_JOBS, JOB_TIMEOUT_MINUTES

logger = logging.getLogger(__name__)

HEARTBEAT_S = 5.0
"""How often a dispatcher marks its running work alive."""
STALE_AFTER_S = 60.0
"""Running work whose process has not beaten for this long is queued again by any other process."""
POLL_S = 1.0
"""How often a dispatcher looks for queued work it was not told about, and a supervisor for a cancel."""
MAX_ATTEMPTS = 3
"""Starts of one piece of work before it fails: work whose process keeps dying (say, out of memory) must stop."""

Handler = Callable[[dict, 'WorkContext'], None]
NotRun = Callable[[dict], None]
_handlers: dict[str, Handler] = {}
_not_run: dict[str, NotRun] = {}
_limits: dict[str, str | Callable[[], str]] = {}
_dispatcher: Dispatcher | None = None
_dispatcher_lock = threading.Lock()


class WorkStopped(HistomicsLabelError):
    """The work was cancelled or ran past its time limit; its child process was killed."""


def register(kind: str, handler: Handler, limit_setting: str | Callable[[], str] = HEAVY_JOBS,
             not_run: NotRun | None = None) -> None:
    """Run ``handler(job, context)`` for queued work of ``kind``, at most ``limit_setting`` (a setting's key, or a
    function that names it: the limit depends on where the work runs) pieces of the kinds that share it at once per
    process; ``not_run(entry)`` when a piece ends without its handler running
    (cancelled while queued, or given up after ``MAX_ATTEMPTS``), so that what it held is released."""
    _handlers[kind] = handler
    _limits[kind] = limit_setting
    if not_run is not None:
        _not_run[kind] = not_run


class WorkContext:
    """What a handler needs from the queue: when to stop, and a supervisor for its child process."""

    def __init__(self, entry: dict, timeout_s: float) -> None:
        self.entry = entry
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.stopped: str | None = None
        self.timed_out = False

    def stop_reason(self) -> str | None:
        """Why the work must stop now (cancelled in the job list, or past its time limit), or None."""
        if time.monotonic() > self.deadline:
            self.timed_out = True
            return f'it ran past its time limit ({self.timeout_s / 60:g} min, setting {JOB_TIMEOUT_MINUTES})'
        job = Job().load(self.entry['job'], force=True, includeLog=False)
        if job is None or job['status'] == JobStatus.CANCELED:
            return 'it was cancelled'
        return None

    def stop_if_asked(self) -> None:
        """Raise ``WorkStopped`` when the work must stop now (``stop_reason``): for work done in this thread, called
        where stopping leaves nothing half-written."""
        reason = self.stop_reason()
        if reason:
            self.stop_with(reason)

    def stop_with(self, reason: str) -> NoReturn:
        """Record why the work stopped (its child was killed for ``reason``) and raise ``WorkStopped``."""
        self.stopped = reason
        raise WorkStopped(f'Stopped: {reason}')

    def follow(self, job: dict) -> None:
        """The work goes on as ``job`` (a round after a round): its cancel now stops it."""
        HeavyWork().follow(self.entry, job['_id'])
        self.entry = {**self.entry, 'job': job['_id']}

    def record_stop(self, job: dict) -> None:
        """Say in the job why the work stopped: past its time limit it failed; a cancelled job stays cancelled."""
        job = Job().load(job['_id'], force=True)
        if self.timed_out:
            Job().updateJob(job, status=JobStatus.ERROR, log=f'Error: stopped: {self.stopped}\n')
        elif job['status'] == JobStatus.CANCELED:
            Job().updateJob(job, log=f'Stopped: {self.stopped}\n')
        else:
            Job().updateJob(job, status=JobStatus.CANCELED, log=f'Stopped: {self.stopped}\n')


def submit(kind: str, key: str, job: dict, project_id: ObjectId | None = None,
           item_id: ObjectId | None = None) -> tuple[dict, bool]:
    """Queue ``kind`` work for ``key`` (one piece at a time per key) as Girder ``job``, of a project and slide where
    it has them; returns the queue entry and whether it was queued now (False: work for ``key`` was queued or
    running already)."""
    entry, new = HeavyWork().enqueue(kind, key, job['_id'], project_id, item_id, timeout_minutes() * 60)
    if new:
        dispatcher().wake()
    return entry, new


def _withdraw(job_id: ObjectId) -> dict | None:
    """Take the job's queued work out of the queue (its kind's ``not_run`` told); the entry, or None."""
    entry = HeavyWork().withdraw(job_id)
    if entry is not None:
        _ended_without_running(entry)
    return entry


def _ended_without_running(entry: dict) -> None:
    if entry['kind'] in _not_run:
        _not_run[entry['kind']](entry)


def cancel_project_work(project_id: ObjectId, job_id: str) -> dict:
    """Cancel the queued or running work of job ``job_id`` of project ``project_id`` as the job list's Cancel does;
    returns the job's id and status. A ``HistomicsLabelError`` when it is no such work."""
    entry = HeavyWork().of_job(ObjectId(job_id)) if ObjectId.is_valid(job_id) else None
    if entry is None or entry.get('project') != project_id:
        raise HistomicsLabelError(f'Job {job_id} is no queued or running work of this project (it may have ended)')
    job = Job().cancelJob(Job().load(entry['job'], force=True))
    return {'job': str(job['_id']), 'status': job['status']}


def position(job_id: ObjectId) -> int | None:
    """The job's place in the queue (1: next; 0: running), or None when it is not queued."""
    entry = HeavyWork().of_job(job_id)
    return None if entry is None else HeavyWork().position(entry)


def project_work(project_id: ObjectId) -> dict:
    """The project's queued and running work, in queue order, with positions; and the per-process limit."""
    entries = [{'kind': e['kind'], 'item': e['item'] and str(e['item']), 'job': str(e['job']), 'status': e['status'],
                'position': e['position'], 'queued': e['created'], 'attempts': e['attempts']}
               for e in HeavyWork().of_project(project_id)]
    return {'work': entries, 'perProcess': limit()}


def on_job_cancel(event) -> None:
    """``jobs.cancel``: queued work of the job leaves the queue at once, said in its log (running work stops
    through its supervisor, which sees the job cancelled)."""
    if _withdraw(event.info['_id']) is not None:
        Job().updateJob(event.info, log='Cancelled while queued.\n')


def limit() -> int:
    """Pieces of segment work one process runs at once (``HEAVY_JOBS``)."""
    return int(Setting().get(HEAVY_JOBS))


def timeout_minutes() -> float:
    return float(Setting().get(JOB_TIMEOUT_MINUTES))


def dispatcher() -> Dispatcher:
    """This process's dispatcher, started on first use."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = Dispatcher()
            _dispatcher.start()
        return _dispatcher


def resume() -> None:
    """Start this process's dispatcher at once when work is queued or running (a server restarted with work left);
    otherwise it starts with the first work submitted here."""
    if HeavyWork().collection.count_documents({}, limit=1):
        dispatcher()


def wait_until_idle(timeout: float = 600.0, kinds: tuple[str, ...] | None = None) -> None:
    """Block until nothing of ``kinds`` (every kind: None) is queued or running (tests and the demo use it)."""
    deadline = time.monotonic() + timeout
    query = {} if kinds is None else {'kind': {'$in': list(kinds)}}
    while HeavyWork().collection.count_documents(query):
        if time.monotonic() > deadline:
            raise TimeoutError(f'heavy work still queued or running after {timeout:g} s')
        time.sleep(0.2)


class Dispatcher:
    """Takes queued work while this process runs fewer pieces of each kind than its limit allows
    (``_open_kinds``), each in a thread of its own."""

    def __init__(self) -> None:
        self.owner = f'{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}:{uuid.uuid4().hex[:8]}'
        self._wake = threading.Event()
        self._active: dict[ObjectId, tuple[str, threading.Thread]] = {}
        self._thread = threading.Thread(target=self._loop, daemon=True, name='histomics-label-dispatcher')

    def start(self) -> None:
        self.requeue_gone()
        self._thread.start()

    def requeue_gone(self) -> int:
        """Queue again the running work of this host's processes that no longer run; returns how many pieces."""
        gone = [owner for owner in HeavyWork().running_owners() if self._is_gone(owner)]
        count = HeavyWork().requeue_owners(gone)
        if count:
            logger.info('Queued again %d pieces of heavy work of stopped processes %s', count, ', '.join(gone))
        return count

    def wake(self) -> None:
        self._wake.set()

    def _is_gone(self, owner: str) -> bool:
        """Whether ``owner`` is a process of this host that no longer runs: its pid is free, a zombie (a parent
        that reaps slowly) or another process's now (its start time differs). Another host's is judged by its beat."""
        host, pid, started, _ = (owner.split(':') + ['', '', '', ''])[:4]
        if host != socket.gethostname() or not pid.isdigit() or owner == self.owner:
            return False
        if int(pid) == os.getpid():  # an earlier life of this process id (a container's restarted server)
            return True
        now = process_start(int(pid))
        return now is None or (started.isdigit() and int(started) != now)

    def _loop(self) -> None:
        beaten = 0.0
        while True:
            try:
                if time.monotonic() - beaten >= HEARTBEAT_S:
                    HeavyWork().beat(self.owner)
                    stale = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=STALE_AFTER_S)
                    HeavyWork().requeue_stale(stale)
                    self.requeue_gone()
                    beaten = time.monotonic()
                self._active = {key: (kind, t) for key, (kind, t) in self._active.items() if t.is_alive()}
                while True:
                    open_kinds = self._open_kinds()
                    entry = HeavyWork().claim(self.owner, open_kinds) if open_kinds else None
                    if entry is None:
                        break
                    runner = threading.Thread(target=self._run, args=(entry,), daemon=True,
                                              name=f'histomics-label-work-{entry["kind"]}-{entry["key"]}')
                    self._active[entry['_id']] = (entry['kind'], runner)
                    runner.start()
            except Exception:  # the database was unreachable for a moment: try again on the next pass
                logger.exception('The heavy-work dispatcher failed a pass')
            self._wake.wait(POLL_S)
            self._wake.clear()

    def _open_kinds(self) -> list[str]:
        """The kinds of work this process may start now: those whose limit (shared by the kinds of one setting)
        its running work leaves room for. Work of a kind not registered here waits (a process that has not
        imported its module yet, or a newer server's kind)."""
        settings = {kind: limit() if callable(limit) else limit for kind, limit in _limits.items()}
        running: dict[str, int] = {}
        for kind, _ in self._active.values():
            running[settings[kind]] = running.get(settings[kind], 0) + 1
        full = {setting for setting, count in running.items() if count >= int(Setting().get(setting))}
        return [kind for kind, setting in settings.items() if setting not in full]

    def _run(self, entry: dict) -> None:
        try:
            job = Job().load(entry['job'], force=True)
            if job is None or job['status'] == JobStatus.CANCELED:
                if job is not None:
                    Job().updateJob(job, status=JobStatus.CANCELED)
                _ended_without_running(entry)
            elif entry['attempts'] > MAX_ATTEMPTS:
                fail(job, f'Error: started {MAX_ATTEMPTS} times, and each time the server process that ran it '
                           'stopped (killed, or out of memory); not started again\n')
                _ended_without_running(entry)
            else:
                if entry['attempts'] > 1:
                    Job().updateJob(job, log=f'Started again (attempt {entry["attempts"]}): the server process '
                                             'that ran it stopped.\n')
                _handlers[entry['kind']](job, WorkContext(entry, entry.get('timeout') or timeout_minutes() * 60))
        except Exception:
            logger.exception('Heavy work %s of %s failed', entry['kind'], entry['key'])
        finally:
            HeavyWork().finish(entry)
            self.wake()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), or None when it is gone or a zombie."""
    try:
        fields = open(f'/proc/{pid}/stat').read().rpartition(')')[2].split()
    except OSError:
        return None
    return None if fields[0] in ('Z', 'X') else int(fields[19])


def fail(job: dict, log: str) -> None:
    """End ``job`` in error with ``log`` (through *running*: Girder allows an error only from there)."""
    if job['status'] != JobStatus.RUNNING:
        job = Job().updateJob(job, status=JobStatus.RUNNING)
    Job().updateJob(job, status=JobStatus.ERROR, log=log)
