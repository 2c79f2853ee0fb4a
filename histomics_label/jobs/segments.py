"""Segment generation for a project's slides, as Girder jobs whose progress shows in the job list.

Each slide's job runs the SuperpixelClassification pipeline (segments and features, no labels: the same code the
Slicer CLI runs) in a child process of the server, so a crash or a memory blow-up in the engine cannot take Girder
down, and reads its Slicer progress tags to update the job. The store is written atomically by the engine, so a
failed job leaves the slide as it was. Then the segment-id image is uploaded as a large-image item in the project's
``SEGMENTS_FOLDER`` (pixelmap annotations refer to it by id). In a DSA with Docker the same pipeline runs from the
job panel through slicer_cli_web and the CLI image instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from girder.models.folder import Folder
from girder.models.item import Item
from girder.models.upload import Upload
from girder.models.user import User
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job
from girder_large_image.models.image_item import ImageItem

from ..core.io.store import SlideStore
from ..projects import folders
from ..projects.segment_images import SEGMENT_IMAGE_FORMAT_KEY, SEGMENT_IMAGE_KEY, SEGMENTS_FOLDER, share_segment_images
from .workers.errors import child_error

logger = logging.getLogger(__name__)
JOB_TYPE = 'histomics_label.segments'
"""Item metadata key on a slide naming the item id of its segment-id image."""
_PROGRESS = re.compile(r'<filter-progress>([0-9.]+)</filter-progress>')
_COMMENT = re.compile(r'<filter-comment>(.*?)</filter-comment>')
_running: set[str] = set()
_running_lock = threading.Lock()


def slide_is_current(folder: dict, item: dict, config: dict) -> bool:
    """Whether the slide's store has segments and features made with the project's current settings."""
    path = folders.store_path(folder, item)
    if not path.exists():
        return False
    pipeline = folders.pipeline_config(folder, item, config)
    from ..core.pipeline import representation

    with SlideStore(path) as store:
        slide = pipeline.slide_reader()
        return (store.segment_params == pipeline.segment_params(slide) and representation(pipeline).is_current(store)
                and (not pipeline.embedding_map or pipeline.extractor in store.embedding_map_names()))


def start_segment_jobs(folder: dict, user: dict, force: bool = False) -> list[dict]:
    """A job for every slide that lacks current segments (every slide with ``force``); returns what happened."""
    config = folders.config_of(folder)
    result = []
    for item in folders.slides(folder):
        key = str(item['_id'])
        if not force and slide_is_current(folder, item, config):
            result.append({'item': key, 'name': item['name'], 'status': 'current'})
            continue
        with _running_lock:
            if key in _running:
                result.append({'item': key, 'name': item['name'], 'status': 'running'})
                continue
            _running.add(key)
        job = Job().createLocalJob(module=__name__, function='run_job', title=f'Histomics Label: segments of '
                                   f'{item["name"]}', type=JOB_TYPE, user=user, public=False,
                                   kwargs={'project': str(folder['_id']), 'item': key})
        job = Job().updateJob(job, status=JobStatus.QUEUED)
        threading.Thread(target=_run_and_release, args=(job, key), daemon=True,
                         name=f'histomics-label-segments-{key}').start()
        result.append({'item': key, 'name': item['name'], 'status': 'started', 'job': str(job['_id'])})
    return result


def wait_for_segment_jobs(timeout: float = 600.0) -> None:
    """Block until no segment job of this server runs (tests and the demo use it)."""
    for thread in [t for t in threading.enumerate() if t.name.startswith('histomics-label-segments-')]:
        thread.join(timeout)


def _run_and_release(job: dict, key: str) -> None:
    try:
        run_job(job)
    finally:
        with _running_lock:
            _running.discard(key)


def run_job(job: dict) -> None:
    """Make the segments and features of the job's slide in a child process, then publish the segment image."""
    folder = Folder().load(job['kwargs']['project'], force=True)
    item = Item().load(job['kwargs']['item'], force=True)
    job = Job().updateJob(job, status=JobStatus.RUNNING, progressTotal=1000, progressCurrent=0,
                          progressMessage='starting')
    try:
        pipeline = folders.pipeline_config(folder, item, folders.config_of(folder))
        _run_pipeline_child(job, pipeline)
        image = publish_segment_image(folder, item, job)
        with SlideStore(pipeline.store) as store:
            count = store.n_segments
    except Exception as exc:
        logger.info('Segment job for %s failed: %s', item['name'], exc)
        Job().updateJob(job, status=JobStatus.ERROR, log=f'Error: {exc}\n')
        return
    Job().updateJob(job, status=JobStatus.SUCCESS, progressCurrent=1000, progressMessage='done',
                    log=f'{count} segments with features; segment image item {image["_id"]}\n')


def _run_pipeline_child(job: dict, pipeline) -> None:
    """Run the pipeline in a child interpreter, relaying its progress into the job; raise with its error."""
    from dataclasses import asdict

    command = [sys.executable, '-m', 'histomics_label.jobs.workers.segments', json.dumps(asdict(pipeline))]
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as child:
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True)
        reader.start()
        message = 'segments'
        for line in child.stdout:
            comment = _COMMENT.search(line)
            if comment:
                message = comment.group(1)
            progress = _PROGRESS.search(line)
            if progress:
                job = Job().updateJob(job, progressCurrent=int(float(progress.group(1)) * 1000),
                                      progressMessage=message)
        child.wait()
        reader.join()
    if child.returncode != 0:
        raise RuntimeError(child_error(errors, child.returncode, 'the pipeline'))


def publish_segment_image(folder: dict, item: dict, job: dict | None = None) -> dict:
    """Upload the slide's segment-id image (RGB-encoded pyramid TIFF) as a large image; returns its item.

    The image carries every segment's outline (the doubled encoding) so that viewers can draw segment borders,
    unless there are too many segments for three 8-bit channels to hold twice over.
    """
    from ..core.io.label_tiff import MAX_PIXEL_VALUE, write_segment_tiff

    owner = User().load(folder['creatorId'], force=True) if folder.get('creatorId') else None
    target = Folder().createFolder(folder, SEGMENTS_FOLDER, reuseExisting=True, creator=owner,
                                   description='Segment-id images of the Histomics Label project (do not edit)')
    share_segment_images(folder)
    name = f'{Path(item["name"]).stem}.segments.tiff'
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / name
        with SlideStore(folders.store_path(folder, item)) as store:
            boundaries = 2 * store.n_segments + 1 <= MAX_PIXEL_VALUE
            write_segment_tiff(store.label_raster, path, boundaries=boundaries)
        previous = Item().findOne({'folderId': target['_id'], 'name': name})
        if previous is not None:
            Item().remove(previous)
        with open(path, 'rb') as handle:
            file = Upload().uploadFromFile(handle, path.stat().st_size, name, parentType='folder', parent=target,
                                           user=owner, mimeType='image/tiff')
    image = Item().load(file['itemId'], force=True)
    if not image.get('largeImage'):
        ImageItem().createImageItem(image, file, user=owner, createJob=False)
        image = Item().load(file['itemId'], force=True)
    Item().setMetadata(item, {SEGMENT_IMAGE_KEY: str(image['_id']),
                              SEGMENT_IMAGE_FORMAT_KEY: {'boundaries': boundaries}})
    return image
