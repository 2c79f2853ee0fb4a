"""Training rounds of a project on the server: one at a time, recorded for the learning curve, as Girder jobs.

A round trains the project's model on the effective labels of every segmented slide and predicts every segment
(``core.rounds.train_slides_round``), as work of the heavy-work queue (``queue``, kind ``round``, at most
``TRAINING_JOBS`` rounds at once per server process, apart from the segment work), shown in the job list: the linear
head on stored embeddings in the queue's thread itself (seconds), a CNN on patches in a child process
(``workers.rounds``) that a cancel or the time limit kills, so minutes of training cannot slow or crash Girder. With
the ``girder_worker`` or ``cli_image`` executor the linear head trains in that child process too (the web server
never loads torch), and with ``girder_worker`` a CNN on a worker (``remote_rounds``).
Rounds of a project never run twice at once: a request while one is queued or runs marks the project *pending*,
and the running round is followed by one more when it finishes, so a burst of requests costs at most one extra
round and no label is left out. A failed round leaves every slide's previous round (model and predictions) in
place. A server killed mid-round leaves its work in the queue, which runs it again after the restart.

The running/pending flags live in one document per project, changed only by atomic conditional updates; at load
a server clears those no queued round holds (left by a server of before the queue).
"""

from __future__ import annotations

import datetime
import logging
import time

from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.folder import Folder
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.acquisition.served import served_suggestions
from ..core.acquisition.suggestions import MC_SAMPLES, audited_labels
from ..core.errors import HistomicsLabelError
from ..core.models import models
from ..core.pipeline import model_options
from ..core.progress import Progress, no_progress
from ..core.rounds import train_slides_round
from ..models.effective_labels import effective_labels
from ..models.label import Label, LabelEvent, by_slide
from ..models.round import Round
from ..models.training_state import TrainingState
from ..models.work_queue import HeavyWork
from ..projects import folders, notify
from ..projects.outlines import segment_pictures
from ..projects.segmented import rankings_folder, segmented_slides
from ..settings import TRAINING_JOBS, heavy_work_executor
from . import queue, rankings, remote, remote_rounds
from .round_requests import round_outputs, round_request
from .segments import KIND as SEGMENTS
from .workers.child import ChildFailed, run_round_child
from .workers.rounds import store_outputs

logger = logging.getLogger(__name__)
JOB_TYPE = 'histomics_label.train'
KIND = 'round'
"""The queue's kind of a project's training work, keyed by project."""
MAX_SUGGESTIONS = 1000
"""Most suggestions one request returns."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def request_round(folder: dict, user: dict | None, reason: str) -> dict:
    """Queue a round, or mark one wanted after the queued or running one; returns what happened and the job, if
    queued now."""
    if not TrainingState().acquire(folder['_id']):
        return {'status': 'queued'}
    job = _create_job(folder, user, reason)
    queue.submit(KIND, f'{KIND}:{folder["_id"]}:{job["_id"]}', job, folder['_id'])
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


def wait_for_rounds(folder_id: ObjectId, timeout: float = 3600.0) -> None:
    """Block until the project's rounds (and any wanted after them) are done (``rankings``: not what they leave to
    rank after them)."""
    deadline = time.monotonic() + timeout
    while HeavyWork().collection.count_documents({'kind': KIND, 'project': folder_id}):
        if time.monotonic() > deadline:
            raise TimeoutError(f'the rounds of project {folder_id} still run after {timeout:g} s')
        time.sleep(0.1)


def labels_changed(folder: dict, config: dict, user: dict, changed: int) -> dict | None:
    """Count new labels; start (or queue) a round when ``retrainEvery`` of them arrived since the last one.

    While a round runs, the next one is only marked wanted: whether the labels can train is checked when it starts
    (``run_rounds``), not in every label write meanwhile, since that check reads every label of the project."""
    if changed <= 0:
        return None
    count = TrainingState().count_labels(folder['_id'], changed)
    every = config.get('retrainEvery', 0)
    if not every or count < every:
        return None
    if TrainingState().rerun_if_running(folder['_id']):
        return {'status': 'queued'}
    if segments_in_progress(folder['_id']):  # its slides may lack features until then: the round would fail
        return {'status': 'waiting', 'message': 'A round starts once the project\'s segments are made.'}
    return round_if_trainable(folder, config, user, f'{count} new labels')


def segments_in_progress(project_id: ObjectId, besides: ObjectId | None = None) -> bool:
    """Whether segment work of the project (other than job ``besides``) is queued or running."""
    query = {'kind': SEGMENTS, 'project': project_id, **({'job': {'$ne': besides}} if besides else {})}
    return HeavyWork().collection.count_documents(query, limit=1) > 0


def after_segments(folder: dict, user: dict | None, job_id: ObjectId) -> dict | None:
    """At the end of segment job ``job_id``: the round that label writes asked for while segments were being made
    (``labels_changed`` held it back), once no other segment work of the project is left; else None."""
    config = folders.config_of(folder)
    every = config.get('retrainEvery', 0)
    if not every or TrainingState().state(folder['_id'])['labelsSince'] < every \
            or segments_in_progress(folder['_id'], besides=job_id):
        return None
    return round_if_trainable(folder, config, user, 'labels written while segments were made')


def round_if_trainable(folder: dict, config: dict, user: dict | None, reason: str) -> dict | None:
    """Start (or queue) a round when the labels can train one; what ``request_round`` answers, or None."""
    if not _trainable(folder, config):
        return None
    return request_round(folder, user, reason)


def with_retraining(folder: dict, user: dict, written: dict) -> dict:
    """The answer of a label write (``written``, with how many labels it ``changed``) and the round it started as
    ``training``: None until ``retrainEvery`` new labels have arrived."""
    changed = written.get('changed', 0)
    return {**written, 'training': labels_changed(folder, folders.config_of(folder), user, changed)}


def run_round(folder: dict, context: queue.WorkContext | None = None, progress: Progress = no_progress) -> dict:
    """Train one round now, in this thread or where the module's notes say (a child process or a worker, stopped
    when ``context`` says so), telling a linear round's stages to ``progress`` when it trains here; returns the
    recorded round. Raises on failure, changing nothing."""
    config = folders.config_of(folder)
    slides, stale, rep = segmented_slides(folder, config)
    if not slides:
        raise HistomicsLabelError('No slide of the project has segments and features yet; generate them first')
    pipeline = folders.pipeline_config(folder, slides[0][0], config)
    stores = [(str(path), labels) for _, path, labels in slides]
    outputs = round_outputs(folder, config)
    on_patches = models.get(config['model']).representation == 'image'  # a CNN: minutes of torch
    audited = None if on_patches else audited_labels(stores, audit_keys(folder, [item for item, _, _ in slides]))
    executor = heavy_work_executor()  # production (not 'server'): the web server never loads torch
    if on_patches or executor != 'server':
        request = round_request(stores, pipeline, config['model'], outputs, audited)
        if on_patches and executor == 'girder_worker':
            numbers, metrics, changes = remote_rounds.train_on_worker(
                Job().load(context.entry['job'], force=True), folder, [path for path, _ in stores], request, context)
        else:
            numbers, metrics, changes = _train_in_child(request, context)
    else:
        records = train_slides_round(stores, rep, config['model'], model_options(pipeline), progress,
                                     audited=audited)
        numbers, metrics = [record.number for record in records], records[0].metrics
        changes = [record.metrics.get('slide_predictions_changed') for record in records]
        store_outputs(stores, rep, outputs)
    number = (Round().latest(folder['_id']) or {}).get('number', 0)
    created = _now()
    document = {'project': folder['_id'], 'number': number + 1, 'created': created, 'model': config['model'],
                'labelingMinutes': LabelEvent().labeling_minutes(folder['_id'], created),
                'feature': config['feature'], 'labelsUsed': metrics['labels_used'], 'staleLabels': stale,
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


def _train_in_child(request: dict, context: queue.WorkContext | None) -> tuple[list[int], dict, list[dict | None]]:
    """Train the round ``request`` describes in a child interpreter (``workers.rounds``), which also stores the
    round's rankings and indexes; raise with its error when it fails, ``WorkStopped`` when ``context`` stopped
    it."""
    try:
        answer = run_round_child(request, context.stop_reason if context is not None else lambda: None, queue.POLL_S)
    except ChildFailed as exc:
        raise HistomicsLabelError(str(exc)) from None
    if isinstance(answer, str):
        context.stop_with(answer)
    return answer['numbers'], answer['metrics'], answer['slideChanges']


def _trainable(folder: dict, config: dict) -> bool:
    """Whether the labels name at least two categories that train."""
    trainable = {c['name'] for c in config['categories'] if not c['excluded']}
    used = {category for category in Label().effective(folder['_id']).values() if category in trainable}
    return len(used) >= 2


def _create_job(folder: dict, user: dict | None, reason: str, api_url: str | None = None) -> dict:
    """A local Girder job for one round: ``run_job`` is what girder_jobs would call to run it. It records the API
    URL workers reach Girder at (``api_url``, else the request's), for a round trained on a worker."""
    kwargs = {'project': str(folder['_id']), 'reason': reason}
    api_url = api_url or remote.request_api_url()
    if api_url:
        kwargs['apiUrl'] = api_url
    job = Job().createLocalJob(module=__name__, function='run_job', title=f'Histomics Label: train {folder["name"]}',
                               type=JOB_TYPE, user=user, public=False, kwargs=kwargs)
    return Job().updateJob(job, status=JobStatus.QUEUED, log=f'Round requested: {reason}\n')


def run_rounds(job: dict, context: queue.WorkContext) -> None:
    """The queue's handler: run the round of ``job``, then one more round, each its own job, as long as one was
    asked for meanwhile and the labels can still train one. The project is released at the end (by
    ``next_or_release``, or here when the round was stopped or failed unexpectedly), never after a later request
    took it."""
    folder_id = ObjectId(job['kwargs']['project'])
    TrainingState().hold(folder_id)  # run again after a restart, which cleared the flags
    try:
        while True:
            run_job(job, context)
            if context.stopped:
                break
            if not TrainingState().next_or_release(folder_id):
                return
            folder = Folder().load(folder_id, force=True)
            if folder is None or not _trainable(folder, folders.config_of(folder)):
                break  # deleted, or the labels asked for it no longer name two categories that train
            user = User().load(job['userId'], force=True) if job.get('userId') else None
            job = _create_job(folder, user, 'labels changed while the previous round ran', job['kwargs'].get('apiUrl'))
            context.follow(job)
    except Exception:
        logger.exception('Training rounds of project %s failed', folder_id)
    TrainingState().release(folder_id)


def _not_run(entry: dict) -> None:
    """A queued round cancelled (or given up): the project no longer waits for it."""
    TrainingState().release(entry['project'])


def run_job(job: dict, context: queue.WorkContext | None = None) -> None:
    """Run the round of ``job`` in this thread and record the outcome in the job; once recorded, the functions it
    left are queued to rank (``rankings``)."""
    folder_id = ObjectId(job['kwargs']['project'])
    job = Job().updateJob(job, status=JobStatus.RUNNING, progressTotal=1, progressCurrent=0,
                          progressMessage='training')
    folder = Folder().load(folder_id, force=True)
    try:
        if folder is None:
            raise HistomicsLabelError('the project was deleted while the round waited')
        notify.training(folder, 'running')
        document = run_round(folder, context, _stage_reporter(job, context))
    except queue.WorkStopped:
        context.record_stop(job)
        notify.training(folder, 'stopped')
        return
    except Exception as exc:
        logger.info('Round of project %s failed: %s', folder_id, exc)
        Job().updateJob(job, status=JobStatus.ERROR, log=f'Error: {exc}\nThe previous round stays in place.\n')
        if folder is not None:
            notify.training(folder, 'failed', message=str(exc))
        return
    notify.training(folder, 'done', document)
    from ..projects.publishing import publish_soon

    publish_soon(folder_id)
    rankings.rank_after(folder, job.get('userId'))
    log = (f'Round {document["number"]}: {document["labelsUsed"]} labels, {_accuracy_note(document)}'
           f'{_change_note(document)}; publishing the annotations\n{_stale_note(document)}')
    if Job().load(job['_id'], force=True)['status'] == JobStatus.CANCELED:  # cancelled as it ended: it stands
        Job().updateJob(job, log=log)
    else:
        Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1, progressMessage='done', log=log)


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


def _stage_reporter(job: dict, context: queue.WorkContext | None) -> Progress:
    """A linear round's progress: each stage in the job's progress message; once the job was cancelled (or ran past
    its time limit), ``WorkStopped`` at the next stage that comes before the round writes anything, instead of after
    the whole round (which takes minutes on a large project)."""
    def report(done: int, total: int, message: str = '') -> None:
        if context is not None and done < total:
            context.stop_if_asked()
        Job().updateJob(job, progressMessage=message)
    return report


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


def _stale_note(document: dict) -> str:
    """A line of the job log on the stale labels the round left out, or nothing when there were none."""
    stale = document.get('staleLabels')
    if not stale:
        return ''
    return (f'{stale} labeled segment{"s" if stale != 1 else ""} left out: the segment id is beyond its slide\'s '
            'segments (stale; GET .../stale_labels lists them, an admin can delete them)\n')


def project_suggestions(folder: dict, limit: int | None = None, pending: list[dict] | None = None) -> list[dict]:
    """The next ``limit`` (default: the project's ``batchSize``) unlabeled segments across the project's slides, by
    its certainty metric, served from the ranking the last round stored (``core.acquisition.served``); a 400 while
    the metric cannot rank yet (no trained round for a model-based one).

    ``pending`` (``{item, segment}``) are segments being labeled right now, ranked as if they were labeled: the
    guided view asks for its next row while the labeler answers the row's last card, and gets the row the server
    gives once that label is stored, the audit sample's picks included (``audit.next_picks`` depends on which
    members are labeled)."""
    config = folders.config_of(folder)
    limit = config['batchSize'] if limit is None else limit
    if not 1 <= limit <= MAX_SUGGESTIONS:
        raise ValidationException(f'limit must be between 1 and {MAX_SUGGESTIONS}', 'limit')
    labels = effective_labels(folder['_id'])
    trains = [category['name'] for category in config['categories'] if not category['excluded']]
    for entry in (pending or []) if trains else []:  # which category is still to come: any that trains
        labels.setdefault((ObjectId(entry['item']), int(entry['segment'])), trains[0])
    try:
        slides, _, rep = segmented_slides(folder, config, by_slide(labels))
        if not slides:
            return []
        found = served_suggestions(rankings_folder(folder), [(str(path), labels) for _, path, labels in slides],
                                   config['certainty'], limit, config['seed'], rep=rep,
                                   embedding_key=config['extractor'], mc_samples=MC_SAMPLES,
                                   audit_keys=audit_keys(folder, [item for item, _, _ in slides]),
                                   audit_every=config['auditEvery'], batch=config['batchSize'])
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc)) from exc
    pictures = {position: segment_pictures(folder, slides[position][0], [
        suggestion['segment'] for suggestion in found if suggestion['slide'] == position])
        for position in {suggestion['slide'] for suggestion in found}}
    result = []
    for suggestion in found:
        position = suggestion.pop('slide')
        item = slides[position][0]
        result.append({'item': str(item['_id']), 'itemName': item['name'], **suggestion,
                       'region': suggestion['bbox_base'], **pictures[position][suggestion['segment']]})
    return result


queue.register(KIND, run_rounds, TRAINING_JOBS, not_run=_not_run)
