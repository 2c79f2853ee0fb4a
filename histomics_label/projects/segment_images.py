"""Where a slide's segment-id image is and how its pixels name segments, for everything that colours segments.

Two kinds of segment image exist: the one segment generation uploads (``jobs.segments.publish_segment_image``: pixel
value ``2·id`` inside segment ``id`` and ``2·id + 1`` on its outline, background 0), and the superpixel image of a
slide imported from the published Histomics Label (HistomicsTK's, where superpixel ``k`` is segment ``k + 1`` and
the outline encoding is whatever that image recorded). Pixelmap annotations and the web client's overlays both
need the same three facts, so they read them here instead of assuming one kind.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
from girder.models.folder import Folder

from .config import META_KEY
from .folders import IMPORTED_SEGMENTATION_KEY

SEGMENTS_FOLDER = 'Histomics Label segments'
"""The subfolder of a project holding its segment-id images (pixelmap annotations refer to them by id)."""

SEGMENT_IMAGE_KEY = 'histomicsLabelSegmentImage'
"""Item metadata: id of the large-image item holding the slide's segment ids."""
SEGMENT_IMAGE_FORMAT_KEY = 'histomicsLabelSegmentImageFormat'
"""Item metadata: ``{"boundaries": bool}`` of the segment image segment generation uploaded (absent: no outlines,
as images uploaded before outlines were added)."""


@dataclass(frozen=True)
class SegmentImage:
    """A slide's segment-id image: pixel index ``k`` (after undoing the outline encoding) is segment ``k + offset``."""

    image_id: str
    boundaries: bool
    offset: int

    def per_index(self, per_segment: np.ndarray) -> np.ndarray:
        """Values per image index from values per segment id (index 0 = background): what a pixelmap needs."""
        per_segment = np.asarray(per_segment)
        return per_segment[self.offset:] if self.offset > 0 else per_segment

    def to_json(self) -> dict:
        return {'id': self.image_id, 'boundaries': self.boundaries, 'offset': self.offset}


def segment_image_of(item: dict) -> SegmentImage | None:
    """The slide's segment image, or None before one exists."""
    meta = item.get('meta') or {}
    image_id = meta.get(SEGMENT_IMAGE_KEY)
    if not image_id:
        return None
    imported = meta.get(IMPORTED_SEGMENTATION_KEY)
    if imported and imported.get('image') == image_id:
        return SegmentImage(image_id, bool(imported.get('boundaries', True)), int(imported.get('segmentOffset', 1)))
    return SegmentImage(image_id, bool((meta.get(SEGMENT_IMAGE_FORMAT_KEY) or {}).get('boundaries')), 0)


def segments_folder(folder: dict, owner: dict | None) -> dict:
    """The project's segment-image folder, made (owned by ``owner``) on first use; segment images, and the stores
    workers and the CLI image upload on their way into place, live there."""
    return Folder().createFolder(folder, SEGMENTS_FOLDER, reuseExisting=True, creator=owner,
                                 description='Segment-id images of the Histomics Label project (do not edit)')


def share_segment_images(folder: dict) -> None:
    """Give the project's segment-image folder the project folder's access, so that whoever may see the project
    may see its segments: the viewers read the segment images' tiles with the user's own access, and Girder does
    not carry a folder's access down to subfolders made before the change."""
    target = Folder().findOne({'parentId': folder['_id'], 'parentCollection': 'folder', 'name': SEGMENTS_FOLDER})
    if target is None:
        return
    access, public = folder.get('access') or {}, bool(folder.get('public'))
    if target.get('access') == access and bool(target.get('public')) == public:
        return
    target['access'] = copy.deepcopy(access)
    target['public'] = public
    Folder().save(target)


def on_folder_saved(event) -> None:
    """Girder's ``model.folder.save.after``: a project folder's access change reaches its segment images."""
    folder = event.info
    if isinstance((folder.get('meta') or {}).get(META_KEY), dict):
        share_segment_images(folder)
