"""What the web client draws of a segment besides the slide: its outline (``core.segments.outline``), a thin line
around the segment being looked at, and its thumbnail, the segment with its surroundings, which the outline is drawn
over. One store is opened per slide."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from girder.exceptions import ValidationException

from ..core.io.store import SlideStore
from ..core.segments.outline import segment_ring
from . import folders

TOLERANCE = 0.5
"""Analysis pixels a simplified outline may stray from the traced one: below what a viewer shows at base zoom."""
SURROUNDINGS = 0.5
"""A thumbnail shows this share of the segment's box on each side of it (at least MIN_SURROUNDINGS base pixels)."""
MIN_SURROUNDINGS = 16


def thumbnail_region(box: Iterable[float], width: int, height: int) -> list[int]:
    """The base-pixel box a segment's thumbnail shows: its own box with its surroundings, within the slide."""
    x0, y0, x1, y1 = (int(v) for v in box)
    dx = max(MIN_SURROUNDINGS, int((x1 - x0) * SURROUNDINGS))
    dy = max(MIN_SURROUNDINGS, int((y1 - y0) * SURROUNDINGS))
    return [max(0, x0 - dx), max(0, y0 - dy), min(width, x1 + dx), min(height, y1 + dy)]


def segment_pictures(folder: dict, item, segments: Iterable[int]) -> dict[int, dict]:
    """Per segment of the slide: its ``region`` (base-pixel box), ``outline`` (base-pixel ring), ``thumbnailRegion``
    and ``thumbnail`` (the API path of that region, 128 px wide). Ids outside the slide's segments (a stale label,
    see ``GET .../stale_labels``) get none; all get none before segment generation."""
    item_id = item['_id'] if isinstance(item, dict) else item
    path = folders.store_path(folder, item_id)
    if not path.exists():
        return {}
    with SlideStore(path) as store:
        wanted = sorted(s for s in set(segments) if 1 <= s <= store.n_segments)
        if not wanted:
            return {}
        info = store.slide_info
        boxes = store.segments(np.asarray(wanted, np.int64) - 1).bbox * info.scale
        pictures = {}
        for segment, box in zip(wanted, np.rint(boxes).astype(np.int64), strict=True):
            region = thumbnail_region(box, info.base_width, info.base_height)
            pictures[segment] = {'region': [int(v) for v in box], 'outline': segment_ring(store, segment, TOLERANCE),
                                 'thumbnailRegion': region, 'thumbnail': folders.thumbnail_url(item_id, region)}
        return pictures


def segment_place(folder: dict, item_id: str, segment: int) -> dict:
    """Where one segment of a project's slide lies: its base-pixel box and outline (what a viewer needs to show
    it); a 400 naming what is wrong for an unknown slide or segment."""
    item = folders.slide_of(folder, item_id)
    count = folders.segment_count(folder, item)
    if count is None:
        raise ValidationException(f'The slide {item["name"]} has no segments yet', 'item')
    if not 1 <= segment <= count:
        raise ValidationException(f'The slide {item["name"]} has segments 1 to {count}, not {segment}', 'segment')
    return {'item': str(item['_id']), 'itemName': item['name'], 'segment': segment,
            **segment_pictures(folder, item, [segment])[segment]}
