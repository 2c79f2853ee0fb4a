"""A project folder deleted in Girder takes its project with it: labels and their history, detached labels, rounds,
training flags, queued and running heavy work (their jobs cancelled), and its data folder (slide stores, stored
rankings and retrieval indexes).

Why: these live outside the folder (in the plugin's collections and data folder), so Girder's delete would leave
them behind for good: labels naming slides that no longer exist, and gigabytes of stores that no route reaches.
"""

from __future__ import annotations

import logging
import shutil
import time

from girder_jobs.models.job import Job

from ..models.detached_label import DetachedLabel
from ..models.effective_labels import forget
from ..models.label import Label
from ..models.round import Round
from ..models.training_state import TrainingState
from ..models.work_queue import RUNNING, HeavyWork
from ..settings import data_dir
from .config import META_KEY

logger = logging.getLogger(__name__)

STOP_WAIT_S = 10.0
"""How long a delete waits for the project's running heavy work to stop (its supervisor polls every second)
before it removes the data folder the work writes into."""


def on_folder_removed(event) -> None:
    """``model.folder.remove``: remove what a project folder leaves outside it (module notes)."""
    folder = event.info
    if META_KEY in (folder.get('meta') or {}):
        remove_project(folder)


def remove_project(folder: dict) -> None:
    """Stop the project's heavy work, then remove its records and its data folder."""
    project_id = folder['_id']
    running = []
    for entry in HeavyWork().of_project(project_id):
        job = Job().load(entry['job'], force=True)
        if job is not None:  # as the job list's Cancel: queued work leaves the queue, running work is killed
            Job().updateJob(Job().cancelJob(job), log='Cancelled: its project was deleted.\n')
        if entry['status'] == RUNNING:
            running.append(entry['_id'])
    deadline = time.monotonic() + STOP_WAIT_S
    while running and HeavyWork().collection.count_documents({'_id': {'$in': running}}):
        if time.monotonic() > deadline:
            logger.warning('Heavy work of deleted project %s still runs; removing its data anyway', project_id)
            break
        time.sleep(0.2)
    Label().remove_project(project_id)
    forget(project_id)
    for model in (DetachedLabel(), Round(), TrainingState()):
        model.collection.delete_many({'project': project_id})
    shutil.rmtree(data_dir() / str(project_id), ignore_errors=True)
