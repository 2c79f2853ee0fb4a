"""A project's labels as its users see them: checked writes, listings with the model's call on each label, reviews.

The Label model stores label documents and changes them atomically; this module adds what needs the project
around them: its slides and their segment counts, its categories, and the latest round's prediction of each
labeled segment, read from the slide stores. Every check runs before anything is written, so a bad request changes
nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from bson.objectid import ObjectId
from girder.constants import SortDir
from girder.exceptions import ValidationException
from girder.models.user import User

from ..models.label import Label
from . import agreement, categories, folders
from .agreement import ModelCall
from .outlines import segment_pictures

MAX_BATCH = 100_000
"""Most labels one request may write: a painted region of a slide, not a whole cohort."""
LABEL_SORTS = ('updated', 'created', 'segment', 'category', 'certainty')
"""The sorts of a listing; ``certainty`` is the latest round's, read from the slide stores."""
NO_PICTURE = {'region': None, 'outline': None, 'thumbnailRegion': None, 'thumbnail': None}
"""What a label of a stale segment (or of a slide without segments) shows instead."""

Key = tuple[ObjectId, int]
"""A labeled segment: ``(item, segment)``."""


@dataclass(frozen=True)
class LabelFilter:
    """What a listing keeps, as the caller wrote it: ids and ISO times are strings, checked when the query is built.

    ``disagree`` keeps the labels the latest round calls otherwise (True) or the same (False); labels of segments
    without a prediction match neither.
    """

    item: str | None = None
    category: str | None = None
    labeler: str | None = None
    since: str | None = None
    until: str | None = None
    reviewed: bool | None = None
    disagree: bool | None = None


# -- writing -------------------------------------------------------------------------------------------------------


def save(folder: dict, user: dict, labels: list[dict], view: str) -> dict:
    """Set ``user``'s label of each ``{item, segment, category}``; returns the batch id and counts (``Label.upsert``).

    Each slide must be the project's and segmented, each segment one of its segments, each category the project's.
    """
    config = folders.config_of(folder)
    entries = _checked(folder, labels, with_category=True)
    names = {c['name'] for c in config['categories']}
    unknown = sorted({e['category'] for e in entries} - names)
    if unknown:
        raise ValidationException(f'Unknown categories: {", ".join(unknown)}; the project has: '
                                  f'{", ".join(sorted(names)) or "none"}', 'labels')
    return Label().upsert(folder, user, entries, view)


def mark_unclassifiable(folder: dict, user: dict, segment: dict) -> tuple[dict, dict]:
    """Label one ``{item, segment}`` "not classifiable / artifact" (``categories.UNCLASSIFIABLE``, added to the
    project when missing); returns the project's folder as it now is and the write (``save``)."""
    _checked(folder, [segment], with_category=False)  # a bad segment changes nothing, the categories included
    folder = categories.ensure_unclassifiable(folder)
    entry = {'item': segment['item'], 'segment': segment['segment'], 'category': categories.UNCLASSIFIABLE['name']}
    return folder, save(folder, user, [entry], 'guided')


def remove(folder: dict, user: dict, labels: list[dict]) -> dict:
    """Remove ``user``'s labels of each ``{item, segment}``; returns the batch id and how many went."""
    folders.config_of(folder)
    return Label().remove_labels(folder, user, _checked(folder, labels, with_category=False))


def undo(folder: dict, user: dict, batch: str) -> dict:
    """Revert one of ``user``'s batches (labels, deletes, a review, an undo) where its labels were not changed since,
    each to exactly what it was (``Label.undo``)."""
    folders.config_of(folder)
    return Label().undo(folder, user, batch)


def review(folder: dict, reviewer: dict, label_id: str, category: str | None) -> dict:
    """Approve a label (``category`` None) or override it with one of the project's categories; returns it as
    ``describe`` does, with the review's ``batch`` id (``undo`` reverts it)."""
    config = folders.config_of(folder)
    if category is not None and category not in {c['name'] for c in config['categories']}:
        raise ValidationException(f'Unknown category {category!r}', 'category')
    reviewed = Label().review(folder, reviewer, _object_id(label_id, 'labelId'), category)
    return {**describe(folder, [reviewed])[0], 'batch': reviewed['batch']}


# -- reading -------------------------------------------------------------------------------------------------------


def find(folder: dict, filters: LabelFilter, sort: tuple[str, int], offset: int = 0,
         limit: int = 0) -> tuple[list[dict], int]:
    """One page of the project's labels that pass ``filters``, sorted by ``(field, direction)``, as ``describe``
    gives them, with the number of all that pass (``limit`` 0: every one from ``offset``).

    Sorts and filters on stored fields page in the database. The model's side (``disagree``, ``certainty``) lives in
    the slide stores, so those read every matching label, join the latest round's calls, then page.
    """
    folders.config_of(folder)
    query = _query(folder, filters)
    field, direction = sort
    if field not in LABEL_SORTS:
        raise ValidationException(f'sort must be one of {", ".join(LABEL_SORTS)}', 'sort')
    by_certainty = field == 'certainty'
    stored_sort = [*([] if by_certainty else [(field, direction)]), ('_id', SortDir.ASCENDING)]
    if filters.disagree is None and not by_certainty:
        labels = list(Label().find(query, sort=stored_sort, offset=offset, limit=limit))
        return describe(folder, labels), Label().collection.count_documents(query)
    labels = list(Label().find(query, sort=stored_sort))
    calls = agreement.model_calls(folder, _keys(labels))
    if filters.disagree is not None:
        labels = [d for d in labels if (key := (d['item'], d['segment'])) in calls
                  and (calls[key].category != d['category']) == filters.disagree]
    if by_certainty:
        labels = _sorted_by_certainty(labels, calls, direction)
    return describe(folder, labels[offset:offset + limit] if limit else labels[offset:], calls), len(labels)


def describe(folder: dict, labels: list[dict], calls: dict[Key, ModelCall] | None = None) -> list[dict]:
    """Labels as JSON, with the labeler's login, each segment's base-pixel region, outline and thumbnail (its
    region with surroundings, ``outlines.segment_pictures``), and the model's call on it (its predicted category
    and that category's probability; null before a round).

    ``calls`` are the model's calls already read for these labels (read here when not given), so a request opens
    each slide store's latest round once.
    """
    if calls is None:
        calls = agreement.model_calls(folder, _keys(labels))
    pictures = _pictures(folder, labels)
    logins: dict[ObjectId, str | None] = {}
    for label in labels:
        for user_id in (label['labeler'], (label.get('review') or {}).get('reviewer')):
            if user_id is not None and user_id not in logins:
                user = User().load(user_id, force=True)
                logins[user_id] = user['login'] if user else None
    result = []
    for label in labels:
        key = (label['item'], label['segment'])
        review_doc = label.get('review')
        call = calls.get(key)
        result.append({
            '_id': str(label['_id']), 'item': str(label['item']), 'segment': label['segment'],
            'category': label['category'], 'labeler': str(label['labeler']),
            'labelerLogin': logins[label['labeler']], 'created': label['created'],
            'updated': label['updated'], 'view': label.get('view'), **pictures.get(key, NO_PICTURE),
            'predicted': None if call is None else call.category,
            'certainty': None if call is None else call.certainty,
            'review': None if review_doc is None else {
                'status': review_doc['status'], 'category': review_doc['category'],
                'reviewer': str(review_doc['reviewer']), 'reviewerLogin': logins.get(review_doc['reviewer']),
                'time': review_doc['time']}})
    return result


# -- helpers -------------------------------------------------------------------------------------------------------


def _checked(folder: dict, labels: list[dict], with_category: bool) -> list[dict]:
    """The labels of a request as ``{item, segment[, category]}`` with item ids, once each slide is the project's
    and each segment one of its segments. Their shape (objects with a string item, a whole-number segment and a
    string category) is the route's JSON schema's to check."""
    if len(labels) > MAX_BATCH:
        raise ValidationException(f'At most {MAX_BATCH} labels per request', 'labels')
    slides: dict[str, tuple[dict, int | None]] = {}
    entries = []
    for index, entry in enumerate(labels):
        if entry['item'] not in slides:
            item = folders.slide_of(folder, entry['item'])
            slides[entry['item']] = (item, folders.segment_count(folder, item))
        item, count = slides[entry['item']]
        segment = entry['segment']
        if count is None:
            raise ValidationException(f'Slide {item["name"]} has no segments yet; generate them first', 'labels')
        if not 1 <= segment <= count:
            raise ValidationException(f'Label {index + 1}: slide {item["name"]} has segments 1–{count}, not '
                                      f'{segment}', 'labels')
        entries.append({'item': item['_id'], 'segment': segment,
                        **({'category': entry['category']} if with_category else {})})
    return entries


def _query(folder: dict, filters: LabelFilter) -> dict:
    """The Mongo query of a listing's stored filters; a 400 naming a filter that is not a slide, id or ISO time."""
    return Label().query(
        folder['_id'], item_id=folders.slide_of(folder, filters.item)['_id'] if filters.item else None,
        category=filters.category, labeler_id=_object_id(filters.labeler, 'labeler') if filters.labeler else None,
        since=_time(filters.since, 'since') if filters.since else None,
        until=_time(filters.until, 'until') if filters.until else None, reviewed=filters.reviewed)


def _pictures(folder: dict, labels: list[dict]) -> dict[Key, dict]:
    """The region, outline and thumbnail of each labeled segment of a segmented slide, one store opened per slide.
    A stale label (its segment id beyond the slide's segments, see ``GET .../stale_labels``) gets none, so one such
    label does not break the listing of the whole project."""
    by_item: dict[ObjectId, list[int]] = {}
    for label in labels:
        by_item.setdefault(label['item'], []).append(label['segment'])
    return {(item_id, segment): picture for item_id, segments in by_item.items()
            for segment, picture in segment_pictures(folder, item_id, segments).items()}


def _keys(labels: list[dict]) -> list[Key]:
    """The ``(item, segment)`` of each label."""
    return [(label['item'], label['segment']) for label in labels]


def _sorted_by_certainty(labels: list[dict], calls: dict[Key, ModelCall], direction: int) -> list[dict]:
    """Labels by the model's certainty on their segment (``direction`` 1: least certain first), those without a
    prediction last; ties keep the given order."""
    def key(label: dict) -> tuple[bool, float]:
        call = calls.get((label['item'], label['segment']))
        return (call is None, 0.0 if call is None else direction * call.certainty)
    return sorted(labels, key=key)


def _object_id(value: str, field: str) -> ObjectId:
    try:
        return ObjectId(value)
    except Exception as exc:
        raise ValidationException(f'{field} must be an id, not {value!r}', field) from exc


def _time(value: str, field: str) -> datetime.datetime:
    """An ISO time; one without a zone is UTC."""
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValidationException(f'{field} must be an ISO time such as 2026-11-24T10:00:00Z', field) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
