"""Segments read from an existing segment-id image: superpixels made elsewhere, reused exactly as they are.

A project imported from the published Histomics Label keeps its labels on HistomicsTK's superpixels; making new
superpixels would orphan them. This source reads the pixelmap-encoded TIFF those labels refer to
(``R + 256·G + 65536·B``; with ``boundaries``, ``2k`` inside superpixel ``k`` and ``2k + 1`` on its outline) and
writes segment ``k + offset`` into the raster, tile by tile. The analysis grid must be the image's own grid (the
pipeline sets the slide's scale from the image), so no superpixel is resampled away.

A superpixel id that the image never shows (a count given by the caller beyond what is drawn) still gets its row,
with area 0 and a one-pixel box at the origin, so segment ids stay those the labels use.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import SegmentsError
from ..io.label_tiff import read_segment_ids, segment_image_shape
from ..progress import Progress
from .base import SegmentSource, SegmentTable, segment_sources

ROUNDING = 2
"""Pixels by which the image and the slide's analysis grid may differ (each tool rounds the scaled size its way);
the slide pixels beyond the image are background."""


@segment_sources.register('label_image')
class LabelImageSegments(SegmentSource):
    """Segment ``k + offset`` wherever the image ``source`` holds superpixel ``k``; ``count`` superpixels when
    known (else as many as the image shows)."""

    def __init__(self, source: str | os.PathLike, boundaries: bool = True, offset: int = 1, count: int | None = None,
                 tile_size: int = 1024) -> None:
        if offset < 1:
            raise SegmentsError(f'The segment id offset must be at least 1 (0 is background), not {offset}')
        if count is not None and count < 1:
            raise SegmentsError(f'The number of superpixels must be positive, not {count}')
        self.source = os.fspath(source)
        self.boundaries = bool(boundaries)
        self.offset = int(offset)
        self.count = count
        self.tile_size = int(tile_size)

    def segment(self, slide, raster, progress: Progress | None = None) -> SegmentTable:
        height, width = raster.shape
        image_height, image_width = segment_image_shape(self.source)
        if abs(image_height - height) > ROUNDING or abs(image_width - width) > ROUNDING:
            raise SegmentsError(f'The segment image is {image_width} × {image_height} px but the slide at its '
                                f'analysis scale is {width} × {height} px: analyse the slide at the image\'s scale')
        stats = _Stats(self.count + self.offset if self.count else 1)
        tiles = [(y, x) for y in range(0, height, self.tile_size) for x in range(0, width, self.tile_size)]
        for done, (y0, x0) in enumerate(tiles, start=1):
            y1, x1 = min(height, y0 + self.tile_size), min(width, x0 + self.tile_size)
            ids = np.zeros((y1 - y0, x1 - x0), np.int64)
            drawn = read_segment_ids(self.source, x0, y0, x1, y1, boundaries=self.boundaries)
            ids[:drawn.shape[0], :drawn.shape[1]] = drawn.astype(np.int64) + self.offset
            if self.count is not None:
                ids[ids >= self.count + self.offset] = 0  # drawn beyond the superpixels the labels know
            raster[y0:y1, x0:x1] = ids.astype(np.uint32)
            stats.add(ids, x0, y0)
            if progress is not None:
                progress(done, len(tiles), 'Reading superpixels')
        n = (self.count + self.offset - 1) if self.count else stats.largest()
        if n < 1:
            raise SegmentsError(f'The segment image {self.source} holds no superpixel')
        return stats.table(n)


class _Stats:
    """Per-segment pixel count, coordinate sums and extent, grown as larger ids appear."""

    def __init__(self, size: int) -> None:
        self.area = np.zeros(size, np.int64)
        self.sum_x = np.zeros(size)
        self.sum_y = np.zeros(size)
        self.min_x = np.full(size, np.iinfo(np.int64).max)
        self.min_y = np.full(size, np.iinfo(np.int64).max)
        self.max_x = np.full(size, -1)
        self.max_y = np.full(size, -1)

    def add(self, ids: np.ndarray, x0: int, y0: int) -> None:
        top = int(ids.max(initial=0))
        if top >= len(self.area):
            self._grow(top + 1)
        rows, cols = np.nonzero(ids)
        owners = ids[rows, cols]
        xs, ys = cols + x0, rows + y0
        self.area += np.bincount(owners, minlength=len(self.area))
        self.sum_x += np.bincount(owners, xs, minlength=len(self.area))
        self.sum_y += np.bincount(owners, ys, minlength=len(self.area))
        np.minimum.at(self.min_x, owners, xs)
        np.minimum.at(self.min_y, owners, ys)
        np.maximum.at(self.max_x, owners, xs)
        np.maximum.at(self.max_y, owners, ys)

    def largest(self) -> int:
        present = np.flatnonzero(self.area)
        return int(present[-1]) if len(present) else 0

    def table(self, n: int) -> SegmentTable:
        if n >= len(self.area):
            self._grow(n + 1)
        area = self.area[1:n + 1]
        seen = area > 0
        bbox = np.zeros((n, 4), np.int64)
        bbox[:, 2:] = 1
        bbox[seen] = np.stack([self.min_x[1:n + 1], self.min_y[1:n + 1], self.max_x[1:n + 1] + 1,
                               self.max_y[1:n + 1] + 1], axis=1)[seen]
        centroid = np.zeros((n, 2))
        centroid[seen] = np.stack([self.sum_x[1:n + 1], self.sum_y[1:n + 1]], axis=1)[seen] / area[seen, None]
        return SegmentTable(bbox=bbox, centroid=centroid, area=area.copy())

    def _grow(self, size: int) -> None:
        for name, fill in (('area', 0), ('sum_x', 0.0), ('sum_y', 0.0), ('min_x', np.iinfo(np.int64).max),
                           ('min_y', np.iinfo(np.int64).max), ('max_x', -1), ('max_y', -1)):
            old = getattr(self, name)
            grown = np.full(size, fill, old.dtype)
            grown[:len(old)] = old
            setattr(self, name, grown)
