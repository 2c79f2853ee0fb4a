"""``GET /histomics_label/item/{id}/projects``: which projects a slide belongs to.

Girder's item page ("Histomics Label" action, plugin_client/src/slideButton.js) and the HistomicsUI adapter
(plugin_client/src/histomicsui.js) ask it to link a slide to its projects. A project's slides are the large-image
items directly in its folder (``projects.slides``), so the only candidate is the item's own folder: no search over
folders is needed, and the answer holds at most one project. It is a list so that an item page shows "none" and
"some" alike. Girder derives an item's access from its folder: READ on the item is READ on that project.
"""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder
from girder.models.item import Item

from ..projects.config import META_KEY


def add_routes(resource: Resource) -> None:
    """Add the route to the plugin's ``/histomics_label`` resource."""
    resource.route('GET', ('item', ':id', 'projects'), get_item_projects)


def projects_of(item: dict, user: dict | None) -> list[dict]:
    """The projects ``user`` may read that have ``item`` as a slide: ``[{_id, name, access: {write}}]``."""
    if not item.get('largeImage'):
        return []
    folder = Folder().load(item['folderId'], force=True)
    if (folder is None or not isinstance((folder.get('meta') or {}).get(META_KEY), dict)
            or not Folder().hasAccess(folder, user, AccessType.READ)):
        return []
    return [{'_id': str(folder['_id']), 'name': folder['name'],
             'access': {'write': Folder().hasAccess(folder, user, AccessType.WRITE)}}]


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The Histomics Label projects a slide belongs to (an empty list when none).')
    .notes('A slide is a large-image item directly in a project folder, so the list holds at most one project.')
    .modelParam('id', 'The item.', model=Item, level=AccessType.READ)
    .errorResponse('Invalid item id.')
    .errorResponse('Read access was denied on the item.', 403))
def get_item_projects(item: dict) -> list[dict]:
    return projects_of(item, getCurrentUser())
