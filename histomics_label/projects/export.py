"""Exports of a project's labels and predictions: CSV, GeoJSON, and an HDF5 training set (features + labels).

Coordinates are slide base pixels. GeoJSON polygons are the outlines of the segments traced on the slide store's
segment raster (scikit-image ``find_contours``), so another tool (QuPath, a script) gets the real shapes. Each
row carries the effective label (a reviewer's override, else the most recent label), who labeled it, and the
latest round's prediction and its probability where the slide has a round.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.user import User
from skimage.measure import find_contours

from ..core.errors import ConfigurationError, HistomicsLabelError
from ..core.io.store import SlideStore
from ..models.label import Label
from . import folders

FORMATS = ('csv', 'geojson', 'hdf5')
MAX_GEOJSON_SEGMENTS = 200_000
"""Most segments one GeoJSON export traces; beyond that, export one slide at a time or as CSV."""
CSV_FIELDS = ('item', 'slide', 'segment', 'label', 'labelers', 'predicted', 'probability', 'x', 'y', 'x0', 'y0', 'x1',
              'y1')



@dataclass(frozen=True)
class Download:
    """An export as a download: its file name, media type and body (bytes, or a function yielding chunks)."""

    filename: str
    content_type: str
    body: bytes | Callable[[], Iterator[bytes]]


def download(folder: dict, format: str, item: str | None, predictions: bool) -> Download:
    """The project's (or one slide's) labels as ``format`` (one of ``FORMATS``), named after the project and slide;
    a 400 naming why when there is nothing to export or too much for GeoJSON."""
    folders.config_of(folder)
    slide = folders.slide_of(folder, item) if item else None
    stem = folder['name'].replace('"', '') + (f'-{slide["name"]}' if slide else '')
    try:
        if format == 'hdf5':
            return Download(f'{stem}-training-set.h5', 'application/x-hdf5',
                            _stream_and_remove(to_hdf5(folder, slide)))
        rows = export_rows(folder, slide, predictions)
        if format == 'csv':
            return Download(f'{stem}-labels.csv', 'text/csv', to_csv(rows).encode('utf8'))
        return Download(f'{stem}-labels.geojson', 'application/geo+json',
                        json.dumps(to_geojson(folder, rows)).encode('utf8'))
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc)) from exc


def export_rows(folder: dict, item: dict | None, predictions: bool) -> Iterator[dict]:
    """One dict per labeled segment (every segment with ``predictions``), slide by slide, by segment id."""
    effective = Label().effective(folder['_id'], item['_id'] if item else None)
    labelers: dict[tuple[ObjectId, int], set[str]] = defaultdict(set)
    logins: dict[ObjectId, str] = {}
    query = {'project': folder['_id'], **({'item': item['_id']} if item else {})}
    for doc in Label().collection.find(query, {'item': 1, 'segment': 1, 'labeler': 1}):
        if doc['labeler'] not in logins:
            logins[doc['labeler']] = (User().load(doc['labeler'], force=True) or {}).get('login', '')
        labelers[(doc['item'], doc['segment'])].add(logins[doc['labeler']])
    for slide in [item] if item else folders.slides(folder):
        path = folders.store_path(folder, slide)
        if not path.exists():
            continue
        with SlideStore(path) as store:
            labeled = sorted(s for (i, s), _ in effective.items() if i == slide['_id'] and s <= store.n_segments)
            segments = np.arange(1, store.n_segments + 1) if predictions else np.asarray(labeled, np.int64)
            if not len(segments):
                continue
            table = store.segments(segments - 1)
            scale = store.slide_info.scale
            record = store.latest_round()
            probabilities = record.probabilities[segments - 1] if record is not None else None
            for k, segment in enumerate(segments.tolist()):
                key = (slide['_id'], segment)
                row = {'item': str(slide['_id']), 'slide': slide['name'], 'segment': segment,
                       'label': effective.get(key), 'labelers': sorted(labelers.get(key, ())),
                       'predicted': None, 'probability': None,
                       'x': float(table.centroid[k][0] * scale), 'y': float(table.centroid[k][1] * scale),
                       'bbox': [int(round(v * scale)) for v in table.bbox[k]]}
                if probabilities is not None:
                    best = int(probabilities[k].argmax())
                    row['predicted'] = record.categories[best]['name']
                    row['probability'] = float(probabilities[k][best])
                yield row


def to_csv(rows: Iterator[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_FIELDS)
    for row in rows:
        writer.writerow([row['item'], row['slide'], row['segment'], row['label'] or '', ';'.join(row['labelers']),
                         row['predicted'] or '', '' if row['probability'] is None else f'{row["probability"]:.4f}',
                         f'{row["x"]:.1f}', f'{row["y"]:.1f}', *row['bbox']])
    return buffer.getvalue()


def to_geojson(folder: dict, rows: Iterator[dict]) -> dict:
    """A FeatureCollection of the segments' outline polygons with their label and prediction as properties."""
    features = []
    stores: dict[str, SlideStore] = {}
    try:
        for row in rows:
            if len(features) >= MAX_GEOJSON_SEGMENTS:
                raise ConfigurationError(f'More than {MAX_GEOJSON_SEGMENTS} segments to trace: export one slide '
                                         'at a time (item=...) or as CSV')
            if row['item'] not in stores:
                stores[row['item']] = SlideStore(folders.store_path(folder, ObjectId(row['item'])))
            store = stores[row['item']]
            features.append({
                'type': 'Feature',
                'geometry': {'type': 'Polygon', 'coordinates': [_outline(store, row['segment'])]},
                'properties': {key: row[key] for key in ('item', 'slide', 'segment', 'label', 'labelers',
                                                         'predicted', 'probability')}})
    finally:
        for store in stores.values():
            store.close()
    return {'type': 'FeatureCollection', 'features': features}


def to_hdf5(folder: dict, item: dict | None) -> Path:
    """A temporary HDF5 file of the labeled segments' feature vectors and labels (caller removes it).

    Datasets: ``features`` (N, D) float32, ``label`` (N,) index into the ``categories`` attribute, ``item`` and
    ``segment`` (which segment each row is). Excluded categories are included: the user decides what trains.
    """
    config = folders.config_of(folder)
    names = [c['name'] for c in config['categories']]
    effective = Label().effective(folder['_id'], item['_id'] if item else None)
    features, labels, items, segments = [], [], [], []
    for slide in [item] if item else folders.slides(folder):
        path = folders.store_path(folder, slide)
        if not path.exists():
            continue
        with SlideStore(path) as store:
            if config['extractor'] not in store.feature_names():
                continue
            pairs = sorted((s, names.index(c)) for (i, s), c in effective.items()
                           if i == slide['_id'] and c in names and s <= store.n_segments)
            if not pairs:
                continue
            ids = np.array([p[0] for p in pairs], np.int64)
            features.append(store.features(config['extractor'], ids - 1))
            labels.append(np.array([p[1] for p in pairs], np.int64))
            items.extend([str(slide['_id'])] * len(ids))
            segments.append(ids)
    if not features:
        raise ConfigurationError('No labeled segment has feature vectors to export')
    with tempfile.NamedTemporaryFile(suffix='.h5', delete=False) as handle:
        name = handle.name
    with h5py.File(name, 'w') as h5:
        h5.create_dataset('features', data=np.concatenate(features).astype(np.float32))
        h5.create_dataset('label', data=np.concatenate(labels))
        h5.create_dataset('segment', data=np.concatenate(segments))
        h5.create_dataset('item', data=np.array(items, dtype='S24'))
        h5.attrs['categories'] = names
        h5.attrs['extractor'] = config['extractor']
        h5.attrs['project'] = str(folder['_id'])
    return Path(name)


def _outline(store: SlideStore, segment: int) -> list[list[float]]:
    """The segment's outer boundary as a closed ring of base-pixel coordinates."""
    x0, y0, x1, y1 = (int(v) for v in store.segments(np.array([segment - 1])).bbox[0])
    mask = store.label_region(x0, y0, x1, y1) == segment
    contours = find_contours(np.pad(mask, 1).astype(np.uint8), 0.5)
    ring = max(contours, key=len) if contours else np.array([[0, 0], [0, 1], [1, 1], [1, 0]], float) + 1
    scale = store.slide_info.scale
    points = [[round((x0 + c - 1) * scale, 1), round((y0 + r - 1) * scale, 1)] for r, c in ring]
    if points[0] != points[-1]:
        points.append(points[0])
    return points


def _stream_and_remove(path: Path) -> Callable[[], Iterator[bytes]]:
    """Stream a temporary file in chunks, removing it once sent (or abandoned)."""
    def stream() -> Iterator[bytes]:
        try:
            with open(path, 'rb') as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
        finally:
            path.unlink(missing_ok=True)
    return stream
