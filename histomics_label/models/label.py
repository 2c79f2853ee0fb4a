"""Labels: one document per (project, slide, segment, labeler), written by atomic per-document upserts.

Nothing ever reads a whole array of labels, changes it and writes it back, so labelers working at once never
overwrite each other: each label is its own document, keyed by who made it, and a unique index stops a race from
making two. Every change (upsert, delete, review, undo) is also recorded as an event of a batch, which is what
``undo`` reverts, only where nobody changed the label since.

A segment labeled by several people has several documents; its *effective* label (what trains the model) is a
reviewer's override where there is one, else the most recent label.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.model_base import Model
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import BulkWriteError

VIEWS = ('guided', 'bulk', 'review', 'api', 'import')
"""Where a label came from, recorded with it."""
DUPLICATE_KEY = 11000


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Label(Model):
    def initialize(self) -> None:
        self.name = 'histomics_label_label'
        self.ensureIndices([
            (
                [('project', ASCENDING), ('item', ASCENDING), ('segment', ASCENDING), ('labeler', ASCENDING)],
                {'unique': True},
            ),
            ([('project', ASCENDING), ('updated', DESCENDING)], {}),
            ([('project', ASCENDING), ('category', ASCENDING)], {}),
            ([('project', ASCENDING), ('labeler', ASCENDING)], {}),
        ])

    def validate(self, doc: dict) -> dict:
        return doc

    # -- writing ---------------------------------------------------------------------------------------------------

    def upsert(self, project: dict, user: dict, entries: list[dict], view: str) -> dict:
        """Set this user's label of each ``{item, segment, category}``; returns the batch id and counts.

        Entries must already be checked (items of the project, segments that exist, known categories).
        """
        if view not in VIEWS:
            raise ValidationException(f'view must be one of {", ".join(VIEWS)}, not {view!r}', 'view')
        batch, now = uuid.uuid4().hex, _now()
        keyed = {(e['item'], int(e['segment'])): e['category'] for e in entries}
        before = self._current(project['_id'], user['_id'], keyed)
        operations = [UpdateOne(
            self._key(project['_id'], item, segment, user['_id']),
            {'$set': {'category': category, 'updated': now, 'view': view},
             '$unset': {'review': ''},
             '$setOnInsert': {'created': now}},
            upsert=True) for (item, segment), category in keyed.items()]
        self._bulk(operations)
        changed = [(key, before.get(key), category) for key, category in keyed.items()
                   if before.get(key) != category]
        self._record(batch, project['_id'], user['_id'], changed, now, 'label')
        return {'batch': batch, 'labeled': len(keyed), 'changed': len(changed)}

    def remove_labels(self, project: dict, user: dict, entries: list[dict]) -> dict:
        """Delete this user's labels of each ``{item, segment}``; returns the batch id and how many went."""
        batch, now = uuid.uuid4().hex, _now()
        keys = {(e['item'], int(e['segment'])): None for e in entries}
        before = self._current(project['_id'], user['_id'], keys)
        removed = 0
        for (item, segment), category in before.items():
            result = self.collection.delete_one({**self._key(project['_id'], item, segment, user['_id']),
                                                 'category': category})
            removed += result.deleted_count
        self._record(batch, project['_id'], user['_id'], [(key, category, None) for key, category in before.items()],
                     now, 'delete')
        return {'batch': batch, 'deleted': removed}

    def undo(self, project: dict, user: dict, batch: str) -> dict:
        """Revert this user's batch, newest change first, wherever the label is still what the batch made it."""
        events = list(LabelEvent().find({'project': project['_id'], 'batch': batch, 'labeler': user['_id']},
                                        sort=[('_id', DESCENDING)]))
        if not events:
            raise ValidationException(f'No batch {batch!r} of yours in this project', 'batch')
        if any(e.get('undone') for e in events):
            raise ValidationException(f'Batch {batch!r} was already undone', 'batch')
        reverted, skipped, now = 0, 0, _now()
        for event in events:
            key = self._key(project['_id'], event['item'], event['segment'], user['_id'])
            if event['after'] is None:
                result = self.collection.update_one(
                    key, {'$setOnInsert': {'category': event['before'], 'created': now, 'updated': now,
                                           'view': 'api'}}, upsert=True)
                done = result.upserted_id is not None
            elif event['before'] is None:
                done = self.collection.delete_one({**key, 'category': event['after']}).deleted_count == 1
            else:
                done = self.collection.update_one(
                    {**key, 'category': event['after']},
                    {'$set': {'category': event['before'], 'updated': now}}).modified_count == 1
            reverted += done
            skipped += not done
        LabelEvent().collection.update_many({'project': project['_id'], 'batch': batch}, {'$set': {'undone': now}})
        return {'batch': batch, 'reverted': reverted, 'skipped': skipped}

    def review(self, project: dict, reviewer: dict, label_id: ObjectId, category: str | None) -> dict:
        """Approve a label (``category`` None) or override it with ``category``, kept beside the original."""
        label = self.findOne({'_id': label_id, 'project': project['_id']})
        if label is None:
            raise ValidationException(f'No label {label_id} in this project', 'id')
        status = 'approved' if category is None or category == label['category'] else 'overridden'
        review = {'status': status, 'category': category or label['category'], 'reviewer': reviewer['_id'],
                  'time': _now()}
        self.collection.update_one({'_id': label_id}, {'$set': {'review': review}})
        label['review'] = review
        return label

    def rename_category(self, project_id: ObjectId, old: str, new: str) -> int:
        """Relabel every label (and review) of category ``old`` as ``new``, server-side, in one update each."""
        count = self.collection.update_many({'project': project_id, 'category': old},
                                            {'$set': {'category': new}}).modified_count
        self.collection.update_many({'project': project_id, 'review.category': old},
                                    {'$set': {'review.category': new}})
        return count

    def remove_project(self, project_id: ObjectId) -> None:
        self.collection.delete_many({'project': project_id})
        LabelEvent().collection.delete_many({'project': project_id})

    # -- reading ---------------------------------------------------------------------------------------------------

    @staticmethod
    def query(project_id: ObjectId, item_id: ObjectId | None = None, category: str | None = None,
              labeler_id: ObjectId | None = None, since: datetime.datetime | None = None,
              until: datetime.datetime | None = None, reviewed: bool | None = None) -> dict:
        """The Mongo query for a project's labels, narrowed by each filter given: slide, category, labeler, last
        change at or after ``since`` and before ``until``, reviewed or not."""
        query: dict = {'project': project_id}
        if item_id is not None:
            query['item'] = item_id
        if category:
            query['category'] = category
        if labeler_id is not None:
            query['labeler'] = labeler_id
        times = {**({'$gte': since} if since else {}), **({'$lt': until} if until else {})}
        if times:
            query['updated'] = times
        if reviewed is not None:
            query['review'] = {'$exists': reviewed}
        return query

    def effective(self, project_id: ObjectId, item_id: ObjectId | None = None) -> dict[tuple[ObjectId, int], str]:
        """``{(item, segment): category}``: an override where reviewed, else the most recent label."""
        query = {'project': project_id}
        if item_id is not None:
            query['item'] = item_id
        result: dict[tuple[ObjectId, int], str] = {}
        overridden: set[tuple[ObjectId, int]] = set()
        cursor = self.collection.find(query, {'item': 1, 'segment': 1, 'category': 1, 'review': 1},
                                      sort=[('updated', ASCENDING), ('_id', ASCENDING)])
        for doc in cursor:
            key = (doc['item'], doc['segment'])
            review = doc.get('review')
            if review and review.get('status') == 'overridden':
                result[key] = review['category']
                overridden.add(key)
            elif key not in overridden:
                result[key] = doc['category']
        return result

    def effective_by_slide(self, project_id: ObjectId) -> dict[ObjectId, dict[int, str]]:
        """``{item: {segment: category}}``: ``effective`` grouped by slide, for work done slide by slide."""
        grouped: dict[ObjectId, dict[int, str]] = {}
        for (item_id, segment), category in self.effective(project_id).items():
            grouped.setdefault(item_id, {})[segment] = category
        return grouped

    # -- helpers ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _key(project_id: ObjectId, item: ObjectId, segment: int, labeler: ObjectId) -> dict:
        return {'project': project_id, 'item': item, 'segment': int(segment), 'labeler': labeler}

    def _current(self, project_id: ObjectId, labeler: ObjectId,
                 keys: Iterable[tuple[ObjectId, int]]) -> dict[tuple[ObjectId, int], str]:
        by_item: dict[ObjectId, list[int]] = {}
        for item, segment in keys:
            by_item.setdefault(item, []).append(int(segment))
        current = {}
        for item, segments in by_item.items():
            for doc in self.collection.find({'project': project_id, 'labeler': labeler, 'item': item,
                                             'segment': {'$in': segments}}, {'segment': 1, 'category': 1}):
                current[(item, doc['segment'])] = doc['category']
        return current

    def _bulk(self, operations: list[UpdateOne]) -> None:
        """Run the upserts; one that lost an insert race to a concurrent request of the same labeler is retried,
        and then updates the document the other request made."""
        if not operations:
            return
        try:
            self.collection.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get('writeErrors', [])
            if any(e.get('code') != DUPLICATE_KEY for e in errors):
                raise
            self.collection.bulk_write([operations[e['index']] for e in errors], ordered=False)

    @staticmethod
    def _record(batch: str, project_id: ObjectId, labeler: ObjectId, changes, now, action: str) -> None:
        events = [{'batch': batch, 'project': project_id, 'labeler': labeler, 'item': item, 'segment': segment,
                   'before': before, 'after': after, 'time': now, 'action': action}
                  for (item, segment), before, after in changes]
        if events:
            LabelEvent().collection.insert_many(events, ordered=True)


IDLE_GAP = datetime.timedelta(minutes=2)
"""A labeler's pause longer than this between two writes is not labeling time (a break, another task)."""


class LabelEvent(Model):
    """One change of one label, in a batch: what ``undo`` reverts and what an audit reads."""

    def initialize(self) -> None:
        self.name = 'histomics_label_label_event'
        self.ensureIndices([([('project', ASCENDING), ('batch', ASCENDING)], {}),
                            ([('project', ASCENDING), ('time', DESCENDING)], {})])

    def validate(self, doc: dict) -> dict:
        return doc

    def labeling_minutes(self, project_id: ObjectId, until: datetime.datetime) -> float:
        """Minutes the project's labelers spent labeling up to ``until``: per labeler, the time between one write
        and the next, each gap counted up to ``IDLE_GAP``. The learning curve's other axis: what a label cost.

        The time before a labeler's first write of a session is not known and not counted, so it errs low.
        """
        stamps: dict[ObjectId, set[datetime.datetime]] = {}
        for event in self.collection.find({'project': project_id, 'time': {'$lte': until}},
                                          {'labeler': 1, 'time': 1}):
            stamps.setdefault(event['labeler'], set()).add(event['time'])
        seconds = 0.0
        for times in stamps.values():
            ordered = sorted(times)
            seconds += sum(min(later - earlier, IDLE_GAP).total_seconds()
                           for earlier, later in zip(ordered, ordered[1:], strict=False))
        return seconds / 60
