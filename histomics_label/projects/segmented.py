"""A project's slides as training and suggestions see them (those with segments and current features, with their
effective labels), and where the rankings computed from them are stored: read by the rounds, the suggestions and
a category rename or merge alike."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from bson.objectid import ObjectId

from ..core.features.representations import Representation
from ..core.io.labels import Category, LabelSet
from ..core.io.store import SlideStore
from ..core.pipeline import representation
from ..models.label import Label
from ..settings import data_dir
from . import folders


class Segmented(NamedTuple):
    """The slides ready for training and suggestions, with what it took to find them."""

    slides: list[tuple[dict, object, LabelSet]]
    """``(item, store path, labels)`` of each slide whose store has its segments and current features."""
    stale: int
    """Labeled segments left out as stale."""
    rep: Representation | None
    """The project's representation (None when no slide has a store), made once for every caller."""


def segmented_slides(folder: dict, config: dict, effective: dict[ObjectId, dict[int, str]] | None = None,
                     ) -> Segmented:
    """``(item, store path, labels)`` of each slide whose store has its segments and current features, how many
    labeled segments were left out as stale, and the project's representation: a segment id outside
    ``1..n_segments`` of its slide's store (left by a re-segmentation before segmentations were versioned) names no
    segment, and one such label must not stop training or suggestions for the whole project. ``GET
    .../stale_labels`` lists them for deletion.

    ``effective``: the project's effective labels by slide where the caller has them (a suggestion request reads
    them incrementally, ``models.effective_labels``); else every label is read."""
    categories = [Category(c['name'], c['color'], c['excluded']) for c in config['categories']]
    index = {c.name: i for i, c in enumerate(categories)}
    if effective is None:
        effective = Label().effective_by_slide(folder['_id'])
    result, stale, rep = [], 0, None
    for item in folders.slides(folder):
        path = folders.store_path(folder, item)
        if not path.exists():
            continue
        if rep is None:  # the project's: made once, not once per slide (each reads the slide's file document)
            rep = representation(folders.pipeline_config(folder, item, config))
        with SlideStore(path) as store:
            if not rep.is_current(store):
                continue
            count = store.n_segments
        labeled = [(segment, index[category]) for segment, category in effective.get(item['_id'], {}).items()
                   if category in index]
        pairs = sorted(pair for pair in labeled if 1 <= pair[0] <= count)
        stale += len(labeled) - len(pairs)
        result.append((item, path, LabelSet(categories, [p[0] for p in pairs], [p[1] for p in pairs])))
    return Segmented(result, stale, rep)


def rankings_folder(folder: dict) -> Path:
    """Where a project's stored rankings live: ``<data folder>/<project id>/rankings``."""
    return data_dir() / str(folder['_id']) / 'rankings'
