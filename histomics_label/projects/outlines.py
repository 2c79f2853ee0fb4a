"""The outlines of a slide's segments for the web client: what a card's thumbnail and the slide viewers draw as a
thin line around the segment being looked at (``core.segments.outline``), read with one store opened per slide."""

from __future__ import annotations

from collections.abc import Iterable

from girder.exceptions import ValidationException

from ..core.io.store import SlideStore
from ..core.segments.outline import segment_ring
from . import folders

TOLERANCE = 0.5
"""Analysis pixels a simplified outline may stray from the traced one: below what a viewer shows at base zoom."""


def segment_outlines(folder: dict, item, segments: Iterable[int]) -> dict[int, list[list[float]]]:
    """Base-pixel rings of the slide's ``segments`` (ids outside the slide's segments get none); empty before
    segment generation."""
    path = folders.store_path(folder, item)
    if not path.exists():
        return {}
    with SlideStore(path) as store:
        count = store.n_segments
        return {segment: segment_ring(store, segment, TOLERANCE) for segment in set(segments) if 1 <= segment <= count}


def segment_place(folder: dict, item_id: str, segment: int) -> dict:
    """Where one segment of a project's slide lies: its base-pixel box and outline (what a viewer needs to show
    it); a 400 naming what is wrong for an unknown slide or segment."""
    item = folders.slide_of(folder, item_id)
    count = folders.segment_count(folder, item)
    if count is None:
        raise ValidationException(f'The slide {item["name"]} has no segments yet', 'item')
    if not 1 <= segment <= count:
        raise ValidationException(f'The slide {item["name"]} has segments 1 to {count}, not {segment}', 'segment')
    [box] = folders.segment_boxes(folder, item, [segment])
    return {'item': str(item['_id']), 'itemName': item['name'], 'segment': segment,
            'region': [int(v) for v in box], 'outline': segment_outlines(folder, item, [segment])[segment]}
