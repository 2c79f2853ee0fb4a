"""Segment generation for a project's slides, as Girder jobs whose progress shows in the job list.

Each slide's job runs the SuperpixelClassification pipeline (segments and features, no labels: the same code the
Slicer CLI runs) in a child process, so a crash or a memory blow-up in the engine cannot take Girder down, and reads
its Slicer progress tags to update the job. The child runs on the server, or on a girder_worker worker with the
``girder_worker`` executor (``jobs.remote``: the setting ``EXECUTOR``), which sends the store back through Girder, or in
the CLI image run through slicer_cli_web with the ``cli_image`` executor (``jobs.cli_image_segments``: the job panel's
path, for a DSA whose workers run Docker). The store is written atomically by the engine, so a failed job leaves the
slide as it was. Then the segment-id image is uploaded as a large-image item in the project's ``SEGMENTS_FOLDER``
(pixelmap annotations refer to it by id).

Jobs go through the server's heavy-work queue (``jobs.queue``): each server process runs at most its limit of
them (one by default: a job's dask cluster uses every core), one per slide at a time, and a job left by a stopped
server runs again; cancel and the time limit kill its child process.

Segmentations are versioned: when a slide's segments change, the new ones are made beside its store, and a labeled
slide keeps its store and labels until the admin applies the carry-over report (``projects.resegmentation``).
The slide is named by its Girder file, not its path, so moving the assetstore changes nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from bson.objectid import ObjectId
from girder.exceptions import ValidationException
from girder.models.file import File
from girder.models.folder import Folder
from girder.models.item import Item
from girder.models.upload import Upload
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job
from girder_large_image.models.image_item import ImageItem

from ..core.io.store import SlideStore
from ..core.pipeline import PipelineConfig, representation, same_segmentation
from ..projects import folders, resegmentation
from ..projects.segment_images import SEGMENT_IMAGE_FORMAT_KEY, SEGMENT_IMAGE_KEY, segments_folder, share_segment_images
from ..settings import HEAVY_JOBS, WORKER_JOBS, heavy_work_executor
from . import queue, remote
from .workers.child import run_segments_child

logger = logging.getLogger(__name__)
JOB_TYPE = 'histomics_label.segments'
"""Item metadata key on a slide naming the item id of its segment-id image."""
KIND = 'segments'
"""The heavy-work queue's kind for a slide's segments and features."""


def slide_pipeline(folder: dict, item: dict, config: dict, user: dict | None = None) -> PipelineConfig:
    """The engine's configuration for the slide, its files named by their Girder files (``file_identity``), so that
    moving or remounting the assetstore leaves the slide's segments current."""
    pipeline = folders.pipeline_config(folder, item, config, user=user)
    pipeline.slide_file = file_identity(item['largeImage']['fileId'])
    imported = folders.imported_segmentation(folder, item, user)
    if imported is not None:
        pipeline.label_image_file = file_identity(imported.image['largeImage']['fileId'])
    return pipeline


def file_identity(file_id) -> dict:
    """A Girder file as segment parameters name it: its id and size, and its sha512 where Girder computed one."""
    file = File().load(file_id, force=True)
    if file is None:
        raise ValidationException(f'File {file_id} is missing', 'item')
    identity = {'file': str(file['_id']), 'size': int(file['size'])}
    if file.get('sha512'):
        identity['sha512'] = file['sha512']
    return identity


def slide_is_current(folder: dict, item: dict, config: dict, path: Path | None = None) -> bool:
    """Whether the slide's store (or the store at ``path``) has segments and features made with the project's
    current settings."""
    path = folders.store_path(folder, item) if path is None else path
    if not path.exists():
        return False
    pipeline = slide_pipeline(folder, item, config)
    with SlideStore(path) as store:
        return (same_segmentation(store.segment_params, pipeline.segment_params(pipeline.slide_reader()))
                and representation(pipeline).is_current(store)
                and (not pipeline.embedding_map or pipeline.extractor in store.embedding_map_names()))


def start_segment_jobs(folder: dict, user: dict, force: bool = False) -> list[dict]:
    """A job for every slide that lacks current segments (every slide with ``force``); returns what happened.

    A slide whose new segmentation waits for the admin to apply it (``projects.resegmentation``) is ``waiting``
    while that segmentation is current.
    """
    config = folders.config_of(folder)
    result = []
    for item in folders.slides(folder):
        key = str(item['_id'])
        if not force and slide_is_current(folder, item, config):
            result.append({'item': key, 'name': item['name'], 'status': 'current'})
            continue
        if (not force and resegmentation.waiting(folder, item)
                and slide_is_current(folder, item, config, resegmentation.pending_path(folder, item))):
            result.append({'item': key, 'name': item['name'], 'status': 'waiting'})
            continue
        result.append({'item': key, 'name': item['name'], **_queue(folder, item, user)})
    return result


def _queue(folder: dict, item: dict, user: dict) -> dict:
    """Queue the slide's job: ``started`` with its job and place in the queue, or the ``queued`` / ``running`` job
    already there for the slide."""
    kwargs = {'project': str(folder['_id']), 'item': str(item['_id'])}
    api_url = remote.request_api_url()  # where slicer_cli_web is called (the cli_image executor)
    if api_url:
        kwargs['apiUrl'] = api_url
    job = Job().createLocalJob(module=__name__, function='run_job', title=f'Histomics Label: segments of '
                               f'{item["name"]}', type=JOB_TYPE, user=user, public=False, kwargs=kwargs)
    job = Job().updateJob(job, status=JobStatus.QUEUED)
    task_job = remote.prepare(job, user) if heavy_work_executor() == 'girder_worker' else None
    entry, new = queue.submit(KIND, f'{KIND}:{item["_id"]}', job, folder['_id'], item['_id'])
    if not new:
        for unused in filter(None, (task_job, job)):
            Job().remove(unused)
        return {'status': entry['status'], 'job': str(entry['job']), 'position': queue.position(entry['job'])}
    return {'status': 'started', 'job': str(job['_id']), 'position': queue.position(job['_id'])}


def wait_for_segment_jobs(timeout: float = 600.0) -> None:
    """Block until no segment job is queued or running (tests and the demo use it)."""
    queue.wait_until_idle(timeout, kinds=(KIND,))


def run_job(job: dict, context: queue.WorkContext) -> None:
    """Make the segments and features of the job's slide in a child process, then publish the segment image.

    A slide that has a store already gets its new segmentation beside it (``projects.resegmentation``) when the
    segments change: a slide without labels swaps to it at once, a labeled slide keeps its store and labels until
    the admin applies the carry-over report.
    """
    folder = Folder().load(job['kwargs']['project'], force=True)
    item = Item().load(job['kwargs']['item'], force=True)
    if folder is None or item is None:
        queue.fail(job, 'Error: the project or the slide was deleted while the job waited\n')
        return
    job = Job().updateJob(job, status=None if job['status'] == JobStatus.RUNNING else JobStatus.RUNNING,
                          progressTotal=1000, progressCurrent=0, progressMessage='starting')
    try:
        requester = User().load(job['userId'], force=True)  # an imported segment image is read with their access
        pipeline = slide_pipeline(folder, item, folders.config_of(folder), user=requester)
        versioned = changes_segments(pipeline)
        if versioned:
            pipeline.store = str(resegmentation.pending_path(folder, item))
        else:
            resegmentation.discard(folder, item)  # the settings went back to the store's: nothing waits any more
        executor = heavy_work_executor()
        if executor == 'girder_worker':
            remote.run_segments(job, folder, item, pipeline, context)
        elif executor == 'cli_image':
            from .cli_image_segments import run_segments

            run_segments(job, folder, item, pipeline, context)
        else:
            _run_pipeline_child(job, pipeline, context)
        with SlideStore(pipeline.store) as store:
            count = store.n_segments
        if versioned:
            counts = resegmentation.prepare(folder, item)
            if resegmentation.has_labels(folder, item):
                Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1000, progressMessage='done',
                                log=f'{count} segments with features, waiting to be applied: of the slide\'s '
                                    f'labels {counts["moved"]} move, {counts["ambiguous"]} are ambiguous and '
                                    f'{counts["dropped"]} are dropped (see the carry-over report)\n')
                return
            resegmentation.apply(folder, item, 'keep')
        image = publish_segment_image(folder, item, job)
    except queue.WorkStopped:
        context.record_stop(job)
        return
    except Exception as exc:
        logger.info('Segment job for %s failed: %s', item['name'], exc)
        Job().updateJob(job, status=JobStatus.ERROR, log=f'Error: {exc}\n')
        return
    from .rounds import after_segments

    training = after_segments(folder, requester, job['_id'])
    started = '; a round was started for the labels written meanwhile' if training else ''
    Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1000, progressMessage='done',
                    log=f'{count} segments with features; segment image item {image["_id"]}{started}\n')


def changes_segments(pipeline: PipelineConfig) -> bool:
    """Whether the slide has a store whose segments differ from those ``pipeline`` makes."""
    if not os.path.exists(pipeline.store):
        return False
    with SlideStore(pipeline.store) as store:
        return not same_segmentation(store.segment_params, pipeline.segment_params(pipeline.slide_reader()))


def apply_resegmentation(folder: dict, item_id: str, unmatched: str, user: dict) -> dict:
    """Apply the slide's waiting segmentation (``projects.resegmentation.apply``), publish its segment image and
    the project's annotations for the new segments, and start a round (as ``training``): the slide's rounds went
    with its old segments, and until a round predicts the new ones, its suggestions are drawn at random."""
    item = folders.slide_of(folder, item_id)
    result = resegmentation.apply(folder, item, unmatched)
    image = publish_segment_image(folder, Item().load(item['_id'], force=True))
    from ..projects.publishing import publish_soon
    from .rounds import round_if_trainable

    publish_soon(folder['_id'])
    training = round_if_trainable(folder, folders.config_of(folder), user, f'slide {item["name"]} segmented again')
    return {**result, 'segmentImage': str(image['_id']), 'training': training}


def _run_pipeline_child(job: dict, pipeline: PipelineConfig, context: queue.WorkContext) -> None:
    """Run the pipeline in a child interpreter of the server, relaying its progress into the job; raise with its
    error, or ``WorkStopped`` when the job was cancelled or ran past its time limit (the child is killed)."""
    progress = {'job': job}

    def report(fraction: float, message: str) -> None:
        progress['job'] = Job().updateJob(progress['job'], progressCurrent=int(fraction * 1000),
                                          progressMessage=message)

    stopped = run_segments_child(asdict(pipeline), report, context.stop_reason, queue.POLL_S)
    if stopped:
        context.stopped = stopped
        raise queue.WorkStopped(f'Stopped: {stopped}')


def publish_segment_image(folder: dict, item: dict, job: dict | None = None) -> dict:
    """Upload the slide's segment-id image (RGB-encoded pyramid TIFF) as a large image; returns its item.

    The image carries every segment's outline (the doubled encoding) so that viewers can draw segment borders,
    unless there are too many segments for three 8-bit channels to hold twice over. It is named by the slide's
    item id (two slides ``a.svs`` and ``a.ndpi`` have two images), and the slide's previous image is removed only
    once the new one is uploaded and the slide names it.
    """
    from ..core.io.label_tiff import MAX_PIXEL_VALUE, write_segment_tiff

    owner = User().load(folder['creatorId'], force=True) if folder.get('creatorId') else None
    target = segments_folder(folder, owner)
    share_segment_images(folder)
    name = f'{item["_id"]}.segments.tiff'
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / name
        with SlideStore(folders.store_path(folder, item)) as store:
            boundaries = 2 * store.n_segments + 1 <= MAX_PIXEL_VALUE
            write_segment_tiff(store.label_raster, path, boundaries=boundaries)
        with open(path, 'rb') as handle:
            file = Upload().uploadFromFile(handle, path.stat().st_size, name, parentType='folder', parent=target,
                                           user=owner, mimeType='image/tiff')
    image = Item().load(file['itemId'], force=True)
    if not image.get('largeImage'):
        ImageItem().createImageItem(image, file, user=owner, createJob=False)
        image = Item().load(file['itemId'], force=True)
    meta = item.get('meta') or {}
    record = meta.get(folders.IMPORTED_SEGMENTATION_KEY)
    previous = meta.get(SEGMENT_IMAGE_KEY)
    if isinstance(record, dict) and previous == record.get('image'):
        previous = None
    Item().setMetadata(item, {SEGMENT_IMAGE_KEY: str(image['_id']),
                              SEGMENT_IMAGE_FORMAT_KEY: {'boundaries': boundaries}})
    for old in _previous_images(target, name, previous, image['_id']):
        Item().remove(old)
    if image['name'] != name:  # Girder renamed the upload while the old image held the name
        image['name'] = name
        image = Item().save(image)
    return image


def _previous_images(target: dict, name: str, previous: str | None, new_id) -> list[dict]:
    """The slide's earlier segment images in the project's segment folder: the one it named before (``previous``:
    never the superpixel image an imported slide's segments are read from), and any left under its name (an upload
    whose slide update failed)."""
    found = {old['_id']: old for old in Item().find({'folderId': target['_id'], 'name': name})}
    if previous and ObjectId.is_valid(previous):
        old = Item().load(ObjectId(previous), force=True)
        if old is not None and old['folderId'] == target['_id']:
            found[old['_id']] = old
    found.pop(new_id, None)
    return list(found.values())


def _limit_setting() -> str:
    return HEAVY_JOBS if heavy_work_executor() == 'server' else WORKER_JOBS


queue.register(KIND, run_job, limit_setting=_limit_setting, not_run=remote.end_unsent)
