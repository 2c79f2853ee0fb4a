"""Per project, whether a training round runs and whether another is wanted: the flags that keep rounds of one
project from running twice at once, changed only by atomic conditional updates (``jobs/rounds.py`` explains the
protocol)."""

from __future__ import annotations

import datetime

from bson.objectid import ObjectId
from girder.models.model_base import Model
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from ..girder_compat import UtcDates


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TrainingState(UtcDates, Model):
    """Per project: whether a round runs, whether another is wanted, and labels changed since the last one."""

    def initialize(self) -> None:
        self.name = 'histomics_label_training'
        self.ensureIndices([([('project', ASCENDING)], {'unique': True})])

    def validate(self, doc: dict) -> dict:
        return doc

    def count_labels(self, project_id: ObjectId, changed: int) -> int:
        """Add ``changed`` labels to the count since the last round started; returns the new count."""
        doc = self.collection.find_one_and_update({'project': project_id}, {'$inc': {'labelsSince': changed}},
                                                  upsert=True, return_document=ReturnDocument.AFTER)
        return doc['labelsSince']

    def acquire(self, project_id: ObjectId) -> bool:
        """Mark a round running; False (and the project marked pending) when one already runs."""
        try:
            doc = self.collection.find_one_and_update(
                {'project': project_id, 'running': {'$ne': True}},
                {'$set': {'running': True, 'pending': False, 'started': _now(), 'labelsSince': 0}},
                upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            doc = None
        if doc is None:
            self.collection.update_one({'project': project_id}, {'$set': {'pending': True}})
            return False
        return True

    def next_or_release(self, project_id: ObjectId) -> bool:
        """After a round: True to run another (one was asked for meanwhile), else release the project.

        Only a worker that still holds the lock runs another round: a lock released under it (``reset_interrupted``
        when another server process started) or a missing lock document ends its loop, whatever ``pending`` says.
        A request that lands between taking the pending flag and releasing is taken on the next pass, so none is
        lost; each pass either runs, releases or finds the lock gone, so the loop cannot spin.
        """
        held = {'project': project_id, 'running': True}
        while True:
            if self.collection.find_one_and_update({**held, 'pending': True},
                                                   {'$set': {'pending': False, 'labelsSince': 0}}) is not None:
                return True
            if self.collection.update_one({**held, 'pending': {'$ne': True}},
                                          {'$set': {'running': False}}).matched_count:
                return False
            if self.collection.find_one(held) is None:
                return False

    def hold(self, project_id: ObjectId) -> None:
        """Mark a round running for the queued round that starts now (after a restart cleared the flags)."""
        self.collection.update_one({'project': project_id}, {'$set': {'running': True}}, upsert=True)

    def release(self, project_id: ObjectId) -> None:
        """The project's rounds ended (or its queued round was cancelled): no round runs."""
        self.collection.update_one({'project': project_id}, {'$set': {'running': False}})

    def rerun_if_running(self, project_id: ObjectId) -> bool:
        """Ask for one more round after the running one, if a round runs (it started from data changed since, such
        as a category renamed); returns whether one runs."""
        return self.collection.update_one({'project': project_id, 'running': True},
                                          {'$set': {'pending': True}}).matched_count > 0

    def state(self, project_id: ObjectId) -> dict:
        doc = self.collection.find_one({'project': project_id}) or {}
        return {'running': bool(doc.get('running')), 'pending': bool(doc.get('pending')),
                'labelsSince': int(doc.get('labelsSince', 0))}

    def reset_interrupted(self, queued: list[ObjectId]) -> None:
        """Clear the flags of rounds no longer queued or running: those of the projects not in ``queued`` (the
        projects whose round work is in the queue, which runs it again)."""
        self.collection.update_many({'running': True, 'project': {'$nin': queued}},
                                    {'$set': {'running': False, 'pending': False}})
