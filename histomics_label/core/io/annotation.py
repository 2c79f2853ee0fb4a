"""DSA (large_image) annotation documents that show a segmentation and its labels or predictions.

A *pixelmap* element points at a segment image (see ``label_tiff``) and colours every segment by its category:
``values[i]`` is the category index of segment id ``i`` (``values[0]`` is the background pixel value), and
``categories`` holds DSA categories (``label``, ``fillColor``, ``strokeColor``). Our categories are dicts with
``name``, ``color`` and optionally ``excluded`` and ``description``; they are converted here (see
``pixelmap_category``).

The documents follow large_image's annotation schema (``girder_large_image_annotation``), which lives with girder;
this module does not import it, and the tests validate the documents against it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..errors import ConfigurationError

DEFAULT_FILL_OPACITY = 0.5
EXCLUDED_DESCRIPTION = 'Excluded from training'

_HEX = re.compile(r'^#([0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$')
_FUNCTIONAL = re.compile(
    r'^rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*(\d*\.?\d+)\s*)?\)$')


def parse_color(color: str) -> tuple[int, int, int, float | None]:
    """(red, green, blue, alpha) of a CSS colour ``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``, ``rgb()`` or
    ``rgba()``; alpha is ``None`` when the colour does not give one."""
    text = color.strip()
    match = _HEX.match(text)
    if match:
        digits = match.group(1)
        if len(digits) <= 4:
            digits = ''.join(d * 2 for d in digits)
        channels = [int(digits[i:i + 2], 16) for i in range(0, len(digits), 2)]
        alpha = channels[3] / 255 if len(channels) == 4 else None
        return channels[0], channels[1], channels[2], alpha
    match = _FUNCTIONAL.match(text)
    if match and text.startswith('rgba') == (match.group(4) is not None):
        red, green, blue = (int(v) for v in match.group(1, 2, 3))
        alpha = float(match.group(4)) if match.group(4) is not None else None
        if max(red, green, blue) <= 255 and (alpha is None or alpha <= 1):
            return red, green, blue, alpha
    raise ConfigurationError(f'{color!r} is not a colour; use #rrggbb, rgb(r, g, b) or rgba(r, g, b, a)')


def rgba(color: str, alpha: float | None = None) -> str:
    """``color`` as ``rgba(r, g, b, a)``; ``alpha`` (when given) replaces the colour's own opacity."""
    red, green, blue, own = parse_color(color)
    if alpha is None:
        alpha = 1.0 if own is None else own
    if not 0 <= alpha <= 1:
        raise ConfigurationError(f'An opacity must be between 0 and 1, not {alpha}')
    return f'rgba({red}, {green}, {blue}, {_number(alpha)})'


def _number(value: float) -> str:
    """A short decimal (at most 3 places) that the annotation schema's colour pattern accepts."""
    return f'{round(value, 3):.3f}'.rstrip('0').rstrip('.') or '0'


def pixelmap_category(category: dict, fill_opacity: float = DEFAULT_FILL_OPACITY) -> dict:
    """The DSA pixelmap category for one of our categories.

    The fill is the colour at ``fill_opacity`` unless the colour gives its own opacity (so the tissue shows
    through); the stroke, drawn on segment outlines, is the colour fully opaque. The DSA category has no place
    for ``excluded`` (the schema allows no extra keys), so an excluded category without a description of its
    own is described as ``EXCLUDED_DESCRIPTION``.
    """
    if not category.get('name'):
        raise ConfigurationError(f'A category needs a name: {category!r}')
    if 'color' not in category:
        raise ConfigurationError(f'Category {category["name"]!r} has no colour')
    own_alpha = parse_color(category['color'])[3]
    converted = {
        'label': str(category['name']),
        'fillColor': rgba(category['color'], fill_opacity if own_alpha is None else None),
        'strokeColor': rgba(category['color'], 1.0),
    }
    if category.get('description'):
        converted['description'] = str(category['description'])
    elif category.get('excluded'):
        converted['description'] = EXCLUDED_DESCRIPTION
    return converted


def pixelmap_annotation(name: str, *, girder_id: str, values: Sequence[int], categories: Sequence[dict],
                        boundaries: bool, scale: float = 1.0, description: str = '',
                        attributes: dict | None = None, fill_opacity: float = DEFAULT_FILL_OPACITY) -> dict:
    """An annotation document with one pixelmap element colouring the segment image ``girder_id``.

    ``values[i]`` is the index into ``categories`` of segment id ``i``; ``boundaries`` says whether the segment
    image uses the doubled encoding with outlines. ``scale`` is the number of slide base pixels per segment-image
    pixel; when it is not 1 the element carries the transform matrix that stretches the overlay onto the slide.
    """
    if not name:
        raise ConfigurationError('An annotation needs a name')
    if not re.fullmatch(r'[0-9a-f]{24}', girder_id or ''):
        raise ConfigurationError(f'{girder_id!r} is not a Girder id (24 lowercase hexadecimal digits)')
    if not categories:
        raise ConfigurationError('A pixelmap needs at least one category')
    if scale <= 0:
        raise ConfigurationError(f'The overlay scale must be positive, not {scale}')
    values = [int(v) for v in values]
    bad = sorted({v for v in values if not 0 <= v < len(categories)})
    if bad:
        raise ConfigurationError(
            f'Pixelmap values name categories {bad[:10]} but there are only {len(categories)} categories')
    element = {
        'type': 'pixelmap',
        'girderId': girder_id,
        'values': values,
        'categories': [pixelmap_category(c, fill_opacity) for c in categories],
        'boundaries': bool(boundaries),
    }
    if scale != 1:
        element['transform'] = {'xoffset': 0, 'yoffset': 0, 'matrix': [[float(scale), 0], [0, float(scale)]]}
    return {
        'name': name,
        'description': description,
        'elements': [element],
        'attributes': dict(attributes or {}),
    }
