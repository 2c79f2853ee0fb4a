"""The plugin's girder_worker tasks: a slide's segments and features (or a part of its features), and a project's CNN
rounds, on a worker machine.

A DSA's girder_worker workers find these tasks through the ``girder_worker_plugins`` entry point (``celery_plugin``)
once this package is installed beside them. A worker shares only the broker and Girder's API with the server, as a
worker on another machine does: it reads the slide where Girder's files lie when it can see them (the worker plugin's
*direct path* setting), else downloads the file with the task's token; it makes the store with the same child process
the server's own executor runs (``workers.child``) and uploads it to the item the server named, which copies it into
place (``jobs.remote``); for a very large slide it sends the segments alone, and tasks on several workers compute a
range of the store's rows each (``jobs.remote_features``). A round gets the stores' copies in Girder (kept between
rounds: ``store_cache``) and each slide's latest round, trains with the server's own round child, and uploads the new
rounds and rankings (``jobs.remote_rounds``). Progress, the log and the end reach the task's Girder job through
girder_worker's job manager; a cancel in Girder stops the child within seconds. Nothing here imports girder
or the engine.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import requests
from celery.signals import task_revoked
from girder_worker.app import app
from girder_worker.utils import JobSpecNotFound, JobStatus, _job_manager

from . import store_cache
from .celery_plugin import BEAT_S, FEATURES_TASK, ROUND_ANSWER, ROUND_TASK, SEGMENTS_TASK, STORE_NAME, part_name
from .child import ChildFailed, run_feature_part_child, run_round_child, run_segments_child

POLL_S = min(5.0, BEAT_S)
"""How often a running task asks Girder whether its job was cancelled."""
UNREACHABLE_S = 300.0
"""How long a task tries to fetch its slide from, or send its store to, a Girder that does not answer."""
UNREACHABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
"""What a request to a Girder that stopped answering (mid-answer included) raises."""
T = TypeVar('T')
logger = logging.getLogger(__name__)


@app.task(bind=True, name=SEGMENTS_TASK)
def make_segments(self, pipeline: dict, inputs: dict, output_item: str, rows_per_part: int | None = None) -> dict:
    """Make the segments and features ``pipeline`` (a ``PipelineConfig`` as a dict) asks for, its ``inputs`` (the
    slide, and an imported segment-id image: see ``local_file``) read here, and upload the store to
    ``output_item``; with ``rows_per_part``, a slide of more segments than that gets its segments only (its
    features are made in parts: ``make_feature_part``). Returns the uploaded file's name, or ``stopped`` when the
    job was cancelled."""
    client, manager, reporter, stopped = _begin(self)
    if stopped:
        return _stopped(manager, stopped)
    with tempfile.TemporaryDirectory(prefix='histomics-label-') as work:
        for field, source in inputs.items():
            pipeline[field] = local_file(client, source, Path(work) / field, reporter)
        store = Path(work) / STORE_NAME
        pipeline['store'] = str(store)
        with _failure_in_job(manager):
            stopped = run_segments_child(pipeline, reporter.progress, reporter.stop_reason, POLL_S, rows_per_part)
        stopped = _send_unless_stopped(client, reporter, stopped, output_item, store, 'the store')
    return _stopped(manager, stopped) if stopped else {'store': STORE_NAME}


@app.task(bind=True, name=FEATURES_TASK)
def make_feature_part(self, pipeline: dict, inputs: dict, rows: list[int], output_item: str) -> dict:
    """Compute the features ``pipeline`` asks for of the store's rows ``[start, stop)`` into a part file and upload
    it to ``output_item`` (``part_name``). ``inputs`` are the slide (and an imported segment-id image) as for
    ``make_segments``, and the ``store`` of segments only, kept in this worker's cache (``store_cache``) for the
    slide's other parts. Returns the part's name, or ``stopped`` when the job was cancelled."""
    client, manager, reporter, stopped = _begin(self)
    if stopped:
        return _stopped(manager, stopped)
    with tempfile.TemporaryDirectory(prefix='features-', dir=store_cache.cache_dir()) as folder:
        work = Path(folder)
        for field, source in inputs.items():
            if field != 'store':
                pipeline[field] = local_file(client, source, work / field, reporter)
        reporter.progress(0.0, 'fetching the store')
        pipeline['store'] = str(work / STORE_NAME)
        store_cache.place_store(inputs['store'], _downloader(client, inputs['store']), Path(pipeline['store']))
        part = work / part_name((rows[0], rows[1]))
        with _failure_in_job(manager):
            stopped = run_feature_part_child(pipeline, (rows[0], rows[1]), str(part), reporter.progress,
                                             reporter.stop_reason, POLL_S)
        stopped = _send_unless_stopped(client, reporter, stopped, output_item, part, 'the part')
    return _stopped(manager, stopped) if stopped else {'part': part.name}


@app.task(bind=True, name=ROUND_TASK)
def train_round(self, request: dict, inputs: list[dict], output_item: str) -> dict:
    """Train the round ``request`` describes (``workers.rounds``' request, without the server's paths) on the slides
    ``inputs`` names (each slide's ``store`` copy in Girder, see ``store_cache``, and its latest ``round`` or None),
    and upload to ``output_item`` each slide's new round, the rankings of every acquisition function and the answer
    (``ROUND_ANSWER``); returns the answer, or ``stopped`` when the job was cancelled."""
    client, manager, reporter, stopped = _begin(self)
    if stopped:
        return _stopped(manager, stopped)
    with tempfile.TemporaryDirectory(prefix='round-', dir=store_cache.cache_dir()) as folder:
        work = Path(folder)
        fetched = 0
        for position, (slide, source) in enumerate(zip(request['slides'], inputs, strict=True)):
            reporter.progress(0.2 * position / len(inputs), f'fetching store {position + 1} of {len(inputs)}')
            slide['store'] = str(work / f'slide-{position}.h5')
            fetched += store_cache.place_store(source['store'], _downloader(client, source['store']),
                                               Path(slide['store']))
            if source['round']:
                slide['previous'] = local_file(client, source['round'], work / f'previous-{position}', reporter)
            slide['export'] = str(work / f'round-{position}.h5')
        manager.write(f'Stores: {len(inputs) - fetched} of {len(inputs)} from this worker\'s cache\n')
        request['outputs'].update(rankings=str(work / 'rankings'), index=False)
        reporter.progress(0.2, 'training')
        with _failure_in_job(manager):
            answer = run_round_child(request, reporter.stop_reason, POLL_S)
        stopped = answer if isinstance(answer, str) else reporter.stop_reason()
        if not stopped:
            rankings = sorted((work / 'rankings').glob('*.npz'))  # <key>.<function>.npz
            answer.update(rounds=[Path(slide['export']).name for slide in request['slides']],
                          rankings=[path.name for path in rankings],
                          key=rankings[0].name.split('.', 1)[0] if rankings else None)
            (work / ROUND_ANSWER).write_text(json.dumps(answer))
            reporter.progress(0.9, 'sending the round to Girder')
            stopped = _upload(client, output_item, [Path(slide['export']) for slide in request['slides']]
                              + rankings + [work / ROUND_ANSWER], reporter)
        if stopped:
            return _stopped(manager, stopped)
    return answer


@task_revoked.connect
def _end_discarded(sender=None, request=None, **_) -> None:
    """End the job of a task of ours that a worker discards unrun, revoked while it waited (a slide's other feature
    parts, once one failed): girder_worker's own handler of this signal reads the request's message, which Celery
    does not pass (it passes the task's context), so the job stayed "canceling" for ever."""
    if getattr(sender, 'name', None) not in (SEGMENTS_TASK, FEATURES_TASK, ROUND_TASK):
        return
    try:
        _job_manager(request=request).updateStatus(JobStatus.CANCELED)
    except (JobSpecNotFound, requests.RequestException) as exc:
        logger.warning('The job of the discarded task %s could not be ended: %s', getattr(request, 'id', '?'), exc)


def _stopped(manager, reason: str) -> dict:
    """What a task that stopped early returns, said in its job too. A task cancelled before it started (while no
    worker ran, so the revoke reached none: its job waits as "canceling") stops before fetching anything."""
    manager.write(f'Stopped: {reason}\n', forceFlush=True)
    return {'stopped': reason}


@contextmanager
def _failure_in_job(manager) -> Iterator[None]:
    """Say in the task's job why its child failed (girder_worker then ends the job with an error)."""
    try:
        yield
    except ChildFailed as exc:
        manager.write(f'Error: {exc}\n', forceFlush=True)
        raise


def _begin(task) -> tuple:
    """The task's Girder client, job manager and reporter, and why it must not start (its job was cancelled while
    it waited) or None; a task sent without a job or token (not by the plugin) fails at once."""
    if task.girder_client is None or task.job_manager is None:
        raise RuntimeError('The task came without a Girder job or token: send it from the plugin (jobs.remote)')
    reporter = _Reporter(task.job_manager)
    return task.girder_client, task.job_manager, reporter, reporter.stop_reason()


def _downloader(client, source: dict) -> Callable[[str], None]:
    """Download the Girder file ``source`` names to a path given later, through restarts of Girder."""
    return lambda target: _through_restarts(f'downloading {source["name"]}',
                                            lambda: client.downloadFile(source['file'], target))


def _send_unless_stopped(client, reporter: _Reporter, stopped: str | None, item: str, path: Path,
                         what: str) -> str | None:
    """Upload what the child made at ``path`` to ``item`` unless the work stopped (``stopped``, or a cancel since);
    None, or why it stopped."""
    stopped = stopped or reporter.stop_reason()
    if stopped:
        return stopped
    reporter.progress(1.0, f'sending {what} to Girder')
    return _upload(client, item, [path], reporter)


def _upload(client, item: str, paths: list[Path], reporter: _Reporter) -> str | None:
    """Upload ``paths`` to ``item``, through restarts of Girder; None, or why it stopped (a cancel meanwhile,
    which removes the item)."""
    try:
        for path in paths:
            _through_restarts(f'sending {path.name}', lambda p=path: client.uploadFileToItem(item, str(p),
                                                                                              filename=p.name))
    except Exception:
        stopped = reporter.stop_reason()
        if not stopped:
            raise
        return stopped
    return None


def local_file(client, source: dict, folder: Path, reporter: _Reporter) -> str:
    """A path on this machine to the Girder file ``source`` names (``file``, ``name``, and ``path`` where the server
    sends its own path): that path when this machine sees it, else a download into ``folder``."""
    path = source.get('path')
    if path and os.path.isfile(path) and os.access(path, os.R_OK):
        return path
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / Path(source['name']).name
    reporter.progress(0.0, f'downloading {source["name"]}')
    _downloader(client, source)(str(target))
    return str(target)


def _through_restarts(what: str, call: Callable[[], T]) -> T:
    """``call()``, tried again while Girder does not answer (restarted meanwhile), for ``UNREACHABLE_S`` at most."""
    deadline = time.monotonic() + UNREACHABLE_S
    while True:
        try:
            return call()
        except UNREACHABLE as exc:
            if time.monotonic() > deadline:
                raise
            logger.warning('Girder does not answer (%s); %s again in %g s', exc, what, POLL_S)
            time.sleep(POLL_S)


class _Reporter:
    """The task's progress and liveness in its Girder job, shared by the thread that reads the child's output and
    the one that watches for a cancel (girder_worker's job manager is not thread-safe)."""

    def __init__(self, manager) -> None:
        self._manager = manager
        self._lock = threading.Lock()
        self._sent = 0.0
        self._fraction = 0.0

    def progress(self, fraction: float, message: str) -> None:
        with self._lock, _unless_unreachable():
            self._fraction = fraction
            self._manager.updateProgress(total=1000, current=int(fraction * 1000), message=message)
            self._sent = time.monotonic()

    def stop_reason(self) -> str | None:
        """'it was cancelled' when the job says so; None otherwise, and while Girder does not answer (the work
        goes on through a restart of Girder)."""
        status = None
        with self._lock, _unless_unreachable():
            if time.monotonic() - self._sent >= BEAT_S:
                self._manager.updateProgress(current=int(self._fraction * 1000), forceFlush=True)
                self._sent = time.monotonic()
            status = self._manager.refreshStatus()
        if status in (JobStatus.CANCELING, JobStatus.CANCELED):
            return 'it was cancelled'
        return None


@contextmanager
def _unless_unreachable() -> Iterator[None]:
    """Go on when Girder does not answer a report (a restart): the next one gets through."""
    try:
        yield
    except UNREACHABLE as exc:
        logger.warning('Girder does not answer (%s); going on', exc)
