"""More like this in a project: the segments of its slides nearest to a labeler's example segments on one slide.

The examples' slide store comes first (the engine reads the query there), then every other segmented slide; what
anyone labeled on the examples' slide is left out, so the answer is segments still worth labeling.
"""

from __future__ import annotations

from girder.exceptions import ValidationException

from ..core.errors import HistomicsLabelError
from ..core.retrieval.similar import similar_segments
from ..models.label import Label
from . import folders

MAX_SIMILAR = 1000
"""Most segments one request returns."""


def find_similar(folder: dict, item: str, segments: list, negatives: list | None, limit: int,
                 cnfp: bool) -> list[dict]:
    """The ``limit`` segments nearest to the mean embedding of ``segments`` (ids on slide ``item``), nearest first,
    each with its slide and base-pixel region; with ``negatives`` or ``cnfp`` a CNFP mix (``core.retrieval``)."""
    config = folders.config_of(folder)
    slide = folders.slide_of(folder, item)
    if not 1 <= limit <= MAX_SIMILAR:
        raise ValidationException(f'limit must be between 1 and {MAX_SIMILAR}', 'limit')
    if not folders.store_path(folder, slide).exists():
        raise ValidationException(f'Slide {slide["name"]} has no segments yet', 'item')
    slides = [slide] + [s for s in folders.slides(folder) if s['_id'] != slide['_id']
                        and folders.store_path(folder, s).exists()]
    paths = [str(folders.store_path(folder, s)) for s in slides]
    labeled = [segment for (_, segment) in Label().effective(folder['_id'], slide['_id'])]
    try:
        found = similar_segments(paths, [int(v) for v in segments], limit, config['extractor'],
                                 negatives=[int(v) for v in negatives or []], cnfp_mix=cnfp, exclude=labeled)
    except (HistomicsLabelError, ValueError, TypeError) as exc:
        raise ValidationException(str(exc)) from exc
    by_path = dict(zip(paths, slides, strict=True))
    return [{'item': str(by_path[f.pop('store')]['_id']), **f, 'region': f['bbox_base']} for f in found]
