"""The items of a project's folder that are not slides, each with why: the project page lists them, so that an admin
who drops a text file or a broken image into the folder is told it was left out instead of "up to date".

A slide is an item large_image made a large image (``largeImage`` set, which Girder's large_image does on upload
when it can read the file). For the others, large_image is asked whether it could read the file at all: a file it
cannot read is reported as such; one it can read only needs "Make large image" on its item page. Answers are kept
per file version, so a page load does not open the files again.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from girder.models.file import File
from girder.models.folder import Folder
from girder.models.item import Item

logger = logging.getLogger(__name__)

MAX_REPORTED = 100
"""At most this many non-slide items are reported (a folder of thousands of other files is not a project)."""


def not_slides(folder: dict) -> list[dict]:
    """``[{_id, name, reason}]`` of the folder's items that are not large images, by name."""
    items = Folder().childItems(folder, filters={'largeImage': {'$exists': False}}, sort=[('name', 1)],
                                limit=MAX_REPORTED)
    return [{'_id': str(item['_id']), 'name': item['name'], 'reason': _reason(item)} for item in items]


def _reason(item: dict) -> str:
    files = list(Item().childFiles(item, limit=2))
    if not files:
        return 'It holds no file.'
    if len(files) > 1:
        return 'It holds several files; a slide is an item with one image file (or a large image made of them).'
    file = files[0]
    readable = _readable(str(file['_id']), file.get('size'), str(file.get('created')))
    if readable is None:
        return 'Its file is not stored on this server\'s disk, so it could not be checked; make it a large image.'
    if readable:
        return 'large_image can read it, but it is not a large image yet: use "Make large image" on its item page.'
    kind = f', of type {file["mimeType"]}' if file.get('mimeType') else ''
    return (f'No image reader of large_image can read {file["name"]} ({_size(file.get("size"))}{kind}): it is not '
            'a slide, or the file is damaged.')


@lru_cache(maxsize=1024)
def _readable(file_id: str, size: int | None, created: str) -> bool | None:
    """Whether large_image can read the file (None: it has no local path); keyed by the file's version."""
    import large_image

    file = File().load(file_id, force=True)
    try:
        path = File().getLocalFilePath(file)
    except Exception:  # an assetstore without local paths (S3, GridFS)
        return None
    try:
        return bool(large_image.canRead(path, noCache=True))
    except Exception:
        logger.exception('large_image failed while checking %s', path)
        return False


def _size(size: int | None) -> str:
    if size is None:
        return 'size unknown'
    if size < 1000:
        return f'{size} bytes'
    value, unit = size / 1000, 'kB'
    for larger in ('MB', 'GB'):
        if value < 1000:
            break
        value, unit = value / 1000, larger
    return f'{value:.1f} {unit}'
