"""``GET /histomics_label/project/{id}/similar``: more like this, the segments of the project's slides nearest to a
labeler's examples. READ on the project folder lets a user search."""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder

from ..projects.similar import find_similar


def add_routes(resource: Resource) -> None:
    """Add the similar-segments route to the plugin's ``/histomics_label`` resource."""
    resource.route('GET', ('project', ':id', 'similar'), get_similar)


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('More like this: the segments of the project\'s slides nearest to example segments.')
    .notes('The examples\' mean embedding is the query; segments anyone labeled on the examples\' slide are left '
           'out. With negatives (or cnfp=true) the answer mixes nearest unlabeled segments with the closest '
           'counter-examples and the farthest examples (CNFP).')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('item', 'The slide of the example segments.')
    .jsonParam('segments', 'Example segment ids, a JSON list.', requireArray=True)
    .jsonParam('negatives', 'Counter-example segment ids, a JSON list.', required=False, requireArray=True)
    .param('limit', 'How many.', required=False, dataType='integer', default=20)
    .param('cnfp', 'Mix in the farthest examples and closest counter-examples.', required=False,
           dataType='boolean', default=False)
    .errorResponse('Unknown slide or segments, or no feature vectors.')
    .errorResponse('Read access was denied on the folder.', 403))
def get_similar(folder: dict, item: str, segments: list, negatives: list | None, limit: int,
                cnfp: bool) -> list[dict]:
    return find_similar(folder, item, segments, negatives, limit, cnfp)
