"""``POST /histomics_label/project/{id}/segments``: make segments and features for the project's slides, as Girder
jobs. ADMIN on the project folder starts them."""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder

from ..jobs import segments as segment_jobs


def add_routes(resource: Resource) -> None:
    """Add the segment-generation route to the plugin's ``/histomics_label`` resource."""
    resource.route('POST', ('project', ':id', 'segments'), make_segments)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Make segments and features for every slide of the project that lacks them, as jobs.')
    .notes('One job per slide, shown in the job list with its progress. Slides whose segments and features '
           'match the configuration are left alone unless force is true.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('force', 'Remake them for every slide.', required=False, dataType='boolean', default=False)
    .errorResponse('Admin access was denied on the folder.', 403))
def make_segments(folder: dict, force: bool) -> list[dict]:
    return segment_jobs.start_segment_jobs(folder, getCurrentUser(), force)
