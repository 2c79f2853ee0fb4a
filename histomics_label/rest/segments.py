"""``POST /histomics_label/project/{id}/segments``: make segments and features for the project's slides, as Girder
jobs; ``POST .../slide/{item}/embeddings``: import a slide's embeddings computed elsewhere. ADMIN on the project
folder does either."""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.models.file import File
from girder.models.folder import Folder

from ..jobs import segments as segment_jobs
from ..projects.embedding_import import import_slide_embeddings


def add_routes(resource: Resource) -> None:
    """Add the segment-generation and embedding-import routes to the plugin's ``/histomics_label`` resource."""
    resource.route('POST', ('project', ':id', 'segments'), make_segments)
    resource.route('POST', ('project', ':id', 'slide', ':item', 'embeddings'), import_embeddings)


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


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Import a slide\'s embeddings computed elsewhere, from a file uploaded to Girder.')
    .notes('A .npy file of shape (segments, dimensions), rows in segment-id order, or a .npz file with arrays '
           '"embeddings" and "segment_ids". It must have one row per segment of the slide, real finite numbers, '
           'and the dimension of the project\'s other imported slides. They replace the slide\'s imported '
           'embeddings; rounds train on them when the project\'s extractor is "imported". Anything wrong is a '
           '400 and leaves the slide as it was.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('item', 'The slide (an item of the project).', paramType='path')
    .modelParam('fileId', 'The uploaded file of embeddings.', model=File, level=AccessType.READ,
                paramType='formData', destName='file')
    .errorResponse('The file or the slide does not fit (the message says how).')
    .errorResponse('Admin access was denied on the folder.', 403))
def import_embeddings(folder: dict, item: str, file: dict) -> dict:
    return import_slide_embeddings(folder, item, file)
