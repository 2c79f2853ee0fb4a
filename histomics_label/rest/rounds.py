"""``/histomics_label/project/{id}/suggestions``, ``.../train`` and ``.../rounds``: what to label next, retraining,
and the learning curve. READ on the project folder lets a user see them, WRITE retrain."""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder

from ..jobs import rounds as round_jobs


def add_routes(resource: Resource) -> None:
    """Add the suggestion and training routes to the plugin's ``/histomics_label`` resource."""
    resource.route('GET', ('project', ':id', 'suggestions'), get_suggestions)
    resource.route('POST', ('project', ':id', 'train'), train)
    resource.route('GET', ('project', ':id', 'rounds'), get_rounds)


PENDING_SCHEMA = {'type': 'array', 'maxItems': 100, 'items': {
    'type': 'object', 'required': ['item', 'segment'], 'additionalProperties': False,
    'properties': {'item': {'type': 'string', 'pattern': '^[0-9a-fA-F]{24}$'},
                   'segment': {'type': 'integer', 'minimum': 1}}}}
"""The segments a labeler is answering while the next row is asked for (a guided row's last card)."""


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The next unlabeled segments to label, across the project\'s slides, best first.')
    .notes('Ranked by the project\'s certainty metric on the latest round; each has its slide, segment, '
           'predicted category, probabilities, score and base-pixel region (for a thumbnail: GET '
           '/item/{item}/tiles/region). Segments anyone labeled, excluded categories included, never appear.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('limit', 'How many.', required=False, dataType='integer', default=None)
    .jsonParam('pending', 'Segments being labeled right now, ranked as if labeled: [{"item": id, "segment": n}].',
               required=False, requireArray=True, schema=PENDING_SCHEMA)
    .errorResponse('The project cannot rank yet (no trained round for a model-based metric).')
    .errorResponse('Read access was denied on the folder.', 403))
def get_suggestions(folder: dict, limit: int | None, pending: list[dict] | None) -> list[dict]:
    return round_jobs.project_suggestions(folder, limit, pending)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Retrain the project\'s model now (or queue a round behind the running one).')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .param('wait', 'Answer only when the round (and any queued behind it) is done.', required=False,
           dataType='boolean', default=False)
    .errorResponse('Write access was denied on the folder.', 403))
def train(folder: dict, wait: bool) -> dict:
    return round_jobs.retrain(folder, getCurrentUser(), wait)


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('Every finished round of the project, oldest first: the learning curve.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .errorResponse('Read access was denied on the folder.', 403))
def get_rounds(folder: dict) -> dict:
    return round_jobs.learning_curve(folder)
