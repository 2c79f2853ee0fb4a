"""``POST /histomics_label/project/{id}/segments``: make segments and features for the project's slides, as Girder
jobs; ``POST .../slide/{item}/embeddings``: import a slide's embeddings computed elsewhere; ``POST
.../slide/{item}/store``: adopt a store made elsewhere (the job panel's); the carry-over report
of re-segmented slides (``GET .../resegmentation``), applying or discarding it (``POST`` / ``DELETE
.../slide/{item}/resegmentation``); the project's stale labels (``GET`` / ``DELETE .../stale_labels``). ADMIN on the
project folder does each, but listing stale labels, which READ does."""

from __future__ import annotations

from bson.objectid import ObjectId
from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource, getCurrentUser
from girder.constants import AccessType, TokenScope
from girder.exceptions import ValidationException
from girder.models.file import File
from girder.models.folder import Folder

from ..jobs import adopted_stores
from ..jobs import segments as segment_jobs
from ..projects import folders, resegmentation
from ..projects.embedding_import import import_slide_embeddings


def add_routes(resource: Resource) -> None:
    """Add the segment-generation and embedding-import routes to the plugin's ``/histomics_label`` resource."""
    resource.route('POST', ('project', ':id', 'segments'), make_segments)
    resource.route('POST', ('project', ':id', 'slide', ':item', 'embeddings'), import_embeddings)
    resource.route('POST', ('project', ':id', 'slide', ':item', 'store'), adopt_store)
    resource.route('GET', ('project', ':id', 'resegmentation'), carry_over_reports)
    resource.route('POST', ('project', ':id', 'slide', ':item', 'resegmentation'), apply_resegmentation)
    resource.route('DELETE', ('project', ':id', 'slide', ':item', 'resegmentation'), discard_resegmentation)
    resource.route('GET', ('project', ':id', 'stale_labels'), stale_labels)
    resource.route('DELETE', ('project', ':id', 'stale_labels'), delete_stale_labels)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Make segments and features for every slide of the project that lacks them, as jobs.')
    .notes('One job per slide, shown in the job list with its progress. Slides whose segments and features '
           'match the configuration are left alone unless force is true. A labeled slide whose segments change '
           'keeps its segments and labels: the new segmentation waits beside them (status "waiting" once made) '
           'until the admin applies its carry-over report (GET .../resegmentation).')
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


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Adopt a slide store made outside the project as the slide\'s segments and features.')
    .notes('For the store the DSA job panel\'s SuperpixelClassification uploads (its "store" output), or one made '
           'on another machine. It must be a store made from this slide with the project\'s current settings; '
           'then it takes the slide\'s place as a segment job\'s store would: at once ("applied", with its segment '
           'image published) unless the slide has labels on other segments, where it waits beside them for the '
           'carry-over report ("waiting"). Anything else is a 400 that leaves the slide as it was.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('item', 'The slide (an item of the project).', paramType='path')
    .modelParam('fileId', 'The store file (.h5) in Girder.', model=File, level=AccessType.READ,
                paramType='formData', destName='file')
    .errorResponse('The file is not a store of this slide made with the project\'s settings (the message says '
                   'how), or segment jobs of the project are running.')
    .errorResponse('Admin access was denied on the folder.', 403))
def adopt_store(folder: dict, item: str, file: dict) -> dict:
    return adopted_stores.adopt_store(folder, item, file, getCurrentUser())


@access.user(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The carry-over report of every slide whose new segmentation waits to be applied.')
    .notes('Per slide: the old and new segment counts, how many labels move, are ambiguous or are dropped, and '
           'each label\'s fate: "moved" to segment target (more than half of the old segment lies in it and more '
           'than half of it in the old segment), "ambiguous" (no such match) or "dropped" (nothing of the old '
           'segment lies in a new segment), with the shares of the best match.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .errorResponse('Admin access was denied on the folder.', 403))
def carry_over_reports(folder: dict) -> list[dict]:
    folders.config_of(folder)
    return resegmentation.reports(folder)


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Apply a slide\'s new segmentation: swap the stores and carry the labels over.')
    .notes('Moved labels get their new segment ids (labeler, times and review kept). Ambiguous and dropped labels '
           'are deleted with unmatched=delete, or kept detached with unmatched=keep (listed and deletable under '
           'stale_labels); either way none stays on a segment id of the new segmentation. The slide\'s rounds '
           'are dropped and a round is started at once (training: as a label write answers it; null when the '
           'labels cannot train one yet), so that its new segments get predictions and ranked suggestions.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('item', 'The slide (an item of the project).', paramType='path')
    .param('unmatched', 'What to do with the labels that have no clear match.', enum=['keep', 'delete'])
    .errorResponse('No new segmentation of the slide waits to be applied.')
    .errorResponse('Admin access was denied on the folder.', 403))
def apply_resegmentation(folder: dict, item: str, unmatched: str) -> dict:
    return segment_jobs.apply_resegmentation(folder, item, unmatched, getCurrentUser())


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Discard a slide\'s new segmentation that waits to be applied; its store and labels stay.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('item', 'The slide (an item of the project).', paramType='path')
    .errorResponse('Admin access was denied on the folder.', 403))
def discard_resegmentation(folder: dict, item: str) -> dict:
    return {'discarded': resegmentation.discard(folder, folders.slide_of(folder, item))}


@access.user(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The project\'s labels that name no segment of their slide\'s current segments.')
    .notes('Labels whose segment id is beyond their slide\'s segment count (left by a re-segmentation before '
           'segmentations were versioned), on a slide without segments or no longer in the project, and labels '
           'kept detached when a re-segmentation was applied (which training and suggestions never see); each '
           'with the reason.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .param('item', 'Only this slide\'s.', required=False)
    .errorResponse('Read access was denied on the folder.', 403))
def stale_labels(folder: dict, item: str | None) -> list[dict]:
    folders.config_of(folder)
    return resegmentation.stale_labels(folder, _item_id(item))


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Delete the project\'s stale labels (see GET), of one slide or only the ones given.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('item', 'Only this slide\'s.', required=False)
    .jsonParam('ids', 'Only these stale labels (their ids).', required=False, requireArray=True)
    .errorResponse('Admin access was denied on the folder.', 403))
def delete_stale_labels(folder: dict, item: str | None, ids: list | None) -> dict:
    folders.config_of(folder)
    return resegmentation.delete_stale_labels(folder, _item_id(item), ids)


def _item_id(item: str | None) -> ObjectId | None:
    """``item`` as an id, or None; a label may name a slide no longer in the project, so any item id will do."""
    if not item:
        return None
    if not ObjectId.is_valid(item):
        raise ValidationException(f'{item!r} is not an item id', 'item')
    return ObjectId(item)
