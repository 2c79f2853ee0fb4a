"""A project's effective labels kept in the web server between requests and brought up to date from the label
events recorded since: a suggestion request reads what changed, not every label of the project.

Why: ``Label.effective`` reads every label document of a project. On the local stack's embedded database, with
eight labelers writing, that read of a 50-slide project outlasted the 60 s database socket timeout and the
suggestion request answered 500 (``bench/bench_scale.py``); its cost grows with the labels, not with what changed.

What is kept: every label document of the project in brief (per segment and labeler: its id, ``rev`` (the token each
change replaces), time, category and review, as a tuple: 860 bytes a label with its segment's effective label,
measured at 60,000 labels, against 1.5 kB as documents), and the effective label per segment made from them.

Why it stays right:

* every change made through ``Label`` (label, delete, undo, review, and so the migration's imports) is an event that
  holds the whole document before and after it, and whose ``recorded`` time is taken after the label was written
  and before the event is. An event a read did not find was therefore written after that read began, and recorded
  at most the event write's duration before. A read asks for the events recorded since its predecessor began, less
  ``MARGIN`` (far beyond the database's 60 s socket timeout and any clock difference between Girder processes),
  and takes those it has not taken yet;
* an event applies where the kept document is the one it changed (same ``rev``, or none on both sides), so events of
  one document taken in any order chain up as they happened; a segment whose events do not all chain (a write whose
  event has not arrived yet, say) has its labels read again;
* writes that no event records (a category rename or merge, a re-segmentation carrying labels over, stale labels
  deleted) change the project's ``LabelEpoch``; a read that finds another epoch reads every label again;
* every label is read again at least every ``FULL_READ_EVERY`` whatever happened, which bounds what a write made
  outside the product (or one whose process died between the label and its event) can leave wrong.

Training does not use this: a round reads every label itself (``Label.effective``), once per round in a job.
"""

from __future__ import annotations

import datetime
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from bson.objectid import ObjectId

from .label import IN_CHUNK, Key, Label, LabelEpoch, LabelEvent, effective_of

MARGIN = datetime.timedelta(minutes=5)
"""How far before the last read began its successor looks for events (module notes)."""
FULL_READ_EVERY = datetime.timedelta(minutes=10)
"""The longest a project's labels go without being read whole."""
FIELDS = {'item': 1, 'segment': 1, 'labeler': 1, 'category': 1, 'review': 1, 'updated': 1, 'rev': 1}
"""What is read of a label document."""
Brief = tuple
"""A label document as kept: ``(_id, rev, updated, category, review)``."""


@dataclass
class _Kept:
    documents: dict[Key, dict[ObjectId, Brief]] = field(default_factory=dict)
    """Per segment, per labeler: the label document in brief."""
    labels: dict[Key, str] = field(default_factory=dict)
    epoch: ObjectId | None = None
    began: datetime.datetime | None = None
    """When the read that brought ``labels`` up to date began."""
    whole: datetime.datetime | None = None
    """When the last read of every label began."""
    taken: dict[ObjectId, datetime.datetime] = field(default_factory=dict)
    """The events already taken that a read may find again (recorded within its look-back), by id."""
    lock: threading.Lock = field(default_factory=threading.Lock)


_kept: dict[ObjectId, _Kept] = {}
_kept_lock = threading.Lock()


def effective_labels(project_id: ObjectId) -> dict[Key, str]:
    """``Label.effective(project_id)`` as it is now, read incrementally (module notes); the caller's own copy."""
    with _kept_lock:
        kept = _kept.setdefault(project_id, _Kept())
    with kept.lock:
        began, epoch = datetime.datetime.now(datetime.UTC), LabelEpoch().current(project_id)
        whole = kept.began is None or epoch != kept.epoch or began - kept.whole >= FULL_READ_EVERY
        since = began - MARGIN if whole else kept.began - MARGIN
        new = _new_events(project_id, since, kept.taken)  # read before the labels: a whole read reflects them
        if whole:
            kept.documents = _documents(Label().collection.find({'project': project_id}, FIELDS))
            kept.labels = {key: _effective(key, docs) for key, docs in kept.documents.items()}
            kept.whole = began
        else:
            _apply(project_id, kept, _events(project_id, new))
        kept.began, kept.epoch = began, epoch
        return dict(kept.labels)


def forget(project_id: ObjectId) -> None:
    """Drop what is kept of a project (removed, say)."""
    with _kept_lock:
        _kept.pop(project_id, None)


def _new_events(project_id: ObjectId, since: datetime.datetime, taken: dict[ObjectId, datetime.datetime],
                ) -> list[tuple[datetime.datetime, ObjectId]]:
    """``(recorded, id)`` of the events recorded at or after ``since`` not taken yet, oldest first; they are marked
    taken, and those recorded before ``since`` forgotten (no later read looks back that far)."""
    query = {'project': project_id, 'recorded': {'$gte': since}}
    fresh = [(event['recorded'], event['_id']) for event in LabelEvent().collection.find(query, {'recorded': 1})
             if event['_id'] not in taken]
    for stale in [event_id for event_id, recorded in taken.items() if recorded < since]:
        del taken[stale]
    taken.update((event_id, recorded) for recorded, event_id in fresh)
    return sorted(fresh)


def _events(project_id: ObjectId, fresh: list[tuple[datetime.datetime, ObjectId]]) -> list[dict]:
    """The events ``fresh`` names, whole (what ``_apply`` needs of them), oldest first: read as the events recorded
    since the oldest of them (nearly all were recorded since the last read), one ranged query on an index where a
    query by id would name each."""
    if not fresh:
        return []
    wanted = {event_id for _, event_id in fresh}
    query = {'project': project_id, 'recorded': {'$gte': fresh[0][0]}}
    fields = {'recorded': 1, 'item': 1, 'segment': 1, 'beforeLabel': 1, 'afterLabel': 1}
    found = [event for event in LabelEvent().collection.find(query, fields) if event['_id'] in wanted]
    return sorted(found, key=lambda event: (event['recorded'], event['_id']))


def _apply(project_id: ObjectId, kept: _Kept, events: list[dict]) -> None:
    """Apply ``events`` to the kept documents where they chain (module notes), then read again the labels of the
    segments where some did not; the effective label of every segment they touched is made again."""
    pending = [event for event in events if 'afterLabel' in event]
    unsure = {(event['item'], int(event['segment'])) for event in events if 'afterLabel' not in event}
    progress = True
    while pending and progress:
        progress, waiting = False, []
        for event in pending:
            if _applied(kept.documents, event['beforeLabel'], event['afterLabel']):
                progress = True
            else:
                waiting.append(event)
        pending = waiting
    unsure |= {(event['item'], int(event['segment'])) for event in pending}
    for item, segments in _by_item(unsure).items():
        for start in range(0, len(segments), IN_CHUNK):
            chunk = segments[start:start + IN_CHUNK]
            for segment in chunk:
                kept.documents.pop((item, segment), None)
            query = {'project': project_id, 'item': item, 'segment': {'$in': chunk}}
            kept.documents.update(_documents(Label().collection.find(query, FIELDS)))
    for key in {(event['item'], int(event['segment'])) for event in events} | unsure:
        docs = kept.documents.get(key)
        if docs:
            kept.labels[key] = _effective(key, docs)
        else:
            kept.documents.pop(key, None)
            kept.labels.pop(key, None)


def _applied(documents: dict[Key, dict[ObjectId, Brief]], before: dict | None, after: dict | None) -> bool:
    """Make the change from ``before`` to ``after`` where the kept document is ``before``; whether it was made."""
    label = after or before
    key, labeler = (label['item'], int(label['segment'])), label['labeler']
    current = documents.get(key, {}).get(labeler)
    if (current is None) != (before is None) or (current is not None and current[1] != before.get('rev')):
        return False
    if after is None:
        documents[key].pop(labeler)
    else:
        documents.setdefault(key, {})[labeler] = _brief(after)
    return True


def _brief(doc: dict) -> Brief:
    return doc['_id'], doc.get('rev'), doc.get('updated'), sys.intern(doc['category']), doc.get('review')


def _documents(found: Iterable[dict]) -> dict[Key, dict[ObjectId, Brief]]:
    documents: dict[Key, dict[ObjectId, Brief]] = {}
    for doc in found:
        documents.setdefault((doc['item'], int(doc['segment'])), {})[doc['labeler']] = _brief(doc)
    return documents


def _effective(key: Key, docs: dict[ObjectId, Brief]) -> str:
    """The effective label of a segment from its kept documents (``label.effective_of``)."""
    item, segment = key
    [category] = effective_of({'_id': _id, 'item': item, 'segment': segment, 'updated': updated, 'category': name,
                               'review': review} for _id, _, updated, name, review in docs.values()).values()
    return category


def _by_item(keys: set[Key]) -> dict[ObjectId, list[int]]:
    grouped: dict[ObjectId, list[int]] = {}
    for item, segment in sorted(keys):
        grouped.setdefault(item, []).append(segment)
    return grouped
