"""Exports of a project's labels and predictions: CSV, GeoJSON, and an HDF5 training set (features + labels).

Coordinates are slide base pixels. GeoJSON polygons are the outlines of the segments traced on the slide store's
segment raster (``core.segments.outline``), so another tool (QuPath, a script) gets the real shapes. Each
row carries the effective label (a reviewer's override, else the most recent label), who labeled it, and the
latest round's prediction and its probability where the slide has a round.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import h5py
import numpy as np
from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.user import User

from ..core.errors import ConfigurationError, HistomicsLabelError
from ..core.io.store import SlideStore
from ..core.segments.base import SegmentTable
from ..core.segments.outline import segment_ring
from ..models.label import Label
from . import folders

FORMATS = ('csv', 'geojson', 'hdf5')
MAX_GEOJSON_SEGMENTS = 200_000
"""Most segments one GeoJSON export traces; beyond that, export one slide at a time or as CSV."""
CSV_FIELDS = ('item', 'slide', 'segment', 'label', 'labelers', 'predicted', 'probability', 'x', 'y', 'x0', 'y0', 'x1',
              'y1')
ROWS_PER_READ = 4096
"""Segments whose table rows and probabilities are read from a store at once."""
CHUNK_BYTES = 1 << 16
"""About how many bytes of CSV or GeoJSON are sent at a time."""


@dataclass(frozen=True)
class Download:
    """An export as a download: its file name, media type and body (a function yielding chunks of bytes)."""

    filename: str
    content_type: str
    body: Callable[[], Iterator[bytes]]


def download(folder: dict, format: str, item: str | None, predictions: bool) -> Download:
    """The project's (or one slide's) labels as ``format`` (one of ``FORMATS``), named after the project and slide;
    a 400 naming why when there is nothing to export or too much for GeoJSON.

    CSV and GeoJSON are streamed: rows are read from the stores ``ROWS_PER_READ`` segments at a time and sent in
    blocks of about ``CHUNK_BYTES``, so an export holds one slide's labels and one block of rows, however many
    rows it has. The slides' stores are opened before the first byte, so a store that cannot be read is a 400
    rather than a download cut short.
    """
    folders.config_of(folder)
    slide = folders.slide_of(folder, item) if item else None
    stem = folder['name'].replace('"', '') + (f'-{slide["name"]}' if slide else '')
    try:
        if format == 'hdf5':
            return Download(f'{stem}-training-set.h5', 'application/x-hdf5',
                            _stream_and_remove(to_hdf5(folder, slide)))
        slides = _segmented_slides(folder, slide)
        if format == 'csv':
            return Download(f'{stem}-labels.csv', 'text/csv',
                            lambda: _encoded(to_csv(export_rows(folder, slides, predictions))))
        if _count_rows(folder, slides, predictions) > MAX_GEOJSON_SEGMENTS:
            raise ConfigurationError(f'More than {MAX_GEOJSON_SEGMENTS} segments to trace: export one slide at a '
                                     'time (item=...) or as CSV')
        return Download(f'{stem}-labels.geojson', 'application/geo+json',
                        lambda: _encoded(to_geojson(folder, export_rows(folder, slides, predictions))))
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc)) from exc


def export_rows(folder: dict, slides: list[dict], predictions: bool) -> Iterator[dict]:
    """One dict per labeled segment (every segment with ``predictions``) of ``slides``, slide by slide, by segment
    id; a slide's labels are read when its rows are, and its segments ``ROWS_PER_READ`` at a time."""
    logins: dict[ObjectId, str] = {}
    for slide in slides:
        effective = {s: c for (_, s), c in Label().effective(folder['_id'], slide['_id']).items()}
        labelers = _labelers(folder['_id'], slide['_id'], logins)
        with SlideStore(folders.store_path(folder, slide)) as store:
            n = store.n_segments
            rounds = store.rounds()
            latest = rounds[-1] if rounds else None
            names = [c['name'] for c in store.round_categories(latest)] if latest is not None else []
            if predictions:
                batches = (np.arange(k, min(k + ROWS_PER_READ, n + 1)) for k in range(1, n + 1, ROWS_PER_READ))
            else:
                labeled = np.array(sorted(s for s in effective if s <= n), np.int64)
                batches = (labeled[k:k + ROWS_PER_READ] for k in range(0, len(labeled), ROWS_PER_READ))
            for segments in batches:
                rows = slice(segments[0] - 1, segments[-1]) if predictions else segments - 1
                yield from _rows(slide, store, segments, store.segments(rows), effective, labelers,
                                 names, store.round_probabilities(latest, rows) if latest is not None else None)


def _rows(slide: dict, store: SlideStore, segments: np.ndarray, table: SegmentTable, effective: dict[int, str],
          labelers: dict[int, set[str]], names: list[str], probabilities: np.ndarray | None) -> Iterator[dict]:
    """The export rows of ``segments`` of one slide, given their table rows and probabilities."""
    scale = store.slide_info.scale
    for k, segment in enumerate(segments.tolist()):
        row = {'item': str(slide['_id']), 'slide': slide['name'], 'segment': segment,
               'label': effective.get(segment), 'labelers': sorted(labelers.get(segment, ())),
               'predicted': None, 'probability': None,
               'x': float(table.centroid[k][0] * scale), 'y': float(table.centroid[k][1] * scale),
               'bbox': [int(round(v * scale)) for v in table.bbox[k]]}
        if probabilities is not None:
            best = int(probabilities[k].argmax())
            row['predicted'] = names[best]
            row['probability'] = float(probabilities[k][best])
        yield row


def _segmented_slides(folder: dict, item: dict | None) -> list[dict]:
    """The slides to export (``item``, else every slide of the project) that have a store, each store opened once
    to check it can be read."""
    slides = []
    for slide in [item] if item else folders.slides(folder):
        path = folders.store_path(folder, slide)
        if path.exists():
            SlideStore(path).close()
            slides.append(slide)
    return slides


def _count_rows(folder: dict, slides: list[dict], predictions: bool) -> int:
    """How many rows ``export_rows`` will give, without reading them."""
    count = 0
    for slide in slides:
        with SlideStore(folders.store_path(folder, slide)) as store:
            n = store.n_segments
        count += n if predictions else sum(1 for (_, s) in Label().effective(folder['_id'], slide['_id']) if s <= n)
    return count


def _labelers(project: ObjectId, item: ObjectId, logins: dict[ObjectId, str]) -> dict[int, set[str]]:
    """The logins of everyone who labeled each segment of a slide; ``logins`` caches user lookups."""
    labelers: dict[int, set[str]] = defaultdict(set)
    for doc in Label().collection.find({'project': project, 'item': item}, {'segment': 1, 'labeler': 1}):
        if doc['labeler'] not in logins:
            logins[doc['labeler']] = (User().load(doc['labeler'], force=True) or {}).get('login', '')
        labelers[doc['segment']].add(logins[doc['labeler']])
    return labelers


def to_csv(rows: Iterable[dict]) -> Iterator[str]:
    """The CSV text of ``rows``, header first, a line at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for values in chain([CSV_FIELDS], (_csv_values(row) for row in rows)):
        writer.writerow(values)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _csv_values(row: dict) -> list:
    return [row['item'], row['slide'], row['segment'], row['label'] or '', ';'.join(row['labelers']),
            row['predicted'] or '', '' if row['probability'] is None else f'{row["probability"]:.4f}',
            f'{row["x"]:.1f}', f'{row["y"]:.1f}', *row['bbox']]


def to_geojson(folder: dict, rows: Iterable[dict]) -> Iterator[str]:
    """A FeatureCollection of the segments' outline polygons with their label and prediction as properties, as
    JSON text a feature at a time. Rows come slide by slide, so one store is open at a time."""
    yield '{"type": "FeatureCollection", "features": ['
    store, item = None, None
    try:
        for k, row in enumerate(rows):
            if row['item'] != item:
                if store is not None:
                    store.close()
                store, item = SlideStore(folders.store_path(folder, ObjectId(row['item']))), row['item']
            feature = {'type': 'Feature',
                       'geometry': {'type': 'Polygon', 'coordinates': [segment_ring(store, row['segment'])]},
                       'properties': {key: row[key] for key in ('item', 'slide', 'segment', 'label', 'labelers',
                                                                'predicted', 'probability')}}
            yield (', ' if k else '') + json.dumps(feature)
    finally:
        if store is not None:
            store.close()
    yield ']}'


def _encoded(parts: Iterable[str]) -> Iterator[bytes]:
    """``parts`` as UTF-8, joined into blocks of about ``CHUNK_BYTES``."""
    block: list[str] = []
    size = 0
    for part in parts:
        block.append(part)
        size += len(part)
        if size >= CHUNK_BYTES:
            yield ''.join(block).encode('utf8')
            block, size = [], 0
    if block:
        yield ''.join(block).encode('utf8')


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
