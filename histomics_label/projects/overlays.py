"""Per-segment values of one slide, packed as bytes for the web client's segment overlays.

The bulk labeling and guided views colour the slide's segment image (a pixelmap: one colour per segment) by the
segments' labels, the model's predictions, its certainty or the embedding map. With a million segments a JSON list
would be several megabytes and slow to parse, so each overlay is one byte per segment-image index (three for the
embedding map's RGB), in the image's own index order (``SegmentImage.per_index``), so the client can use the bytes
as they come.

Bytes per index: ``labels`` and ``predictions``: 0 for none, else 1 + the category's index in the project's
categories; ``certainty``: 0 for none, else 1 + round(254 · the model's probability of its predicted category);
``embedding``: the segment's RGB colour in the embedding map (black where none).
"""

from __future__ import annotations

import numpy as np
from girder.exceptions import RestException, ValidationException

from ..core.io.store import SlideStore
from ..models.label import Label
from . import folders
from .publishing import label_values
from .segment_images import segment_image_of

KINDS = ('labels', 'predictions', 'certainty', 'embedding')
MAX_CATEGORIES = 254  # a category index must fit in a byte beside 0 (none)


def overlay_bytes(folder: dict, item: dict, kind: str) -> bytes:
    """The ``kind`` overlay of the slide, packed as the module docstring says; a clear error when it has none."""
    if kind not in KINDS:
        raise ValidationException(f'kind must be one of {", ".join(KINDS)}, not {kind!r}', 'kind')
    image = segment_image_of(item)
    path = folders.store_path(folder, item)
    if image is None or not path.exists():
        raise RestException(f'Slide {item["name"]} has no segments yet: make segments first', 404)
    config = folders.config_of(folder)
    categories = config['categories']
    if len(categories) > MAX_CATEGORIES:
        raise RestException(f'Overlays can show at most {MAX_CATEGORIES} categories, this project has '
                            f'{len(categories)}', 400)
    with SlideStore(path) as store:
        if kind == 'labels':
            labels = {segment: category for (_, segment), category in Label().effective(folder['_id'],
                                                                                        item['_id']).items()}
            values = label_values(store.n_segments, categories, labels)
        elif kind == 'embedding':
            values = _embedding_colours(store, config['extractor'], item)
        else:
            values = _model_values(store, categories, kind, item)
    return np.ascontiguousarray(image.per_index(values).astype(np.uint8)).tobytes()


def _model_values(store: SlideStore, categories: list[dict], kind: str, item: dict) -> np.ndarray:
    record = store.latest_round()
    if record is None:
        raise RestException(f'Slide {item["name"]} has no predictions yet: train a first round', 404)
    trained = np.asarray(record.model_params['classes'])
    probabilities = record.probabilities[:, trained]
    best = probabilities.argmax(axis=1)
    values = np.zeros(store.n_segments + 1, np.int64)
    if kind == 'certainty':
        values[1:] = 1 + np.rint(254 * probabilities[np.arange(len(best)), best]).astype(np.int64)
        return values
    index = {c['name']: k + 1 for k, c in enumerate(categories)}
    to_project = np.array([index.get(c['name'], 0) for c in record.categories], np.int64)
    values[1:] = to_project[trained[best]]
    return values


def _embedding_colours(store: SlideStore, extractor: str, item: dict) -> np.ndarray:
    if extractor not in store.embedding_map_names():
        raise RestException(f'Slide {item["name"]} has no embedding map: it is made with the segments of projects '
                            'that use embeddings and have "embeddingMap" on (make segments again after turning it '
                            'on)', 404)
    colours = np.zeros((store.n_segments + 1, 3), np.uint8)
    colours[1:] = store.embedding_map(extractor)
    return colours
