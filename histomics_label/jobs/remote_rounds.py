"""A round on girder_worker (the ``girder_worker`` executor): a CNN's minutes of training on patches run on a worker
machine, not in the web server, which never loads torch there.

The round's queue work (``jobs.rounds``: one round of a project at a time, cancel, the time limit, a restart) stays
in the server; instead of its child process it sends the Celery task ``workers.tasks.train_round`` by name, with a
Girder job of its own (a child of the round's job, shown in the job panel). A worker shares only Girder's API and the
broker with the server, so the task gets:

* each slide's store, through a copy in Girder: an item per slide in the project's segments folder, uploaded once
  per version of the store (the gigabytes of patches of a large slide travel once, not every round). A worker keeps
  the stores it fetched (``workers.store_cache``), so its next round downloads nothing; where workers see Girder's
  files (the worker plugin's direct path) it reads the copy in place;
* each slide's latest round, which the model warm-starts from and the round's prediction change compares with (a
  round file, uploaded every round: the predictions and the model's weights);
* the labels and settings, as the server's round child gets them (``round_requests.round_request``).

The worker trains with the server's own round child (``workers.rounds``) and uploads each slide's new round and the
ranked suggestions of every acquisition function. The server appends the rounds to its stores (``adopt_round``:
only to the very store each was trained from), keeps the rankings under its own stores' key and builds the
retrieval index (numpy only). A failure before that leaves every store's previous round in place, as a failed round
in the server does; the upload item and the task's token are removed however the round ends.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from girder.models.file import File
from girder.models.item import Item
from girder.models.token import Token
from girder.models.upload import Upload
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.acquisition import ranking_store
from ..core.errors import HistomicsLabelError
from ..core.io.store import SlideStore, adopt_round, export_latest_round
from ..projects.segment_images import segments_folder
from . import queue, remote
from .workers.celery_plugin import ROUND_ANSWER, ROUND_TASK
from .workers.rounds import build_indexes

COPY_KEY = 'histomicsLabelStoreCopy'
"""Metadata of a store's copy in Girder: the store (path, id, size, modification time) it is a copy of."""


def train_on_worker(job: dict, folder: dict, stores: list[str], request: dict,
                    context: queue.WorkContext) -> tuple[list[int], dict, list[dict | None]]:
    """Train the round ``request`` describes (``round_requests.round_request``, on ``stores``) on a worker, then
    append it to the stores; returns the stores' new round numbers, the round's metrics and each slide's prediction
    change. Raises with the worker's reason when it failed, ``WorkStopped`` when the round's job was cancelled or ran
    past its time limit (the task is cancelled too)."""
    task_job, token = _task_job(job), None
    if task_job['status'] == JobStatus.INACTIVE:
        try:
            task_job, token = _send(task_job, folder, stores, request, context)
        except BaseException as exc:  # nothing was sent: the task job ends, its upload goes
            task_job = Job().load(task_job['_id'], force=True)
            Job().updateJob(task_job, status=JobStatus.CANCELED, log=f'Not sent: {exc}\n')
            remote.discard_upload(task_job)
            raise
    try:
        task_job = remote.wait_for_task(job, task_job, context, 'train again to send it to another worker')
        return _take_round(task_job, stores, request['outputs'])
    finally:
        remote.discard_upload(task_job)
        if token is not None:  # sent before a restart: the token expires with the time limit
            Token().remove(token)


def _task_job(job: dict) -> dict:
    """The round's task job: the one an earlier start of the round's job sent (after a server restart: waiting on it
    costs nothing, sending again would train twice), or a new one."""
    earlier = Job().findOne({'parentId': job['_id'], 'type': remote.ROUND_WORKER_JOB_TYPE}, sort=[('created', -1)])
    if earlier is not None and earlier['status'] not in (JobStatus.ERROR, JobStatus.CANCELED):
        return earlier
    requester = User().load(job['userId'], force=True) if job.get('userId') else None
    return remote.create_task_job(job, f'{job["title"]} (on a worker)', remote.ROUND_WORKER_JOB_TYPE, requester)


def _send(task_job: dict, folder: dict, stores: list[str], request: dict,
          context: queue.WorkContext) -> tuple[dict, dict]:
    """Put the stores' copies and latest rounds in Girder, then send the task of ``task_job`` with a token of the
    project's owner (who owns the copies and the upload item; it lasts the work's time limit); returns the task
    job, queued, and the token."""
    from girder_worker.app import app

    owner = User().load(folder['creatorId'], force=True) if folder.get('creatorId') else None
    if owner is None:
        raise HistomicsLabelError(f'The project folder {folder["name"]} has no owner (its creator was deleted) for '
                                  'the workers to read its stores as; train with the server executor')
    target = segments_folder(folder, owner)
    upload = Item().createItem(f'round {task_job["parentId"]} (from a worker, removed when taken)', creator=owner,
                               folder=target)
    task_job = Job().updateJob(task_job, otherFields={'histomicsLabelUpload': upload['_id']})
    inputs = []
    for position, path in enumerate(stores):
        context.stop_if_asked()
        Job().updateJob(task_job, progressMessage=f'sending store {position + 1} of {len(stores)} to Girder')
        inputs.append({'store': remote.file_source(_store_copy(target, owner, path)),
                       'round': _latest_round(upload, owner, path, position)})
    token = remote.task_token(owner, context)
    sent = app.send_task(ROUND_TASK, args=[_portable(request), inputs, str(upload['_id'])],
                         headers=remote.task_headers(task_job, token))
    return Job().updateJob(task_job, status=JobStatus.QUEUED, otherFields={'celeryTaskId': sent.id}), token


def _store_copy(target: dict, owner: dict, path: str) -> dict:
    """The Girder file that copies the store at ``path``: the one uploaded before while the store is unchanged, else
    a new upload that replaces it (a worker tells versions apart by file id)."""
    with SlideStore(path) as store:
        identity = {'path': os.path.abspath(path), 'storeId': store.store_id}
    stat = os.stat(path)
    identity.update(size=stat.st_size, mtimeNs=stat.st_mtime_ns)
    name = f'{Path(path).name} (copy for workers)'
    item = Item().createItem(name, creator=owner, folder=target, reuseExisting=True)
    files = list(Item().childFiles(item))
    if (item.get('meta') or {}).get(COPY_KEY) == identity and len(files) == 1:
        return files[0]
    with open(path, 'rb') as stream:
        file = Upload().uploadFromFile(stream, stat.st_size, Path(path).name, parentType='item', parent=item,
                                       user=owner)
    for old in files:
        File().remove(old)
    Item().setMetadata(item, {COPY_KEY: identity})
    return file


def _latest_round(upload: dict, owner: dict, path: str, position: int) -> dict | None:
    """The store's latest round as a round file in the upload item, or None before the first round."""
    with tempfile.TemporaryDirectory(prefix='histomics-label-round-') as work:
        exported = Path(work) / f'previous-{position}.h5'
        if export_latest_round(path, exported) is None:
            return None
        with open(exported, 'rb') as stream:
            file = Upload().uploadFromFile(stream, exported.stat().st_size, exported.name, parentType='item',
                                           parent=upload, user=owner)
    return {'file': str(file['_id']), 'name': file['name'], 'size': file['size']}


def _portable(request: dict) -> dict:
    """The round's request without this server's paths (the worker sets its own). The worker ranks every function
    (``functions`` None): ranking BatchBALD after the round would run the CNN over every segment in the web server."""
    return {**request, 'slides': [{**slide, 'store': ''} for slide in request['slides']],
            'outputs': {**request['outputs'], 'rankings': '', 'index': False, 'functions': None}}


def _take_round(task_job: dict, stores: list[str], outputs: dict) -> tuple[list[int], dict, list[dict | None]]:
    """Append the rounds the task uploaded to the stores, keep its rankings under the stores' key, and build the
    retrieval index; what ``train_on_worker`` returns."""
    files = {file['name']: file for file in Item().childFiles(Item().load(task_job['histomicsLabelUpload'],
                                                                          force=True))}
    if ROUND_ANSWER not in files:
        raise HistomicsLabelError('The worker task ended without sending its round')
    with File().open(files[ROUND_ANSWER]) as stream:
        answer = json.loads(stream.read())
    missing = [name for name in answer['rounds'] + answer['rankings'] if name not in files]
    if missing:
        raise HistomicsLabelError(f'The worker task did not send {", ".join(missing)}')
    numbers = []
    with tempfile.TemporaryDirectory(prefix='histomics-label-round-', dir=os.path.dirname(stores[0])) as work:
        for path, name in zip(stores, answer['rounds'], strict=True):
            local = Path(work) / name
            remote.copy_out(files[name], local)
            numbers.append(adopt_round(path, local))
    folder = outputs['rankings']
    os.makedirs(folder, exist_ok=True)
    for name in answer['rankings']:  # named <the worker's key>.<function>.npz
        remote.copy_out(files[name], Path(folder) / name)
    if answer['key']:
        key = ranking_store.fingerprint(stores, outputs['seed'], outputs['extractor'], outputs['mc_samples'],
                                        outputs['batch'])
        ranking_store.carry_over(folder, answer['key'], key)
    for name in answer['rankings']:  # a ranking a request stored meanwhile stands
        Path(folder, name).unlink(missing_ok=True)
    build_indexes([(path, None) for path in stores], outputs['extractor'])
    return numbers, answer['metrics'], answer['slideChanges']
