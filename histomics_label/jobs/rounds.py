"""Training rounds of a project on the server: one at a time, recorded for the learning curve, as Girder jobs.

A round trains the project's model on the effective labels of every segmented slide and predicts every segment
(``core.rounds.train_slides_round``), in a background thread of the server, shown in the job list: the linear
head on stored embeddings in the thread itself (seconds), a CNN on patches in a child process (``workers.rounds``)
so minutes of training cannot slow or crash Girder. Rounds of a
project never run twice at once: a request while one runs marks the project *pending*, and the running worker
starts one more round when it finishes, so a burst of requests costs at most one extra round and no label is left
out. A failed round leaves every slide's previous round (model and predictions) in place.

The running/pending flags live in one document per project, changed only by atomic conditional updates. A
server killed mid-round leaves the flag set; ``reset_interrupted`` clears it when the plugin loads (one server per
database, as Girder itself assumes for its local jobs).
"""

from __future__ import annotations

import datetime
import json
import logging
import subprocess
import sys
import threading

from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.folder import Folder
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.acquisition.suggestions import audited_labels, suggest_across
from ..core.errors import HistomicsLabelError
from ..core.io.labels import Category, LabelSet
from ..core.io.store import SlideStore
from ..core.models import models
from ..core.pipeline import model_options, representation
from ..core.rounds import train_slides_round
from ..models.label import Label, LabelEvent
from ..models.round import Round
from ..models.training_state import TrainingState
from ..projects import folders
from .workers.errors import child_error

logger = logging.getLogger(__name__)
JOB_TYPE = 'histomics_label.train'
MAX_SUGGESTIONS = 1000
"""Most suggestions one request returns."""
_workers: dict[str, threading.Thread] = {}
_workers_lock = threading.Lock()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def request_round(folder: dict, user: dict | None, reason: str) -> dict:
    """Start a round, or queue one behind the running round; returns what happened and the job, if started."""
    if not TrainingState().acquire(folder['_id']):
        return {'status': 'queued'}
    job = _create_job(folder, user, reason)
    thread = threading.Thread(target=_work, args=(folder['_id'], user['_id'] if user else None, job['_id']),
                              name=f'histomics-label-train-{folder["_id"]}', daemon=True)
    with _workers_lock:
        _workers[str(folder['_id'])] = thread
    thread.start()
    return {'status': 'started', 'job': str(job['_id'])}


def retrain(folder: dict, user: dict, wait: bool = False) -> dict:
    """Start a round at ``user``'s request (or queue one behind the running round); with ``wait``, return once the
    rounds are done, with the latest ``round``. Either way with the training ``state``."""
    folders.config_of(folder)
    result = request_round(folder, user, 'asked for')
    if wait:
        wait_for_rounds(folder['_id'])
        result['round'] = Round().latest(folder['_id'])
    return {**result, 'state': TrainingState().state(folder['_id'])}


def learning_curve(folder: dict) -> dict:
    """Every finished round of the project, oldest first, and the training ``state``."""
    folders.config_of(folder)
    return {'rounds': Round().learning_curve(folder['_id']), 'state': TrainingState().state(folder['_id'])}


def wait_for_rounds(folder_id: ObjectId, timeout: float | None = None) -> None:
    """Block until the project's rounds (and any queued behind them) are done."""
    with _workers_lock:
        thread = _workers.get(str(folder_id))
    if thread is not None:
        thread.join(timeout)


def labels_changed(folder: dict, config: dict, user: dict, changed: int) -> dict | None:
    """Count new labels; start (or queue) a round when ``retrainEvery`` of them arrived since the last one."""
    if changed <= 0:
        return None
    count = TrainingState().count_labels(folder['_id'], changed)
    every = config.get('retrainEvery', 0)
    if not every or count < every or not _trainable(folder, config):
        return None
    return request_round(folder, user, f'{count} new labels')


def with_retraining(folder: dict, user: dict, written: dict) -> dict:
    """The answer of a label write (``written``, with how many labels it ``changed``) and the round it started as
    ``training``: None until ``retrainEvery`` new labels have arrived."""
    changed = written.get('changed', 0)
    return {**written, 'training': labels_changed(folder, folders.config_of(folder), user, changed)}


def run_round(folder: dict) -> dict:
    """Train one round now, in this thread; returns the recorded round. Raises on failure, changing nothing."""
    config = folders.config_of(folder)
    slides = segmented_slides(folder, config)
    if not slides:
        raise HistomicsLabelError('No slide of the project has segments and features yet; generate them first')
    pipeline = folders.pipeline_config(folder, slides[0][0], config)
    stores = [(str(path), labels) for _, path, labels in slides]
    if models.get(config['model']).representation == 'image':
        numbers, metrics, changes = _train_in_child(stores, pipeline, config['model'])
    else:
        audited = audited_labels(stores, audit_keys(folder, [item for item, _, _ in slides]))
        records = train_slides_round(stores, representation(pipeline), config['model'], model_options(pipeline),
                                     audited=audited)
        numbers, metrics = [record.number for record in records], records[0].metrics
        changes = [record.metrics.get('slide_predictions_changed') for record in records]
    number = (Round().latest(folder['_id']) or {}).get('number', 0)
    created = _now()
    document = {'project': folder['_id'], 'number': number + 1, 'created': created, 'model': config['model'],
                'labelingMinutes': LabelEvent().labeling_minutes(folder['_id'], created),
                'feature': config['feature'], 'labelsUsed': metrics['labels_used'],
                'perClass': metrics['per_class'], 'heldOutBalancedAccuracy': metrics['held_out_balanced_accuracy'],
                'heldOutCount': metrics['held_out_count'], 'warmStart': metrics['training'].get('warm_start'),
                'accuracy': _camel_accuracy(metrics.get('accuracy')),
                'auditAccuracy': _camel_accuracy(metrics.get('audit_accuracy')),
                'calibration': metrics.get('calibration'),
                'predictionsChanged': _camel_change(metrics.get('predictions_changed')),
                'modelUnchanged': metrics.get('model_unchanged', False),
                'slideChanges': {str(item['_id']): _camel_change(change)
                                 for (item, _, _), change in zip(slides, changes, strict=True)},
                'slides': {str(item['_id']): store_round for (item, _, _), store_round in zip(slides, numbers,
                                                                                             strict=True)}}
    Round().collection.insert_one(document)
    return document


def _train_in_child(stores: list[tuple[str, LabelSet]], pipeline,
                    model: str) -> tuple[list[int], dict, list[dict | None]]:
    """Train a CNN round in a child interpreter (``workers.rounds``); raise with its error when it fails."""
    from dataclasses import asdict

    request = {'pipeline': asdict(pipeline), 'model': model, 'slides': [
        {'store': path, 'categories': [c.as_dict() for c in labels.categories],
         'segment_ids': labels.segment_ids.tolist(), 'category_index': labels.category_index.tolist()}
        for path, labels in stores]}
    result = subprocess.run([sys.executable, '-m', 'histomics_label.jobs.workers.rounds'], input=json.dumps(request),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise HistomicsLabelError(child_error(result.stderr.splitlines(), result.returncode, 'the round'))
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    return answer['numbers'], answer['metrics'], answer['slideChanges']


def segmented_slides(folder: dict, config: dict) -> list[tuple[dict, object, LabelSet]]:
    """``(item, store path, labels)`` of each slide whose store has its segments and current features."""
    categories = [Category(c['name'], c['color'], c['excluded']) for c in config['categories']]
    index = {c.name: i for i, c in enumerate(categories)}
    effective = Label().effective_by_slide(folder['_id'])
    result = []
    for item in folders.slides(folder):
        path = folders.store_path(folder, item)
        if not path.exists():
            continue
        rep = representation(folders.pipeline_config(folder, item, config))
        with SlideStore(path) as store:
            if not rep.is_current(store):
                continue
        pairs = sorted((segment, index[category]) for segment, category in effective.get(item['_id'], {}).items()
                       if category in index)
        ids = [p[0] for p in pairs]
        result.append((item, path, LabelSet(categories, ids, [p[1] for p in pairs])))
    return result


def _trainable(folder: dict, config: dict) -> bool:
    """Whether the labels name at least two categories that train."""
    trainable = {c['name'] for c in config['categories'] if not c['excluded']}
    used = {category for category in Label().effective(folder['_id']).values() if category in trainable}
    return len(used) >= 2


def _create_job(folder: dict, user: dict | None, reason: str) -> dict:
    """A local Girder job for one round: ``run_job`` is what girder_jobs would call to run it."""
    job = Job().createLocalJob(module=__name__, function='run_job', title=f'Histomics Label: train {folder["name"]}',
                               type=JOB_TYPE, user=user, public=False,
                               kwargs={'project': str(folder['_id']), 'reason': reason})
    return Job().updateJob(job, status=JobStatus.QUEUED, log=f'Round requested: {reason}\n')


def _work(folder_id: ObjectId, user_id: ObjectId | None, job_id: ObjectId) -> None:
    """Run rounds until none is pending, one job each; always releases the project."""
    try:
        while True:
            run_job(Job().load(job_id, force=True))
            if not TrainingState().next_or_release(folder_id):
                return
            folder = Folder().load(folder_id, force=True)
            user = User().load(user_id, force=True) if user_id else None
            job_id = _create_job(folder, user, 'labels changed while the previous round ran')['_id']
    except Exception:  # the project must never stay marked running
        logger.exception('Training worker of project %s failed', folder_id)
        TrainingState().collection.update_one({'project': folder_id}, {'$set': {'running': False}})


def run_job(job: dict) -> None:
    """Run the round of ``job`` in this thread and record the outcome in the job."""
    folder_id = ObjectId(job['kwargs']['project'])
    job = Job().updateJob(job, status=JobStatus.RUNNING, progressTotal=1, progressCurrent=0,
                          progressMessage='training')
    try:
        folder = Folder().load(folder_id, force=True)
        document = run_round(folder)
    except Exception as exc:
        logger.info('Round of project %s failed: %s', folder_id, exc)
        Job().updateJob(job, status=JobStatus.ERROR, log=f'Error: {exc}\nThe previous round stays in place.\n')
        return
    from ..projects.publishing import publish_soon

    publish_soon(folder_id)
    Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1, progressMessage='done',
                    log=f'Round {document["number"]}: {document["labelsUsed"]} labels, {_accuracy_note(document)}'
                        f'{_change_note(document)}; publishing the annotations\n')


def audit_keys(folder: dict, items: list[dict]) -> list[str]:
    """The key of each slide's audit draws: project and slide ids, so the sample never moves."""
    return [f'{folder["_id"]}/{item["_id"]}' for item in items]


def _camel_accuracy(accuracy: dict | None) -> dict | None:
    """A round's cross-validated ``accuracy`` (or ``audit_accuracy``) as the REST API spells it (None for image
    models, while a class has a single label, or before the first audited label)."""
    if accuracy is None:
        return None
    return {'balancedAccuracy': accuracy['balanced_accuracy'], 'low': accuracy['low'], 'high': accuracy['high'],
            'labels': accuracy['labels'],
            **{key: accuracy[key] for key in ('folds', 'accuracy') if key in accuracy}}


def _camel_change(change: dict | None) -> dict | None:
    """A round's ``predictions_changed`` as the REST API spells it."""
    if change is None:
        return None
    return {'changed': change['changed'], 'segments': change['segments'], 'share': change['share'],
            'maxShift': change['max_shift']}


def _accuracy_note(document: dict) -> str:
    """The round's accuracy for its job log: cross-validated with its interval, or why there is none."""
    accuracy = document.get('accuracy')
    if accuracy is None:
        return 'no cross-validated accuracy (an image model, or a category with a single label)'
    return (f'cross-validated balanced accuracy {accuracy["balancedAccuracy"]:.0%} '
            f'(95 % interval {accuracy["low"]:.0%}–{accuracy["high"]:.0%}, {accuracy["folds"]} folds)')


def _change_note(document: dict) -> str:
    """What the round changed, for its job log: the share of predictions that moved, and a warning when new labels
    left the model as it was (a round must learn from its labels; that is a bug to report, not a result)."""
    change = document.get('predictionsChanged')
    if not change:
        return ''
    note = f'; predictions changed on {change["changed"]} of {change["segments"]} segments ({change["share"]:.1%})'
    if document.get('modelUnchanged'):
        logger.warning('Round %s of project %s did not change the model although the labels changed',
                       document['number'], document['project'])
        note += '; WARNING: the labels changed but the model did not: please report this as a bug'
    return note


def project_suggestions(folder: dict, limit: int | None = None) -> list[dict]:
    """The next ``limit`` (default: the project's ``batchSize``) unlabeled segments across the project's slides, by
    its certainty metric; a 400 while the metric cannot rank yet (no trained round for a model-based one)."""
    config = folders.config_of(folder)
    limit = config['batchSize'] if limit is None else limit
    if not 1 <= limit <= MAX_SUGGESTIONS:
        raise ValidationException(f'limit must be between 1 and {MAX_SUGGESTIONS}', 'limit')
    try:
        slides = segmented_slides(folder, config)
        if not slides:
            return []
        rep = representation(folders.pipeline_config(folder, slides[0][0], config))
        found = suggest_across([(str(path), labels) for _, path, labels in slides], config['certainty'], limit,
                               config['seed'], rep=rep, embedding_key=config['extractor'],
                               audit_keys=audit_keys(folder, [item for item, _, _ in slides]),
                               audit_every=config['auditEvery'])
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc)) from exc
    result = []
    for suggestion in found:
        item = slides[suggestion.pop('slide')][0]
        result.append({'item': str(item['_id']), 'itemName': item['name'], **suggestion,
                       'region': suggestion['bbox_base'],
                       'thumbnail': folders.thumbnail_url(item['_id'], suggestion['bbox_base'])})
    return result
