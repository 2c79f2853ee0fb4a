"""A category rename or merge carried into the project's trained rounds at once, without retraining.

Every view of the model reads the latest round of each slide's store (agreement with the labels, kappa, the
predictions overlay and annotation, suggestions' categories and probabilities) and names categories as that round
recorded them. So a rename or merge appends, in every store, the latest round again under the new names
(``core.rounds.rename_category`` / ``merge_categories``: merged probabilities summed, the model's outputs
remapped), and renames the per-class counts the database records for the learning curve; no view shows a name the
project no longer has, and the next round warm-starts from the remapped model.

The ranked suggestions the last round stored are kept under the stores' new fingerprint: a rename leaves every
ranking as it was, and a merge keeps the order computed before it until the next round (the suggestions still show
the merged predictions). Ranking again here would mean the CNN's posterior samples (BatchBALD) inside the Girder
process, hundreds of MiB, on a request that renames a category.

A round that is training meanwhile started from the old names and records them when it ends; the training lock
is then asked for one more round (``TrainingState.rerun_if_running``), which trains under the new names.
"""

from __future__ import annotations

from collections.abc import Callable

from bson.objectid import ObjectId
from pymongo import DESCENDING

from ..core.acquisition import ranking_store
from ..core.io.store import RoundRecord
from ..core.rounds import merge_categories, rename_category
from ..models.round import Round
from ..models.training_state import TrainingState
from . import folders
from .publishing import publish_soon
from .segmented import rankings_folder, segmented_slides


def rename_in_rounds(folder: dict, old: str, new: str) -> int:
    """Rename category ``old`` to ``new`` in the project's rounds; returns how many slides' latest rounds changed."""
    return _apply(folder, lambda path: rename_category(path, old, new), {old: new})


def merge_in_rounds(folder: dict, source: str, target: str) -> int:
    """Fold category ``source`` into ``target`` in the project's rounds; returns how many slides' latest rounds
    changed."""
    return _apply(folder, lambda path: merge_categories(path, source, target), {source: target})


def _apply(folder: dict, change: Callable[[str], RoundRecord | None], names: dict[str, str]) -> int:
    """``change`` the latest round of every slide store of the project, then the rounds recorded in the database.

    A round running now read the labels under the old names: it is asked first for one more round, so that one
    ending while the stores change is followed by a round under the new names.
    """
    TrainingState().rerun_if_running(folder['_id'])
    ranked = _ranked_stores(folder)  # the same stores after the change: only their fingerprint moves
    key_before = _fingerprint(folder, ranked) if ranked else None
    appended: dict[str, RoundRecord] = {}
    for item in folders.slides(folder):
        path = folders.store_path(folder, item)
        if path.exists():
            record = change(str(path))
            if record is not None:
                appended[str(item['_id'])] = record
    _rename_recorded(folder['_id'], names, appended)
    if appended and ranked:
        ranking_store.carry_over(str(rankings_folder(folder)), key_before, _fingerprint(folder, ranked))
    if appended:
        publish_soon(folder['_id'])  # the published predictions and labels name categories too
    return len(appended)


def _ranking_key(folder: dict) -> tuple[str, str] | None:
    """Where the project's stored rankings are and the key of those computed from its stores as they are now;
    None without a segmented slide."""
    ranked = _ranked_stores(folder)
    return (str(rankings_folder(folder)), _fingerprint(folder, ranked)) if ranked else None


def _ranked_stores(folder: dict) -> list[str]:
    """The stores the project's rankings are computed from (its segmented slides', in the order requests use)."""
    return [str(path) for _, path, _ in segmented_slides(folder, folders.config_of(folder)).slides]


def _fingerprint(folder: dict, stores: list[str]) -> str:
    """``ranking_store.fingerprint`` of ``stores`` as they are now, with the parameters the project's requests use."""
    from ..core.acquisition.suggestions import MC_SAMPLES

    config = folders.config_of(folder)
    return ranking_store.fingerprint(stores, config['seed'], config['extractor'], MC_SAMPLES, config['batchSize'])


def _rename_recorded(project_id: ObjectId, names: dict[str, str], appended: dict[str, RoundRecord]) -> None:
    """Rename (and, for a merge, add up) the per-class counts of every recorded round of the project, and point the
    latest recorded round at the store rounds that now hold its outputs."""
    rounds = Round().collection
    for doc in rounds.find({'project': project_id}, {'perClass': 1}):
        counts = doc.get('perClass') or {}
        if not any(name in counts for name in names):
            continue
        renamed: dict[str, int] = {}
        for name, count in counts.items():
            renamed[names.get(name, name)] = renamed.get(names.get(name, name), 0) + count
        rounds.update_one({'_id': doc['_id']}, {'$set': {'perClass': renamed}})
    latest = rounds.find_one({'project': project_id}, sort=[('number', DESCENDING)])
    if latest is None:
        return
    moved = {f'slides.{item}': record.number for item, record in appended.items()
             if (latest.get('slides') or {}).get(item) == record.metrics['category_changes'][-1]['from_round']}
    if moved:
        rounds.update_one({'_id': latest['_id']}, {'$set': moved})
