"""A project's configuration: its categories and every choice of the pipeline, validated against the engine.

A project is a Girder folder of slides; this configuration lives in the folder's metadata under ``META_KEY``. The
names of the choices follow ``core.pipeline.PipelineConfig`` (and so the CLI); values are checked against the
engine's registries, so a project can only name a representation, extractor, model or certainty metric that
exists here. Nothing in this module touches Girder: the REST layer turns its ``ConfigurationError`` into a 400.
"""

from __future__ import annotations

import re
from typing import Any

from ..core.acquisition import acquisition_functions
from ..core.acquisition.audit import AUDIT_EVERY
from ..core.acquisition.suggestions import DEFAULT_FUNCTION
from ..core.errors import ConfigurationError
from ..core.features.extractors import extractors
from ..core.features.representations import check_model_fits, representations
from ..core.io.annotation import parse_color
from ..core.io.labels import DEFAULT_COLORS
from ..core.models import models

META_KEY = 'histomicsLabel'

DEFAULTS: dict[str, Any] = {
    'categories': [],
    'feature': 'vector',
    'extractor': 'efficientnet_lite0',
    'model': 'linear',
    'certainty': DEFAULT_FUNCTION,
    'radius': 100,
    'compactness': 15.0,
    'magnification': 5.0,
    'patchSize': 100,
    'batchSize': 8,
    'retrainEvery': 10,
    'auditEvery': AUDIT_EVERY,
    'epochs': 100,
    'seed': 0,
    'embeddingMap': False,
}
"""Every key a configuration has; a new project starts from these."""

_RANGES = {'radius': (2, 10_000), 'compactness': (0.01, 1000.0), 'magnification': (0.1, 200.0),
           'patchSize': (8, 1024), 'batchSize': (1, 1000), 'retrainEvery': (0, 100_000), 'epochs': (1, 10_000),
           'seed': (0, 2**31 - 1), 'auditEvery': (0, 1000)}
_INTEGERS = {'radius', 'patchSize', 'batchSize', 'retrainEvery', 'epochs', 'seed', 'auditEvery'}
_HOTKEY = re.compile(r'^[a-z0-9]$')
_RESERVED_HOTKEYS = set('123456789')
"""Keys 1–9 choose the n-th category in the labeling views; a category's own hotkey must be another key."""
MAX_NAME_LENGTH = 100


def validate_config(config: dict, base: dict | None = None) -> dict:
    """``base`` (or the defaults) updated with ``config``, checked; raises ``ConfigurationError`` naming the field."""
    if not isinstance(config, dict):
        raise ConfigurationError('The project configuration must be a JSON object')
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ConfigurationError(f'Unknown configuration fields: {", ".join(unknown)}; known: '
                                 f'{", ".join(sorted(DEFAULTS))}')
    merged = {**DEFAULTS, **(base or {}), **config}
    merged['categories'] = validate_categories(merged['categories'])
    for name, registry in (('feature', representations), ('extractor', extractors), ('model', models),
                           ('certainty', acquisition_functions)):
        if not isinstance(merged[name], str) or merged[name] not in registry:
            raise ConfigurationError(f'{name} must be one of {", ".join(registry.names())}, not {merged[name]!r}')
    check_model_fits(merged['model'], merged['feature'])
    if not isinstance(merged['embeddingMap'], bool):
        raise ConfigurationError(f'embeddingMap must be true or false, not {merged["embeddingMap"]!r}')
    if merged['embeddingMap'] and merged['feature'] != 'vector':
        raise ConfigurationError('embeddingMap colours segments by their embeddings: it needs feature "vector"')
    for name, (low, high) in _RANGES.items():
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(f'{name} must be a number, not {value!r}')
        if name in _INTEGERS and int(value) != value:
            raise ConfigurationError(f'{name} must be a whole number, not {value!r}')
        if not low <= value <= high:
            raise ConfigurationError(f'{name} must be between {low} and {high}, not {value}')
        merged[name] = int(value) if name in _INTEGERS else float(value)
    return merged


def validate_categories(categories: Any) -> list[dict]:
    """Each category as ``{name, color, excluded, hotkey}``; names and hotkeys unique, colours CSS colours."""
    if not isinstance(categories, list):
        raise ConfigurationError('categories must be a list of {name, color, excluded, hotkey} objects')
    result, names, hotkeys = [], set(), set()
    for index, category in enumerate(categories):
        if not isinstance(category, dict):
            raise ConfigurationError(f'Category {index + 1} must be an object with at least a name')
        unknown = sorted(set(category) - {'name', 'color', 'excluded', 'hotkey'})
        if unknown:
            raise ConfigurationError(f'Category {index + 1} has unknown fields: {", ".join(unknown)}')
        name = category.get('name')
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            raise ConfigurationError(f'Category {index + 1} needs a name of 1–{MAX_NAME_LENGTH} characters')
        name = name.strip()
        if name.casefold() in names:
            same = next(c['name'] for c in result if c['name'].casefold() == name.casefold())
            raise ConfigurationError(f'Category names must be unique, whatever their case; {name!r} is repeated'
                                     + ('' if same == name else f' (as {same!r}): rename or merge one of them'))
        color = category.get('color', _palette(index))
        if not isinstance(color, str):
            raise ConfigurationError(f'Category {name!r} has an invalid colour {color!r}')
        parse_color(color)
        excluded = category.get('excluded', False)
        if not isinstance(excluded, bool):
            raise ConfigurationError(f'Category {name!r}: excluded must be true or false')
        hotkey = category.get('hotkey')
        if hotkey is not None:
            if not isinstance(hotkey, str) or not _HOTKEY.match(hotkey.lower()) or hotkey in _RESERVED_HOTKEYS:
                raise ConfigurationError(f'Category {name!r}: a hotkey is one letter or 0 (1–9 choose categories '
                                         f'by position), not {hotkey!r}')
            hotkey = hotkey.lower()
            if hotkey in hotkeys:
                raise ConfigurationError(f'Hotkey {hotkey!r} is used by two categories')
            hotkeys.add(hotkey)
        names.add(name.casefold())
        result.append({'name': name, 'color': color, 'excluded': excluded, 'hotkey': hotkey})
    return result


def trainable_names(config: dict) -> list[str]:
    """The names of the categories a model trains on (not excluded), in order."""
    return [c['name'] for c in config['categories'] if not c['excluded']]


def _palette(index: int) -> str:
    return DEFAULT_COLORS[index % len(DEFAULT_COLORS)]
