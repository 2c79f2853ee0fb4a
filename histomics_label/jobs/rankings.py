"""The rankings a round leaves for after it is recorded, as queued work of their own, shown in the job list.

A labeler waits for the round: at 100,000 segments of 1,280 dimensions, ranking every acquisition function took
34 s of a 40 s round, 22 s of it Coreset's 64 passes over every embedding, while the project's own function took
0.02 s. So a round ranks only the project's function and those that score segments alone
(``ranking_store.ranked_in_round``) and, once it is recorded, queues this work for the joint functions (``ranked_after
_round``), so that a project switched to one of them is served at once, as before.

The work runs where the round trained (a child process of the server: the linear head's posterior samples need
torch, which the web server does not load), under the rounds' limit (``TRAINING_JOBS``), and stops as soon as a
round of the project is queued or runs: that round's rankings replace these. A CNN's round on a girder_worker ranks
every function on the worker (``remote_rounds``), so none is queued for it. A function left unranked (stopped,
failed) ranks on request, as after a re-segmentation (``ranking_store.ranking_for``).
"""

from __future__ import annotations

import logging
import time

from bson.objectid import ObjectId
from girder.models.folder import Folder
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.acquisition import ranking_store
from ..core.errors import HistomicsLabelError
from ..core.models import models
from ..models.work_queue import HeavyWork
from ..projects import folders
from ..projects.segmented import segmented_slides
from ..settings import TRAINING_JOBS, heavy_work_executor
from . import queue
from .round_requests import round_outputs, round_request
from .workers.child import ChildFailed, run_round_child

logger = logging.getLogger(__name__)
JOB_TYPE = 'histomics_label.rank'
KIND = 'rankings'
"""The queue's kind of this work, keyed by project and job."""
ROUND = 'round'
"""The queue's kind of a project's rounds (``rounds.KIND``), which this work gives way to."""


def rank_after(folder: dict, user_id: ObjectId | None) -> dict | None:
    """Queue the ranking of the functions the project's round left, just after it was recorded; returns the job,
    or None when there is nothing to rank here."""
    config = folders.config_of(folder)
    functions = ranking_store.ranked_after_round(config['certainty'])
    on_worker = models.get(config['model']).representation == 'image' and heavy_work_executor() == 'girder_worker'
    if not functions or on_worker:
        return None
    job = Job().createLocalJob(module=__name__, function='run_job', title=f'Histomics Label: rank {folder["name"]}',
                               type=JOB_TYPE, user=User().load(user_id, force=True) if user_id else None,
                               public=False, kwargs={'project': str(folder['_id']), 'functions': functions})
    job = Job().updateJob(job, status=JobStatus.QUEUED,
                          log=f'Ranking {", ".join(functions)} for the suggestions of the latest round\n')
    queue.submit(KIND, f'{KIND}:{folder["_id"]}:{job["_id"]}', job, folder['_id'])
    return job


def wait_for_rankings(folder_id: ObjectId, timeout: float = 3600.0) -> None:
    """Block until the project's rounds and the rankings queued after them are done."""
    deadline = time.monotonic() + timeout
    while HeavyWork().collection.count_documents({'kind': {'$in': [ROUND, KIND]}, 'project': folder_id}):
        if time.monotonic() > deadline:
            raise TimeoutError(f'the rounds of project {folder_id} or their rankings still run after {timeout:g} s')
        time.sleep(0.1)


def run_job(job: dict, context: queue.WorkContext) -> None:
    """The queue's handler: rank the job's functions for the project's latest round in a child process, which is
    killed when a round of the project is queued or runs, or the job is cancelled or times out."""
    folder_id = ObjectId(job['kwargs']['project'])
    functions = job['kwargs']['functions']
    job = Job().updateJob(job, status=JobStatus.RUNNING, progressTotal=1, progressCurrent=0, progressMessage='ranking')
    started = time.monotonic()

    def stop_reason() -> str | None:
        return context.stop_reason() or ('a newer round of the project is queued, whose rankings replace these'
                                         if _round_wanted(folder_id) else None)

    folder = Folder().load(folder_id, force=True)
    superseded = stop_reason() or (None if folder is not None else 'the project was deleted')
    try:
        if not superseded:
            config = folders.config_of(folder)
            slides, _, _ = segmented_slides(folder, config)
            stores = [(str(path), labels) for _, path, labels in slides]
            if stores:
                outputs = {**round_outputs(folder, config), 'functions': functions, 'index': False}
                request = round_request(stores, folders.pipeline_config(folder, slides[0][0], config),
                                        config['model'], outputs, None)
                answer = run_round_child({**request, 'rankOnly': True}, stop_reason, queue.POLL_S)
                superseded = answer if isinstance(answer, str) else None
    except (ChildFailed, HistomicsLabelError) as exc:  # the round stands; these functions rank on request
        logger.info('Ranking %s for project %s failed: %s', functions, folder_id, exc)
        Job().updateJob(job, status=JobStatus.ERROR, log=f'Error: {exc}\nThese functions rank on request.\n')
        return
    if superseded and context.stop_reason():  # cancelled, or past the time limit
        context.stopped = superseded
        context.record_stop(job)
    elif superseded:
        Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1, progressMessage='stopped',
                        log=f'Stopped: {superseded}\n')
    else:
        Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1, progressMessage='done',
                        log=f'Ranked in {time.monotonic() - started:.1f} s\n')


def _round_wanted(folder_id: ObjectId) -> bool:
    """Whether a round of the project is queued or runs."""
    return HeavyWork().collection.count_documents({'kind': ROUND, 'project': folder_id}, limit=1) > 0


queue.register(KIND, run_job, TRAINING_JOBS)
