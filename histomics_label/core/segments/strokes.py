"""The segments under a brush stroke: what painting on the slide labels.

A stroke is a polyline in slide base pixels with a brush radius; it covers every analysis pixel whose centre lies
within the radius of the line (a round brush dragged along it). The segments it covers are read from the store's
segment raster, so the answer is exact whatever the viewer draws, and only the stroke's bounding box is read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from ..errors import ConfigurationError
from ..io.store import SlideStore

MAX_STROKE_PIXELS = 4096 * 4096
"""Largest bounding box (analysis pixels) one stroke may cover: a long stroke is several requests."""


def segments_under_stroke(store: SlideStore, points: Sequence[Sequence[float]], radius: float = 0.0) -> np.ndarray:
    """Sorted ids of the segments a stroke through ``points`` (base pixels) with brush ``radius`` (base pixels)
    covers; a single point is a dab. Points outside the slide are allowed (the brush may leave it)."""
    try:
        path = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        path = np.zeros((0, 0))
    if path.ndim != 2 or path.shape[1] != 2 or len(path) == 0 or not np.isfinite(path).all():
        raise ConfigurationError('A stroke is a list of [x, y] points in base pixels')
    if not np.isfinite(radius) or radius < 0:
        raise ConfigurationError(f'The brush radius must be zero or positive, not {radius}')
    scale = store.slide_info.scale
    path = path / scale
    reach = max(radius / scale, 0.5)  # at least the pixel under the pointer
    height, width = store.label_raster.shape
    x0 = max(0, int(np.floor(path[:, 0].min() - reach)))
    y0 = max(0, int(np.floor(path[:, 1].min() - reach)))
    x1 = min(width, int(np.ceil(path[:, 0].max() + reach)) + 1)
    y1 = min(height, int(np.ceil(path[:, 1].max() + reach)) + 1)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(0, np.int64)
    if (x1 - x0) * (y1 - y0) > MAX_STROKE_PIXELS:
        raise ConfigurationError('The stroke covers too much of the slide at once; send it in shorter pieces')
    line = shapely.Point(path[0]) if len(path) == 1 else shapely.LineString(path)
    brush = line.buffer(reach)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    covered = shapely.contains_xy(brush, xs.ravel() + 0.5, ys.ravel() + 0.5).reshape(xs.shape)
    ids = store.label_region(x0, y0, x1, y1)[covered]
    return np.unique(ids[ids > 0]).astype(np.int64)
