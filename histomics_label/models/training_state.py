"""Per project, whether a training round runs and whether another is wanted: the flags that keep rounds of one
project from running twice at once, changed only by atomic conditional updates (``jobs/rounds.py`` explains the
protocol)."""

from __future__ import annotations

import datetime

from bson.objectid import ObjectId
from girder.models.model_base import Model
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TrainingState(Model):
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
        """After a round: True to run another (one was asked for meanwhile), else release the project."""
        if self.collection.find_one_and_update({'project': project_id, 'pending': True},
                                               {'$set': {'pending': False, 'labelsSince': 0}}) is not None:
            return True
        released = self.collection.update_one({'project': project_id, 'pending': {'$ne': True}},
                                              {'$set': {'running': False}})
        return released.modified_count == 0

    def state(self, project_id: ObjectId) -> dict:
        doc = self.collection.find_one({'project': project_id}) or {}
        return {'running': bool(doc.get('running')), 'pending': bool(doc.get('pending')),
                'labelsSince': int(doc.get('labelsSince', 0))}

    def reset_interrupted(self) -> None:
        self.collection.update_many({'running': True}, {'$set': {'running': False, 'pending': False}})
