"""A very large slide's features in parts over the workers (the ``girder_worker`` executor).

A slide of hundreds of thousands of segments takes hours of feature extraction on one machine. When a slide has more
segments than ``settings.FEATURE_ROWS``, its segment task (``remote.run_segments``) sends back a store of segments
only; then one task per range of the store's rows (a band of the slide's tiles: ``core.features.parts``) computes
that range's features on whichever worker takes it, each a Girder job of type ``FEATURES_WORKER_JOB_TYPE`` under the
slide's job. They read the store the segment task uploaded (a worker keeps it for the slide's other parts:
``workers.store_cache``), and upload a part file each; the server checks the parts (that very store and
representation, every row once) and writes them into the store before it moves into place. A part that fails or
is cancelled cancels the others and fails the slide's job as a single task does; nothing is half-written. A server
restarted meanwhile sends the parts again (the earlier ones are cancelled).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from girder.models.file import File
from girder.models.item import Item
from girder.models.token import Token
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.errors import HistomicsLabelError
from ..core.features.parts import assemble, part_ranges
from ..core.io.store import SlideStore
from ..core.pipeline import PipelineConfig, representation
from ..settings import feature_rows_per_task
from . import queue, remote
from .workers.celery_plugin import FEATURES_TASK, part_name


def fill_features(job: dict, item: dict, pipeline: PipelineConfig, store_file: dict, store: Path,
                  context: queue.WorkContext) -> None:
    """Give the store at ``store`` (the slide's new store, uploaded by its segment task as ``store_file``) its
    features, computed in parts on the workers, unless it has them already."""
    rep = representation(pipeline)
    with SlideStore(store) as opened:
        if rep.is_current(opened):
            return
        count = opened.n_segments
    rows_per_part = feature_rows_per_task() or count
    ranges = part_ranges(count, rows_per_part)
    requester = User().load(job['userId'], force=True)
    upload = Item().load(store_file['itemId'], force=True)
    _end_earlier_parts(job, upload, store_file)
    token = remote.task_token(requester, context)
    task_jobs: list[dict] = []
    try:
        inputs = {**remote.slide_inputs(item, pipeline), 'store': remote.file_source(store_file)}
        for position, rows in enumerate(ranges):
            context.stop_if_asked()
            task_jobs.append(_send(job, requester, token, pipeline, inputs, rows, upload,
                                   f'{position + 1} of {len(ranges)}'))
        Job().updateJob(job, progressCurrent=0, progressMessage=f'features of {count} segments in {len(ranges)} '
                                                                f'parts on the workers')
        remote.wait_for_tasks(job, task_jobs, context, remote.AGAIN)
        _assemble(rep, store, upload, ranges)
    finally:
        remote.end_tasks(task_jobs)
        Token().remove(token)


def _send(job: dict, requester: dict, token: dict, pipeline: PipelineConfig, inputs: dict, rows: tuple[int, int],
          upload: dict, which: str) -> dict:
    """Send the task of one part, with a job of its own under the slide's; returns that job, queued."""
    from girder_worker.app import app

    task_job = remote.create_task_job(job, f'{job["title"]}: features, part {which} (on a worker)',
                                      remote.FEATURES_WORKER_JOB_TYPE, requester)
    try:
        sent = app.send_task(FEATURES_TASK, args=[remote.portable(pipeline), inputs, list(rows), str(upload['_id'])],
                             headers=remote.task_headers(task_job, token))
    except BaseException:
        remote.end_tasks([task_job])
        raise
    return Job().updateJob(task_job, status=JobStatus.QUEUED, otherFields={'celeryTaskId': sent.id})


def _assemble(rep, store: Path, upload: dict, ranges: list[tuple[int, int]]) -> None:
    """Write the parts the tasks uploaded to ``upload`` into the store (``parts.assemble``: checked first)."""
    files = {file['name']: file for file in Item().childFiles(upload)}
    missing = [part_name(rows) for rows in ranges if part_name(rows) not in files]
    if missing:
        raise HistomicsLabelError(f'The feature tasks ended without sending {", ".join(missing)}')
    with tempfile.TemporaryDirectory(prefix='histomics-label-parts-', dir=store.parent) as work:
        paths = []
        for rows in ranges:
            paths.append(Path(work) / part_name(rows))
            remote.copy_out(files[part_name(rows)], paths[-1])
        assemble(rep, store, paths)


def _end_earlier_parts(job: dict, upload: dict, store_file: dict) -> None:
    """Cancel the parts an earlier start of the slide's job sent (before a restart of the server), and remove what
    they uploaded."""
    remote.end_tasks(list(Job().find({'parentId': job['_id'], 'type': remote.FEATURES_WORKER_JOB_TYPE})))
    for file in list(Item().childFiles(upload)):
        if file['_id'] != store_file['_id']:
            File().remove(file)
