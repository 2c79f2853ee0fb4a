"""Training rounds: fit the configured model on the labels, predict every segment, and record the round.

A round warm-starts from the previous round when it used the same model, options and representation, so
retraining after a few new labels is quick; categories are matched by name, so a category added since then gets a
fresh output and one that disappeared is dropped. Merging two categories needs no retraining at all: the merged
category's probability is the sum of the two, and the stored model's output layer is remapped for the next warm
start.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigurationError, StoreError
from .labels import LabelSet
from .models import Model
from .models import models as model_registry
from .progress import Progress, no_progress
from .representations import Representation
from .store import RoundRecord, SlideStore

PREDICT_CHUNK = 4096
"""Segments predicted at a time: bounds memory for image patches (4096 × 100² × 3 bytes ≈ 120 MB)."""


def create_model(name: str, options: dict) -> Model:
    return model_registry.create(name, **{k: v for k, v in options.items() if k != 'name'})


def round_model(record: RoundRecord) -> Model:
    """The model of a stored round, ready to predict."""
    options = {k: v for k, v in record.model_params.items() if k not in ('classes', 'representation')}
    return create_model(record.model_name, options).load_state(record.model_state)


def train_round(store_path: str, rep: Representation, labels: LabelSet, model_name: str, model_options: dict,
                progress: Progress = no_progress) -> RoundRecord:
    """Train on the labeled segments, predict every segment, and store the result as a new round."""
    segment_ids, targets, classes = labels.training_set()
    with SlideStore(store_path) as store:
        labels.check_segments(store.n_segments)
        if not rep.is_current(store):
            raise ConfigurationError(f'The store has no current {rep.key}; compute the representation first')
        inputs = rep.load(store, segment_ids - 1)
        previous = store.latest_round()
        model = create_model(model_name, model_options)
        extra = {}
        if model.unlabeled_points:
            rows = unlabeled_sample(store.n_segments, labels.segment_ids, model.unlabeled_points,
                                    model_options.get('seed', 0))
            extra['unlabeled'] = rep.load(store, rows)
    warm = warm_start_state(previous, model, rep, labels, classes)
    progress(1, 3, 'training' + (' (warm start)' if warm is not None else ''))
    model.fit(inputs, targets, len(classes), warm_start=warm, **extra)
    progress(2, 3, 'predicting')
    with SlideStore(store_path) as store:
        probabilities = predict_all(model, rep, store)
    fitted = model.metrics()
    metrics = {'labels_used': int(len(segment_ids)),
               'per_class': {labels.categories[c].name: int((targets == k).sum()) for k, c in enumerate(classes)},
               'held_out_balanced_accuracy': fitted.get('validation_balanced_accuracy'),
               'held_out_count': fitted.get('validation_labels', 0), 'training': fitted}
    with SlideStore.update(store_path) as writer:
        number = writer.add_round(
            categories=[c.as_dict() for c in labels.categories], label_ids=labels.segment_ids,
            label_categories=labels.category_index, probabilities=_expand(probabilities, classes, labels),
            model_name=model_name, model_params={**model.params(), 'representation': rep.key, 'classes': classes},
            model_state=model.state(), metrics=metrics)
    progress(3, 3, 'trained')
    with SlideStore(store_path) as store:
        return store.round(number)


def unlabeled_sample(n_segments: int, labeled_ids: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Sorted rows of at most ``count`` unlabeled segments, a seeded sample: what a semi-supervised model sees."""
    unlabeled = np.ones(n_segments, bool)
    unlabeled[np.asarray(labeled_ids, np.int64) - 1] = False
    rows = np.flatnonzero(unlabeled)
    if len(rows) > count:
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return rows


def warm_start_state(previous: RoundRecord | None, model: Model, rep: Representation, labels: LabelSet,
                     classes: list[int]) -> dict | None:
    """The previous round's model state remapped to this round's classes, or None when it cannot be reused."""
    if previous is None or previous.model_name != model.name:
        return None
    stored = {k: v for k, v in previous.model_params.items() if k not in ('classes', 'representation')}
    if stored != _json_like(model.params()) or previous.model_params.get('representation') != rep.key:
        return None
    old_names = [previous.categories[c]['name'] for c in previous.model_params['classes']]
    new_names = [labels.categories[c].name for c in classes]
    mapping = [new_names.index(name) if name in new_names else -1 for name in old_names]
    if all(m == -1 for m in mapping):
        return None
    return type(model).remap_classes(previous.model_state, mapping, len(classes))


def merge_categories(store_path: str, labels: LabelSet, source: str, target: str) -> tuple[LabelSet, RoundRecord]:
    """Fold category ``source`` into ``target`` in the labels and in the latest round, without retraining.

    Returns the merged labels and the new round, whose probabilities sum the two categories' columns and whose
    model state maps both outputs to one, so the next round warm-starts from it.
    """
    merged = labels.merge(source, target)
    with SlideStore(store_path) as store:
        previous = store.latest_round()
    if previous is None:
        raise StoreError('The store has no trained round to merge categories in')
    names = [c['name'] for c in previous.categories]
    new_names = [c.name for c in merged.categories]
    column = [new_names.index(target if name == source else name) for name in names]
    probabilities = np.zeros((len(previous.probabilities), len(new_names)), np.float32)
    np.add.at(probabilities.T, column, previous.probabilities.T)
    old_classes = previous.model_params['classes']
    merged_classes = sorted({column[c] for c in old_classes})
    mapping = [merged_classes.index(column[c]) for c in old_classes]
    state = model_registry.get(previous.model_name).remap_classes(previous.model_state, mapping,
                                                                  len(merged_classes))
    with SlideStore.update(store_path) as writer:
        number = writer.add_round(
            categories=[c.as_dict() for c in merged.categories], label_ids=merged.segment_ids,
            label_categories=merged.category_index, probabilities=probabilities, model_name=previous.model_name,
            model_params={**previous.model_params, 'classes': merged_classes}, model_state=state,
            metrics={**previous.metrics, 'merged': {'source': source, 'target': target,
                                                    'from_round': previous.number}})
    with SlideStore(store_path) as store:
        return merged, store.round(number)


def predict_all(model: Model, rep: Representation, store: SlideStore, chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """Class probabilities of every segment, reading the representation a chunk of rows at a time."""
    parts = [model.predict_proba(rep.load(store, slice(start, min(start + chunk, store.n_segments))))
             for start in range(0, store.n_segments, chunk)]
    return np.concatenate(parts).astype(np.float32)


def sample_all(model: Model, rep: Representation, store: SlideStore, n_samples: int, seed: int,
               chunk: int = PREDICT_CHUNK) -> np.ndarray:
    """``(S, N, C)`` posterior samples for every segment; each chunk uses the same seeded draws."""
    parts = [model.predict_samples(rep.load(store, slice(start, min(start + chunk, store.n_segments))),
                                   n_samples, seed=seed)
             for start in range(0, store.n_segments, chunk)]
    return np.concatenate(parts, axis=1).astype(np.float32)


def _expand(probabilities: np.ndarray, classes: list[int], labels: LabelSet) -> np.ndarray:
    """Probabilities with one column per category (zero for excluded or never-labeled categories)."""
    full = np.zeros((len(probabilities), len(labels.categories)), np.float32)
    full[:, classes] = probabilities
    return full


def _json_like(value):
    import json

    return json.loads(json.dumps(value))
