"""``POST /histomics_label/project/{id}/import``: make a folder a project from what the published Histomics Label
(HistomicsUI active learning) left in it. ADMIN on the folder imports."""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder

from ..projects.migration import import_histomicsui_project


def add_routes(resource: Resource) -> None:
    """Add the import route to the plugin's ``/histomics_label`` resource."""
    resource.route('POST', ('project', ':id', 'import'), import_published)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Import a project of the published Histomics Label (HistomicsUI active learning) on this folder.')
    .notes('Reads the folder\'s .histomicsui_config.yaml and each slide\'s newest "Superpixel" label annotation: '
           'categories (colours, exclusions, hotkeys), settings, every label with its labeler and reviews. Their '
           'superpixel k becomes segment k + 1. Importing again writes nothing new and keeps labels changed here. '
           'Only annotations made and last changed by users with WRITE on the slide are read (the others are listed '
           'in "rejected"); their superpixel image must lie in the folder; labels and reviews named for a user '
           'without WRITE on the slide are the importing user\'s, counted in "unauthorizedUsers".')
    .modelParam('id', 'The folder.', model=Folder, level=AccessType.ADMIN)
    .errorResponse('Nothing to import in this folder.')
    .errorResponse('Admin access was denied on the folder.', 403))
def import_published(folder: dict) -> dict:
    return import_histomicsui_project(folder, getCurrentUser())
