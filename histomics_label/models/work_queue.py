"""The queue of heavy work (a slide's segments and features): entries in the database, so that several Girder
processes share one queue, and one that dies or restarts loses nothing (``jobs/queue.py`` runs them).

An entry exists only while its work is queued or running; the Girder job it belongs to keeps the history. Every
change is one atomic conditional update, so two processes never claim the same entry and a key (say, a slide) is
never queued twice.
"""

from __future__ import annotations

import datetime

from bson.objectid import ObjectId
from girder.models.model_base import Model
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from ..girder_compat import UtcDates

QUEUED = 'queued'
RUNNING = 'running'
QUEUE_ORDER = [('created', ASCENDING), ('_id', ASCENDING)]
"""First come, first served; entries queued in the same millisecond (a project's slides) in the order queued."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class HeavyWork(UtcDates, Model):
    """One entry per piece of queued or running heavy work: its kind, key, Girder job, owner and heartbeat."""

    def initialize(self) -> None:
        self.name = 'histomics_label_work'
        self.ensureIndices([([('key', ASCENDING)], {'unique': True}),
                            ([('status', ASCENDING), ('created', ASCENDING)], {}),
                            ([('job', ASCENDING)], {}), ([('owner', ASCENDING)], {})])

    def validate(self, doc: dict) -> dict:
        return doc

    def enqueue(self, kind: str, key: str, job_id: ObjectId, project_id: ObjectId | None = None,
                item_id: ObjectId | None = None, timeout_s: float | None = None) -> tuple[dict, bool]:
        """Queue ``kind`` work for ``key`` as Girder job ``job_id`` (of project and slide item, where it has them);
        returns the entry and whether it is new (False: work for ``key`` is already queued or running, and that
        entry is returned)."""
        while True:
            doc = {'kind': kind, 'key': key, 'job': job_id, 'project': project_id, 'item': item_id,
                   'status': QUEUED, 'created': _now(), 'attempts': 0, 'timeout': timeout_s}
            try:
                self.collection.insert_one(doc)
                return doc, True
            except DuplicateKeyError:
                existing = self.collection.find_one({'key': key})
                if existing is not None:
                    return existing, False
                # it finished between the insert and the read: queue it again

    def claim(self, owner: str, kinds: list[str] | None = None) -> dict | None:
        """The oldest queued entry (of ``kinds``, where given), now running for ``owner``; None when nothing is
        queued."""
        now = _now()
        query = {'status': QUEUED, **({'kind': {'$in': kinds}} if kinds is not None else {})}
        return self.collection.find_one_and_update(
            query, {'$set': {'status': RUNNING, 'owner': owner, 'started': now, 'heartbeat': now},
                                 '$inc': {'attempts': 1}},
            sort=QUEUE_ORDER, return_document=ReturnDocument.AFTER)

    def beat(self, owner: str) -> None:
        """Mark ``owner``'s running entries alive."""
        self.collection.update_many({'owner': owner, 'status': RUNNING}, {'$set': {'heartbeat': _now()}})

    def requeue_stale(self, older_than: datetime.datetime) -> int:
        """Queue again the running entries whose owner stopped beating before ``older_than`` (its process died)."""
        return self.collection.update_many({'status': RUNNING, 'heartbeat': {'$lt': older_than}},
                                           {'$set': {'status': QUEUED}, '$unset': {'owner': ''}}).modified_count

    def requeue_owners(self, owners: list[str]) -> int:
        """Queue again the running entries of ``owners`` (processes known to be gone)."""
        if not owners:
            return 0
        return self.collection.update_many({'status': RUNNING, 'owner': {'$in': owners}},
                                           {'$set': {'status': QUEUED}, '$unset': {'owner': ''}}).modified_count

    def running_owners(self) -> list[str]:
        return sorted(self.collection.distinct('owner', {'status': RUNNING}))

    def follow(self, entry: dict, job_id: ObjectId) -> None:
        """The running entry's work goes on as Girder job ``job_id``."""
        self.collection.update_one({'_id': entry['_id']}, {'$set': {'job': job_id}})

    def finish(self, entry: dict) -> None:
        """Remove a finished (or failed, or cancelled) entry."""
        self.collection.delete_one({'_id': entry['_id']})

    def withdraw(self, job_id: ObjectId) -> dict | None:
        """Remove the entry of job ``job_id`` if it is still queued; returns it (None: running or unknown)."""
        return self.collection.find_one_and_delete({'job': job_id, 'status': QUEUED})

    def of_job(self, job_id: ObjectId) -> dict | None:
        return self.collection.find_one({'job': job_id})

    def position(self, entry: dict) -> int:
        """1 for the next entry to run, 2 for the one after, ...; 0 while it runs."""
        if entry['status'] != QUEUED:
            return 0
        ahead = {'$or': [{'created': {'$lt': entry['created']}},
                         {'created': entry['created'], '_id': {'$lt': entry['_id']}}]}
        return self.collection.count_documents({'status': QUEUED, **ahead}) + 1

    def of_project(self, project_id: ObjectId) -> list[dict]:
        """The project's entries, each with its ``position``, in queue order."""
        entries = list(self.collection.find({'project': project_id}, sort=QUEUE_ORDER))
        return [{**entry, 'position': self.position(entry)} for entry in entries]

    def counts(self) -> dict[str, int]:
        return {status: self.collection.count_documents({'status': status}) for status in (QUEUED, RUNNING)}
