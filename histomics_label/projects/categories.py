"""A project's categories once labels use them: renames and merges relabel server-side and carry into the trained
rounds at once, and a category that has labels is never dropped from the configuration silently (its labels would
point at nothing)."""

from __future__ import annotations

from girder.exceptions import ValidationException
from girder.models.folder import Folder

from ..models.label import Label
from . import folders, round_categories
from .config import META_KEY


def configure(folder: dict, changes: dict) -> dict:
    """Make ``folder`` a project or change its configuration (fields not given are kept); returns the new one.

    A category that has labels cannot be left out of ``categories``: rename or merge it instead.
    """
    current = (folder.get('meta') or {}).get(META_KEY)
    if current is not None and isinstance(changes.get('categories'), list):
        kept = {c.get('name') for c in changes['categories'] if isinstance(c, dict)}
        dropped = [c['name'] for c in current['categories'] if c['name'] not in kept]
        used = [name for name in dropped if Label().findOne({'project': folder['_id'], 'category': name})]
        if used:
            raise ValidationException(f'Categories {", ".join(used)} have labels: rename or merge them instead '
                                      'of leaving them out', 'categories')
    return folders.save_config(folder, changes)


def rename(folder: dict, old: str, new: str) -> dict:
    """Rename category ``old`` to ``new`` (trimmed), relabel its labels and rename it in the latest round of every
    slide (``round_categories``); returns the configuration, how many labels and how many slides' rounds changed."""
    config = folders.config_of(folder)
    names = [c['name'] for c in config['categories']]
    new = new.strip()
    if old not in names:
        raise ValidationException(f'No category {old!r}', 'old')
    if new in names:
        raise ValidationException(f'A category {new!r} exists already; merge instead', 'new')
    categories = [{**c, 'name': new if c['name'] == old else c['name']} for c in config['categories']]
    saved = folders.save_config(folder, {'categories': categories})
    relabeled = Label().rename_category(folder['_id'], old, new)
    return {'config': saved, 'relabeled': relabeled, 'rounds': round_categories.rename_in_rounds(folder, old, new)}


def merge(folder: dict, source: str, target: str) -> dict:
    """Make every label of ``source`` one of ``target``, drop ``source`` and fold it into ``target`` in the latest round
    of every slide (``round_categories``); returns the configuration, how many labels and how many slides' rounds
    changed."""
    config = folders.config_of(folder)
    names = [c['name'] for c in config['categories']]
    for name, field in ((source, 'source'), (target, 'target')):
        if name not in names:
            raise ValidationException(f'No category {name!r}', field)
    if source == target:
        raise ValidationException('Cannot merge a category into itself', 'target')
    relabeled = Label().rename_category(folder['_id'], source, target)
    saved = folders.save_config(folder, {'categories': [c for c in config['categories'] if c['name'] != source]})
    return {'config': saved, 'relabeled': relabeled,
            'rounds': round_categories.merge_in_rounds(folder, source, target)}


UNCLASSIFIABLE = {'name': 'not classifiable', 'color': '#7f7f7f', 'excluded': True, 'hotkey': None}
"""The category a segment marked "not classifiable / artifact" gets: excluded from training, and its near-duplicates
from suggestions (``core.acquisition.suggestions.NEAR_DUPLICATE_SHARE``)."""


def ensure_unclassifiable(folder: dict) -> dict:
    """The project's folder with its excluded ``UNCLASSIFIABLE`` category, added if missing by one atomic update (two
    labelers marking at once, or an admin editing categories meanwhile, lose nothing); a 400 when a category of
    that name exists but trains."""
    name = UNCLASSIFIABLE['name']
    existing = next((c for c in folders.config_of(folder)['categories'] if c['name'] == name), None)
    if existing is None:
        Folder().collection.update_one(
            {'_id': folder['_id'], f'meta.{META_KEY}.categories.name': {'$ne': name}},
            {'$push': {f'meta.{META_KEY}.categories': dict(UNCLASSIFIABLE)}})
        folder = Folder().load(folder['_id'], force=True)
        existing = next(c for c in folders.config_of(folder)['categories'] if c['name'] == name)
    if not existing['excluded']:
        raise ValidationException(f'The project has a category {name!r} that trains; mark it excluded to use it '
                                  'for segments nobody can classify', 'category')
    return folder
