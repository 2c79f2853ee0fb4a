"""A slide's segment work on girder_worker (the ``girder_worker`` executor, ``settings.EXECUTOR``).

The server's queue still decides when a slide's work starts (one piece per slide, cancel, time limit, a restart);
instead of a child process of its own it sends the Celery task ``workers.tasks.make_segments`` by name
(``SEGMENTS_TASK``), with a Girder job of its own (a child of the slide's job, so the job panel shows the worker's log
and progress), a token of the admin who asked for the work (read the slide, write the store's upload), and an item to
upload the store to. While it waits it relays the task's progress into the slide's job; then it copies the uploaded
store into place (the store folder is the server's) and removes the upload. A slide of more segments than
``settings.FEATURE_ROWS`` comes back with its segments only, and gets its features in parts from several tasks
(``remote_features``) before it moves into place. The rest of the slide's job (versioned
segmentations, the segment image, the next round) runs in the server as before.

A worker that dies loses its task (Celery acknowledges on receipt): the task tells its job it is alive every
``BEAT_S``, and a running task silent for ``SILENT_AFTER_S`` fails the slide's job, which a rerun of "Make segments"
starts again. After a server restart the queue runs the slide's job again, which picks up the task it had sent.

The plumbing of a task (its Girder job, token and headers, the wait, the upload item) is shared with a round's task
(``remote_rounds``) and the feature parts.
"""

from __future__ import annotations

import datetime
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bson.objectid import ObjectId
from girder.constants import TokenScope
from girder.exceptions import GirderException
from girder.models.file import File
from girder.models.item import Item
from girder.models.setting import Setting
from girder.models.token import Token
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from .. import girder_compat
from ..core.errors import HistomicsLabelError
from ..core.io.store import replace_store
from ..core.pipeline import PipelineConfig
from ..projects.segment_images import segments_folder
from ..settings import feature_rows_per_task
from . import queue
from .workers.celery_plugin import BEAT_S, SEGMENTS_TASK, STORE_NAME
from .workers.errors import child_error

WORKER_JOB_TYPE = 'histomics_label.segments.worker'
ROUND_WORKER_JOB_TYPE = 'histomics_label.train.worker'
FEATURES_WORKER_JOB_TYPE = 'histomics_label.features.worker'
SILENT_AFTER_S = 10 * BEAT_S
"""A running task whose job has heard nothing from it for this long is judged lost with its worker."""
DIRECT_PATH = 'worker.direct_path'
"""girder_worker plugin's setting: workers see Girder's files at their paths (a shared mount)."""
_API_URL = 'worker.api_url'
"""girder_worker plugin's setting: the API URL workers reach Girder at."""
_ENDED = (JobStatus.SUCCESS, JobStatus.ERROR, JobStatus.CANCELED)
AGAIN = 'make the segments again to send it to another worker'
"""What a failed or lost task of a slide's segments says to do."""


def prepare(job: dict, user: dict) -> dict:
    """Make the Girder job of the slide's task, inactive until ``run_segments`` sends it; call it in the request
    that queues the slide's job. girder_worker's plugin gives every new job the API URL workers report to, from
    the request (or its ``worker.api_url`` setting); the queue's thread has no request to take it from."""
    try:
        return Job().createJob(title=f'{job["title"]} (on a worker)', type=WORKER_JOB_TYPE,
                               handler='celery_handler', user=user, public=False, parentJob=job)
    except GirderException as exc:
        raise HistomicsLabelError(f'Workers cannot be told where Girder is ({exc}): set the worker plugin\'s API '
                                  f'URL ({_API_URL})') from None


def create_task_job(parent: dict, title: str, job_type: str, user: dict | None) -> dict:
    """The Girder job of a task, a child of ``parent``, inactive until sent; made in any thread. girder_worker's
    plugin, which gives every new job the address its task reports to, can find the API URL only in a request or
    its settings, and the queue's threads have no request: so the job is saved without the plugin's hook, with the
    address ``worker_api_url`` finds."""
    job = Job().createJob(title=title, type=job_type, handler='celery_handler', user=user, public=False,
                          parentJob=parent, save=False)
    job['_id'] = ObjectId()
    job['jobInfoSpec'] = {'method': 'PUT', 'url': f'{worker_api_url(parent)}/job/{job["_id"]}',
                          'reference': str(job['_id']), 'logPrint': True,
                          'headers': {'Girder-Token': str(Job().createJobToken(job)['_id'])}}
    return Job().save(job, triggerEvents=False)


def request_api_url() -> str | None:
    """The API URL workers reach Girder at: the worker plugin's setting, the server root setting, or the current
    request's; None outside a request without those settings."""
    try:
        return girder_compat.worker_api_url()
    except GirderException:
        return None


def worker_api_url(job: dict) -> str:
    """The API URL workers reach Girder at, for a task of ``job``: ``request_api_url``, else the one recorded in
    ``job``'s arguments (``apiUrl``: from the request that asked for it), else the one of the latest task sent."""
    url = request_api_url() or (job.get('kwargs') or {}).get('apiUrl')
    if url:
        return url
    earlier = Job().findOne({'type': {'$in': [WORKER_JOB_TYPE, ROUND_WORKER_JOB_TYPE, FEATURES_WORKER_JOB_TYPE]},
                             'jobInfoSpec.url': {'$exists': True}}, sort=[('created', -1)])
    if earlier is None:
        raise HistomicsLabelError(f'Workers cannot be told where Girder is: set the worker plugin\'s API URL '
                                  f'({_API_URL})')
    return earlier['jobInfoSpec']['url'].rsplit('/job/', 1)[0]


def end_unsent(entry: dict) -> None:
    """The queue's ``not_run`` of a slide's work (cancelled while it waited in the server's queue): the task job
    ``prepare`` made, never sent, ends cancelled instead of staying inactive in the job list."""
    for task_job in Job().find({'parentId': entry['job'], 'type': WORKER_JOB_TYPE, 'status': JobStatus.INACTIVE}):
        Job().updateJob(task_job, status=JobStatus.CANCELED, log='Not sent: the work was cancelled before it '
                                                                 'started\n')


def run_segments(job: dict, folder: dict, item: dict, pipeline: PipelineConfig, context: queue.WorkContext) -> None:
    """Make ``pipeline.store`` on a worker (a very large slide's features in parts on several: ``remote_features``);
    raise with the worker's reason when it failed, ``WorkStopped`` when the slide's job was cancelled or ran past its
    time limit (the tasks are cancelled too)."""
    from .remote_features import fill_features

    task_job, token = _task_job(job), None
    if task_job['status'] == JobStatus.INACTIVE:
        task_job, token = _send(task_job, folder, item, pipeline, context)
    try:
        task_job = wait_for_task(job, task_job, context, AGAIN)
        _take_store(task_job, Path(pipeline.store), lambda store, partial: fill_features(
            job, item, pipeline, store, partial, context))
    finally:
        discard_upload(task_job)
        if token is not None:  # sent before a restart: the token expires with the time limit
            Token().remove(token)


def _task_job(job: dict) -> dict:
    """The slide's task job: the one ``prepare`` made, or the one an earlier start of the slide's job sent (after a
    server restart: waiting on it costs nothing, sending again would run the work twice); a new one when that
    one failed or was cancelled, or the executor changed while the slide's job waited."""
    earlier = Job().findOne({'parentId': job['_id'], 'type': WORKER_JOB_TYPE}, sort=[('created', -1)])
    if earlier is None or earlier['status'] in (JobStatus.ERROR, JobStatus.CANCELED):
        return prepare(job, User().load(job['userId'], force=True))
    return earlier


def _send(task_job: dict, folder: dict, item: dict, pipeline: PipelineConfig,
          context: queue.WorkContext) -> tuple[dict, dict]:
    """Send the task of ``task_job``, with a token of the admin who asked for it (read the slide, write the upload;
    it lasts the work's time limit) and an item to upload the store to; returns the task job, queued, and the
    token."""
    from girder_worker.app import app

    requester = User().load(task_job['userId'], force=True)
    owner = User().load(folder['creatorId'], force=True) if folder.get('creatorId') else requester
    target = segments_folder(folder, owner)
    upload = Item().createItem(f'{item["_id"]}.store (from a worker, removed when copied)', creator=owner,
                               folder=target)
    token = task_token(requester, context)
    rows_per_part = None if pipeline.embedding_map else feature_rows_per_task()
    sent = app.send_task(SEGMENTS_TASK, args=[portable(pipeline), slide_inputs(item, pipeline), str(upload['_id']),
                                              rows_per_part], headers=task_headers(task_job, token))
    return Job().updateJob(task_job, status=JobStatus.QUEUED,
                           otherFields={'celeryTaskId': sent.id, 'histomicsLabelUpload': upload['_id']}), token


def slide_inputs(item: dict, pipeline: PipelineConfig) -> dict:
    """What a task reads of the slide: its file, and an imported segment-id image's (``file_source``)."""
    inputs = {'slide': file_source(File().load(item['largeImage']['fileId'], force=True))}
    if pipeline.label_image:
        inputs['label_image'] = file_source(File().load(pipeline.label_image_file['file'], force=True))
    return inputs


def task_token(user: dict, context: queue.WorkContext) -> dict:
    """A token for a task to read its inputs and write its outputs as ``user``; it lasts the work's time limit."""
    return Token().createToken(user=user, days=context.timeout_s / 86400 + 1 / 24,
                               scope=[TokenScope.DATA_READ, TokenScope.DATA_WRITE])


def task_headers(task_job: dict, token: dict) -> dict:
    """The Celery headers girder_worker's tasks read: where to report (the task job) and Girder's API with
    ``token``."""
    info = task_job['jobInfoSpec']
    return {'jobInfoSpec': info, 'girder_api_url': info['url'].rsplit('/job/', 1)[0],
            'girder_client_token': str(token['_id'])}


def file_source(file: dict) -> dict:
    """How a worker gets the Girder file ``file``: by id (with its name and size), or at its path where workers see
    Girder's files (the worker plugin's direct path)."""
    source = {'file': str(file['_id']), 'name': file['name'], 'size': file['size']}
    if Setting().get(DIRECT_PATH):
        try:
            source['path'] = File().getLocalFilePath(file)
        except Exception:  # an assetstore with no local path (S3): the worker downloads it
            pass
    return source


def portable(pipeline: PipelineConfig) -> dict:
    """The configuration without this server's paths (the worker sets its own)."""
    from dataclasses import asdict

    return {**asdict(pipeline), 'slide': '', 'store': '', 'label_image': pipeline.label_image and ''}


def wait_for_task(job: dict, task_job: dict, context: queue.WorkContext, again: str, beats: bool = True) -> dict:
    """``wait_for_tasks`` of one task."""
    return wait_for_tasks(job, [task_job], context, again, beats)[0]


def wait_for_tasks(job: dict, task_jobs: list[dict], context: queue.WorkContext, again: str,
                   beats: bool = True) -> list[dict]:
    """Relay the tasks' progress into ``job`` until every one ends; the task jobs, ended well. Raises
    ``WorkStopped`` when ``job`` or a task job was cancelled (or ran past its time limit), and with a task's reason
    when it failed or its worker was lost (the message ends with ``again``, what to do); the other tasks are
    cancelled then. A task that ``beats`` (the plugin's own) and is silent for ``SILENT_AFTER_S`` is judged lost;
    silence counts from when this wait began at the earliest: after a long Girder outage the tasks' next beat is
    still to come."""
    try:
        task_jobs = _wait(job, task_jobs, context, again, beats)
        if any(task_job['status'] == JobStatus.CANCELED for task_job in task_jobs):
            context.stop_with('its worker job was cancelled')
        for task_job in task_jobs:
            if task_job['status'] != JobStatus.SUCCESS:
                raise HistomicsLabelError(child_error(''.join(task_job.get('log') or []).splitlines(), 1,
                                                      'the worker task'))
    finally:
        end_tasks(task_jobs)
    return task_jobs


def end_tasks(task_jobs: list[dict]) -> None:
    """Cancel the tasks of ``task_jobs`` that have not ended; one never sent ends at once."""
    for task_job in task_jobs:
        task_job = Job().load(task_job['_id'], force=True)
        if task_job['status'] == JobStatus.INACTIVE:
            Job().updateJob(task_job, status=JobStatus.CANCELED, log='Not sent: the work stopped before it\n')
        elif task_job['status'] not in _ENDED:  # girder_worker's handler leaves one already canceling
            Job().cancelJob(task_job)


def _wait(job: dict, task_jobs: list[dict], context: queue.WorkContext, again: str, beats: bool) -> list[dict]:
    """Relay the tasks' progress into ``job`` until every one ended, or one failed or was cancelled; the task
    jobs."""
    relayed, waiting_since = None, datetime.datetime.now(datetime.UTC)
    while True:
        reason = context.stop_reason()
        if reason:
            end_tasks(task_jobs)
            context.stop_with(reason)
        task_jobs = [Job().load(task_job['_id'], force=True) for task_job in task_jobs]
        statuses = [task_job['status'] for task_job in task_jobs]
        if all(status in _ENDED for status in statuses) or JobStatus.ERROR in statuses \
                or JobStatus.CANCELED in statuses:
            return task_jobs
        progress = _progress(task_jobs)
        if progress != relayed and progress[0] is not None:
            job = Job().updateJob(job, progressCurrent=int(progress[0]), progressMessage=progress[1])
            relayed = progress
        for task_job in task_jobs if beats else ():
            if task_job['status'] == JobStatus.RUNNING and _silent_for(task_job, waiting_since) > SILENT_AFTER_S:
                Job().updateJob(task_job, status=JobStatus.ERROR, log=f'Error: its worker has not answered for '
                                                                      f'{SILENT_AFTER_S:g} s (stopped or killed)\n')
                raise HistomicsLabelError(f'The worker running it has not answered for {SILENT_AFTER_S:g} s '
                                          f'(stopped or killed); {again}')
        time.sleep(queue.POLL_S)


def _progress(task_jobs: list[dict]) -> tuple[float | None, str | None]:
    """The progress (of 1000) and message to show for the tasks: one task's own, or for several, their mean and
    how many are done. The plugin's tasks count to 1000, slicer_cli_web's runs to 1."""
    def current(task_job: dict) -> float | None:
        if task_job['status'] == JobStatus.SUCCESS:
            return 1000.0
        if task_job['status'] == JobStatus.QUEUED:
            return 0.0
        progress = task_job.get('progress') or {}
        if progress.get('current') is None or not progress.get('total'):
            return None
        return 1000.0 * progress['current'] / progress['total']

    if len(task_jobs) == 1:
        if task_jobs[0]['status'] == JobStatus.QUEUED:
            return 0, 'waiting for a girder_worker worker to take it'
        return current(task_jobs[0]), (task_jobs[0].get('progress') or {}).get('message')
    done = sum(task_job['status'] == JobStatus.SUCCESS for task_job in task_jobs)
    waiting = sum(task_job['status'] == JobStatus.QUEUED for task_job in task_jobs)
    total = sum(current(task_job) or 0.0 for task_job in task_jobs) / len(task_jobs)
    return total, (f'{done} of {len(task_jobs)} parts done'
                   + (f'; {waiting} waiting for a girder_worker worker' if waiting else ''))


def _silent_for(task_job: dict, since: datetime.datetime) -> float:
    """Seconds since the task job last heard from its task, or since ``since`` when that is later."""
    updated = task_job['updated']
    if updated.tzinfo is None:
        updated = updated.replace(tzinfo=datetime.UTC)
    return (datetime.datetime.now(datetime.UTC) - max(updated, since)).total_seconds()


def _take_store(task_job: dict, destination: Path, fill: Callable[[dict, Path], None]) -> None:
    """Move the store the task uploaded into place, ``fill(its Girder file, the copy)`` giving a store of segments
    only its features first."""
    upload = Item().load(task_job['histomicsLabelUpload'], force=True)
    file = upload and File().findOne({'itemId': upload['_id'], 'name': STORE_NAME})
    if file is None:
        raise HistomicsLabelError('The worker task ended without sending its store')
    take_uploaded_store(file, destination, fill)


def take_uploaded_store(file: dict, destination: Path, prepare: Callable[[dict, Path], None]) -> None:
    """Copy the uploaded store ``file`` beside ``destination``, have ``prepare(file, the copy)`` check or complete
    it, then move it into place as a new store replaces an old one (``replace_store``: checked first, under the
    store's lock, the old store's rounds removed). The copy never outlives the call."""
    partial = destination.with_name(destination.name + '.uploaded')
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        copy_out(file, partial)
        prepare(file, partial)
        replace_store(partial, destination)
    finally:
        partial.unlink(missing_ok=True)


def copy_out(file: dict, target: Path) -> None:
    """Copy the Girder file ``file`` to ``target`` on this machine."""
    with File().open(file) as source, open(target, 'wb') as stream:
        shutil.copyfileobj(source, stream, 1 << 22)


def discard_upload(task_job: dict) -> None:
    """Remove the item the task uploaded its outputs to (copied by now, or of no use)."""
    upload = task_job.get('histomicsLabelUpload') and Item().load(task_job['histomicsLabelUpload'], force=True)
    if upload is not None:
        Item().remove(upload)
