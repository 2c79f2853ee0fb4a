"""What a project gives back: published annotations, agreement figures, overlays for viewers and downloads.

``POST .../annotations`` (WRITE on the project folder) publishes the labels and predictions as large_image
annotations; ``.../agreement``, ``.../overlay`` and ``.../export`` (READ) are read-only. Overlays and exports are
raw bodies, so a browser may fetch them with its cookie.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser, setContentDisposition, setRawResponse, setResponseHeader
from girder.constants import AccessType, TokenScope
from girder.models.folder import Folder

from ..projects import agreement, folders, overlays, publishing
from ..projects.export import FORMATS, download


def add_routes(resource: Resource) -> None:
    """Add the annotation, agreement, export and overlay routes to the plugin's ``/histomics_label`` resource."""
    resource.route('POST', ('project', ':id', 'annotations'), publish_annotations)
    resource.route('GET', ('project', ':id', 'agreement'), get_agreement)
    resource.route('GET', ('project', ':id', 'export'), export)
    resource.route('GET', ('project', ':id', 'overlay'), get_overlay)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Publish every slide\'s labels and latest predictions as large_image pixelmap annotations now.')
    .notes('Rounds publish them too. The annotations are updated in place, one of each kind per slide.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.WRITE)
    .errorResponse('Write access was denied on the folder.', 403))
def publish_annotations(folder: dict) -> list[dict]:
    return publishing.publish_project(folder, getCurrentUser())


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('Agreement between labelers (each pair with shared segments) and between labels and the model.')
    .notes('Cohen\'s kappa (null where only one category occurs), raw agreement, count and a confusion matrix '
           '(rows: the first labeling, columns: the second, in the order of "categories").')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .errorResponse('Read access was denied on the folder.', 403))
def get_agreement(folder: dict) -> dict:
    return agreement.project_agreement(folder)


@access.public(scope=TokenScope.DATA_READ, cookie=True)
@autoDescribeRoute(
    Description("One slide's segments coloured by labels, predictions, certainty or the embedding map, as bytes.")
    .notes('One byte per index of the slide\'s segment image (GET .../slides gives its id, whether it carries '
           'outlines and the offset from image index to segment id); three (RGB) for the embedding map. '
           'labels and predictions: 0 none, else 1 + the category\'s index in the project; certainty: 0 none, '
           'else 1 + round(254 × the probability of the predicted category). For the web client\'s overlays.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('item', 'The slide.')
    .param('kind', 'What colours the segments.', enum=list(overlays.KINDS))
    .produces('application/octet-stream')
    .errorResponse('Not a slide of the project.')
    .errorResponse('The slide has no segments, no round or no embedding map yet.', 404)
    .errorResponse('Read access was denied on the folder.', 403))
def get_overlay(folder: dict, item: str, kind: str) -> bytes:
    body = overlays.overlay_bytes(folder, folders.slide_of(folder, item), kind)
    setResponseHeader('Content-Type', 'application/octet-stream')
    setRawResponse()
    return body


@access.public(scope=TokenScope.DATA_READ, cookie=True)
@autoDescribeRoute(
    Description('Download labels and predictions as CSV or GeoJSON, or the labeled features as HDF5.')
    .notes('CSV and GeoJSON hold the labeled segments (every segment with predictions=true), in base pixels; '
           'GeoJSON polygons are the segments\' outlines. HDF5: features, label, item, segment datasets. '
           'CSV and GeoJSON are streamed in blocks as they are read (the server holds one block, however many '
           'rows); HDF5 is written to a temporary file and streamed from it.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('format', 'csv, geojson or hdf5.', enum=list(FORMATS))
    .param('item', 'Only this slide.', required=False)
    .param('predictions', 'Include unlabeled segments with their prediction.', required=False,
           dataType='boolean', default=False)
    .errorResponse('Nothing to export, or too much for GeoJSON.')
    .errorResponse('Read access was denied on the folder.', 403))
def export(folder: dict, format: str, item: str | None, predictions: bool) -> Callable[[], Iterator[bytes]]:
    """The download's body as a generator function, which Girder streams."""
    file = download(folder, format, item, predictions)
    setResponseHeader('Content-Type', file.content_type)
    setContentDisposition(file.filename)
    setRawResponse()
    return file.body
