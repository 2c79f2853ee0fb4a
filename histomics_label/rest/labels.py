"""``/histomics_label/project/{id}/labels`` and ``.../categories``: label, unlabel, paint, undo, list and review
labels, and rename or merge categories.

READ on the project folder lets a user list labels, WRITE label and review, ADMIN rename and merge categories.
Labeling counts towards the project's automatic retraining (``retrainEvery``), so the routes that label answer
with the round they started, if any.
"""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser, setResponseHeader
from girder.constants import AccessType, SortDir, TokenScope
from girder.models.folder import Folder

from ..jobs import rounds as round_jobs
from ..models.label import VIEWS
from ..projects import categories, labels, painting
from .bodies import add_models, autoDescribeBodyRoute

_SEGMENT = {'type': 'object', 'required': ['item', 'segment'],
            'properties': {'item': {'type': 'string', 'description': 'A slide (item id) of the project.'},
                           'segment': {'type': 'integer', 'description': 'A segment id of the slide, from 1.'}}}
LABELS = {
    'title': 'HistomicsLabelLabels',
    'type': 'object',
    'required': ['labels'],
    'properties': {
        'labels': {'type': 'array', 'minItems': 1, 'description': f'At most {labels.MAX_BATCH} labels.',
                   'items': {**_SEGMENT, 'required': ['item', 'segment', 'category'],
                             'properties': {**_SEGMENT['properties'],
                                            'category': {'type': 'string', 'description': 'A category name.'}}}},
        'view': {'type': 'string', 'enum': list(VIEWS), 'default': 'api', 'description': 'Where the labels come '
                 'from, recorded with them.'},
    },
}
"""The body of PUT .../labels."""
SEGMENT = {'title': 'HistomicsLabelSegment', **_SEGMENT}
"""The body of POST .../unclassifiable."""
UNLABELS = {
    'title': 'HistomicsLabelSegments',
    'type': 'object',
    'required': ['labels'],
    'properties': {'labels': {'type': 'array', 'minItems': 1, 'items': _SEGMENT,
                              'description': f'At most {labels.MAX_BATCH} segments.'}},
}
"""The body of DELETE .../labels."""
STROKE = {
    'title': 'HistomicsLabelStroke',
    'type': 'object',
    'required': ['item', 'points'],
    'properties': {
        'item': {'type': 'string', 'description': 'The slide (item id).'},
        'points': {'type': 'array', 'minItems': 1, 'description': 'The stroke in base pixels; one point is a dab.',
                   'items': {'type': 'array', 'minItems': 2, 'maxItems': 2, 'items': {'type': 'number'},
                             'description': '[x, y]'}},
        'radius': {'type': 'number', 'minimum': 0, 'default': 0, 'description': 'The brush radius in base pixels.'},
        'category': {'type': 'string', 'description': 'The category to paint (not with erase).'},
        'erase': {'type': 'boolean', 'default': False, 'description': 'Remove your labels instead.'},
    },
}
"""The body of POST .../labels/paint."""


def add_routes(resource: Resource) -> None:
    """Add the label and category routes to the plugin's ``/histomics_label`` resource."""
    add_models(resource, LABELS, UNLABELS, STROKE, SEGMENT)
    resource.route('PUT', ('project', ':id', 'labels'), put_labels)
    resource.route('DELETE', ('project', ':id', 'labels'), delete_labels)
    resource.route('GET', ('project', ':id', 'labels'), get_labels)
    resource.route('POST', ('project', ':id', 'labels', 'undo'), undo_labels)
    resource.route('POST', ('project', ':id', 'labels', 'paint'), paint_labels)
    resource.route('POST', ('project', ':id', 'unclassifiable'), mark_unclassifiable)
    resource.route('PUT', ('project', ':id', 'labels', ':labelId', 'review'), review_label)
    resource.route('POST', ('project', ':id', 'categories', 'rename'), rename_category)
    resource.route('POST', ('project', ':id', 'categories', 'merge'), merge_categories)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeBodyRoute(
    Description('Mark a segment "not classifiable / artifact": your label of it becomes the excluded category '
                '"not classifiable" (added to the project if missing).')
    .notes('The segment never trains the model, and it and its nearest segments in the embeddings leave the '
           'suggestions. Answers like PUT .../labels.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .jsonParam('body', '{"item": id, "segment": n}', paramType='body', dataType=SEGMENT['title'], schema=SEGMENT)
    .errorResponse('Invalid segment, or a category "not classifiable" that trains.')
    .errorResponse('Write access was denied on the folder.', 403))
def mark_unclassifiable(folder: dict, body: dict) -> dict:
    user = getCurrentUser()
    folder, written = labels.mark_unclassifiable(folder, user, body)
    return round_jobs.with_retraining(folder, user, written)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeBodyRoute(
    Description('Label segments: each {item, segment, category} sets your label of that segment.')
    .notes('Atomic per label: labelers working at once never overwrite each other. Returns a batch id that '
           'POST .../labels/undo reverts.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .jsonParam('body', '{"labels": [{"item": id, "segment": n, "category": name}], "view": "guided"}',
               paramType='body', dataType=LABELS['title'], schema=LABELS)
    .errorResponse('Invalid labels.')
    .errorResponse('Write access was denied on the folder.', 403))
def put_labels(folder: dict, body: dict) -> dict:
    user = getCurrentUser()
    return round_jobs.with_retraining(folder, user, labels.save(folder, user, body['labels'], body.get('view', 'api')))


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeBodyRoute(
    Description('Remove your labels of segments: each {item, segment}.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .jsonParam('body', '{"labels": [{"item": id, "segment": n}]}', paramType='body', dataType=UNLABELS['title'],
               schema=UNLABELS)
    .errorResponse('Invalid segments.')
    .errorResponse('Write access was denied on the folder.', 403))
def delete_labels(folder: dict, body: dict) -> dict:
    return labels.remove(folder, getCurrentUser(), body['labels'])


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeBodyRoute(
    Description('Paint: label (or, with erase, unlabel) every segment a brush stroke covers on one slide.')
    .notes('Body {"item": id, "points": [[x, y], ...] in base pixels, "radius": brush radius in base pixels, '
           '"category": name (not with erase), "erase": false}. The covered segments are read from the slide\'s '
           'segment raster; the answer lists them with the batch id that labels/undo reverts.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .jsonParam('body', 'The stroke, a JSON object.', paramType='body', dataType=STROKE['title'], schema=STROKE)
    .errorResponse('Invalid stroke, slide or category.')
    .errorResponse('Write access was denied on the folder.', 403))
def paint_labels(folder: dict, body: dict) -> dict:
    user = getCurrentUser()
    return round_jobs.with_retraining(folder, user, painting.paint(folder, user, body))


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Undo one of your label batches, where its labels were not changed since.')
    .notes('Each label becomes exactly what it was before the batch: its category, times, view and review. The '
           'answer counts what was reverted and skipped, and names the undo\'s own batch (undoBatch), which can be '
           'undone in turn.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .param('batch', 'The batch id a label, delete, paint or review request returned.')
    .errorResponse('No such batch of yours.')
    .errorResponse('Write access was denied on the folder.', 403))
def undo_labels(folder: dict, batch: str) -> dict:
    return labels.undo(folder, getCurrentUser(), batch)


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The labels of a project, filtered, sorted and paginated on the server.')
    .notes('Girder-Total-Count holds the number of matching labels. Each label has the region of its segment '
           'in base pixels (for thumbnails: GET /item/{item}/tiles/region with left/top/right/bottom), and the '
           'latest round\'s predicted category and its certainty (that category\'s probability, 0–1; null '
           'before a round). sort=certainty with sortdir=1 lists the least certain first; labels without a '
           'prediction come last either way.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('item', 'Only labels of this slide.', required=False)
    .param('category', 'Only labels of this category.', required=False)
    .param('labeler', 'Only labels by this user id.', required=False)
    .param('since', 'Only labels changed at or after this ISO time.', required=False)
    .param('until', 'Only labels changed before this ISO time.', required=False)
    .param('reviewed', 'Only reviewed (true) or unreviewed (false) labels.', required=False, dataType='boolean')
    .param('disagree', 'Only labels the model disagrees (true) or agrees (false) with.', required=False,
           dataType='boolean')
    .pagingParams(defaultSort='updated', defaultSortDir=SortDir.DESCENDING)
    .errorResponse('Invalid filter.')
    .errorResponse('Read access was denied on the folder.', 403))
def get_labels(folder: dict, item: str | None, category: str | None, labeler: str | None, since: str | None,
               until: str | None, reviewed: bool | None, disagree: bool | None, limit: int, offset: int,
               sort: list[tuple[str, int]]) -> list[dict]:
    [by] = sort  # Girder's paging gives one (sort, sortdir)
    found, total = labels.find(folder, labels.LabelFilter(item, category, labeler, since, until, reviewed, disagree),
                               by, offset, limit)
    setResponseHeader('Girder-Total-Count', total)
    return found


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Review a label: approve it, or override it with another category (kept beside the original).')
    .notes('The review stays while the labeler relabels the segment with the same category. The answer is the '
           'label, with the review\'s batch id, which labels/undo reverts.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .param('labelId', 'The label.', paramType='path')
    .param('category', 'The reviewer\'s category; leave out to approve.', required=False)
    .errorResponse('No such label or category.')
    .errorResponse('Write access was denied on the folder.', 403))
def review_label(folder: dict, labelId: str, category: str | None) -> dict:
    return labels.review(folder, getCurrentUser(), labelId, category)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Rename a category; every label of it follows in one server-side update.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('old', 'The current name.')
    .param('new', 'The new name.')
    .errorResponse('No such category, or the new name is taken.')
    .errorResponse('Admin access was denied on the folder.', 403))
def rename_category(folder: dict, old: str, new: str) -> dict:
    return categories.rename(folder, old, new)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Merge category source into target: its labels become target\'s and source is removed.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('source', 'The category that disappears.')
    .param('target', 'The category that receives its labels.')
    .errorResponse('No such categories, or they are the same.')
    .errorResponse('Admin access was denied on the folder.', 403))
def merge_categories(folder: dict, source: str, target: str) -> dict:
    return categories.merge(folder, source, target)

