"""Painting: label (or erase) every segment a brush stroke covers on one slide of a project.

The covered segments are read from the slide's segment raster (``core.segments.strokes``), so what is labeled is
exact whatever the viewer drew. Paint labels as the painter, with view ``bulk``, in one batch that undo reverts.
"""

from __future__ import annotations

from girder.exceptions import ValidationException

from ..core.errors import HistomicsLabelError
from ..core.io.store import SlideStore
from ..core.segments.strokes import segments_under_stroke
from ..models.label import Label
from . import folders


def paint(folder: dict, user: dict, stroke: dict) -> dict:
    """Label the segments under ``stroke`` with its category, or remove ``user``'s labels of them with ``erase``.

    ``stroke`` is ``{item, points: [[x, y], ...], radius, category, erase}`` in base pixels, shaped as the paint
    route's JSON schema admits it; radius 0 (the default) covers the pixels the line passes through, so a dab
    labels the segment under the pointer. Returns the covered segments and the batch's counts (``labeled``, ``deleted``,
    and ``changed`` when labeling); ``batch`` is None when the stroke covers no segment.
    """
    config = folders.config_of(folder)
    slide = folders.slide_of(folder, stroke['item'])
    path = folders.store_path(folder, slide)
    if not path.exists():
        raise ValidationException(f'Slide {slide["name"]} has no segments yet; generate them first', 'item')
    erase = stroke.get('erase', False)
    category = stroke.get('category')
    if not erase and category not in {c['name'] for c in config['categories']}:
        raise ValidationException(f'Unknown category {category!r}', 'category')
    try:
        with SlideStore(path) as store:
            segments = segments_under_stroke(store, stroke['points'], float(stroke.get('radius', 0)))
    except (HistomicsLabelError, TypeError, ValueError) as exc:
        raise ValidationException(str(exc), 'points') from exc
    entries = [{'item': slide['_id'], 'segment': int(s)} for s in segments]
    if not entries:
        return {'batch': None, 'segments': [], 'labeled': 0, 'deleted': 0}
    if erase:
        return {**Label().remove_labels(folder, user, entries), 'segments': segments.tolist(), 'labeled': 0}
    result = Label().upsert(folder, user, [{**e, 'category': category} for e in entries], 'bulk')
    return {**result, 'segments': segments.tolist(), 'deleted': 0}
