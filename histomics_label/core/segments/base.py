"""The segment form shared by every segment source.

A segmentation is a *segment-id raster* at analysis magnification (0 = background, segments numbered
1..N contiguously) plus a table of per-segment properties. Sources write the raster into a chunked,
disk-backed 2-D ``uint32`` array (an h5py dataset of the slide store), tile by tile, so memory is bounded by the
tile and not the slide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import Registry


@dataclass
class SegmentTable:
    """Properties of segments 1..N; row ``i`` describes segment id ``i + 1``.

    ``bbox`` is (x0, y0, x1, y1) with x1/y1 exclusive and ``centroid`` is (x, y); both in analysis pixels.
    """

    bbox: np.ndarray
    centroid: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.area)

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self) + 1, dtype=np.int64)


class SegmentSource:
    """Fills a segment-id raster for one slide and returns the segments' properties."""

    name: str

    def segment(self, slide, raster, progress=None) -> SegmentTable:  # pragma: no cover - interface
        raise NotImplementedError


segment_sources: Registry[SegmentSource] = Registry('segment source')
