"""The slide store: one HDF5 file per slide holding its segments, features and every active-learning round.

Layout (schema version 1)::

    /                       attrs: format, schema_version, created, slide_info (JSON), segment_params (JSON)
    /segments/label_raster  uint32 (height, width), chunked, gzip level 1, fill value 0 (background)
    /segments/bbox          int64 (N, 4)   x0, y0, x1, y1 in analysis pixels, x1/y1 exclusive
    /segments/centroid      float64 (N, 2) x, y
    /segments/area          int64 (N,)     pixels
    /features/<name>        float32 (N, dim), chunked by rows; attrs: params (JSON)
    /patches/<size>         uint8 (N, size, size, 3) masked patches, chunked by rows, gzip level 1;
                            attrs: params (JSON: patch_size, fill)
    /embedding_maps/<name>  uint8 (N, 3) RGB colour per segment from a 3-D UMAP of the ``<name>`` features;
                            attrs: params (JSON: the features' params, seed, method, note)
    /rounds/<k>             attrs: created, categories, model_name, model_params, metrics (JSON strings)
    /rounds/<k>/probabilities      float32 (N, C), chunked by rows
    /rounds/<k>/label_ids          int64 (L,)  segment ids 1..N
    /rounds/<k>/label_categories   int64 (L,)  index into the round's categories
    /rounds/<k>/model/<key>        one dataset per entry of the model's state

Rounds of a store that exists are appended as files of their own, ``<store>.rounds/<k>.<store_id>.h5``, whose
root holds what ``/rounds/<k>`` holds, plus the ``store_id`` of the store they belong to (the root attribute
``store_id``, a random id given at creation, is also in the file's name, so telling a store's round files from
those of another store at the same path, say one re-segmented since, needs no file opened). Appending a round so
costs the round's size, not a copy of the whole store (gigabytes of features on a large slide), and a new store
removes the old store's round files. Round files of older versions, named ``<k>.h5``, are opened to read their id.

Rounds are compacted: a store keeps its last ``ROUNDS_KEPT`` rounds, and appending a round deletes the files of
older ones (a round written inside the store drops the older groups inside it). Every round a store keeps is
complete: probabilities, labels and the model state the next round warm-starts from. A store open reads one file;
a round's file is opened only when that round is read. The figures of every round (the learning curve) are
recorded in the database when the round finishes, so nothing shown for an older round needs its file.

Writes are isolated across processes, and atomic:

- ``create`` and ``update`` hold an exclusive lock (``flock``) on ``<store>.lock`` for the whole block, so a second
  writer waits, then works on the first one's result instead of silently replacing it; ``append_round`` holds the
  lock ``<store>.rounds/.lock`` while it numbers, writes and compacts; ``replace_store`` moves a store made
  elsewhere into place under the store's lock. The lock files stay (removing a lock file while another process
  waits on it would break the lock). Readers never lock.
- Every write to the store goes to a temporary file beside it, which replaces the store only when the write
  succeeded, so a reader never sees a half-written store and a failed step leaves the previous store
  byte-identical. An update therefore starts from a copy of the store, even when it only adds datasets: HDF5
  has no journal, so a crash while writing into the store itself could leave it unreadable, and a reader that
  opens a file being modified (without SWMR, which cannot add datasets) may read half-written metadata. The copy
  is made with ``copy_file_range``, which shares the blocks instead of copying them on filesystems that can
  (XFS, Btrfs), copies on the server on NFS 4.2, and copies inside the kernel elsewhere (ext4: a full copy);
  what changes every round (the round) never copies the store.

Reads are partial: rows of the tables and regions of the raster are read from disk only when asked for.

Why gzip level 1 for the label raster (256² chunks): measured on two real segment rasters, SLIC superpixels of
the H&E sample (4452 × 3330) and the DSB2018 nuclei mask tiled to 4096², it compressed 41× and 42× against lzf's
28× and 33×, at about the same speed (writing 60 MB took 0.09 s against 0.07 s, reading back 0.05–0.14 s for
either), and unlike lzf it is readable by every HDF5 library, not only h5py. The byte-shuffle filter helped
one raster (54×) and hurt the other (34×), so it is off. Features and probabilities are left uncompressed:
they are float32 values that compress little and are read often.

Why gzip level 1 for the masked patches: measured on real patches (SLIC superpixels of the H&E sample at 10×
and the DSB2018 nuclei), gzip 1 compressed 1.5–10.2× (H&E, 32–100 px patches) and 4.7–15.4× (nuclei, 32–64 px)
against lzf's 1.4–9.5× and 3.2–10.5×, wrote at the same speed and read back as fast or faster (20 MB in 0.05 s
against lzf's 0.12 s); gzip 4 gained under 5 % for twice the time, and byte-shuffle does nothing to uint8.
How well patches compress depends mostly on how much of them is the masked grey fill.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import h5py
import numpy as np

from ..errors import FeaturesError, LabelsError, StoreError
from ..features.patches import FILL_VALUE
from ..segments import SegmentTable
from .slide import SlideInfo

SCHEMA_VERSION = 1
FORMAT_NAME = 'histomics-label-slide-store'
RASTER_COMPRESSION = {'compression': 'gzip', 'compression_opts': 1}
ROW_CHUNK_BYTES = 1 << 20
"""Target size of one chunk of a per-segment table, so reading a few rows reads about a megabyte."""
PATCH_COMPRESSION = {'compression': 'gzip', 'compression_opts': 1}
PATCH_CACHE_BYTES = 256 << 20
"""HDF5 chunk cache of a patch set being written. Patches arrive in tile order, not row order, so a chunk is
written piecemeal; with the cache each chunk is compressed once, when it is complete or evicted, instead of being
decompressed and recompressed for every batch (measured: 1.2 s instead of 16 s for 5000 patches of 100 px written
in random order). It bounds the memory the writer uses, whatever the number of segments."""
PATCH_CACHE_SLOTS = 100003
"""Hash slots of that cache (a prime); chunks collide only beyond this many chunks, and then merely cost time."""
ROUNDS_KEPT = 3
"""Rounds a store keeps (the latest last); appending a round deletes older ones. The latest is what every view
reads and what the next round warm-starts from; the one before it is what a round's prediction change compares
with; the third lets a reader that listed the rounds just before two appends still open the round it listed.
The learning curve does not read stores: each round's figures are recorded in the database."""
ROUNDS_LOCK = '.lock'
"""The lock file, inside a store's rounds folder, that round appends hold."""
ROUND_FILE_ONLY_ATTRS = ('format', 'schema_version', 'store_id')
"""Root attributes of a round file that say what the file is, not what the round is."""

Rows = None | slice | np.ndarray | list[int]


@dataclass
class RoundRecord:
    """One round of active learning: the labels it was trained on, the model, and its predictions."""

    number: int
    created: str
    categories: list[dict]
    label_ids: np.ndarray
    label_categories: np.ndarray
    probabilities: np.ndarray
    model_name: str
    model_params: dict
    model_state: dict[str, np.ndarray]
    metrics: dict


class _StoreView:
    """Read methods shared by the read-only ``SlideStore`` and the ``StoreWriter``."""

    def __init__(self, h5: h5py.File, path: str) -> None:
        self._h5 = h5
        self.path = path
        self._opened_rounds: dict[str, h5py.File] = {}

    # -- lifetime -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        for handle in self._opened_rounds.values():
            handle.close()
        self._opened_rounds.clear()
        self._h5.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- slide and segments ---------------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self._h5.attrs['schema_version'])

    @property
    def slide_info(self) -> SlideInfo:
        values = _loads(self._h5.attrs['slide_info'])
        known = {f.name for f in fields(SlideInfo)}
        return SlideInfo(**{k: v for k, v in values.items() if k in known})

    @property
    def segment_params(self) -> dict:
        return _loads(self._h5.attrs['segment_params'])

    @property
    def store_id(self) -> str:
        """What tells this store from another at the same path (a store made again gets a new id)."""
        return _store_id(self._h5)

    @property
    def n_segments(self) -> int:
        return len(self._dataset('segments/area', 'segment table'))

    def segment_areas(self) -> np.ndarray:
        """Every segment's area in analysis pixels (row = segment id − 1), without the rest of the table."""
        return self._dataset('segments/area', 'segment table')[:]

    def segments(self, rows: Rows = None) -> SegmentTable:
        """The segment table, or only ``rows`` of it (0-based rows, i.e. segment id − 1, in the order given).

        A partial table's ``ids`` property numbers its own rows, not the store's; keep ``rows`` alongside.
        """
        return SegmentTable(bbox=_read_rows(self._dataset('segments/bbox', 'segment table'), rows),
                            centroid=_read_rows(self._dataset('segments/centroid', 'segment table'), rows),
                            area=_read_rows(self._dataset('segments/area', 'segment table'), rows))

    @property
    def label_raster(self) -> h5py.Dataset:
        """The segment-id raster as an h5py dataset (read-only in a ``SlideStore``), to slice as needed."""
        return self._dataset('segments/label_raster', 'label raster')

    def label_region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Segment ids of ``[y0:y1, x0:x1]`` in analysis pixels, clipped to the raster (uint32)."""
        raster = self.label_raster
        height, width = raster.shape
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(width, int(x1)), min(height, int(y1))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint32)
        return raster[y0:y1, x0:x1]

    # -- features -------------------------------------------------------------------------------------------------

    def feature_names(self) -> list[str]:
        return sorted(self._h5['features']) if 'features' in self._h5 else []

    def features(self, name: str, rows: Rows = None) -> np.ndarray:
        """The ``name`` features of every segment (N, dim) float32, or only ``rows`` of them."""
        return _read_rows(self._feature_dataset(name), rows)

    def feature_params(self, name: str) -> dict:
        return _loads(self._feature_dataset(name).attrs['params'])

    def _feature_dataset(self, name: str) -> h5py.Dataset:
        if name not in self.feature_names():
            have = ', '.join(self.feature_names()) or 'none'
            raise FeaturesError(f'The store {self.path} has no {name!r} features (it has: {have})')
        return self._h5['features'][name]

    # -- patches --------------------------------------------------------------------------------------------------

    def patch_sizes(self) -> list[int]:
        """The sizes (in analysis pixels) of the masked patch sets the store holds, smallest first."""
        return sorted(int(key) for key in self._h5['patches']) if 'patches' in self._h5 else []

    def patches(self, size: int, rows: Rows = None) -> np.ndarray:
        """The ``size`` px masked patches of every segment, uint8 (N, size, size, 3), or only ``rows`` of them."""
        return _read_rows(self._patch_dataset(size), rows)

    def patch_params(self, size: int) -> dict:
        """How the ``size`` px patches were cut (``patch_size`` and the ``fill`` grey of masked pixels)."""
        return _loads(self._patch_dataset(size).attrs['params'])

    def _patch_dataset(self, size: int) -> h5py.Dataset:
        if int(size) not in self.patch_sizes():
            have = ', '.join(map(str, self.patch_sizes())) or 'none'
            raise FeaturesError(f'The store {self.path} has no {size} px patches (it has patch sizes: {have})')
        return self._h5['patches'][str(int(size))]

    # -- embedding maps -------------------------------------------------------------------------------------------

    def embedding_map_names(self) -> list[str]:
        """The feature sets that have an embedding map (a colour per segment)."""
        return sorted(self._h5['embedding_maps']) if 'embedding_maps' in self._h5 else []

    def embedding_map(self, name: str, rows: Rows = None) -> np.ndarray:
        """The uint8 (N, 3) RGB colour of every segment (or of ``rows``) in the map of the ``name`` features."""
        return _read_rows(self._embedding_map_dataset(name), rows)

    def embedding_map_params(self, name: str) -> dict:
        return _loads(self._embedding_map_dataset(name).attrs['params'])

    def _embedding_map_dataset(self, name: str) -> h5py.Dataset:
        if name not in self.embedding_map_names():
            have = ', '.join(self.embedding_map_names()) or 'none'
            raise FeaturesError(f'The store {self.path} has no embedding map of {name!r} features (it has: {have})')
        return self._h5['embedding_maps'][name]

    # -- rounds ---------------------------------------------------------------------------------------------------

    def rounds(self) -> list[int]:
        """The numbers of the rounds the store keeps, oldest first: at most ``ROUNDS_KEPT``, read without opening
        any round file (but those of older versions, named without the store's id)."""
        inside = {int(k) for k in self._h5['rounds']} if 'rounds' in self._h5 else set()
        return sorted(inside | set(self._round_paths()))[-ROUNDS_KEPT:]

    def _round_paths(self) -> dict[int, str]:
        """The paths of this store's round files, by round number."""
        store_id = _store_id(self._h5)
        found = {}
        for number, owner, path in _round_files(self.path):
            if owner is None:  # a file of an older version: its id is inside
                owner = self._round_file(path).attrs.get('store_id')
            if owner == store_id:
                found[number] = path
        return found

    def _round_file(self, path: str) -> h5py.File:
        """The round file at ``path``, opened once and kept open while the store is."""
        handle = self._opened_rounds.get(path)
        if handle is None:
            handle = self._opened_rounds[path] = _open_checked(path)
        return handle

    def round(self, number: int) -> RoundRecord:
        return _round_record(self._round_group(number), int(number))

    def round_categories(self, number: int) -> list[dict]:
        """Round ``number``'s categories (its probabilities' columns), without reading the rest of the round."""
        return _loads(self._round_group(number).attrs['categories'])

    def round_probabilities(self, number: int, rows: Rows = None) -> np.ndarray:
        """Round ``number``'s class probabilities of every segment, or only of ``rows``."""
        return _read_rows(self._round_group(number)['probabilities'], rows)

    def latest_round(self) -> RoundRecord | None:
        numbers = self.rounds()
        return self.round(numbers[-1]) if numbers else None

    def _round_group(self, number: int) -> h5py.Group:
        number = int(number)
        kept = self.rounds()
        if number in kept:
            if 'rounds' in self._h5 and str(number) in self._h5['rounds']:
                return self._h5['rounds'][str(number)]
            path = self._round_paths().get(number)
            if path is not None:
                return self._round_file(path)
        have = ', '.join(map(str, kept)) or 'none'
        raise StoreError(f'The store {self.path} has no round {number} (it keeps the last {ROUNDS_KEPT}: {have})')

    def _dataset(self, name: str, what: str) -> h5py.Dataset:
        if name not in self._h5:
            raise StoreError(f'The store {self.path} has no {what} yet')
        return self._h5[name]


class SlideStore(_StoreView):
    """A read-only view of a slide store. Use ``create`` and ``update`` to write one."""

    def __init__(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        super().__init__(_open_checked(path), path)

    @classmethod
    @contextmanager
    def create(cls, path: str | os.PathLike, slide: SlideInfo, segment_params: dict) -> Iterator[StoreWriter]:
        """Write a new store; it replaces any store at ``path`` (and its rounds) only if the block finishes without
        an exception. Holds the store's lock throughout, so an update of the old store cannot replace it after."""
        path = os.fspath(path)
        slide_json = _dumps(asdict(slide), 'slide information')
        params_json = _dumps(segment_params, 'segment parameters')
        store_id = uuid.uuid4().hex
        with _exclusive(f'{path}.lock', path):
            with _atomic_replace(path) as temp:
                with h5py.File(temp, 'w', locking=False) as h5:
                    h5.attrs['format'] = FORMAT_NAME
                    h5.attrs['schema_version'] = SCHEMA_VERSION
                    h5.attrs['created'] = _now()
                    h5.attrs['store_id'] = store_id
                    h5.attrs['slide_info'] = slide_json
                    h5.attrs['segment_params'] = params_json
                    writer = StoreWriter(h5, path)
                    yield writer
                if writer.needs_repack:
                    _repack(temp)
            _drop_other_rounds(path, store_id)

    @classmethod
    @contextmanager
    def update(cls, path: str | os.PathLike) -> Iterator[StoreWriter]:
        """Modify a copy of the store; the copy replaces it only if the block finishes without an exception.

        Holds the store's lock for the whole block: a second update waits and then starts from the first one's
        result. Readers are not held up: they read the store that was there until the copy replaces it.
        """
        path = os.fspath(path)
        SlideStore(path).close()  # a missing, corrupt or newer store fails here with a clear message
        with _exclusive(f'{path}.lock', path), _atomic_replace(path) as temp:
            _copy_file(path, temp)
            with h5py.File(temp, 'r+', locking=False) as h5:
                writer = StoreWriter(h5, path)
                yield writer
            if writer.needs_repack:
                _repack(temp)


def replace_store(source: str | os.PathLike, store_path: str | os.PathLike) -> None:
    """Move the finished store ``source`` (say, a new segmentation made beside the store and approved since) over
    the store at ``store_path``, and remove the old store's round files, as ``create`` does.

    Holds the store's lock while it does, so an update of the old store that is under way finishes first and is
    then replaced, instead of landing afterwards and bringing the old store back.
    """
    source, path = os.fspath(source), os.fspath(store_path)
    with SlideStore(source) as store:  # a missing or damaged store fails here, before anything moves
        store_id = _store_id(store._h5)
    with _exclusive(f'{path}.lock', path):
        try:
            os.replace(source, path)
        except OSError as exc:
            raise StoreError(f'Cannot replace the slide store {path}: {exc}') from None
        _drop_other_rounds(path, store_id)


def _drop_other_rounds(path: str, store_id: str) -> None:
    """Remove the round files of the stores that ``path`` held before the one of ``store_id`` (a round of that one
    may already be appended: it stays)."""
    folder = rounds_folder(path)
    if os.path.isdir(folder):
        with _exclusive(os.path.join(folder, ROUNDS_LOCK), path):
            _remove_round_files(folder, keep={found for _, owner, found in _round_files(path) if owner == store_id})


def append_round(store_path: str | os.PathLike, **round_fields) -> int:
    """Add a round to an existing store as a round file of its own; returns the round's number.

    Takes ``StoreWriter.add_round``'s arguments. Holds the rounds' lock while it numbers the round, writes its file
    beside its final name, moves it into place and deletes the files of rounds no longer kept (``ROUNDS_KEPT``),
    so a failed write leaves nothing and two writers at once get two numbers.
    """
    path = os.fspath(store_path)
    SlideStore(path).close()  # a missing, corrupt or newer store fails here, before its rounds folder is made
    folder = rounds_folder(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise StoreError(f'Cannot write the rounds of {path}: {exc}') from None
    with _exclusive(os.path.join(folder, ROUNDS_LOCK), path):
        with SlideStore(path) as store:
            n_segments = store.n_segments
            store_id = _store_id(store._h5)
            numbers = store.rounds()
            paths = store._round_paths()
        number = max(numbers, default=0) + 1
        final = os.path.join(folder, f'{number}.{store_id}.h5')
        temp = os.path.join(folder, f'.{uuid.uuid4().hex[:12]}.tmp')
        try:
            _write_round_file(temp, store_id, n_segments, round_fields)
            with open(temp, 'rb') as stream:
                os.fsync(stream.fileno())
            os.replace(temp, final)
        finally:
            if os.path.exists(temp):
                os.remove(temp)
        kept = (numbers + [number])[-ROUNDS_KEPT:]
        _remove_round_files(folder, keep={final} | {paths[k] for k in kept if k in paths})
    return number


def export_latest_round(store_path: str | os.PathLike, target: str | os.PathLike) -> int | None:
    """Write the store's latest round to ``target`` as a round file of its own (what ``adopt_round`` takes), for a
    round trained on another machine to warm-start from; returns its number, or None (nothing written) when the
    store has no round."""
    with SlideStore(store_path) as store:
        record = store.latest_round()
        if record is None:
            return None
        store_id = store.store_id
        n_segments = store.n_segments
    _write_round_file(target, store_id, n_segments, _round_fields(record))
    return record.number


def adopt_round(store_path: str | os.PathLike, round_file: str | os.PathLike) -> int:
    """Append the round in ``round_file`` (``export_latest_round``'s output, written from a copy of this store on
    another machine) to the store as its next round; returns the round's number. The file must belong to this very
    store (its ``store_id``): a round of segments made since would name the wrong segments. Checked as
    ``append_round`` checks a round, so a bad file changes nothing."""
    try:
        h5 = _open_checked(os.fspath(round_file))
    except StoreError as exc:
        raise StoreError(f'Not a round file: {exc}') from None
    with h5:
        owner = str(h5.attrs.get('store_id', ''))
        try:
            record = _round_record(h5, 0)
        except KeyError as exc:
            raise StoreError(f'The round file {os.fspath(round_file)} lacks {exc}') from None
    with SlideStore(store_path) as store:
        if owner != store.store_id:
            raise StoreError(f'The round file {os.fspath(round_file)} belongs to another store than {store.path} '
                             '(made from other segments)')
    return append_round(store_path, **_round_fields(record))


def pack_rounds(store_path: str | os.PathLike) -> list[int]:
    """Move the store's round files into the store (as ``/rounds/<k>``), so that its one file carries its rounds:
    for a store that leaves this machine, such as a CLI's output uploaded to Girder. Returns the rounds moved.

    Rounds no longer kept (``ROUNDS_KEPT``) are dropped from the store. Holds the store's lock, then the rounds'
    lock (the order ``create`` takes them in), and writes a copy of the store that replaces it only once complete;
    the round files are removed only after, so a reader sees every kept round before, during and after.
    """
    path = os.fspath(store_path)
    with _exclusive(f'{path}.lock', path):
        with SlideStore(path) as store:
            if not store._round_paths():
                return []
        folder = rounds_folder(path)
        with _exclusive(os.path.join(folder, ROUNDS_LOCK), path):
            with SlideStore(path) as store:
                paths = store._round_paths()
            with _atomic_replace(path) as temp:
                _copy_file(path, temp)
                with h5py.File(temp, 'r+', locking=False) as h5:
                    inside = h5.require_group('rounds')
                    for number, round_path in sorted(paths.items()):
                        with h5py.File(round_path, 'r', locking=False) as source:
                            group = inside.create_group(str(number))
                            for key, value in source.attrs.items():
                                if key not in ROUND_FILE_ONLY_ATTRS:
                                    group.attrs[key] = value
                            for name in source:
                                source.copy(source[name], group)
                    dropped = sorted(map(int, inside))[:-ROUNDS_KEPT]
                    for number in dropped:
                        del inside[str(number)]
                if dropped:
                    _repack(temp)
            _remove_round_files(folder, keep={found for _, _, found in _round_files(path)} - set(paths.values()))
    return sorted(paths)


class StoreWriter(_StoreView):
    """Writes into a store being created or updated; only ``SlideStore.create`` and ``update`` make one."""

    def __init__(self, h5: h5py.File, path: str) -> None:
        super().__init__(h5, path)
        self.needs_repack = False  # set when a dataset was deleted: HDF5 does not reclaim its space by itself

    def create_label_raster(self, height: int, width: int, chunk: int = 256) -> h5py.Dataset:
        """An empty (all background) uint32 segment-id raster for a segment source to fill tile by tile."""
        if 'segments/label_raster' in self._h5:
            raise StoreError(f'The store {self.path} already has a label raster; create a new store to re-segment')
        if height < 1 or width < 1 or chunk < 1:
            raise StoreError(f'A label raster needs a positive size and chunk, not {height} × {width} / {chunk}')
        chunks = (min(chunk, height), min(chunk, width))
        return self._h5.require_group('segments').create_dataset(
            'label_raster', shape=(height, width), dtype=np.uint32, chunks=chunks, fillvalue=0,
            **RASTER_COMPRESSION)

    def write_segments(self, table: SegmentTable) -> None:
        """Store the table of segments 1..N; shapes and bounding boxes are checked against each other and the raster."""
        if 'segments/area' in self._h5:
            raise StoreError(f'The store {self.path} already has segments; create a new store to re-segment')
        bbox = np.asarray(table.bbox, np.int64)
        centroid = np.asarray(table.centroid, np.float64)
        area = np.asarray(table.area, np.int64)
        n = len(area)
        if area.ndim != 1 or bbox.shape != (n, 4) or centroid.shape != (n, 2):
            raise StoreError(f'A segment table needs bbox (N, 4), centroid (N, 2) and area (N,); got '
                             f'{bbox.shape}, {centroid.shape} and {area.shape}')
        if n and ((bbox[:, 0] < 0).any() or (bbox[:, 1] < 0).any() or (bbox[:, 2] <= bbox[:, 0]).any()
                  or (bbox[:, 3] <= bbox[:, 1]).any()):
            raise StoreError('Segment bounding boxes must be (x0, y0, x1, y1) with 0 <= x0 < x1 and 0 <= y0 < y1')
        if n and 'segments/label_raster' in self._h5:
            height, width = self._h5['segments/label_raster'].shape
            if bbox[:, 2].max() > width or bbox[:, 3].max() > height:
                raise StoreError(f'Segment bounding boxes reach beyond the {width} × {height} label raster')
        group = self._h5.require_group('segments')
        _create_rows(group, 'bbox', bbox, compress=True)
        _create_rows(group, 'centroid', centroid, compress=True)
        _create_rows(group, 'area', area, compress=True)

    def create_features(self, name: str, n: int, dim: int, params: dict) -> h5py.Dataset:
        """An empty float32 (n, dim) feature set to fill in batches; replaces a feature set of the same name."""
        _check_name(name, 'feature set')
        if 'segments/area' not in self._h5:
            raise StoreError(f'The store {self.path} has no segments: write the segments before features')
        if n != self.n_segments:
            raise FeaturesError(f'Features must have one row per segment: the store has {self.n_segments} segments '
                                f'but {n} rows were given')
        if int(dim) != dim or dim < 1:
            raise FeaturesError(f'Features need at least one dimension, not {dim}')
        params_json = _dumps(params, 'feature parameters')
        group = self._h5.require_group('features')
        if name in group:
            del group[name]
            self.needs_repack = True
        dataset = group.create_dataset(name, shape=(n, int(dim)), dtype=np.float32,
                                       chunks=_row_chunks((n, int(dim)), 4))
        dataset.attrs['params'] = params_json
        return dataset

    def write_features(self, name: str, array: np.ndarray, params: dict) -> None:
        """Store a whole (N, dim) feature array under ``name`` (see ``create_features``)."""
        array = np.asarray(array)
        if array.ndim != 2:
            raise FeaturesError(f'Features must be a 2-D array (segments × dimensions), not of shape {array.shape}')
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise FeaturesError(f'Features must be real numbers, not {array.dtype}')
        if not np.isfinite(array).all():
            raise FeaturesError(f'The {name!r} features contain NaN or infinite values')
        dataset = self.create_features(name, array.shape[0], array.shape[1], params)
        step = dataset.chunks[0] if dataset.chunks else max(1, len(array))
        for start in range(0, len(array), step):
            dataset[start:start + step] = array[start:start + step]

    def write_embedding_map(self, name: str, colours: np.ndarray, params: dict) -> None:
        """Store the uint8 (N, 3) colour of every segment for the ``name`` features; replaces an older map."""
        _check_name(name, 'embedding map')
        colours = np.asarray(colours)
        if colours.shape != (self.n_segments, 3) or colours.dtype != np.uint8:
            raise FeaturesError(f'An embedding map must be uint8 ({self.n_segments}, 3), one RGB colour per segment, '
                                f'not {colours.dtype} {colours.shape}')
        params_json = _dumps(params, 'embedding map parameters')
        group = self._h5.require_group('embedding_maps')
        if name in group:
            del group[name]
            self.needs_repack = True
        _create_rows(group, name, colours, compress=True).attrs['params'] = params_json

    def create_patches(self, size: int, n: int | None = None, fill: int = FILL_VALUE) -> h5py.Dataset:
        """An empty uint8 (n, size, size, 3) patch set to fill in batches; replaces patches of the same size.

        ``n`` defaults to, and must equal, the number of segments (row ``i`` is segment ``i + 1``). ``fill`` is
        the grey level the patches give masked pixels, recorded so that patches are reused only when they match.
        The dataset has a large chunk cache, so rows may be written in any order at the cost of one compression
        per chunk (see ``PATCH_CACHE_BYTES``).
        """
        if 'segments/area' not in self._h5:
            raise StoreError(f'The store {self.path} has no segments: write the segments before patches')
        if not _is_whole(size) or size < 1:
            raise FeaturesError(f'The patch size must be a positive whole number of pixels, not {size!r}')
        if not _is_whole(fill) or not 0 <= fill <= 255:
            raise FeaturesError(f'The fill value must be a grey level in 0..255, not {fill!r}')
        size, fill = int(size), int(fill)
        n = self.n_segments if n is None else n
        if n != self.n_segments:
            raise FeaturesError(f'Patches must have one row per segment: the store has {self.n_segments} segments '
                                f'but {n} rows were given')
        params_json = _dumps({'patch_size': size, 'fill': fill}, 'patch parameters')
        group = self._h5.require_group('patches')
        if str(size) in group:
            del group[str(size)]
            self.needs_repack = True
        shape = (n, size, size, 3)
        chunks = _row_chunks(shape, 1)
        options = dict(PATCH_COMPRESSION, rdcc_nbytes=PATCH_CACHE_BYTES, rdcc_nslots=PATCH_CACHE_SLOTS,
                       rdcc_w0=1.0) if chunks else {}
        dataset = group.create_dataset(str(size), shape=shape, dtype=np.uint8, chunks=chunks, **options)
        dataset.attrs['params'] = params_json
        return dataset

    def write_patches(self, patches: np.ndarray, fill: int = FILL_VALUE) -> None:
        """Store a whole uint8 (N, P, P, 3) array of masked patches under its size P (see ``create_patches``)."""
        patches = np.asarray(patches)
        if patches.ndim != 4 or patches.shape[1] != patches.shape[2] or patches.shape[3] != 3:
            raise FeaturesError(f'Patches must be square RGB images (N, P, P, 3), not of shape {patches.shape}')
        if patches.dtype != np.uint8:
            raise FeaturesError(f'Patches must be uint8 pixels, not {patches.dtype}')
        dataset = self.create_patches(patches.shape[1], len(patches), fill)
        step = dataset.chunks[0] if dataset.chunks else max(1, len(patches))
        for start in range(0, len(patches), step):
            dataset[start:start + step] = patches[start:start + step]

    def drop_rounds(self) -> int:
        """Delete every round inside the store, as for a store that moves to where its rounds mean nothing (a
        project adopting a store the CLI trained on its own labels); returns how many there were."""
        count = len(self._h5['rounds']) if 'rounds' in self._h5 else 0
        if count:
            del self._h5['rounds']
            self.needs_repack = True
        return count

    def add_round(self, categories: list[dict], label_ids, label_categories, probabilities: np.ndarray,
                  model_name: str, model_params: dict, model_state: dict, metrics: dict) -> int:
        """Record a new round inside the store and return its number (1 for the first); the rounds inside the
        store that are no longer kept (``ROUNDS_KEPT``) are deleted."""
        number = max(self.rounds(), default=0) + 1
        _write_round(lambda: self._h5.require_group('rounds').create_group(str(number)), self.n_segments, categories,
                     label_ids, label_categories, probabilities, model_name,
                     model_params, model_state, metrics)
        kept = self.rounds()
        for key in list(self._h5['rounds']):
            if int(key) not in kept:
                del self._h5['rounds'][key]
                self.needs_repack = True
        return number


def _write_round_file(path: str | os.PathLike, store_id: str, n_segments: int, round_fields: dict) -> None:
    """Write a round file: the round at its root, beside what says it is a round file of store ``store_id``."""
    with h5py.File(path, 'w', locking=False) as h5:
        h5.attrs['format'] = FORMAT_NAME
        h5.attrs['schema_version'] = SCHEMA_VERSION
        h5.attrs['store_id'] = store_id
        _write_round(lambda: h5, n_segments, **round_fields)


def _round_record(group: h5py.Group, number: int) -> RoundRecord:
    """The round a store's ``/rounds/<k>`` group or a round file's root holds."""
    attrs = group.attrs
    model = group['model']
    return RoundRecord(
        number=number, created=str(attrs['created']), categories=_loads(attrs['categories']),
        label_ids=group['label_ids'][()], label_categories=group['label_categories'][()],
        probabilities=group['probabilities'][()], model_name=str(attrs['model_name']),
        model_params=_loads(attrs['model_params']),
        model_state={key: _read_array(model[key]) for key in model}, metrics=_loads(attrs['metrics']))


def _round_fields(record: RoundRecord) -> dict:
    """``record`` as ``append_round``'s arguments."""
    return {'categories': record.categories, 'label_ids': record.label_ids,
            'label_categories': record.label_categories, 'probabilities': record.probabilities,
            'model_name': record.model_name, 'model_params': record.model_params,
            'model_state': record.model_state, 'metrics': record.metrics}


def _store_id(h5: h5py.File) -> str:
    """What tells this store from another at the same path: its id (stores before round files: creation time)."""
    return str(h5.attrs.get('store_id', h5.attrs.get('created')))


def rounds_folder(store_path: str | os.PathLike) -> str:
    """The folder of a store's appended round files."""
    return f'{os.fspath(store_path)}.rounds'


def _round_files(store_path: str) -> list[tuple[int, str | None, str]]:
    """``(number, store id, path)`` of every round file in the store's rounds folder, whatever store it belongs
    to; the id is None for a file of an older version, named ``<k>.h5`` (its id is inside)."""
    folder = rounds_folder(store_path)
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        parts = name.split('.')
        if len(parts) in (2, 3) and parts[-1] == 'h5' and parts[0].isdigit():
            found.append((int(parts[0]), parts[1] if len(parts) == 3 else None, os.path.join(folder, name)))
    return found


def _remove_round_files(folder: str, keep: set[str]) -> None:
    """Delete the round files in ``folder`` other than ``keep`` (those of older rounds or of a store replaced
    since), and temporary files a killed writer left; the caller holds the rounds' lock, so no writer is busy."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if path not in keep and name != ROUNDS_LOCK and (name.endswith('.h5') or name.endswith('.tmp')):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass


def _write_round(target: Callable[[], h5py.Group], n: int, categories: list[dict], label_ids, label_categories,
                 probabilities: np.ndarray, model_name: str, model_params: dict, model_state: dict,
                 metrics: dict) -> None:
    """Check one round, then write it into the group ``target()`` makes (a store's ``/rounds/<k>`` or a round
    file's root), so a round that fails its checks leaves nothing behind."""
    _check_categories(categories)
    label_ids = np.asarray(label_ids, np.int64).ravel()
    label_categories = np.asarray(label_categories, np.int64).ravel()
    if len(label_ids) != len(label_categories):
        raise LabelsError(f'{len(label_ids)} labeled segments but {len(label_categories)} label categories')
    bad = label_ids[(label_ids < 1) | (label_ids > n)]
    if len(bad):
        raise LabelsError(f'{len(bad)} labels name segments that do not exist (valid ids are 1..{n}); '
                          f'first: {bad[:5].tolist()}')
    bad = label_categories[(label_categories < 0) | (label_categories >= len(categories))]
    if len(bad):
        raise LabelsError(f'Label categories must index the {len(categories)} categories; got {bad[:5].tolist()}')
    probabilities = np.asarray(probabilities, np.float32)
    if probabilities.shape != (n, len(categories)):
        raise StoreError(f'Probabilities must be (segments, categories) = ({n}, {len(categories)}), '
                         f'not {probabilities.shape}')
    if not np.isfinite(probabilities).all():
        raise StoreError('Probabilities contain NaN or infinite values')
    attrs = {'created': _now(), 'categories': _dumps(categories, 'categories'), 'model_name': str(model_name),
             'model_params': _dumps(model_params, 'model parameters'), 'metrics': _dumps(metrics, 'metrics')}
    state = {key: _check_array(key, value) for key, value in (model_state or {}).items()}
    group = target()
    group.attrs.update(attrs)
    _create_rows(group, 'probabilities', probabilities, compress=False)
    group.create_dataset('label_ids', data=label_ids)
    group.create_dataset('label_categories', data=label_categories)
    model = group.create_group('model')
    for key, value in state.items():
        _write_array(model, key, value)


# -- opening and atomic replacement ---------------------------------------------------------------------------------

def _open_checked(path: str) -> h5py.File:
    """Open ``path`` read-only, or raise a StoreError saying what is wrong with it."""
    if not os.path.exists(path):
        raise StoreError(f'Slide store not found: {path}')
    if os.path.isdir(path):
        raise StoreError(f'The slide store path {path} is a folder, not a file')
    try:
        h5 = h5py.File(path, 'r', locking=False)
    except OSError as exc:
        if not h5py.is_hdf5(path):
            raise StoreError(f'{path} is not a slide store: it is not an HDF5 file (wrong file, or damaged). '
                             'Delete it to recompute the store.') from None
        raise StoreError(f'The slide store {path} is damaged (truncated or corrupt: {exc}). '
                         'Delete it to recompute the store.') from None
    try:
        _check_header(h5, path)
    except BaseException:
        h5.close()
        raise
    return h5


def _check_header(h5: h5py.File, path: str) -> None:
    if h5.attrs.get('format') != FORMAT_NAME:
        raise StoreError(f'{path} is an HDF5 file but not a histomics-label slide store')
    version = h5.attrs.get('schema_version')
    if version is None or not np.issubdtype(np.asarray(version).dtype, np.integer) or int(version) < 1:
        raise StoreError(f'The slide store {path} has an unknown schema version ({version!r})')
    if int(version) > SCHEMA_VERSION:
        raise StoreError(f'The slide store {path} was written by a newer histomics-label (schema version '
                         f'{int(version)}); this version reads schema version {SCHEMA_VERSION}. Upgrade '
                         'histomics-label, or delete the store to recompute it.')


@contextmanager
def _exclusive(lock_path: str, store_path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (made if missing, never removed) for the block; waits while
    another process or thread holds it. The lock belongs to the open file, so a writer that dies releases it."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise StoreError(f'Cannot lock the slide store {store_path}: {exc}') from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise StoreError(f'Cannot lock the slide store {store_path}: its filesystem does not support file '
                                 'locks, without which two writers could lose each other\'s changes') from None
            raise
        yield
    finally:
        os.close(fd)


def _copy_file(source: str, target: str) -> None:
    """Copy ``source`` over ``target`` with ``copy_file_range``: the filesystem shares the blocks where it can
    (XFS, Btrfs), copies on the server (NFS 4.2) or inside the kernel; a plain copy where the call is refused."""
    try:
        with open(source, 'rb') as reader, open(target, 'wb') as writer:
            left = os.fstat(reader.fileno()).st_size
            while left > 0:
                copied = os.copy_file_range(reader.fileno(), writer.fileno(), left)
                if copied == 0:
                    break
                left -= copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF):
            raise
        shutil.copyfile(source, target)


@contextmanager
def _atomic_replace(path: str) -> Iterator[str]:
    """A temporary file beside ``path`` that replaces ``path`` when the block succeeds and is deleted otherwise.

    The caller holds the store's lock, so the temporary files of ``path`` already there are those of writers that
    were killed (a server's ``kill -9`` takes its segment job's child with it): they are deleted first, since
    nothing else ever would and each can be as large as the store."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        _remove_killed_writers_temps(folder, os.path.basename(path))
        temp = os.path.join(folder, f'.{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp')
        os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # permissions follow the umask
    except OSError as exc:
        raise StoreError(f'Cannot write the slide store {path}: {exc}') from None
    try:
        if os.path.exists(path):
            shutil.copymode(path, temp)
        yield temp
        with open(temp, 'rb') as stream:
            os.fsync(stream.fileno())
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _remove_killed_writers_temps(folder: str, name: str) -> None:
    """Delete the temporary files ``_atomic_replace`` named for the store ``name`` in ``folder`` (only its own: a
    store beside it, say ``name.pending.h5``, has temporary files of its own under another lock)."""
    pattern = re.compile(re.escape(f'.{name}.') + r'[0-9a-f]{12}\.tmp')
    for found in os.listdir(folder):
        if pattern.fullmatch(found):
            with suppress(FileNotFoundError):
                os.remove(os.path.join(folder, found))


def _repack(path: str) -> None:
    """Rewrite the HDF5 file ``path`` object by object, dropping the space left by deleted datasets."""
    packed = f'{path}.pack'
    try:
        with h5py.File(path, 'r', locking=False) as source, h5py.File(packed, 'w', locking=False) as target:
            target.attrs.update(source.attrs)
            for key in source:
                source.copy(source[key], target, name=key)
        shutil.copymode(path, packed)
        os.replace(packed, path)
    finally:
        if os.path.exists(packed):
            os.remove(packed)


# -- datasets -------------------------------------------------------------------------------------------------------

def _row_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    """Chunks of whole rows of about ``ROW_CHUNK_BYTES``; None (contiguous) for an empty table."""
    if shape[0] == 0:
        return None
    row_bytes = max(1, int(np.prod(shape[1:])) * itemsize)
    return (int(np.clip(ROW_CHUNK_BYTES // row_bytes, 1, shape[0])), *shape[1:])


def _create_rows(group: h5py.Group, name: str, data: np.ndarray, compress: bool) -> h5py.Dataset:
    """A dataset for a per-segment table, chunked by rows so partial reads touch only the chunks they need."""
    chunks = _row_chunks(data.shape, data.dtype.itemsize)
    options = RASTER_COMPRESSION if compress and chunks else {}
    return group.create_dataset(name, data=data, chunks=chunks, **options)


def _read_rows(dataset: h5py.Dataset, rows: Rows) -> np.ndarray:
    """``dataset[rows]`` for rows given as None (all), a slice, a boolean mask or integer indices in any order.

    Integer indices are read chunk by chunk (one contiguous read per chunk touched), which is much faster than
    h5py's point selection and accepts repeated and unsorted indices.
    """
    if rows is None:
        return dataset[()]
    if isinstance(rows, slice):
        return dataset[rows]
    rows = np.asarray(rows)
    n = len(dataset)
    if rows.dtype == bool:
        if rows.shape != (n,):
            raise IndexError(f'A boolean row mask must have {n} entries, not {rows.shape}')
        rows = np.flatnonzero(rows)
    if rows.size and not np.issubdtype(rows.dtype, np.integer):
        raise IndexError(f'Rows must be integers, not {rows.dtype}')
    rows = rows.astype(np.int64).ravel()
    out = np.empty((len(rows), *dataset.shape[1:]), dataset.dtype)
    if not len(rows):
        return out
    if rows.min() < 0 or rows.max() >= n:
        raise IndexError(f'Rows must be in 0..{n - 1}; got {rows.min()}..{rows.max()}')
    unique, inverse = np.unique(rows, return_inverse=True)
    values = np.empty((len(unique), *dataset.shape[1:]), dataset.dtype)
    step = dataset.chunks[0] if dataset.chunks else n
    blocks = unique // step
    starts = np.flatnonzero(np.r_[True, blocks[1:] != blocks[:-1]])
    ends = np.r_[starts[1:], len(unique)]
    for start, end in zip(starts, ends, strict=True):
        low, high = unique[start], unique[end - 1] + 1
        values[start:end] = dataset[low:high][unique[start:end] - low]
    out[:] = values[inverse]
    return out


def _check_array(key: str, value: Any) -> np.ndarray:
    _check_name(key, 'model state entry')
    array = np.asarray(value)
    if array.dtype.kind not in 'biufcU':
        raise StoreError(f'Model state {key!r} must be an array of numbers or strings, not {array.dtype}')
    return array


def _write_array(group: h5py.Group, key: str, array: np.ndarray) -> None:
    if array.dtype.kind == 'U':
        dataset = group.create_dataset(key, data=array.astype(object), dtype=h5py.string_dtype())
        dataset.attrs['kind'] = 'str'
    else:
        group.create_dataset(key, data=array)


def _read_array(dataset: h5py.Dataset) -> np.ndarray:
    if dataset.attrs.get('kind') == 'str':
        return np.asarray(dataset.asstr()[()]).astype(str)
    return np.asarray(dataset[()])


def _is_whole(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name or '/' in name or name in ('.', '..'):
        raise StoreError(f'A {what} name must be a non-empty string without "/", not {name!r}')


def _check_categories(categories: list[dict]) -> None:
    if not isinstance(categories, list | tuple) or not categories:
        raise LabelsError('A round needs a non-empty list of categories')
    for category in categories:
        if not isinstance(category, dict) or not isinstance(category.get('name'), str):
            raise LabelsError(f'Each category must be a dict with a "name" string, not {category!r}')


# -- JSON attributes ------------------------------------------------------------------------------------------------

def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StoreError(f'The {what} cannot be stored as JSON: {exc}') from None


def _json_default(value: Any) -> Any:
    """numpy numbers and arrays, which metrics and parameters often hold, as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f'{type(value).__name__} is not JSON serialisable')


def _loads(text: str | bytes) -> Any:
    return json.loads(text)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec='seconds')
