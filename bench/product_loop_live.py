"""The product loop of ``bench_product_loop.py`` on a live server, through its REST API only (and one file copy).

A *template* project per task holds the task's slides, uploaded and segmented by the server's own job
(``POST .../segments``), before any label or round. Every run then gets a **fresh project**: a new folder, the
template's slide items copied into it (``POST item/{id}/copy``), the run's configuration, and each slide's store
copied from the template's pristine store (taken before any round) into the server's data folder — the one step that
is not a REST call: it saves recomputing the same segments and embeddings for every run. ``POST .../segments`` must
then answer ``current`` for every slide, which checks that the server accepts the copy as its own. A fresh project
has no label, no round and no model: nothing leaks from one run into the next.

A run is what a labeler does: label a seed set, train the first round, then again and again: ``GET .../suggestions``
(one batch), answer each suggestion from the oracle with ``PUT .../labels`` (view ``guided``) and wait for the round
that **automatic retraining** (``retrainEvery`` = the batch size) starts. After each round the run records the
round's shown accuracy (``GET .../rounds``), and its true balanced accuracy: the server's prediction of every
segment (``GET .../overlay?kind=predictions``, one byte per segment) against the oracle, over every segment the
oracle classifies, labeled or not.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench_latency import upload_image
from product_loop_tasks import AMBIGUOUS, ProductTask

from histomics_label.devtools.stack.jobs import wait_for_job

CONFIRM_S = 2.0
"""Simulated seconds to confirm a suggestion whose shown prediction is right (one click on the suggested category)."""
CORRECT_S = 5.0
"""Simulated seconds to answer a segment whose prediction is wrong or absent: look, decide, pick the category."""


@dataclass
class Template:
    """A segmented template project: its slide items, their pristine stores and every segment's truth."""

    task: ProductTask
    folder: str
    items: list[dict]  # {'_id', 'name', 'segments'} in the project's slide order
    stores: dict[str, Path]  # item id -> pristine copy of its store
    truth: dict[str, np.ndarray]  # item id -> class index per segment (AMBIGUOUS: none)
    seconds: float

    def truth_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Every segment of the project in slide order as (item position, segment id) rows and their truth."""
        positions, segments, values = [], [], []
        for position, item in enumerate(self.items):
            truth = self.truth[item['_id']]
            positions.append(np.full(len(truth), position))
            segments.append(np.arange(1, len(truth) + 1))
            values.append(truth)
        return np.stack([np.concatenate(positions), np.concatenate(segments)], 1), np.concatenate(values)


def _private_folder(client, name: str) -> dict:
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    return client.createFolder(private['_id'], name)


def project_config(task: ProductTask, **changes) -> dict:
    """The task's project configuration with ``changes`` (certainty, seed, batchSize, retrainEvery, ...)."""
    return {'categories': task.categories, **task.config, **changes}


def make_template(client, task: ProductTask, data_dir: Path, work: Path) -> Template:
    """Upload the task's slides into a new project, make their segments with the server's job, copy the pristine
    stores into ``work`` and compute each segment's truth."""
    started = time.monotonic()
    folder = _private_folder(client, f'product-loop {task.name} template {int(time.time())}')
    for slide in task.slides:
        upload_image(client, folder['_id'], slide.path)
    base = f'histomics_label/project/{folder["_id"]}'
    client.put(base, json=project_config(task, retrainEvery=0))
    for started_job in client.post(f'{base}/segments'):
        job = wait_for_job(client, started_job['job'])
        if job['status'] != 3:
            raise RuntimeError(f'segments of {started_job["name"]} failed: {job.get("log")}')
    items = [{'_id': s['_id'], 'name': s['name'], 'segments': s['segments']} for s in client.get(f'{base}/slides')]
    names = {slide.path.name: slide.name for slide in task.slides}
    work.mkdir(parents=True, exist_ok=True)
    stores, truth = {}, {}
    for item in items:
        source = data_dir / folder['_id'] / f'{item["_id"]}.h5'
        stores[item['_id']] = work / f'{task.name}-{item["_id"]}.h5'
        shutil.copyfile(source, stores[item['_id']])
        truth[item['_id']] = task.truth(names[item['name']], stores[item['_id']])
        if len(truth[item['_id']]) != item['segments']:
            raise RuntimeError(f'{item["name"]}: {len(truth[item["_id"]])} truths for {item["segments"]} segments')
    return Template(task, folder['_id'], items, stores, truth, time.monotonic() - started)


def fresh_project(client, template: Template, data_dir: Path, config: dict, name: str) -> tuple[str, list[str]]:
    """A new project with the template's slides and pristine stores, configured with ``config``; its route and
    its slide item ids in the template's order."""
    folder = _private_folder(client, name)
    items = [client.post(f'item/{item["_id"]}/copy', parameters={'folderId': folder['_id']})['_id']
             for item in template.items]
    base = f'histomics_label/project/{folder["_id"]}'
    client.put(base, json=config)
    (data_dir / folder['_id']).mkdir(parents=True, exist_ok=True)
    for old, new in zip(template.items, items, strict=True):
        shutil.copyfile(template.stores[old['_id']], data_dir / folder['_id'] / f'{new}.h5')
    statuses = {entry['item']: entry['status'] for entry in client.post(f'{base}/segments')}
    if any(statuses.get(item) != 'current' for item in items):
        raise RuntimeError(f'the copied stores are not current for the server: {statuses}')
    listed = [slide['_id'] for slide in client.get(f'{base}/slides')]
    return base, sorted(items, key=listed.index)


def true_accuracy(client, base: str, items: list[str], template: Template,
                  answered: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Balanced accuracy of the latest round's predictions against the truth over every classified segment not in
    ``answered`` (a mask in the template's row order; None: every one), and the predicted class per segment (-1:
    none), in the template's row order."""
    names = [c['name'] for c in client.get(base)['config']['categories']]
    to_class = np.array([-1] + [template.task.class_names.index(n) if n in template.task.class_names else -1
                                for n in names])
    predicted, truth = [], []
    for old, item in zip(template.items, items, strict=True):
        response = client.sendRestRequest('GET', f'{base}/overlay', parameters={'item': item, 'kind': 'predictions'},
                                          jsonResp=False)
        values = np.frombuffer(response.content, np.uint8).astype(np.int64)
        predicted.append(to_class[values[1:old['segments'] + 1]])
        truth.append(template.truth[old['_id']])
    predicted, truth = np.concatenate(predicted), np.concatenate(truth)
    scored = np.ones(len(truth), bool) if answered is None else ~answered
    return balanced_accuracy(predicted[scored], truth[scored]), predicted


def stored_features(template: Template) -> np.ndarray:
    """Every segment's stored embedding, in ``Template.truth_rows`` order."""
    from histomics_label.core.io.store import SlideStore

    extractor = template.task.config.get('extractor', 'efficientnet_lite0')
    parts = []
    for item in template.items:
        with SlideStore(template.stores[item['_id']]) as store:
            parts.append(store.features(extractor))
    return np.concatenate(parts)


def unseen_slide_accuracy(predicted: np.ndarray, truth: np.ndarray, seen: np.ndarray, features: np.ndarray,
                          n_classes: int, seed: int) -> float | None:
    """Balanced accuracy over every classified segment of the slides, each predicted by a model that did not train
    on it: the round's prediction for a segment not answered yet, an out-of-fold prediction (the server's model
    class, ``linear``, over stratified folds of the answers) for an answered one. This is what the audit accuracy
    estimates (the model on a random segment it did not learn from); on a slide whose labels cover a large share of
    its segments it differs from the accuracy on the unanswered ones, which the acquisition function left easy.
    None when some answered class has a single label (no fold could hold it out), as the server's estimate."""
    from histomics_label.core.models import models
    from histomics_label.core.models.evaluation import out_of_fold
    from histomics_label.core.rounds import segment_sample

    answered = np.flatnonzero(seen & (truth != AMBIGUOUS))
    population = features[segment_sample(len(features), models.get('linear').population_points, seed)]
    found = out_of_fold(lambda: models.create('linear', seed=seed), features[answered], truth[answered], n_classes,
                        seed, population=population)
    if found is None:
        return None
    unseen = predicted.copy()
    unseen[answered] = found.probabilities.argmax(axis=1)
    return balanced_accuracy(unseen, truth)


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean recall over the classes present in ``truth`` (segments whose truth is ``AMBIGUOUS`` left out)."""
    known = truth != AMBIGUOUS
    return float(np.mean([(predicted[known & (truth == c)] == c).mean() for c in np.unique(truth[known])]))


def answer(template: Template, item_position: int, segment: int) -> str:
    """The oracle's category for a segment: its class, or the excluded category where it has none."""
    value = int(template.truth[template.items[item_position]['_id']][segment - 1])
    return template.task.excluded if value == AMBIGUOUS else template.task.class_names[value]


def seed_rows(truth: np.ndarray, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` seeded random segments of each class, as row indices into ``Template.truth_rows``: the same
    for every strategy of a seed (the comparison is paired), and the same as the offline engine's initial set on
    the classified rows (``bench_active_learning.initial_set``)."""
    from bench_active_learning import initial_set

    known = np.flatnonzero(truth != AMBIGUOUS)
    return known[initial_set(truth[known], n_classes, per_class, seed)]


def run_loop(client, template: Template, data_dir: Path, strategy: str, seed: int, initial: int, batch: int,
             budget: int) -> dict:
    """One labeler's run (module docstring) with the acquisition function ``strategy``; the curve per round."""
    task = template.task
    config = project_config(task, certainty=strategy, seed=seed, batchSize=batch, retrainEvery=batch)
    base, items = fresh_project(client, template, data_dir, config, f'product-loop {task.name} {strategy} {seed}')
    rows, truth = template.truth_rows()
    seeded = rows[seed_rows(truth, len(task.class_names), initial, seed)]
    labels = [{'item': items[p], 'segment': int(s), 'category': answer(template, p, int(s))} for p, s in seeded]
    features = stored_features(template)
    seen = np.zeros(len(truth), bool)  # the segments answered so far, in the template's row order
    offsets = np.cumsum([0] + [len(template.truth[item['_id']]) for item in template.items])
    seen[[offsets[p] + s - 1 for p, s in seeded]] = True
    started = time.monotonic()
    first_round(client, base, client.put(f'{base}/labels', json={'labels': labels, 'view': 'guided'}))
    rounds_seconds, suggest_seconds = time.monotonic() - started, 0.0
    answered, minutes, confirmed = len(labels), len(labels) * CORRECT_S / 60, 0
    curve = [record_round(client, base, items, template, seen, minutes, confirmed, 0, features, seed)]
    position = {item: k for k, item in enumerate(items)}
    while answered + batch <= budget:  # whole batches only: a smaller one would not reach retrainEvery
        started = time.monotonic()
        suggested = client.get(f'{base}/suggestions', parameters={'limit': batch})
        suggest_seconds += time.monotonic() - started
        if not suggested:
            break
        labels, confirmed_now = [], 0
        for suggestion in suggested:
            category = answer(template, position[suggestion['item']], suggestion['segment'])
            confirmed_now += category == suggestion['predicted']
            labels.append({'item': suggestion['item'], 'segment': suggestion['segment'], 'category': category})
            seen[offsets[position[suggestion['item']]] + suggestion['segment'] - 1] = True
        started = time.monotonic()
        written = client.put(f'{base}/labels', json={'labels': labels, 'view': 'guided'})
        answered += len(labels)
        confirmed += confirmed_now
        minutes += (confirmed_now * CONFIRM_S + (len(labels) - confirmed_now) * CORRECT_S) / 60
        training = written.get('training')
        if training is None or training.get('status') != 'started':
            raise RuntimeError(f'{len(labels)} new labels (retrainEvery {batch}) started no round: {written}')
        job = wait_for_job(client, training['job'])
        rounds_seconds += time.monotonic() - started
        if job['status'] != 3:
            raise RuntimeError(f'an automatic round of {strategy} seed {seed} failed: {job.get("log")}')
        curve.append(record_round(client, base, items, template, seen, minutes, confirmed, len(labels), features,
                                   seed))
    return dict(seed=seed, strategy=strategy, project=base,
                labels=[r['answered'] for r in curve], balanced_accuracy=[r['true'] for r in curve],
                minutes=[r['minutes'] for r in curve], rounds=curve,
                fit_s=rounds_seconds, acquire_s=suggest_seconds)


def first_round(client, base: str, written: dict) -> None:
    """Wait for the round the seed labels started (when they were ``retrainEvery`` or more), else ask for one, as
    the guided view's *Train* does before automatic retraining can start; raise when it failed."""
    training = written.get('training')
    if training and training.get('status') == 'started':
        job = wait_for_job(client, training['job'])
        if job['status'] != 3:
            raise RuntimeError(f'the first round failed: {job.get("log")}')
    elif client.post(f'{base}/train', parameters={'wait': 'true'}).get('round') is None:
        raise RuntimeError(f'the first round of {base} failed')


def record_round(client, base: str, items: list[str], template: Template, seen: np.ndarray, minutes: float,
                 confirmed: int, new_labels: int, features: np.ndarray, seed: int) -> dict:
    """What one round shows and what is true: the latest round's accuracy, its interval and whether it covers
    the true balanced accuracy (on the segments not answered yet, ``seen`` being those answered: what the model must
    predict, as the full-pool reference is out-of-fold; ``true_all``: on every segment, answered ones included),
    the same for its audit accuracy (random segments), also against what it estimates (``true_slide``:
    ``unseen_slide_accuracy``), and whether the model changed with its new labels."""
    latest = client.get(f'{base}/rounds')['rounds'][-1]
    true, predicted = true_accuracy(client, base, items, template, seen)
    truth = template.truth_rows()[1]
    true_all = balanced_accuracy(predicted, truth)
    true_slide = unseen_slide_accuracy(predicted, truth, seen, features, len(template.task.class_names), seed)
    answered = int(seen.sum())
    shown = latest.get('accuracy') or {}
    low, high = shown.get('low'), shown.get('high')
    changed = latest.get('predictionsChanged') or {}
    audit = latest.get('auditAccuracy') or {}
    return dict(number=latest['number'], answered=answered, trained=latest['labelsUsed'], minutes=minutes,
                confirmed=confirmed, new_labels=new_labels, true=true, true_all=true_all,
                shown=shown.get('balancedAccuracy'),
                low=low, high=high, covered=None if low is None else bool(low <= true <= high),
                audit=audit.get('balancedAccuracy'), audit_labels=audit.get('labels', 0),
                audit_covered=None if not audit else bool(audit['low'] <= true <= audit['high']),
                true_slide=true_slide, audit_covered_slide=None if not audit or true_slide is None
                else bool(audit['low'] <= true_slide <= audit['high']),
                changed=changed.get('changed'), share_changed=changed.get('share'),
                model_unchanged=bool(latest.get('modelUnchanged')))
