"""Labels and predictions of each slide published as large_image annotations, so every DSA viewer shows them.

Each slide has at most one labels annotation and one predictions annotation made by Histomics Label (told apart
by ``attributes.histomics_label.kind``), each a pixelmap element with one value per segment over the slide's
segment-id image. Publishing again updates those annotations in place (a new version of the same annotation,
which large_image keeps in its history) instead of piling up new ones.

After a round the annotations are published in a background thread (``publish_soon``), so a labeler waiting for
fresh suggestions does not also wait for megabytes of annotation to be written; requests while one publication
runs coalesce into one more.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
from bson.objectid import ObjectId
from girder.models.folder import Folder
from girder.models.item import Item
from girder.models.user import User
from girder_large_image_annotation.models.annotation import Annotation

from ..core.io.annotation import pixelmap_annotation
from ..core.io.outputs import UNLABELED_CATEGORY, prediction_annotation
from ..core.io.store import SlideStore
from ..models.label import Label
from . import folders
from .segment_images import SegmentImage, segment_image_of

KINDS = ('labels', 'predictions')
logger = logging.getLogger(__name__)
_state: dict[str, str] = {}
"""Per project being published: 'running', or 'pending' when another publication was asked for meanwhile."""
_state_lock = threading.Lock()
_threads: dict[str, threading.Thread] = {}


def publish_soon(folder_id: ObjectId) -> None:
    """Publish the project's annotations in a background thread; a request while one runs queues one more."""
    key = str(folder_id)
    with _state_lock:
        if key in _state:
            _state[key] = 'pending'
            return
        _state[key] = 'running'
        thread = _threads[key] = threading.Thread(target=_publish_until_done, args=(folder_id,), daemon=True,
                                                  name=f'histomics-label-publish-{key}')
    thread.start()


def wait_for_publishing(folder_id: ObjectId, timeout: float | None = None) -> None:
    """Block until the project's background publication (and any queued behind it) is done."""
    with _state_lock:
        thread = _threads.get(str(folder_id))
    if thread is not None:
        thread.join(timeout)


def _publish_until_done(folder_id: ObjectId) -> None:
    key = str(folder_id)
    while True:
        try:
            folder = Folder().load(folder_id, force=True)
            if folder is not None:
                publish_project(folder)
        except Exception:  # the round stands; the next round or POST .../annotations publishes again
            logger.exception('Publishing the annotations of project %s failed', key)
        with _state_lock:
            if _state.get(key) == 'pending':
                _state[key] = 'running'
                continue
            _state.pop(key, None)
            return


def publish_project(folder: dict, user: dict | None = None) -> list[dict]:
    """Publish every segmented slide's labels (and predictions, once a round exists); returns what was published."""
    config = folders.config_of(folder)
    effective = Label().effective_by_slide(folder['_id'])
    published = []
    for item in folders.slides(folder):
        image = segment_image_of(item)
        path = folders.store_path(folder, item)
        if image is None or not path.exists():
            continue
        labels = effective.get(item['_id'], {})
        documents = {'labels': labels_annotation(path, image, config['categories'], labels)}
        with SlideStore(path) as store:
            has_round = store.latest_round() is not None
        if has_round:
            documents['predictions'] = prediction_annotation(
                str(path), image.image_id, name='Histomics Label predictions', boundaries=image.boundaries,
                offset=image.offset)
        for kind, document in documents.items():
            annotation = _save(item, kind, document, user or User().load(folder['creatorId'], force=True))
            published.append({'item': str(item['_id']), 'kind': kind, 'annotation': str(annotation['_id'])})
    return published


def labels_annotation(store_path, image: SegmentImage, categories: list[dict], labels: dict[int, str]) -> dict:
    """A pixelmap annotation colouring each labeled segment by its (effective) category."""
    with SlideStore(store_path) as store:
        n_segments, scale = store.n_segments, store.slide_info.scale
    values = label_values(n_segments, categories, labels)
    return pixelmap_annotation(
        'Histomics Label labels', girder_id=image.image_id, values=image.per_index(values).tolist(),
        categories=[UNLABELED_CATEGORY, *categories], boundaries=image.boundaries, scale=scale,
        description=f'{int((values > 0).sum())} labeled segments',
        attributes={'histomics_label': {'kind': 'labels',
                                        'excluded': [c['name'] for c in categories if c.get('excluded')]}})


def label_values(n_segments: int, categories: list[dict], labels: dict[int, str]) -> np.ndarray:
    """Per segment id (index 0 = background) the 1-based index of its label's category in ``categories``, 0 where
    unlabeled (or labeled with a category the project no longer has)."""
    index = {c['name']: k + 1 for k, c in enumerate(categories)}
    values = np.zeros(n_segments + 1, np.int64)
    for segment, category in labels.items():
        if category in index and 1 <= segment <= n_segments:
            values[segment] = index[category]
    return values


def published_annotation(item: dict, kind: str) -> dict | None:
    """The slide's current labels or predictions annotation made by Histomics Label, if any."""
    return Annotation().findOne({'itemId': item['_id'], '_active': {'$ne': False},
                                 'annotation.attributes.histomics_label.kind': kind})


def _save(item: dict, kind: str, document: dict, user: dict) -> dict:
    existing = published_annotation(item, kind)
    if existing is None:
        return Annotation().createAnnotation(Item().load(item['_id'], force=True), user, document)
    existing = Annotation().load(existing['_id'], force=True, getElements=False)
    existing['annotation'] = document
    return Annotation().updateAnnotation(existing, updateUser=user)
