"""Import a slide's embeddings computed elsewhere (a deployment's own foundation model) from a Girder file.

The file (``.npy`` or ``.npz``, see ``core.features.imported``) is checked against the slide's segments and the
dimension of the project's other imported slides, then stored as the slide's ``imported`` features; a project
whose extractor is ``imported`` trains on them from its next round. Anything wrong is a 400 naming the problem,
and the slide's store is left as it was.
"""

from __future__ import annotations

from girder.exceptions import ValidationException
from girder.models.file import File

from ..core.errors import HistomicsLabelError
from ..core.features.imported import IMPORTED, import_embeddings, imported_dim
from . import folders

MAX_FILE_BYTES = 4 << 30
"""Largest file read (into memory, once): 4 GiB, e.g. a million segments of 1024-d float32 embeddings."""


def import_slide_embeddings(folder: dict, item: str, file: dict) -> dict:
    """Store the embeddings in Girder ``file`` as slide ``item``'s imported features; returns what was imported
    (segments, dim, file name and SHA-256) and whether the project trains on them (its extractor is ``imported``)."""
    config = folders.config_of(folder)
    slide = folders.slide_of(folder, item)
    path = folders.store_path(folder, slide)
    if not path.exists():
        raise ValidationException(f'Slide {slide["name"]} has no segments yet: make them (POST /histomics_label/'
                                  f'project/{folder["_id"]}/segments) before importing its embeddings', 'item')
    if file.get('size', 0) > MAX_FILE_BYTES:
        raise ValidationException(f'{file["name"]} is {file["size"]} bytes; at most {MAX_FILE_BYTES} are imported',
                                  'fileId')
    try:
        dim = _project_dim(folder, slide)
        with File().open(file) as handle:
            data = handle.read()
        summary = import_embeddings(path, data, file['name'], dim)
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc), 'fileId') from exc
    return {'item': str(slide['_id']), **summary, 'trainsOnThem': config['extractor'] == IMPORTED}


def _project_dim(folder: dict, slide: dict) -> int | None:
    """The dimension of the imported embeddings of the project's other slides (None if none has any)."""
    for other in folders.slides(folder):
        path = folders.store_path(folder, other)
        if other['_id'] != slide['_id'] and path.exists():
            dim = imported_dim(path)
            if dim is not None:
                return dim
    return None
