"""What girder_worker loads from the ``girder_worker_plugins`` entry point, and what the server and the tasks agree
on (task names, the store's upload name, the beat). It imports neither girder_worker's Celery app (which loads
this entry point while it starts) nor the tasks, so the server reads it without registering them."""

from __future__ import annotations

import os

from girder_worker import GirderWorkerPluginABC

SEGMENTS_TASK = 'histomics_label.segments'
"""The Celery name of the segment task (``tasks.make_segments``); the server sends tasks by name."""
STORE_NAME = 'store.h5'
"""The name the segment task uploads the store under."""
FEATURES_TASK = 'histomics_label.features'
"""The Celery name of the task that computes a part of a slide's features (``tasks.make_feature_part``)."""
ROUND_TASK = 'histomics_label.round'
"""The Celery name of the round task (``tasks.train_round``)."""
ROUND_ANSWER = 'answer.json'
"""The name the round task uploads its answer under (``workers.rounds``' answer, with the names of its files)."""


def part_name(rows: tuple[int, int]) -> str:
    """The name a feature task uploads its part of rows ``[start, stop)`` under."""
    return f'part-{rows[0]}-{rows[1]}.h5'


BEAT_ENV = 'HISTOMICS_LABEL_WORKER_BEAT_S'
BEAT_S = float(os.environ.get(BEAT_ENV) or 30.0)
"""How often a running task tells its job it is alive, progress or not (``jobs.remote`` judges one silent for ten
beats lost); ``$HISTOMICS_LABEL_WORKER_BEAT_S``, the same on Girder's server and every worker."""


class WorkerPlugin(GirderWorkerPluginABC):
    """Where the plugin's tasks are."""

    def __init__(self, app, *args, **kwargs) -> None:
        self.app = app

    def task_imports(self) -> list[str]:
        return ['histomics_label.jobs.workers.tasks']
