"""Projects on Girder: a folder of slides whose metadata holds the configuration, and each slide's store on disk.

Girder's access on the folder decides what a user may do: READ to see a project, its labels and suggestions,
WRITE to label and retrain, ADMIN to configure it and start segment generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bson.objectid import ObjectId
from girder.constants import AccessType
from girder.exceptions import RestException, ValidationException
from girder.models.file import File
from girder.models.folder import Folder
from girder.models.item import Item

from ..core.errors import HistomicsLabelError
from ..core.io.store import SlideStore
from ..core.pipeline import PipelineConfig
from ..settings import data_dir
from .config import META_KEY, validate_config
from .metadata_guard import plugin_write

IMPORTED_SEGMENTATION_KEY = 'histomicsLabelImportedSegmentation'
"""Item metadata key on a slide imported from the published Histomics Label (``migration``): which superpixel
image its labels refer to and how it encodes them. Anyone with WRITE on the project can change item metadata, so
``imported_segmentation`` checks it before anything reads the image it names."""


def config_of(folder: dict) -> dict:
    """The project's configuration, or a 400 when the folder is not a project."""
    config = (folder.get('meta') or {}).get(META_KEY)
    if not isinstance(config, dict):
        raise RestException(f'Folder {folder["_id"]} is not a Histomics Label project; create one with '
                            f'PUT /histomics_label/project/{folder["_id"]}', 400)
    return config


def save_config(folder: dict, changes: dict, replace: bool = False) -> dict:
    """Validate ``changes`` over the current configuration (or the defaults) and store the result in the folder."""
    base = None if replace else (folder.get('meta') or {}).get(META_KEY)
    try:
        config = validate_config(changes, base)
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc)) from exc
    with plugin_write():
        Folder().setMetadata(folder, {META_KEY: config})
    return config


def slides(folder: dict) -> list[dict]:
    """The project's slides: the large-image items directly in its folder, by name."""
    return [item for item in Folder().childItems(folder, sort=[('name', 1)]) if item.get('largeImage')]


def slide_of(folder: dict, item_id: str | ObjectId) -> dict:
    """A slide of the project by id, or a 400 naming what is wrong."""
    try:
        item = Item().load(ObjectId(item_id), force=True)
    except Exception as exc:
        raise ValidationException(f'{item_id!r} is not an item id', 'item') from exc
    if item is None or item['folderId'] != folder['_id']:
        raise ValidationException(f'Item {item_id} is not a slide of this project', 'item')
    if not item.get('largeImage'):
        raise ValidationException(f'Item {item_id} ({item["name"]}) is not a large image', 'item')
    return item


def store_path(folder: dict | ObjectId, item: dict | ObjectId) -> Path:
    """Where the server keeps a slide's store: ``<data folder>/<project id>/<item id>.h5``."""
    folder_id = folder['_id'] if isinstance(folder, dict) else folder
    item_id = item['_id'] if isinstance(item, dict) else item
    path = data_dir() / str(folder_id)
    path.mkdir(parents=True, exist_ok=True)
    return path / f'{item_id}.h5'


def slide_file_path(item: dict) -> str:
    """The local path of a slide's image file (filesystem assetstores; others are fetched by large_image)."""
    file = File().load(item['largeImage']['fileId'], force=True)
    if file is None:
        raise ValidationException(f'The image file of slide {item["name"]} is missing', 'item')
    return File().getLocalFilePath(file)


def pipeline_config(folder: dict, item: dict, config: dict, user: dict | None = None) -> PipelineConfig:
    """The engine's configuration for one slide of the project.

    A slide imported from the published Histomics Label keeps its superpixels: its segments are read from their
    segment image (``label_image``) at that image's scale, instead of being made by SLIC. That image is checked by
    ``imported_segmentation`` with the access of ``user``, the user who asked for the work (segment generation
    passes the admin who started it); without one (training and suggestions, which read the stored segments, never
    the image's pixels) it must still lie in the project.
    """
    pipeline = PipelineConfig(
        slide=slide_file_path(item), store=str(store_path(folder, item)), magnification=config['magnification'],
        radius=config['radius'], compactness=config['compactness'], feature=config['feature'],
        extractor=config['extractor'], patch_size=config['patchSize'], model=config['model'],
        epochs=config['epochs'], seed=config['seed'], certainty=config['certainty'],
        suggestions=config['batchSize'], embedding_map=config['embeddingMap'])
    imported = imported_segmentation(folder, item, user)
    if imported is not None:
        pipeline.segments = 'label_image'
        pipeline.label_image = slide_file_path(imported.image)
        pipeline.label_image_boundaries = imported.boundaries
        pipeline.label_image_offset = imported.offset
        pipeline.label_image_count = imported.count
    return pipeline


@dataclass(frozen=True)
class ImportedSegmentation:
    """A slide's imported segmentation, checked: its superpixel image item and how the image encodes segment ids
    (superpixel ``k`` is segment ``k + offset``; ``count`` superpixels when the import recorded how many)."""

    image: dict
    boundaries: bool
    offset: int
    count: int | None


def imported_segmentation(folder: dict, item: dict, user: dict | None = None) -> ImportedSegmentation | None:
    """The slide's imported segmentation (``IMPORTED_SEGMENTATION_KEY``), or None when it has none.

    The record is item metadata, which any labeler (WRITE) can write, so it is never trusted to name an image:
    the image must be a large image inside the project's folder tree (whoever reads the project may see what is
    made from it, e.g. the republished segment image) and readable by ``user`` when one asked for the work.
    Raises ``ValidationException`` naming the slide and what is wrong, before the image is read.
    """
    record = (item.get('meta') or {}).get(IMPORTED_SEGMENTATION_KEY)
    if record is None:
        return None
    where = f'Slide {item["name"]}: its metadata {IMPORTED_SEGMENTATION_KEY!r}'
    if not isinstance(record, dict):
        raise ValidationException(f'{where} must be an object, not {type(record).__name__}', 'item')
    image_id, boundaries = record.get('image'), record.get('boundaries', True)
    offset, count = record.get('segmentOffset', 1), record.get('segments')
    if not isinstance(image_id, str) or not ObjectId.is_valid(image_id):
        raise ValidationException(f'{where} names no image id (image={image_id!r})', 'item')
    if not isinstance(boundaries, bool):
        raise ValidationException(f'{where}: boundaries must be true or false, not {boundaries!r}', 'item')
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 1:
        raise ValidationException(f'{where}: segmentOffset must be a whole number of at least 1, not {offset!r}',
                                  'item')
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValidationException(f'{where}: segments must be a positive whole number, not {count!r}', 'item')
    image = Item().load(ObjectId(image_id), force=True)
    if image is None or not image.get('largeImage') or not in_project(folder, image):
        raise ValidationException(f'{where} names {image_id}, which is no large image in this project; only an '
                                  'image inside the project folder can be a slide\'s segmentation', 'item')
    if user is not None and not Item().hasAccess(image, user, AccessType.READ):
        raise ValidationException(f'{where} names {image_id}, which {user.get("login", "the user")} who asked for '
                                  'this work may not read', 'item')
    return ImportedSegmentation(image, boundaries, offset, count)


def in_project(folder: dict, item: dict) -> bool:
    """Whether ``item`` lies in the project's folder tree: in its folder or in any folder below it."""
    current, seen = item.get('folderId'), set()
    while current is not None and current not in seen:
        if current == folder['_id']:
            return True
        seen.add(current)
        parent = Folder().load(current, force=True, fields=['parentId', 'parentCollection'])
        if parent is None or parent.get('parentCollection') != 'folder':
            return False
        current = parent.get('parentId')
    return False


THUMBNAIL_WIDTH = 128


def thumbnail_url(item_id, region) -> str:
    """The API path (under /api/v1) of a base-pixel region of the slide, 128 px wide: a segment's thumbnail."""
    x0, y0, x1, y1 = (int(v) for v in region)
    return (f'item/{item_id}/tiles/region?left={x0}&top={y0}&right={x1}&bottom={y1}&width={THUMBNAIL_WIDTH}'
            '&encoding=PNG')


def segment_count(folder: dict, item: dict) -> int | None:
    """How many segments the slide has, or None before segment generation."""
    path = store_path(folder, item)
    if not path.exists():
        return None
    with SlideStore(path) as store:
        return store.n_segments
