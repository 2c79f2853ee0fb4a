"""Labels: one document per (project, slide, segment, labeler), each change a conditional write and an event.

Nothing ever reads a whole array of labels, changes it and writes it back, so labelers working at once never
overwrite each other: each label is its own document, keyed by who made it, and a unique index stops a race from
making two. Each document carries ``rev``, a token that every change replaces, and each write applies only where the
document is still the revision it was planned on (or a race is retried), so the state a change started from is known
exactly. Every change (label, delete, review, undo) is recorded as an event of a batch holding the whole document
before and after it, which is what ``undo`` puts back, only where nobody changed the label since.

A segment labeled by several people has several documents; its *effective* label (what trains the model) is the
reviewer's override made last where there is one, else the most recent label.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable

from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.model_base import Model
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from ..girder_compat import UtcDates

VIEWS = ('guided', 'bulk', 'review', 'api', 'import')
"""Where a label came from, recorded with it."""
DUPLICATE_KEY = 11000
IN_CHUNK = 200
"""Most ids one ``$in`` query names, and most upserts one command sends: the local stack's embedded database turns
``$in`` into an expression tree that fails beyond about 500 values, and takes tens of milliseconds per upsert (a
command of a thousand would outlast the client's 60-second socket timeout)."""
NEVER = datetime.datetime.min.replace(tzinfo=datetime.UTC)
"""The change time of a label stored without one (an older version's), earlier than any other, as MongoDB sorts a
missing field."""
ATTEMPTS = 50
"""How often a write is retried while other requests keep changing the same labels under it."""

Key = tuple[ObjectId, int]
"""A labeled segment: ``(item, segment)``."""
Change = tuple[dict | None, dict | None]
"""One label's whole document before and after a change (None: there was none, or none is left)."""


def _now() -> datetime.datetime:
    """The time now, to the millisecond the database keeps, so a document in hand equals the stored one."""
    now = datetime.datetime.now(datetime.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Label(UtcDates, Model):
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

        A label whose category stays keeps its review; one whose category changes loses it (the event keeps it).
        Entries must already be checked (items of the project, segments that exist, known categories).
        """
        if view not in VIEWS:
            raise ValidationException(f'view must be one of {", ".join(VIEWS)}, not {view!r}', 'view')
        batch, now = uuid.uuid4().hex, _now()
        pending = {(e['item'], int(e['segment'])): e['category'] for e in entries}
        labeled = len(pending)
        changes: list[Change] = []
        for attempt in range(ATTEMPTS + 1):
            if not pending:
                break
            if attempt == ATTEMPTS:
                raise ValidationException('These labels kept changing under this request; try again', 'labels')
            current = self._current(project['_id'], user['_id'], pending)
            plans = [_planned(project['_id'], user['_id'], key, category, current.get(key), view, now)
                     for key, category in pending.items()]
            applied, lost = self._apply(plans)
            changes += applied
            pending = {key: pending[key] for key in lost}
        self._record(batch, project['_id'], user['_id'], changes, now, 'label')
        changed = sum(before is None or before['category'] != after['category'] for before, after in changes)
        return {'batch': batch, 'labeled': labeled, 'changed': changed}

    def remove_labels(self, project: dict, user: dict, entries: list[dict]) -> dict:
        """Delete this user's labels of each ``{item, segment}``; returns the batch id and how many went."""
        batch, now = uuid.uuid4().hex, _now()
        keys = {(e['item'], int(e['segment'])) for e in entries}
        changes: list[Change] = []
        for item, segment in keys:
            removed = self.collection.find_one_and_delete(self._key(project['_id'], item, segment, user['_id']))
            if removed is not None:
                changes.append((removed, None))
        self._record(batch, project['_id'], user['_id'], changes, now, 'delete')
        return {'batch': batch, 'deleted': len(changes)}

    def undo(self, project: dict, user: dict, batch: str) -> dict:
        """Revert this user's batch, newest change first, wherever the label is still what the batch made it: each
        label becomes exactly the document it was (its category, times, view, review). The undo is a batch of its own,
        so it can be undone in turn."""
        events = list(LabelEvent().find({'project': project['_id'], 'batch': batch, 'labeler': user['_id']},
                                        sort=[('_id', DESCENDING)]))
        if not events:
            raise ValidationException(f'No batch {batch!r} of yours in this project', 'batch')
        if any(e.get('undone') for e in events):
            raise ValidationException(f'Batch {batch!r} was already undone', 'batch')
        undo_batch, now = uuid.uuid4().hex, _now()
        changes = [change for change in map(self._revert, events) if change is not None]
        LabelEvent().collection.update_many({'project': project['_id'], 'batch': batch}, {'$set': {'undone': now}})
        self._record(undo_batch, project['_id'], user['_id'], changes, now, 'undo')
        return {'batch': batch, 'undoBatch': undo_batch, 'reverted': len(changes),
                'skipped': len(events) - len(changes)}

    def review(self, project: dict, reviewer: dict, label_id: ObjectId, category: str | None) -> dict:
        """Approve a label (``category`` None) or override it with ``category``, kept beside the original; returns
        the label as it now is, with the batch id of the review (which ``undo`` reverts) as ``batch``."""
        batch = uuid.uuid4().hex
        for _ in range(ATTEMPTS):
            label = self.findOne({'_id': label_id, 'project': project['_id']})
            if label is None:
                raise ValidationException(f'No label {label_id} in this project', 'id')
            now = _now()
            status = 'approved' if category is None or category == label['category'] else 'overridden'
            review = {'status': status, 'category': category or label['category'], 'reviewer': reviewer['_id'],
                      'time': now}
            reviewed = self.collection.find_one_and_update(
                {'_id': label_id, 'rev': label.get('rev')}, {'$set': {'review': review, 'rev': ObjectId()}},
                return_document=ReturnDocument.AFTER)
            if reviewed is not None:
                self._record(batch, project['_id'], reviewer['_id'], [(label, reviewed)], now, 'review')
                return {**reviewed, 'batch': batch}
        raise ValidationException('This label kept changing under this review; try again', 'id')

    def rename_category(self, project_id: ObjectId, old: str, new: str) -> int:
        """Relabel every label (and review) of category ``old`` as ``new``, server-side, in one update each."""
        count = self.collection.update_many({'project': project_id, 'category': old},
                                            {'$set': {'category': new, 'rev': ObjectId()}}).modified_count
        self.collection.update_many({'project': project_id, 'review.category': old},
                                    {'$set': {'review.category': new, 'rev': ObjectId()}})
        LabelEpoch().bump(project_id)
        return count

    def remove_project(self, project_id: ObjectId) -> None:
        self.collection.delete_many({'project': project_id})
        LabelEvent().collection.delete_many({'project': project_id})
        LabelEpoch().collection.delete_one({'_id': project_id})

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

    def effective(self, project_id: ObjectId, item_id: ObjectId | None = None) -> dict[Key, str]:
        """``{(item, segment): category}``: the override reviewed last where a segment has one, else its most recent
        label (ties on time go to the later document id).

        The documents are read in whatever order the database returns them and the latest is kept per segment
        here: every suggestion request and round makes this read, and the local stack's embedded database took
        4.5 s to return 60,000 labels sorted by time against 3.9 s unsorted."""
        query = {'project': project_id}
        if item_id is not None:
            query['item'] = item_id
        return effective_of(self.collection.find(query, EFFECTIVE_FIELDS))

    def effective_by_slide(self, project_id: ObjectId) -> dict[ObjectId, dict[int, str]]:
        """``{item: {segment: category}}``: ``effective`` grouped by slide, for work done slide by slide."""
        return by_slide(self.effective(project_id))

    # -- helpers ---------------------------------------------------------------------------------------------------

    @staticmethod
    def _key(project_id: ObjectId, item: ObjectId, segment: int, labeler: ObjectId) -> dict:
        return {'project': project_id, 'item': item, 'segment': int(segment), 'labeler': labeler}

    def _current(self, project_id: ObjectId, labeler: ObjectId, keys: Iterable[Key]) -> dict[Key, dict]:
        """The labeler's documents of these segments, read ``IN_CHUNK`` segments per query."""
        by_item: dict[ObjectId, list[int]] = {}
        for item, segment in keys:
            by_item.setdefault(item, []).append(int(segment))
        current = {}
        for item, segments in by_item.items():
            for start in range(0, len(segments), IN_CHUNK):
                query = {'project': project_id, 'labeler': labeler, 'item': item,
                         'segment': {'$in': segments[start:start + IN_CHUNK]}}
                current.update({(item, doc['segment']): doc for doc in self.collection.find(query)})
        return current

    def _apply(self, plans: list[tuple[Key, dict | None, dict, UpdateOne | None]]) -> tuple[list[Change], list[Key]]:
        """Run the planned writes, ``IN_CHUNK`` to a command; returns the changes they made and the segments whose
        label another request changed since it was read (their write did nothing; they are planned again).

        A label that did not exist is inserted, all such labels in one ``insert_many``; where another request made it
        since, the insert collides with the unique index. Every other write matches its label's id and the revision
        it was planned on: where the label was changed since, nothing matches and the upsert's insert collides on
        the id (a duplicate-key error for that write alone); where it was deleted since, the write inserts it afresh
        under its key (before: none), or collides with the key's unique index where another request labeled it since.
        """
        changes: list[Change] = []
        lost: list[Key] = []
        new = [plan for plan in plans if plan[1] is None]
        for start in range(0, len(new), IN_CHUNK):
            chunk = new[start:start + IN_CHUNK]
            documents = [{**after, '_id': ObjectId()} for _, _, after, _ in chunk]
            collided = self._insert(documents)
            for index, ((key, *_), document) in enumerate(zip(chunk, documents, strict=True)):
                if index in collided:
                    lost.append(key)
                else:
                    changes.append((None, document))
        existing = [plan for plan in plans if plan[1] is not None]
        for start in range(0, len(existing), IN_CHUNK):
            chunk = existing[start:start + IN_CHUNK]
            inserted, collided = self._bulk([op for *_, op in chunk])
            for index, (key, before, after, _) in enumerate(chunk):
                if index in collided:
                    lost.append(key)
                elif index in inserted:
                    changes.append((None, {**_fresh(after), '_id': inserted[index]}))
                else:
                    changes.append((before, after))
        return changes, lost

    def _insert(self, documents: list[dict]) -> set[int]:
        """Insert new labels in one unordered command (on the local stack's embedded database, many times faster
        than as many upserts); returns the indices of those that collided with the unique index."""
        try:
            self.collection.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get('writeErrors', [])
            if any(e.get('code') != DUPLICATE_KEY for e in errors):
                raise
            return {e['index'] for e in errors}
        return set()

    def _bulk(self, operations: list[UpdateOne]) -> tuple[dict[int, ObjectId], set[int]]:
        """Run upserts in one unordered command; returns the ids of the documents they inserted, by the upsert's
        index, and the indices of the upserts that collided with the unique index."""
        try:
            result = self.collection.bulk_write(operations, ordered=False).bulk_api_result
        except BulkWriteError as exc:
            result = exc.details
        errors = result.get('writeErrors', [])
        if any(e.get('code') != DUPLICATE_KEY for e in errors):
            raise BulkWriteError(result)
        return {u['index']: u['_id'] for u in result.get('upserted', [])}, {e['index'] for e in errors}

    def _revert(self, event: dict) -> Change | None:
        """Put one label back as it was before ``event`` where it is still as the event left it; returns that change,
        or None where the label changed since (or the event predates whole-document events)."""
        if 'afterLabel' not in event:
            return None
        before, after = event['beforeLabel'], event['afterLabel']
        if after is None:
            try:
                self.collection.insert_one(dict(before))
            except DuplicateKeyError:  # labeled again since
                return None
            return None, before
        current = {'_id': after['_id'], 'rev': after.get('rev')}
        if before is None:
            done = self.collection.find_one_and_delete(current)
        else:
            done = self.collection.find_one_and_replace(current, before)
        return None if done is None else (after, before)

    @staticmethod
    def _record(batch: str, project_id: ObjectId, user_id: ObjectId, changes: list[Change],
                now: datetime.datetime, action: str) -> None:
        """Record each change as an event of ``batch`` made by ``user_id``: the whole label before and after it, and
        its category before and after (None: no label) for a reader of the history. ``recorded``, taken after the
        labels were written, is what ``effective_labels`` reads the changes since a time by."""
        events = []
        recorded = _now()
        for before, after in changes:
            label = before or after
            events.append({'batch': batch, 'project': project_id, 'labeler': user_id, 'item': label['item'],
                           'segment': label['segment'], 'label': label['_id'],
                           'before': before and before['category'], 'after': after and after['category'],
                           'beforeLabel': before, 'afterLabel': after, 'time': now, 'recorded': recorded,
                           'action': action})
        if events:
            LabelEvent().collection.insert_many(events, ordered=True)


def _planned(project_id: ObjectId, labeler: ObjectId, key: Key, category: str, before: dict | None, view: str,
             now: datetime.datetime) -> tuple[Key, dict | None, dict, UpdateOne | None]:
    """The write that gives ``key`` the label ``category`` from the document ``before`` (None: none yet): the key,
    the document before and after, and the upsert that makes it, which applies only to that exact revision."""
    item, segment = key
    rev = ObjectId()
    changes = {'category': category, 'updated': now, 'view': view, 'rev': rev}
    keeps_review = before is not None and before['category'] == category
    if before is None:
        after = {'project': project_id, 'item': item, 'segment': segment, 'labeler': labeler, 'created': now,
                 **changes}
    else:
        after = {**{k: v for k, v in before.items() if keeps_review or k != 'review'}, **changes}
    if before is None:
        return key, before, after, None  # inserted (``Label._apply``)
    # matched by id and revision (a primary-key seek, where the segment's key took the embedded database's planner a
    # scan of the collection per field); where it was deleted since, the upsert makes it afresh under its key
    update = {'$set': changes, '$setOnInsert': {**Label._key(project_id, item, segment, labeler), 'created': now},
              **({} if keeps_review else {'$unset': {'review': ''}})}
    return key, before, after, UpdateOne({'_id': before['_id'], 'rev': before.get('rev')}, update, upsert=True)


def _fresh(after: dict) -> dict:
    """A planned label as the upsert inserts it where the planned-on one was deleted meanwhile: new, unreviewed."""
    return {k: v for k, v in after.items() if k not in ('_id', 'review')} | {'created': after['updated']}


IDLE_GAP = datetime.timedelta(minutes=2)
"""A labeler's pause longer than this between two writes is not labeling time (a break, another task)."""


EFFECTIVE_FIELDS = {'item': 1, 'segment': 1, 'category': 1, 'review': 1, 'updated': 1}
"""What ``effective_of`` reads of a label document."""


def effective_of(documents: Iterable[dict]) -> dict[Key, str]:
    """``{(item, segment): category}`` over label documents in any order: per segment, the override reviewed last
    where it has one, else its most recent label (ties on time go to the later document id)."""
    latest: dict[Key, tuple[datetime.datetime, ObjectId, str]] = {}
    overrides: dict[Key, tuple[datetime.datetime, datetime.datetime, ObjectId, str]] = {}
    for doc in documents:
        key = (doc['item'], doc['segment'])
        made = (doc.get('updated') or NEVER, doc['_id'], doc['category'])
        if key not in latest or made[:2] > latest[key][:2]:
            latest[key] = made
        review = doc.get('review')
        if review and review.get('status') == 'overridden':
            reviewed = (review['time'], made[0], doc['_id'], review['category'])
            if key not in overrides or reviewed[:3] > overrides[key][:3]:
                overrides[key] = reviewed
    return {**{key: made[2] for key, made in latest.items()},
            **{key: reviewed[3] for key, reviewed in overrides.items()}}


def by_slide(effective: dict[Key, str]) -> dict[ObjectId, dict[int, str]]:
    """``{item: {segment: category}}``: effective labels grouped by slide, for work done slide by slide."""
    grouped: dict[ObjectId, dict[int, str]] = {}
    for (item_id, segment), category in effective.items():
        grouped.setdefault(item_id, {})[segment] = category
    return grouped

class LabelEvent(UtcDates, Model):
    """One change of one label, in a batch: what ``undo`` reverts and what an audit reads."""

    def initialize(self) -> None:
        self.name = 'histomics_label_label_event'
        self.ensureIndices([([('project', ASCENDING), ('batch', ASCENDING)], {}),
                            ([('project', ASCENDING), ('time', DESCENDING)], {}),
                            ([('project', ASCENDING), ('recorded', ASCENDING)], {})])

    def validate(self, doc: dict) -> dict:
        return doc

    def labeling_minutes(self, project_id: ObjectId, until: datetime.datetime) -> float:
        """Minutes the project's labelers spent labeling up to ``until``: per labeler, the time between one write
        and the next, each gap counted up to ``IDLE_GAP``. The learning curve's other axis: what a label cost.

        The time before a labeler's first write of a session is not known and not counted, so it errs low. Reviews
        are not labeling and not counted.
        """
        stamps: dict[ObjectId, set[datetime.datetime]] = {}
        for event in self.collection.find({'project': project_id, 'time': {'$lte': until}, 'action': {'$ne': 'review'}},
                                          {'labeler': 1, 'time': 1}):
            stamps.setdefault(event['labeler'], set()).add(event['time'])
        seconds = 0.0
        for times in stamps.values():
            ordered = sorted(times)
            seconds += sum(min(later - earlier, IDLE_GAP).total_seconds()
                           for earlier, later in zip(ordered, ordered[1:], strict=False))
        return seconds / 60


class LabelEpoch(UtcDates, Model):
    """Per project, a token that changes whenever labels are rewritten without an event of their own (a category
    renamed or merged, labels carried over to new segments or deleted as stale): whoever keeps labels between reads
    (``effective_labels``) reads them all again when it changes."""

    def initialize(self) -> None:
        self.name = 'histomics_label_label_epoch'

    def validate(self, doc: dict) -> dict:
        return doc

    def bump(self, project_id: ObjectId) -> None:
        self.collection.update_one({'_id': project_id}, {'$set': {'epoch': ObjectId()}}, upsert=True)

    def current(self, project_id: ObjectId) -> ObjectId | None:
        found = self.collection.find_one({'_id': project_id})
        return found and found['epoch']
