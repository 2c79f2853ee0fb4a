"""Carry labels from one segmentation of a slide to another by pixel overlap, with the fate of each labeled segment.

A label names a segment id of the segmentation it was made on. When a slide is segmented again (other radius,
magnification, compactness, or a new segment-id image) the same id names an unrelated segment, so labels are never
simply kept: each labeled old segment is matched to the new segment that covers most of its pixels, and the match
is trusted only when it is a *mutual majority*:

- **moved**: more than half of the old segment's pixels lie in one new segment (``share > MATCH_SHARE``) and more
  than half of that new segment's pixels lie in the old one (``coverage > MATCH_SHARE``). The label says what the
  old segment was, and the new segment is mostly that segment, so the label holds for it. Strict majorities on
  both sides make the match one-to-one: two disjoint old segments cannot each hold more than half of one new
  segment, so two labels of one labeler never land on the same new segment, and no label splits.
- **dropped**: no pixel of the old segment lies in any new segment (it was tissue that the new segmentation leaves
  as glass, or the label named a segment the old segmentation did not have).
- **ambiguous**: anything else, e.g. new segments much larger than the old (the label says nothing of the rest of
  the new segment) or much smaller (it would have to be spread over several), or a segment cut in two.

Both segmentations are compared on the finer of their two analysis grids: each pixel of that grid takes the
segment under its centre in either raster, so slides segmented at different magnifications compare pixel for
pixel. The comparison runs tile by tile over both rasters and keeps only the pair counts, so its memory grows
with the number of segments, not with the slide.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import h5py
import numpy as np

from ..errors import SegmentsError
from ..io.store import SlideStore

MATCH_SHARE = 0.5
"""A match is trusted when each segment holds more than this share of the other's pixels (see the module text)."""
TILE = 2048
"""Side, in pixels of the common grid, of the tiles the two rasters are compared in."""
FATES = ('moved', 'ambiguous', 'dropped')


@dataclass(frozen=True)
class Fate:
    """What becomes of the labels of one old segment: ``target`` is the new segment id of a moved one (else None);
    ``share`` the part of the old segment in the best new segment, ``coverage`` the part of that new segment in the
    old one."""

    segment: int
    fate: str
    target: int | None
    share: float
    coverage: float

    def as_dict(self) -> dict:
        return {'segment': self.segment, 'fate': self.fate, 'target': self.target,
                'share': round(self.share, 4), 'coverage': round(self.coverage, 4)}


@dataclass(frozen=True)
class Overlap:
    """For every old segment (row = id − 1): its area, the new segment covering most of it (0: none), the pixels
    they share and that new segment's area, all counted in pixels of the common grid; ``old_id`` and ``new_id``
    name the two stores compared (``store_id``), so a table is never applied to other stores."""

    old_area: np.ndarray
    best: np.ndarray
    overlap: np.ndarray
    best_area: np.ndarray
    n_new: int
    old_id: str
    new_id: str

    def fate(self, segment: int) -> Fate:
        """The fate of old segment ``segment`` (see the module text)."""
        segment = int(segment)
        if not 1 <= segment <= len(self.old_area) or self.overlap[segment - 1] == 0:
            return Fate(segment, 'dropped', None, 0.0, 0.0)
        row = segment - 1
        share = float(self.overlap[row] / self.old_area[row])
        coverage = float(self.overlap[row] / self.best_area[row])
        if share > MATCH_SHARE and coverage > MATCH_SHARE:
            return Fate(segment, 'moved', int(self.best[row]), share, coverage)
        return Fate(segment, 'ambiguous', None, share, coverage)

    def save(self, path: str | os.PathLike) -> None:
        """Write the table to ``path`` (HDF5), replacing any table there only once it is complete."""
        path = os.fspath(path)
        temp = f'{path}.{uuid.uuid4().hex[:12]}.tmp'
        try:
            with h5py.File(temp, 'w', locking=False) as h5:
                h5.attrs['n_new'] = self.n_new
                h5.attrs['old_id'], h5.attrs['new_id'] = self.old_id, self.new_id
                for name in ('old_area', 'best', 'overlap', 'best_area'):
                    h5.create_dataset(name, data=getattr(self, name))
            os.replace(temp, path)
        finally:
            if os.path.exists(temp):
                os.remove(temp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Overlap:
        with h5py.File(os.fspath(path), 'r', locking=False) as h5:
            return cls(h5['old_area'][()], h5['best'][()], h5['overlap'][()], h5['best_area'][()],
                       int(h5.attrs['n_new']), str(h5.attrs['old_id']), str(h5.attrs['new_id']))


def overlap(old_store: str | os.PathLike, new_store: str | os.PathLike, tile: int = TILE) -> Overlap:
    """Compare the segmentations of two stores of the same slide (see the module text)."""
    with SlideStore(old_store) as old, SlideStore(new_store) as new:
        a, b = old.slide_info, new.slide_info
        if (a.base_width, a.base_height) != (b.base_width, b.base_height):
            raise SegmentsError(f'The two segmentations are of different slides ({a.base_width} × {a.base_height} '
                                f'and {b.base_width} × {b.base_height} base pixels)')
        scale = min(a.scale, b.scale)
        width, height = max(1, int(a.base_width // scale)), max(1, int(a.base_height // scale))
        n_old, n_new = old.n_segments, new.n_segments
        old_area = np.zeros(n_old + 1, np.int64)
        new_area = np.zeros(n_new + 1, np.int64)
        pairs = _PairCounts(n_new + 1)
        for y0 in range(0, height, tile):
            for x0 in range(0, width, tile):
                window = (y0, min(height, y0 + tile), x0, min(width, x0 + tile))
                old_ids = _on_grid(old.label_raster, a.scale, scale, window)
                new_ids = _on_grid(new.label_raster, b.scale, scale, window)
                old_area += np.bincount(old_ids.ravel(), minlength=n_old + 1)[:n_old + 1]
                new_area += np.bincount(new_ids.ravel(), minlength=n_new + 1)[:n_new + 1]
                both = (old_ids > 0) & (new_ids > 0)
                pairs.add(old_ids[both], new_ids[both])
    olds, news, counts = pairs.totals()
    best = np.zeros(n_old, np.int64)
    shared = np.zeros(n_old, np.int64)
    order = np.lexsort((news, -counts, olds))  # by old id, then most shared pixels first
    olds, news, counts = olds[order], news[order], counts[order]
    first = np.r_[True, olds[1:] != olds[:-1]] if len(olds) else np.zeros(0, bool)
    best[olds[first] - 1] = news[first]
    shared[olds[first] - 1] = counts[first]
    return Overlap(old_area[1:], best, shared, new_area[best], n_new, store_id(old_store), store_id(new_store))


def store_id(path: str | os.PathLike) -> str:
    """The id a store was given when it was made (``SlideStore.create``): what tells two segmentations apart."""
    with h5py.File(os.fspath(path), 'r', locking=False) as h5:
        return str(h5.attrs.get('store_id', h5.attrs.get('created')))


def _on_grid(raster: h5py.Dataset, raster_scale: float, scale: float,
             window: tuple[int, int, int, int]) -> np.ndarray:
    """The segment ids of ``raster`` (pixels of ``raster_scale`` base pixels) under the centres of the common grid's
    pixels (``scale`` base pixels) in ``window`` = (y0, y1, x0, x1); 0 where the raster does not reach."""
    y0, y1, x0, x1 = window
    rows = np.floor((np.arange(y0, y1) + 0.5) * scale / raster_scale).astype(np.int64)
    cols = np.floor((np.arange(x0, x1) + 0.5) * scale / raster_scale).astype(np.int64)
    height, width = raster.shape
    inside_rows, inside_cols = rows < height, cols < width
    out = np.zeros((y1 - y0, x1 - x0), np.uint32)
    if not inside_rows.any() or not inside_cols.any():
        return out
    r, c = rows[inside_rows], cols[inside_cols]
    block = raster[r[0]:r[-1] + 1, c[0]:c[-1] + 1]
    out[np.ix_(inside_rows, inside_cols)] = block[np.ix_(r - r[0], c - c[0])]
    return out


class _PairCounts:
    """Pixel counts of (old id, new id) pairs, added tile by tile and kept summed, so memory stays with the number
    of distinct pairs."""

    def __init__(self, n_new: int) -> None:
        self.n_new = n_new
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)

    def add(self, old_ids: np.ndarray, new_ids: np.ndarray) -> None:
        keys, counts = np.unique(old_ids.astype(np.int64) * self.n_new + new_ids, return_counts=True)
        merged, inverse = np.unique(np.concatenate([self.keys, keys]), return_inverse=True)
        self.counts = np.bincount(inverse, weights=np.concatenate([self.counts, counts]),
                                  minlength=len(merged)).astype(np.int64)
        self.keys = merged

    def totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.keys // self.n_new, self.keys % self.n_new, self.counts
