"""A representation computed in parts: row ranges of one store on several machines, then put together.

A very large slide has hundreds of thousands of segments, and a CNN extractor embeds about forty patches a second
per core: hours on one machine. Segment ids follow the slide's tiles (``segments.slic`` numbers them tile by tile),
so a range of rows is a band of tiles, and a part reads only its band of the slide. Each part file holds the rows of
one range, with the store's id and the representation's parameters, so ``assemble`` takes parts only of that very
store and representation, every row exactly once, and writes them through ``SlideStore.update``: a missing, extra
or foreign part changes nothing. Written by hand because h5py's virtual datasets would leave the store depending on
the part files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from ..errors import FeaturesError
from ..io.store import SlideStore
from ..progress import Progress, no_progress
from .patches import PixelSource, iter_patches
from .representations import Representation, fill_rows

PART_FORMAT = 'histomics-label-representation-part'
_COPY_ROWS = 4096
"""Rows copied from a part to the store at a time (bounded memory: 4096 patches of 100 px are 120 MB)."""


def part_ranges(n_segments: int, rows_per_part: int) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of about ``rows_per_part`` rows each that cover ``n_segments`` rows, as even as
    whole rows allow."""
    if rows_per_part < 1:
        raise ValueError(f'A part needs at least one row, not {rows_per_part}')
    count = max(1, -(-n_segments // rows_per_part))
    bounds = np.linspace(0, n_segments, count + 1).round().astype(int)
    return [(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]


def compute_part(rep: Representation, slide: PixelSource, store_path: str | os.PathLike, rows: tuple[int, int],
                 part_path: str | os.PathLike, progress: Progress = no_progress) -> None:
    """Compute ``rep`` for the store's rows ``[start, stop)`` into the part file ``part_path`` (written whole or not
    at all). ``slide`` is the slide the store's segments were made from, as for ``Representation.compute``."""
    start, stop = rows
    rep.prepare()
    with SlideStore(store_path) as store:
        if not 0 <= start < stop <= store.n_segments:
            raise FeaturesError(f'Rows {start}..{stop} are not a range of the store\'s {store.n_segments} segments')
        partial = Path(f'{part_path}.partial')
        try:
            with h5py.File(partial, 'w') as h5:
                h5.attrs.update(format=PART_FORMAT, store_id=store.store_id, key=rep.key, start=start, stop=stop,
                                params=json.dumps(rep.params()))
                shape, dtype = rep.row_layout()
                dataset = h5.create_dataset('rows', shape=(stop - start, *shape), dtype=dtype)
                patches = iter_patches(slide, store.label_raster, store.segments(), rep.patch_size,
                                       ids=np.arange(start + 1, stop + 1), batch_size=rep.batch_size,
                                       tile_size=rep.tile_size)
                shifted = ((ids - start, values) for ids, values in rep.batches(patches))
                fill_rows(dataset, shifted, progress, rep.progress_message)
            os.replace(partial, part_path)
        finally:
            partial.unlink(missing_ok=True)


def assemble(rep: Representation, store_path: str | os.PathLike, part_paths: Sequence[str | os.PathLike]) -> None:
    """Write the parts into the store as its ``rep`` representation, replacing an older one; refuses (changing
    nothing) parts of another store or representation, and parts that miss or repeat a row."""
    with SlideStore(store_path) as store:
        store_id, n = store.store_id, store.n_segments
    params = json.loads(json.dumps(rep.params()))
    shape, dtype = rep.row_layout()
    ranges = []
    for path in part_paths:
        with h5py.File(path, 'r') as h5:
            attrs = h5.attrs
            if attrs.get('format') != PART_FORMAT:
                raise FeaturesError(f'{Path(path).name} is not a part of a representation')
            if attrs['store_id'] != store_id or attrs['key'] != rep.key or json.loads(attrs['params']) != params:
                raise FeaturesError(f'{Path(path).name} holds {attrs["key"]} of another store or with other '
                                    f'parameters than this store\'s {rep.key}')
            start, stop = int(attrs['start']), int(attrs['stop'])
            if h5['rows'].shape != (stop - start, *shape) or h5['rows'].dtype != dtype:
                raise FeaturesError(f'{Path(path).name} holds rows of shape {h5["rows"].shape[1:]}, not {shape}')
        ranges.append((start, stop, path))
    ranges.sort(key=lambda entry: entry[0])
    covered = 0
    for start, stop, path in ranges:
        if start != covered:
            raise FeaturesError(f'The parts {"repeat" if start < covered else "miss"} rows from {min(start, covered)}'
                                f' ({Path(path).name})')
        covered = stop
    if covered != n:
        raise FeaturesError(f'The parts cover {covered} of the store\'s {n} rows')
    with SlideStore.update(store_path) as writer:
        dataset = rep.create(writer)
        for start, stop, path in ranges:
            with h5py.File(path, 'r') as h5:
                for offset in range(0, stop - start, _COPY_ROWS):
                    values = h5['rows'][offset:offset + _COPY_ROWS]
                    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
                        raise FeaturesError(f'{Path(path).name} holds NaN or infinite values')
                    dataset[start + offset:start + offset + len(values)] = values
