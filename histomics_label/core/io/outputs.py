"""Result files of a run: the prediction and certainty annotations and the ranked suggestions.

Every file is written atomically, and ``OutputFiles`` removes the files a failed run created, so a failure never
leaves partial output behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .annotation import pixelmap_annotation
from .store import SlideStore

UNLABELED_CATEGORY = {'name': 'unlabeled', 'color': 'rgba(0, 0, 0, 0)'}
CERTAINTY_BINS = 10


def write_json_atomic(path: str | os.PathLike, document) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(handle, 'w', encoding='utf-8') as stream:
            json.dump(document, stream, indent=1)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class OutputFiles:
    """Remembers which output paths did not exist before a run, to remove them if the run fails."""

    def __init__(self, paths) -> None:
        self._new = [Path(p) for p in paths if p and not Path(p).exists()]

    @contextmanager
    def guard(self):
        try:
            yield self
        except BaseException:
            for path in self._new:
                path.unlink(missing_ok=True)
            raise


def predicted_values(store: SlideStore) -> tuple[np.ndarray, list[dict]]:
    """Per segment id (index 0 = background) the 1-based index of its predicted category, and the categories."""
    record = store.latest_round()
    trained = record.model_params['classes']
    values = np.zeros(store.n_segments + 1, np.int64)
    values[1:] = np.asarray(trained)[record.probabilities[:, trained].argmax(axis=1)] + 1
    return values, record.categories


def prediction_annotation(store_path: str, girder_id: str, name: str = 'Histomics Label predictions', *,
                          boundaries: bool = False, offset: int = 0) -> dict:
    """A DSA annotation whose pixelmap colours every segment by its predicted category.

    ``boundaries`` and ``offset`` describe the segment image: whether it carries outlines, and that its index
    ``k`` is segment ``k + offset``.
    """
    with SlideStore(store_path) as store:
        values, categories = predicted_values(store)
        scale = store.slide_info.scale
        record = store.latest_round()
    return pixelmap_annotation(
        name, girder_id=girder_id, values=values[offset:].tolist(), categories=[UNLABELED_CATEGORY, *categories],
        boundaries=boundaries, scale=scale,
        description=f'Predictions of round {record.number} ({record.model_name}, '
                    f'{record.metrics.get("labels_used", 0)} labels)',
        attributes={'histomics_label': {'round': record.number, 'kind': 'predictions',
                                        'excluded': [c['name'] for c in categories if c.get('excluded')]}})


def certainty_annotation(store_path: str, girder_id: str, name: str = 'Histomics Label certainty') -> dict:
    """A DSA annotation whose pixelmap shades every segment by the model's confidence (max probability)."""
    with SlideStore(store_path) as store:
        record = store.latest_round()
        scale = store.slide_info.scale
    trained = record.model_params['classes']
    confidence = record.probabilities[:, trained].max(axis=1)
    low = 1.0 / len(trained)
    bins = np.clip(((confidence - low) / (1 - low) * CERTAINTY_BINS).astype(int), 0, CERTAINTY_BINS - 1)
    values = np.concatenate([[0], bins + 1]).tolist()
    categories = [UNLABELED_CATEGORY] + [
        {'name': f'certainty {k * 10}-{k * 10 + 10}%', 'color': _ramp(k / (CERTAINTY_BINS - 1))}
        for k in range(CERTAINTY_BINS)]
    return pixelmap_annotation(name, girder_id=girder_id, values=values, categories=categories, boundaries=False,
                               scale=scale, description=f'Model certainty of round {record.number}',
                               attributes={'histomics_label': {'round': record.number, 'kind': 'certainty'}})


EMBEDDING_LEVELS = 6
"""Levels per colour channel of the embedding-map annotation: 6³ = 216 colours, few enough that the pixelmap's
category list stays small for any number of segments, and still telling apart regions the map colours apart."""


def embedding_map_annotation(store_path: str, girder_id: str, feature_name: str,
                             name: str = 'Histomics Label embedding map') -> dict:
    """A DSA annotation whose pixelmap colours every segment by its embedding-map colour (rounded to 216)."""
    with SlideStore(store_path) as store:
        colours = store.embedding_map(feature_name)
        params = store.embedding_map_params(feature_name)
        scale = store.slide_info.scale
    step = 255 / (EMBEDDING_LEVELS - 1)
    levels = np.rint(colours / step).astype(np.int64)
    codes = (levels[:, 0] * EMBEDDING_LEVELS + levels[:, 1]) * EMBEDDING_LEVELS + levels[:, 2]
    used, values = np.unique(codes, return_inverse=True)
    categories = [UNLABELED_CATEGORY]
    for code in used:
        rgb = [int(round(level * step)) for level in (code // EMBEDDING_LEVELS ** 2, code // EMBEDDING_LEVELS
                                                       % EMBEDDING_LEVELS, code % EMBEDDING_LEVELS)]
        categories.append({'name': 'embedding #{:02x}{:02x}{:02x}'.format(*rgb),
                           'color': '#{:02x}{:02x}{:02x}'.format(*rgb)})
    return pixelmap_annotation(
        name, girder_id=girder_id, values=np.concatenate([[0], values + 1]).tolist(), categories=categories,
        boundaries=False, scale=scale,
        description=f'Segments coloured by a 3-D {params["method"].upper()} map of their {feature_name} features: '
                    'alike colours, alike to the model',
        attributes={'histomics_label': {'kind': 'embedding_map', 'features': feature_name,
                                        'method': params['method']}})


def _ramp(t: float) -> str:
    """Red (uncertain) to green (certain)."""
    return f'#{int(220 * (1 - t)):02x}{int(200 * t):02x}28'


def suggestions_document(slide: str, store: str, round_number: int | None, certainty: str,
                         suggestions: list[dict]) -> dict:
    return {'slide': os.path.abspath(slide), 'store': os.path.abspath(store), 'round': round_number,
            'certainty': certainty, 'suggestions': suggestions}
