"""Only a project's admins change the metadata the plugin acts on.

Girder lets any user with WRITE on a folder or item set its metadata (``PUT /folder/{id}/metadata``, ``PUT
/item/{id}/metadata``). Labelers have WRITE, yet the plugin reads its project configuration (categories, segment
parameters, model) from folder metadata and a slide's imported segmentation and segment image from item metadata,
and acts on them with the server's rights: a labeler could otherwise rewrite the categories or re-point a slide's
segments without the admin-only project routes. These handlers refuse, during a request, any change to those keys
by a user without ADMIN on the folder (for an item, its folder); the plugin's own writes run as the admin who asked
for them inside ``plugin_write()`` (their routes decided who may), or outside a request (background jobs), and pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from girder.api.rest import getCurrentUser
from girder.constants import AccessType
from girder.exceptions import AccessException
from girder.models.folder import Folder
from girder.models.item import Item

from .config import META_KEY

FOLDER_KEYS = (META_KEY,)
_plugin = threading.local()


@contextmanager
def plugin_write() -> Iterator[None]:
    """Mark the block's metadata writes as the plugin's own: the route or job that makes them checked who may."""
    depth = getattr(_plugin, 'depth', 0)
    _plugin.depth = depth + 1
    try:
        yield
    finally:
        _plugin.depth = depth


def guard_folder(event) -> None:
    """``model.folder.save``: refuse a change to the project configuration by a user who is not its admin."""
    folder = event.info
    if '_id' in folder:
        _check(Folder().load(folder['_id'], force=True), folder, FOLDER_KEYS, folder)


def guard_item(event) -> None:
    """``model.item.save``: refuse a change to a slide's segment metadata by a user who is not the project's
    admin."""
    from .folders import IMPORTED_SEGMENTATION_KEY  # folders writes through plugin_write
    from .segment_images import SEGMENT_IMAGE_FORMAT_KEY, SEGMENT_IMAGE_KEY

    item = event.info
    if '_id' in item:
        stored = Item().load(item['_id'], force=True)
        if stored is not None:
            _check(stored, item, (IMPORTED_SEGMENTATION_KEY, SEGMENT_IMAGE_KEY, SEGMENT_IMAGE_FORMAT_KEY),
                   Folder().load(stored['folderId'], force=True))


def _check(stored: dict | None, new: dict, keys: tuple[str, ...], folder: dict | None) -> None:
    if getattr(_plugin, 'depth', 0) or stored is None or folder is None:
        return
    user = getCurrentUser()
    if user is None:
        return
    old_meta, new_meta = stored.get('meta') or {}, new.get('meta') or {}
    changed = [key for key in keys if old_meta.get(key) != new_meta.get(key)]
    if changed and not Folder().hasAccess(folder, user, AccessType.ADMIN):
        raise AccessException(f'Only an admin of the project folder "{folder["name"]}" may change '
                              f'{", ".join(changed)}: use the project\'s own settings')
