"""A project's effective labels kept in the web server between requests and brought up to date from the label
events recorded since: a suggestion request reads what changed, not every label of the project.

Why: ``Label.effective`` reads every label document of a project. On the local stack's embedded database, with
eight labelers writing, that read of a 50-slide project outlasted the 60 s database socket timeout and the
suggestion request answered 500 (``bench/bench_scale.py``); its cost grows with the labels, not with what changed.

Why it stays right:

* every change made through ``Label`` (label, delete, undo, review, and so the migration's imports) is an event whose
  ``recorded`` time is taken after the labels were written and before the event is. An event a read did not find was
  therefore written after that read began, and recorded at most the event write's duration before. A read asks for
  the events recorded since its predecessor began, less ``MARGIN`` (far beyond the database's 60 s socket timeout,
  and any clock difference between Girder processes), and reads every label of each segment they name again;
* writes that no event records (a category rename or merge, a re-segmentation carrying labels over, stale labels
  deleted) change the project's ``LabelEpoch``; a read that finds another epoch reads every label again;
* every label is read again at least every ``FULL_READ_EVERY`` whatever happened, which bounds what a write made
  outside the product (or one whose process died between the label and its event) can leave wrong.

Training does not use this: a round reads every label itself (``Label.effective``), once per round in a job.
"""

from __future__ import annotations

import datetime
import threading
from dataclasses import dataclass, field

from bson.objectid import ObjectId

from .label import EFFECTIVE_FIELDS, IN_CHUNK, Key, Label, LabelEpoch, LabelEvent, effective_of

MARGIN = datetime.timedelta(minutes=5)
"""How far before the last read began its successor looks for events (module notes)."""
FULL_READ_EVERY = datetime.timedelta(minutes=10)
"""The longest a project's labels go without being read whole."""


@dataclass
class _Kept:
    labels: dict[Key, str] = field(default_factory=dict)
    epoch: ObjectId | None = None
    began: datetime.datetime | None = None
    """When the read that brought ``labels`` up to date began."""
    whole: datetime.datetime | None = None
    """When the last read of every label began."""
    lock: threading.Lock = field(default_factory=threading.Lock)


_kept: dict[ObjectId, _Kept] = {}
_kept_lock = threading.Lock()


def effective_labels(project_id: ObjectId) -> dict[Key, str]:
    """``Label.effective(project_id)`` as it is now, read incrementally (module notes); the caller's own copy."""
    with _kept_lock:
        kept = _kept.setdefault(project_id, _Kept())
    with kept.lock:
        began, epoch = datetime.datetime.now(datetime.UTC), LabelEpoch().current(project_id)
        if kept.began is None or epoch != kept.epoch or began - kept.whole >= FULL_READ_EVERY:
            kept.labels = Label().effective(project_id)
            kept.whole = began
        else:
            _read_changes(project_id, kept.labels, kept.began - MARGIN)
        kept.began, kept.epoch = began, epoch
        return dict(kept.labels)


def forget(project_id: ObjectId) -> None:
    """Drop what is kept of a project (removed, say)."""
    with _kept_lock:
        _kept.pop(project_id, None)


def _read_changes(project_id: ObjectId, labels: dict[Key, str], since: datetime.datetime) -> None:
    """Bring ``labels`` up to date for every segment an event recorded at or after ``since`` names: every label of
    those segments is read again, ``IN_CHUNK`` segments per query."""
    touched: dict[ObjectId, set[int]] = {}
    for event in LabelEvent().collection.find({'project': project_id, 'recorded': {'$gte': since}},
                                              {'item': 1, 'segment': 1}):
        touched.setdefault(event['item'], set()).add(int(event['segment']))
    for item, segments in touched.items():
        ordered = sorted(segments)
        for start in range(0, len(ordered), IN_CHUNK):
            chunk = ordered[start:start + IN_CHUNK]
            query = {'project': project_id, 'item': item, 'segment': {'$in': chunk}}
            fresh = effective_of(Label().collection.find(query, EFFECTIVE_FIELDS))
            for segment in chunk:
                labels.pop((item, segment), None)
            labels.update(fresh)
