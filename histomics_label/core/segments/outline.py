"""A segment's outline as a ring of slide (base-pixel) coordinates, traced on the segment raster.

Viewers draw it as a thin line over the tissue (the segment being labeled, a card's thumbnail) and exports write it
as the segment's polygon. The ring runs along the pixel edges of the segment's largest connected part: scikit-image's
``find_contours`` traces the mask at level 0.5, which lies half-way between pixel centres, i.e. on the shared edge
(marching squares cuts each corner diagonally). ``tolerance`` (analysis pixels) drops vertices that a straight line
replaces within that distance, so a ring stays small enough to send with every card.
"""

from __future__ import annotations

import numpy as np
from skimage.measure import approximate_polygon, find_contours

from ..io.store import SlideStore


def segment_ring(store: SlideStore, segment: int, tolerance: float = 0.0) -> list[list[float]]:
    """The closed outer boundary of ``segment`` (1-based id) as ``[[x, y], ...]`` in base pixels, first point
    repeated last; a segment with no pixels gets its one-pixel box."""
    x0, y0, x1, y1 = (int(v) for v in store.segments(np.array([segment - 1])).bbox[0])
    mask = store.label_region(x0, y0, x1, y1) == segment
    contours = find_contours(np.pad(mask, 1).astype(np.uint8), 0.5) if mask.any() else []
    if contours:
        ring = max(contours, key=len)
        if tolerance > 0:
            ring = approximate_polygon(ring, tolerance)
        # contour index i of the padded mask is pixel i − 1; pixel p spans [p, p + 1), its centre p + 0.5
        columns, rows = ring[:, 1] + (x0 - 0.5), ring[:, 0] + (y0 - 0.5)
    else:
        columns, rows = np.array([x0, x0 + 1, x0 + 1, x0]), np.array([y0, y0, y0 + 1, y0 + 1])
    scale = store.slide_info.scale
    points = [[round(float(x) * scale, 1), round(float(y) * scale, 1)] for x, y in zip(columns, rows, strict=True)]
    if points[0] != points[-1]:
        points.append(points[0])
    return points
