"""Segmentations are versioned: a slide segmented again never re-targets its labels silently.

A label names a segment id of the segmentation it was made on, and the same id names an unrelated segment in any
other. So a new segmentation of a slide whose store exists (other radius, magnification, compactness) is made
into a *pending* store beside the current one (``<item>.pending.h5``); the current store and its labels keep
working. The carry-over table (``core.segments.carry_over``: each old segment's best new match by pixel overlap)
is saved beside it (``<item>.carry-over.h5``), and ``report`` shows the admin, label by label, what applying would
do: **moved** labels go to the new segment that matches their old one, **ambiguous** and **dropped** ones have
no clear match. ``apply`` then:

1. claims the pending store (renames it to ``<item>.applying.h5``) under the slide's apply lock, which refuses a
   second apply while one runs;
2. takes the unmatched labels off the slide: deleted where the admin chose ``delete``, else kept as detached
   labels (``models.detached_label``), listed and deletable with the project's stale labels;
3. gives each moved label a temporary id (minus its new id, marked with the new store's id), so that no move can
   collide with a label not moved yet under the unique (project, slide, segment, labeler) index;
4. swaps the stores atomically under the store's lock (``replace_store``: an update of the old store under way
   finishes first instead of landing afterwards), dropping the old store's round files;
5. gives the moved labels their new ids (labeler, times, view, review and revision untouched) and rewrites the
   events of moved segments to the new ids (the label documents they hold included), so undo keeps working on
   moved labels; events of unmatched segments are marked undone, since undoing them would write labels onto
   unrelated segments.

Each step is safe to run again: a server stopped half-way finishes the apply on the next request.

A label is *stale* when it names no segment of its slide's current store (an id beyond its segment count, left
by a re-segmentation before segmentations were versioned, or on a slide with no store) or was detached; stale
labels can be listed and deleted.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from pymongo import UpdateOne

from ..core.io.store import replace_store, rounds_folder
from ..core.segments.carry_over import Fate, Overlap, overlap, store_id
from ..models.detached_label import DetachedLabel
from ..models.label import Label, LabelEpoch, LabelEvent
from . import folders

UNMATCHED_CHOICES = ('keep', 'delete')
"""What ``apply`` does with labels that have no clear match: keep them detached, or delete them."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def pending_path(folder: dict, item: dict) -> Path:
    """Where a slide's new segmentation waits to be applied."""
    return folders.store_path(folder, item).with_name(f'{item["_id"]}.pending.h5')


def _applying_path(folder: dict, item: dict) -> Path:
    return folders.store_path(folder, item).with_name(f'{item["_id"]}.applying.h5')


def _table_path(folder: dict, item: dict) -> Path:
    return folders.store_path(folder, item).with_name(f'{item["_id"]}.carry-over.h5')


def has_labels(folder: dict, item: dict) -> bool:
    return Label().findOne({'project': folder['_id'], 'item': item['_id']}, fields=['_id']) is not None


def prepare(folder: dict, item: dict) -> dict:
    """Compare the slide's pending segmentation with its current one and save the carry-over table; returns the
    counts of ``report``."""
    table = overlap(folders.store_path(folder, item), pending_path(folder, item))
    table.save(_table_path(folder, item))
    return report(folder, item)['counts']


def discard(folder: dict, item: dict) -> bool:
    """Remove the slide's pending segmentation and its table; whether there was one."""
    found = False
    for path in (pending_path(folder, item), _table_path(folder, item)):
        if path.exists():
            path.unlink()
            found = True
    shutil.rmtree(rounds_folder(pending_path(folder, item)), ignore_errors=True)
    return found


def waiting(folder: dict, item: dict) -> bool:
    """Whether a new segmentation of the slide waits for the admin to apply it."""
    return pending_path(folder, item).exists() and _table_path(folder, item).exists()


def report(folder: dict, item: dict) -> dict:
    """What applying the slide's pending segmentation would do to each of its labels, and the counts of each fate."""
    if not waiting(folder, item):
        raise ValidationException(f'No new segmentation of slide {item["name"]} waits to be applied', 'item')
    table = Overlap.load(_table_path(folder, item))
    labels = list(Label().find({'project': folder['_id'], 'item': item['_id']}, sort=[('segment', 1)]))
    fates = _fates(table, labels)
    entries = [{**fates[label['segment']].as_dict(), 'label': str(label['_id']), 'labeler': str(label['labeler']),
                'category': label['category'], 'reviewed': bool(label.get('review'))} for label in labels]
    counts = {fate: sum(e['fate'] == fate for e in entries) for fate in ('moved', 'ambiguous', 'dropped')}
    return {'item': str(item['_id']), 'name': item['name'], 'segments': {'old': len(table.old_area),
                                                                         'new': table.n_new},
            'counts': counts, 'labels': entries}


def reports(folder: dict) -> list[dict]:
    """``report`` of every slide of the project whose new segmentation waits to be applied."""
    return [report(folder, item) for item in folders.slides(folder) if waiting(folder, item)]


def apply(folder: dict, item: dict, unmatched: str) -> dict:
    """Apply the slide's pending segmentation (see the module text); returns how many labels moved, were kept
    detached or deleted."""
    if unmatched not in UNMATCHED_CHOICES:
        raise ValidationException(f'unmatched must be one of {", ".join(UNMATCHED_CHOICES)}, not {unmatched!r}',
                                  'unmatched')
    with _applying(folder, item):
        try:
            return _apply(folder, item, unmatched)
        finally:  # the labels moved or went without events of their own, however far it got
            LabelEpoch().bump(folder['_id'])


@contextmanager
def _applying(folder: dict, item: dict) -> Iterator[None]:
    """Hold the slide's apply lock (``flock``: released if the process dies); a second apply is refused."""
    path = folders.store_path(folder, item).with_name(f'{item["_id"]}.apply.lock')
    with open(path, 'a') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValidationException(f'The new segmentation of slide {item["name"]} is being applied',
                                      'item') from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _apply(folder: dict, item: dict, unmatched: str) -> dict:
    store, applying = folders.store_path(folder, item), _applying_path(folder, item)
    if waiting(folder, item):
        os.rename(pending_path(folder, item), applying)
    if not _table_path(folder, item).exists():
        raise ValidationException(f'No new segmentation of slide {item["name"]} waits to be applied', 'item')
    table = Overlap.load(_table_path(folder, item))
    done = {'moved': 0, 'detached': 0, 'deleted': 0}
    if applying.exists():
        if store_id(applying) != table.new_id or store_id(store) != table.old_id:
            os.rename(applying, pending_path(folder, item))
            raise ValidationException('The carry-over table is not of these segmentations; make segments again',
                                      'item')
        labels = list(Label().find({'project': folder['_id'], 'item': item['_id'], 'carry': {'$exists': False}}))
        fates = _fates(table, labels)
        done.update(_take_off_unmatched(folder, item, table, labels, fates, unmatched))
        _mark_moving(table, labels, fates)
        replace_store(applying, store)
    elif store_id(store) != table.new_id:
        raise ValidationException(f'No new segmentation of slide {item["name"]} waits to be applied', 'item')
    done['moved'] = _finish_moves(folder, item, table)
    _rewrite_events(folder, item, table)
    _table_path(folder, item).unlink()
    return {'item': str(item['_id']), **done}


def _fates(table: Overlap, labels: list[dict]) -> dict[int, Fate]:
    return {segment: table.fate(segment) for segment in {int(label['segment']) for label in labels}}


def _take_off_unmatched(folder: dict, item: dict, table: Overlap, labels: list[dict], fates: dict[int, Fate],
                        unmatched: str) -> dict:
    """Delete the labels without a clear match, or keep them detached (``DetachedLabel``) first."""
    gone = [label for label in labels if fates[label['segment']].fate != 'moved']
    if not gone:
        return {}
    if unmatched == 'keep':
        now = _now()
        DetachedLabel().keep([{**label, 'detached': {'time': now, 'segmentation': table.old_id,
                                                     **fates[label['segment']].as_dict()}} for label in gone])
    Label().removeWithQuery({'project': folder['_id'], 'item': item['_id'],
                             '_id': {'$in': [label['_id'] for label in gone]}})
    return {'detached' if unmatched == 'keep' else 'deleted': len(gone)}


def _mark_moving(table: Overlap, labels: list[dict], fates: dict[int, Fate]) -> None:
    """Give each moved label a temporary id no label has (minus its new id), marked with the new store's id."""
    operations = [UpdateOne({'_id': label['_id']}, {'$set': {
        'segment': -fates[label['segment']].target,
        'carry': {'segmentation': table.new_id, 'from': int(label['segment'])}}})
        for label in labels if fates[label['segment']].fate == 'moved']
    if operations:
        Label().collection.bulk_write(operations, ordered=True)


def _finish_moves(folder: dict, item: dict, table: Overlap) -> int:
    """Give the labels marked moving their new segment ids; returns how many."""
    now = _now()
    moving = list(Label().find({'project': folder['_id'], 'item': item['_id'],
                                'carry.segmentation': table.new_id}, fields=['segment', 'carry']))
    operations = [UpdateOne({'_id': label['_id']}, {
        '$set': {'segment': -int(label['segment']),
                 'carriedFrom': {'segment': label['carry']['from'], 'segmentation': table.old_id, 'time': now}},
        '$unset': {'carry': ''}}) for label in moving]
    if operations:
        Label().collection.bulk_write(operations, ordered=True)
    return len(operations)


def _rewrite_events(folder: dict, item: dict, table: Overlap) -> None:
    """Events of moved segments now name the new ids, in the label documents they hold too, so that undo puts a
    moved label back on its new segment; events of the others are marked undone (undoing them would write labels
    onto unrelated segments). Each event is rewritten once (``carried`` names the new store)."""
    events = LabelEvent().find({'project': folder['_id'], 'item': item['_id'], 'carried': {'$ne': table.new_id}},
                               fields=['segment', 'beforeLabel', 'afterLabel'])
    now = _now()
    operations = []
    for event in events:
        fate = table.fate(event['segment'])
        if fate.fate == 'moved':
            sides = [side for side in ('beforeLabel', 'afterLabel') if event.get(side)]
            change = {'segment': fate.target, **{f'{side}.segment': fate.target for side in sides}}
        else:
            change = {'undone': now}
        operations.append(UpdateOne({'_id': event['_id']}, {'$set': {**change, 'carried': table.new_id}}))
    if operations:
        LabelEvent().collection.bulk_write(operations, ordered=False)


def stale_labels(folder: dict, item_id: ObjectId | None = None) -> list[dict]:
    """The project's labels that name no segment of their slide's current store, and its detached labels."""
    project = folder['_id']
    slides = {item['_id']: item for item in folders.slides(folder)}
    found = []
    for item in slides.values():
        if item_id is not None and item['_id'] != item_id:
            continue
        count = folders.segment_count(folder, item)
        query = {'project': project, 'item': item['_id']}
        if count is not None:
            query['$or'] = [{'segment': {'$lt': 1}}, {'segment': {'$gt': count}}]
        reason = (f'names no segment of the slide\'s {count} segments' if count is not None
                  else 'the slide has no segments')
        found += [_stale(label, reason) for label in Label().find(query)]
    elsewhere = {'project': project, 'item': {'$nin': list(slides)} if item_id is None else item_id}
    if item_id is None or item_id not in slides:
        found += [_stale(label, 'not on a slide of the project') for label in Label().find(elsewhere)]
    found += [_stale(label, f'detached when the slide was segmented again ({label["detached"]["fate"]})')
              for label in DetachedLabel().of_project(project, item_id)]
    return found


def _stale(label: dict, reason: str) -> dict:
    return {'_id': str(label['_id']), 'item': str(label['item']), 'segment': label['segment'],
            'labeler': str(label['labeler']), 'category': label['category'], 'updated': label.get('updated'),
            'review': label.get('review'), 'detached': 'detached' in label, 'reason': reason}


def delete_stale_labels(folder: dict, item_id: ObjectId | None = None, ids: list[str] | None = None) -> dict:
    """Delete the project's stale labels (those of one slide, or only ``ids`` among them); a label that is no
    longer stale when this runs is left alone."""
    wanted = set(ids) if ids is not None else None
    stale = [label for label in stale_labels(folder, item_id) if wanted is None or label['_id'] in wanted]
    attached = [ObjectId(label['_id']) for label in stale if not label['detached']]
    detached = [ObjectId(label['_id']) for label in stale if label['detached']]
    deleted = 0
    if attached:
        deleted += Label().removeWithQuery({'project': folder['_id'], '_id': {'$in': attached}}).deleted_count
        LabelEpoch().bump(folder['_id'])
    if detached:
        deleted += DetachedLabel().remove_ids(folder['_id'], detached)
    return {'deleted': deleted}
