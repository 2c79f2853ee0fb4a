"""Training rounds: fit the configured model on the labels, predict every segment, and record the round.

A round warm-starts from the previous round when it used the same model, options and representation, so
retraining after a few new labels is quick; categories are matched by name, so a category added since then gets a
fresh output and one that disappeared is dropped. Renaming or merging categories needs no retraining at all: the
latest round is appended again under the new names, a merged category's probability being the sum of the two and
the stored model's output layer remapped, so every view of the round (predictions, agreement, suggestions) is
right at once and the next round warm-starts from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import ConfigurationError
from .features.representations import Representation
from .io.labels import Category, LabelSet
from .io.store import RoundRecord, SlideStore, append_round
from .models import Model
from .models import models as model_registry
from .models.calibration import apply_temperature, calibrate
from .models.evaluation import accuracy_with_interval, out_of_fold
from .progress import Progress, no_progress

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
    return train_slides_round([(store_path, labels)], rep, model_name, model_options, progress)[0]


def train_slides_round(slides: Sequence[tuple[str, LabelSet]], rep: Representation, model_name: str,
                       model_options: dict, progress: Progress = no_progress,
                       audited: Sequence[np.ndarray] | None = None) -> list[RoundRecord]:
    """One model trained on the labels of several slides (a project), predicting every segment of each.

    ``slides`` pairs each slide's store with its labels; all label sets share one list of categories. Every store
    gets a new round with the same model; predictions of all slides are computed before any store is written, so
    a failure while training or predicting leaves every store's previous round in place.

    A model on stored vectors is also cross-validated over the labels (``evaluation.out_of_fold``): that gives the
    round's ``accuracy``, its ``audit_accuracy`` over the labels of ``audited`` (per slide, the segment ids of the
    audit sample's labels: an estimate free of the bias of actively chosen labels), and the ``calibration`` whose
    temperature scales every probability the round stores.

    ``progress`` hears each stage; every call before the last comes before anything is written, so a callback may
    raise there to stop the round with every store as it was.
    """
    if not slides:
        raise ConfigurationError('There are no slides to train on')
    categories = slides[0][1].categories
    if any([c.name for c in labels.categories] != [c.name for c in categories] for _, labels in slides):
        raise ConfigurationError('Every slide of one round must use the same categories')
    combined = LabelSet(categories, np.arange(sum(len(labels) for _, labels in slides)) + 1,
                        np.concatenate([labels.category_index for _, labels in slides]))
    rows, targets, classes = combined.training_set()
    trainable = np.zeros(len(combined), bool)
    trainable[rows - 1] = True
    inputs, extra, population, previous_rounds, start = [], [], [], [], 0
    model = create_model(model_name, model_options)
    seed = model_options.get('seed', 0)
    for store_path, labels in slides:
        keep = trainable[start:start + len(labels)]
        start += len(labels)
        with SlideStore(store_path) as store:
            labels.check_segments(store.n_segments)
            if not rep.is_current(store):
                raise ConfigurationError(f'The store {store_path} has no current {rep.key}; compute the '
                                         'representation first')
            inputs.append(rep.load(store, labels.segment_ids[keep] - 1))
            previous_rounds.append(store.latest_round())
            if model.unlabeled_points:
                sample = segment_sample(store.n_segments, max(1, model.unlabeled_points // len(slides)), seed,
                                        leave_out=labels.segment_ids)
                extra.append(rep.load(store, sample))
            if model.population_points:
                sample = segment_sample(store.n_segments, max(1, model.population_points // len(slides)), seed)
                population.append(rep.load(store, sample))
    warm = warm_start_state(previous_rounds[0], model, rep, categories, classes)
    progress(1, 3, 'training' + (' (warm start)' if warm is not None else ''))
    fit_options = {}
    if extra:
        fit_options['unlabeled'] = np.concatenate(extra)
    if population:
        fit_options['population'] = np.concatenate(population)
    features = np.concatenate(inputs)
    model.fit(features, targets, len(classes), warm_start=warm, **fit_options)
    evaluation = {'accuracy': None, 'audit_accuracy': None, 'calibration': None}
    if model.representation == 'vector':  # cheap for a model on stored vectors; a CNN would train once per fold
        progress(1, 3, 'cross-validating')
        audit_rows = _audit_rows(slides, audited, trainable)
        evaluation = _evaluate(lambda: create_model(model_name, model_options), features, targets, len(classes),
                               audit_rows, int(model_options.get('seed', 0)), fit_options)
    temperature = (evaluation['calibration'] or {}).get('temperature', 1.0)
    progress(2, 3, 'predicting')
    predictions = []
    for store_path, _ in slides:
        with SlideStore(store_path) as store:
            predictions.append(apply_temperature(predict_all(model, rep, store), temperature))
    fitted = model.metrics()
    metrics = {'labels_used': int(len(rows)),
               'per_class': {categories[c].name: int((targets == k).sum()) for k, c in enumerate(classes)},
               'held_out_balanced_accuracy': fitted.get('validation_balanced_accuracy'),
               'held_out_count': fitted.get('validation_labels', 0), **evaluation, 'training': fitted}
    if len(slides) > 1:
        metrics['slides'] = len(slides)
    expanded = [_expand(probabilities, classes, categories) for probabilities in predictions]
    changes = [prediction_change(previous, categories, probabilities)
               for previous, probabilities in zip(previous_rounds, expanded, strict=True)]
    if all(change is not None for change in changes):
        metrics['predictions_changed'] = _total_change(changes)
        relabeled = any(_labels_differ(previous, labels, categories)
                        for previous, (_, labels) in zip(previous_rounds, slides, strict=True))
        metrics['model_unchanged'] = relabeled and all(change['max_shift'] == 0 for change in changes)
    params = {**model.params(), 'representation': rep.key, 'classes': classes}
    state = model.state()
    records = []
    for (store_path, labels), probabilities, change in zip(slides, expanded, changes, strict=True):
        number = append_round(
            store_path, categories=[c.as_dict() for c in categories], label_ids=labels.segment_ids,
            label_categories=labels.category_index, probabilities=probabilities, model_name=model_name,
            model_params=params, model_state=state,
            metrics={**metrics, 'slide_predictions_changed': change} if change is not None else metrics)
        with SlideStore(store_path) as store:
            records.append(store.round(number))
    progress(3, 3, 'trained')
    return records


def _audit_rows(slides: Sequence[tuple[str, LabelSet]], audited: Sequence[np.ndarray] | None,
                trainable: np.ndarray) -> np.ndarray:
    """Which training rows (labels of trained categories, in ``combined`` order) are audited labels."""
    if audited is None:
        return np.zeros(int(trainable.sum()), bool)
    flags = np.concatenate([np.isin(labels.segment_ids, np.asarray(ids, np.int64))
                            for (_, labels), ids in zip(slides, audited, strict=True)]) if slides else np.zeros(0)
    return flags[trainable].astype(bool)


def _evaluate(make_model, features: np.ndarray, targets: np.ndarray, n_classes: int, audit_rows: np.ndarray,
              seed: int, fit_options: dict) -> dict:
    """The round's cross-validated ``accuracy``, ``audit_accuracy`` and ``calibration`` from one set of
    out-of-fold predictions; each None when it cannot be had (a class with a single label, no audited label)."""
    found = out_of_fold(make_model, features, targets, n_classes, seed, **fit_options)
    if found is None:
        return {'accuracy': None, 'audit_accuracy': None, 'calibration': None}
    predicted = found.probabilities.argmax(axis=1)
    audit = None
    if audit_rows.any():
        audit = {**accuracy_with_interval(predicted[audit_rows], targets[audit_rows], seed),
                 'accuracy': float((predicted[audit_rows] == targets[audit_rows]).mean())}
    return {'accuracy': {**accuracy_with_interval(predicted, targets, seed), 'folds': found.folds},
            'audit_accuracy': audit, 'calibration': calibrate(found, targets)}


def prediction_change(previous: RoundRecord | None, categories: Sequence[Category],
                      probabilities: np.ndarray) -> dict | None:
    """How this round's predictions of a slide differ from the previous round's: segments whose predicted category
    changed (``changed``, ``share`` of ``segments``) and the largest change of a probability (``max_shift``), with
    categories matched by name. A share that stays near zero over rounds says more labels stop paying; a
    ``max_shift`` of 0 after new labels says the round did not learn. None without a previous round."""
    if previous is None or len(previous.probabilities) != len(probabilities):
        return None
    names = [c.name for c in categories]
    old_names = [c['name'] for c in previous.categories]
    old = np.zeros_like(probabilities)
    for column, name in enumerate(old_names):
        if name in names:
            old[:, names.index(name)] += previous.probabilities[:, column]
    changed = int((old.argmax(axis=1) != probabilities.argmax(axis=1)).sum())
    return {'changed': changed, 'segments': len(probabilities), 'share': changed / max(1, len(probabilities)),
            'max_shift': float(np.abs(old - probabilities).max(initial=0.0))}


def _total_change(changes: Sequence[dict]) -> dict:
    """``prediction_change`` over every slide of a round."""
    changed = sum(change['changed'] for change in changes)
    segments = sum(change['segments'] for change in changes)
    return {'changed': changed, 'segments': segments, 'share': changed / max(1, segments),
            'max_shift': max(change['max_shift'] for change in changes)}


def _labels_differ(previous: RoundRecord, labels: LabelSet, categories: Sequence[Category]) -> bool:
    """Whether a slide's trained labels (segment → category name, excluded categories left out) differ from those
    the previous round trained on: new labels of excluded categories (not classifiable, pen) give the model nothing
    to learn, so a round after only those rightly leaves it as it was."""
    old = {int(s): previous.categories[int(c)]['name'] for s, c in zip(previous.label_ids, previous.label_categories,
                                                                       strict=True)
           if not previous.categories[int(c)].get('excluded')}
    new = {int(s): categories[int(c)].name for s, c in zip(labels.segment_ids, labels.category_index, strict=True)
           if not categories[int(c)].excluded}
    return old != new


def segment_sample(n_segments: int, count: int, seed: int, leave_out: np.ndarray | None = None) -> np.ndarray:
    """Sorted rows of at most ``count`` segments, a seeded sample, none of the segment ids ``leave_out``: the
    unlabeled segments a semi-supervised model sees, or the population a model takes its feature statistics from."""
    kept = np.ones(n_segments, bool)
    if leave_out is not None:
        kept[np.asarray(leave_out, np.int64) - 1] = False
    rows = np.flatnonzero(kept)
    if len(rows) > count:
        rows = np.sort(np.random.default_rng(seed).choice(rows, count, replace=False))
    return rows


def warm_start_state(previous: RoundRecord | None, model: Model, rep: Representation, categories: Sequence[Category],
                     classes: list[int]) -> dict | None:
    """The previous round's model state remapped to this round's classes, or None when it cannot be reused."""
    if previous is None or previous.model_name != model.name:
        return None
    stored = {k: v for k, v in previous.model_params.items() if k not in ('classes', 'representation')}
    if stored != _json_like(model.params()) or previous.model_params.get('representation') != rep.key:
        return None
    old_names = [previous.categories[c]['name'] for c in previous.model_params['classes']]
    new_names = [categories[c].name for c in classes]
    mapping = [new_names.index(name) if name in new_names else -1 for name in old_names]
    if all(m == -1 for m in mapping):
        return None
    return type(model).remap_classes(previous.model_state, mapping, len(classes))


def merge_categories(store_path: str, source: str, target: str) -> RoundRecord | None:
    """Fold category ``source`` into ``target`` in the store's latest round, without retraining.

    The new round's ``target`` probability is the sum of the two, its labels of ``source`` are ``target``'s, and
    its model state maps both outputs to one, so the next round warm-starts from it. When the round never knew
    ``target`` this is a rename. None (nothing written) when the store has no round or its latest round does not
    know ``source``.
    """
    return _remap_latest(store_path, {source: target}, {'kind': 'merge', 'source': source, 'target': target})


def rename_category(store_path: str, old: str, new: str) -> RoundRecord | None:
    """Rename category ``old`` to ``new`` in the store's latest round, without retraining: the same predictions,
    labels and model under the new name. None (nothing written) when there is no round or it does not know
    ``old``."""
    return _remap_latest(store_path, {old: new}, {'kind': 'rename', 'old': old, 'new': new})


def _remap_latest(store_path: str, names: dict[str, str], change: dict) -> RoundRecord | None:
    """Append to the store a copy of its latest round whose categories are renamed by ``names`` (old → new name;
    several old names, or an old name and an existing one, becoming one name are merged).

    Appended rather than rewritten so that the store's write path (``append_round``) is the only one and a reader
    never sees a half-changed round. The copy's metrics list the ``category_changes`` made since the round that
    trained (``trained_round``), whose suggestion rankings still hold for a rename.
    """
    with SlideStore(store_path) as store:
        previous = store.latest_round()
    if previous is None or not any(c['name'] in names for c in previous.categories):
        return None
    categories, column = _renamed_categories(previous.categories, names)
    probabilities = np.zeros((len(previous.probabilities), len(categories)), np.float32)
    np.add.at(probabilities.T, column, previous.probabilities.T)
    old_classes = previous.model_params['classes']
    classes = sorted({int(column[c]) for c in old_classes})
    mapping = [classes.index(column[c]) for c in old_classes]
    state = previous.model_state
    if mapping != list(range(len(old_classes))):
        state = model_registry.get(previous.model_name).remap_classes(state, mapping, len(classes))
    per_class: dict[str, int] = {}
    for name, count in previous.metrics.get('per_class', {}).items():
        renamed = names.get(name, name)
        per_class[renamed] = per_class.get(renamed, 0) + count
    metrics = {**previous.metrics, 'per_class': per_class,
               'trained_round': previous.metrics.get('trained_round', previous.number),
               'category_changes': [*previous.metrics.get('category_changes', []),
                                    {**change, 'from_round': previous.number}]}
    number = append_round(
        store_path, categories=categories, label_ids=previous.label_ids,
        label_categories=column[previous.label_categories], probabilities=probabilities,
        model_name=previous.model_name, model_params={**previous.model_params, 'classes': classes},
        model_state=state, metrics=metrics)
    with SlideStore(store_path) as store:
        return store.round(number)


def _renamed_categories(categories: list[dict], names: dict[str, str]) -> tuple[list[dict], np.ndarray]:
    """A round's categories renamed by ``names``, and for each old category the index of its new one.

    Categories that end with one name become one, at the place (colour, excluded flag) of the one that already
    had that name, else of the first renamed to it; the order of the others is kept.
    """
    renamed = [names.get(c['name'], c['name']) for c in categories]
    keeper: dict[str, int] = {}
    for index, (category, name) in enumerate(zip(categories, renamed, strict=True)):
        if category['name'] == name:
            keeper[name] = index
        else:
            keeper.setdefault(name, index)
    kept = sorted(keeper.values())
    result = [{**categories[index], 'name': renamed[index]} for index in kept]
    position = {renamed[index]: k for k, index in enumerate(kept)}
    return result, np.array([position[name] for name in renamed], np.int64)


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


def _expand(probabilities: np.ndarray, classes: list[int], categories: Sequence[Category]) -> np.ndarray:
    """Probabilities with one column per category (zero for excluded or never-labeled categories)."""
    full = np.zeros((len(probabilities), len(categories)), np.float32)
    full[:, classes] = probabilities
    return full


def _json_like(value):
    import json

    return json.loads(json.dumps(value))
