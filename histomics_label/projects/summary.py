"""What a client first reads of a project: its configuration, slides and the caller's access, and per slide its
segment count and the segment image a viewer colours the overlays on."""

from __future__ import annotations

from girder.constants import AccessType
from girder.models.folder import Folder

from ..core.io.store import SlideStore
from . import folders
from .not_slides import not_slides
from .segment_images import segment_image_of


def project_summary(folder: dict, user: dict | None) -> dict:
    """The project's id, name, configuration, number of slides, the folder's items that are not slides (with why),
    and whether ``user`` may label and configure it."""
    return {'_id': str(folder['_id']), 'name': folder['name'], 'config': folders.config_of(folder),
            'slides': len(folders.slides(folder)), 'notSlides': not_slides(folder),
            'access': {'write': Folder().hasAccess(folder, user, AccessType.WRITE),
                       'admin': Folder().hasAccess(folder, user, AccessType.ADMIN)}}


def slide_summaries(folder: dict) -> list[dict]:
    """Each slide's id, name, segment count (None before segment generation) and segment image."""
    folders.config_of(folder)
    return [{'_id': str(item['_id']), 'name': item['name'], 'segments': folders.segment_count(folder, item),
             'segmentImage': _segment_image(folder, item)}
            for item in folders.slides(folder)]


def _segment_image(folder: dict, item: dict) -> dict | None:
    """The slide's segment image, its scale (slide base pixels per segment-image pixel) and which overlays it has
    (predictions once a round exists, the embedding map once made), for viewers; None before segment generation."""
    image = segment_image_of(item)
    path = folders.store_path(folder, item)
    if image is None or not path.exists():
        return None
    with SlideStore(path) as store:
        facts = {'scale': store.slide_info.scale, 'predictions': bool(store.rounds()),
                 'embeddingMap': folders.config_of(folder)['extractor'] in store.embedding_map_names()}
    return {**image.to_json(), **facts}
