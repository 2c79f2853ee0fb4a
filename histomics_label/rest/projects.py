"""``/histomics_label/project/{id}``: a project itself (create, configure, read) and its slides.

A project is a Girder folder: READ on it lets a user see the project, ADMIN create and configure it.
"""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder

from ..projects import categories, summary
from ..projects.config import DEFAULTS
from ..projects.outlines import segment_place
from .bodies import add_models, autoDescribeBodyRoute

CONFIG = {
    'title': 'HistomicsLabelConfig',
    'description': 'A project configuration, or the fields to change (the others are kept). Each value is checked '
                   'against the engine, with a message that names the field.',
    'type': 'object',
    'properties': {
        **{name: {'default': value} for name, value in DEFAULTS.items()},
        'categories': {
            'default': [], 'description': 'Unique names; a category that has labels cannot be left out (rename or '
                                          'merge it).',
            'items': {'properties': {
                'name': {'description': '1–100 characters.'},
                'color': {'description': 'Any CSS colour; a palette colour when left out.'},
                'excluded': {'default': False, 'description': 'Never trains and is never suggested.'},
                'hotkey': {'default': None, 'description': 'One letter or 0 (1–9 pick categories by position).'}}}},
    },
}
"""The body of PUT .../project/{id}: the fields with their defaults. ``projects.config`` checks the values."""


def add_routes(resource: Resource) -> None:
    """Add the project routes to the plugin's ``/histomics_label`` resource."""
    add_models(resource, CONFIG)
    resource.route('GET', ('project', ':id'), get_project)
    resource.route('PUT', ('project', ':id'), put_project)
    resource.route('GET', ('project', ':id', 'slides'), get_slides)
    resource.route('GET', ('project', ':id', 'slide', ':item', 'segment', ':segment'), get_segment)


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('A project: its configuration, its slides and what the user may do.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .errorResponse('The folder is not a project.')
    .errorResponse('Read access was denied on the folder.', 403))
def get_project(folder: dict) -> dict:
    return summary.project_summary(folder, getCurrentUser())


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeBodyRoute(
    Description('Create a project on a folder, or change its configuration (fields not given are kept).')
    .notes('Fields: ' + ', '.join(sorted(DEFAULTS)) + '. categories is a list of {name, color, excluded, '
           'hotkey}. A category that has labels cannot be dropped here: rename or merge it.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .jsonParam('config', 'The configuration (or the changes to it), a JSON object.', paramType='body',
               dataType=CONFIG['title'], schema=CONFIG)
    .errorResponse('Invalid configuration.')
    .errorResponse('Admin access was denied on the folder.', 403))
def put_project(folder: dict, config: dict) -> dict:
    return {'_id': str(folder['_id']), 'config': categories.configure(folder, config)}


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The slides of a project, with how many segments each has (null before segment generation).')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .errorResponse('Read access was denied on the folder.', 403))
def get_slides(folder: dict) -> list[dict]:
    return summary.slide_summaries(folder)


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('Where one segment of a slide lies: its base-pixel box (region) and its outline.')
    .notes('The outline is a closed ring of base-pixel [x, y] points along the segment\'s pixel edges, simplified '
           'within half an analysis pixel: what a viewer draws to show the segment.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('item', 'The slide (an item of the project).', paramType='path')
    .param('segment', 'The segment id.', paramType='path', dataType='integer')
    .errorResponse('Unknown slide or segment.')
    .errorResponse('Read access was denied on the folder.', 403))
def get_segment(folder: dict, item: str, segment: int) -> dict:
    return segment_place(folder, item, segment)
