"""A slide's segments and features made by the CLI image (the ``cli_image`` executor, ``settings.EXECUTOR``).

In a DSA whose workers run Docker, the plugin needs no package of its own on the workers: the slide's job sends the
image's SuperpixelClassification through slicer_cli_web's own run call, exactly what the job panel sends (the image
registered under ``settings.CLI_IMAGE``), with the project's settings and no labels, and its store as the one output,
uploaded into a folder of the run. slicer_cli_web makes the run's Girder job and girder_worker runs the container;
the slide's job shows the run's progress, then checks the uploaded store as an adopted one (``adopted_stores``: the
slide's file, the project's settings) and moves it into place. The run's folder is removed whatever happened.

The server's queue still decides when a slide's work starts; a cancel or the time limit cancels the run, and after a
server restart the slide's job waits on the run it had sent. A worker that dies leaves its run "running"
(girder_worker's Docker task does not beat as the plugin's own tasks do), so the slide's job ends at its time limit.
What the CLI cannot take from a Girder file is refused at once with the executor to use instead: segments imported
from another algorithm (a polygon file or a segment-id image on the server), weights on the server, the embedding map.
"""

from __future__ import annotations

from pathlib import Path

from bson.objectid import ObjectId
from girder.constants import AccessType
from girder.models.file import File
from girder.models.folder import Folder
from girder.models.item import Item
from girder.models.setting import Setting
from girder.models.token import Token
from girder.models.user import User
from girder_client import GirderClient, HttpError
from girder_jobs.constants import JobStatus
from girder_jobs.models.job import Job

from ..core.errors import HistomicsLabelError
from ..core.pipeline import PipelineConfig
from ..projects import folders
from ..projects.segment_images import segments_folder
from ..settings import CLI_IMAGE
from . import queue
from .adopted_stores import checked_store
from .remote import take_uploaded_store, wait_for_task, worker_api_url
from .workers.celery_plugin import STORE_NAME

CLI_NAME = 'SuperpixelClassification'
RUN_KEY = 'histomicsLabelCliRun'
"""Field of the slide's job recording the run it sent: the run's job and its output folder."""
AGAIN = 'make the segments again to run the CLI image again'
SENT = 'Sent to the CLI image: job '
"""How the slide's job log names the run's job (its id follows)."""


def run_segments(job: dict, folder: dict, item: dict, pipeline: PipelineConfig, context: queue.WorkContext) -> None:
    """Make ``pipeline.store`` with the CLI image; raise with the run's reason when it failed, ``WorkStopped`` when
    the slide's job was cancelled or ran past its time limit (the run is cancelled too)."""
    run_job, outputs = _earlier_run(job)
    try:
        if run_job is None:
            run_job, outputs = _send(job, folder, item, pipeline)
        wait_for_task(job, run_job, context, AGAIN, beats=False)
        _take_store(outputs, folder, item, Path(pipeline.store))
    finally:
        if outputs is not None:
            Folder().remove(outputs)


def unsupported(pipeline: PipelineConfig) -> str | None:
    """Why the CLI image cannot make the slide's store from Girder files alone, or None."""
    if pipeline.label_image or pipeline.segments != 'slic':
        return 'the slide\'s segments are imported from another algorithm'
    if pipeline.weights:
        return 'the extractor\'s weights are a file on the server'
    if pipeline.embedding_map:
        return 'the project shows the embedding map'
    return None


def _earlier_run(job: dict) -> tuple[dict | None, dict | None]:
    """The run an earlier start of the slide's job sent (after a server restart), with its output folder, while it
    can still end well; else (None, None), its leftover folder removed."""
    record = job.get(RUN_KEY) or {}
    run_job = record.get('job') and Job().load(record['job'], force=True)
    outputs = record.get('folder') and Folder().load(record['folder'], force=True)
    if run_job is not None and outputs is not None and run_job['status'] not in (JobStatus.ERROR,
                                                                                   JobStatus.CANCELED):
        return run_job, outputs
    if outputs is not None:
        Folder().remove(outputs)
    return None, None


def _send(job: dict, folder: dict, item: dict, pipeline: PipelineConfig) -> tuple[dict, dict]:
    """Send the run through slicer_cli_web's run call as the admin who asked for the work; the run's job and the
    folder its store is uploaded to, both recorded in the slide's job."""
    reason = unsupported(pipeline)
    if reason:
        raise HistomicsLabelError(f'The CLI image cannot make this slide\'s segments: {reason}; use the server or '
                                  f'girder_worker executor (the setting histomics_label.heavy_work_executor)')
    requester = User().load(job['userId'], force=True)
    cli = _registered_cli(requester)
    owner = User().load(folder['creatorId'], force=True) if folder.get('creatorId') else requester
    segments = segments_folder(folder, owner)
    outputs = Folder().createFolder(segments, f'{item["_id"]} store from the CLI image (removed when copied)',
                                    creator=owner, reuseExisting=True)
    parameters = {'image': str(item['largeImage']['fileId']), 'store': STORE_NAME,
                  'store_folder': str(outputs['_id']), **cli_parameters(pipeline)}
    token = Token().createToken(user=requester, days=1 / 24)  # for this call only: the run gets its own
    try:
        client = GirderClient(apiUrl=worker_api_url(job))
        client.setToken(str(token['_id']))
        sent = client.post(f'slicer_cli_web/cli/{cli}/run', parameters=parameters)
    except HttpError as exc:
        Folder().remove(outputs)
        raise HistomicsLabelError(f'slicer_cli_web did not start {CLI_NAME} of {Setting().get(CLI_IMAGE)}: '
                                  f'{exc.responseText or exc}') from None
    finally:
        Token().remove(token)
    run_job = Job().load(ObjectId(sent['_id']), force=True)
    Job().updateJob(job, log=f'{SENT}{run_job["_id"]} ({run_job["title"]})\n',
                    otherFields={RUN_KEY: {'job': run_job['_id'], 'folder': outputs['_id']}})
    return run_job, outputs


def cli_parameters(pipeline: PipelineConfig) -> dict:
    """The CLI's parameters (by their XML names) for the segments and features ``pipeline`` makes."""
    return {'segments': pipeline.segments, 'magnification': pipeline.magnification, 'radius': pipeline.radius,
            'compactness': pipeline.compactness, 'tileSize': pipeline.tile_size, 'feature': pipeline.feature,
            'extractor': pipeline.extractor, 'extractorModel': pipeline.extractor_model or '',
            'patchSize': pipeline.patch_size, 'device': pipeline.device, 'batchSize': pipeline.feature_batch_size,
            'numWorkers': pipeline.workers or 0}


def _registered_cli(user: dict) -> str:
    """The id of the image's SuperpixelClassification as slicer_cli_web registered it (a task item naming the
    image), or an error saying how to register it."""
    image = Setting().get(CLI_IMAGE)
    found = Item().findWithPermissions({'meta.slicerCLIType': 'task', 'meta.image': image, 'name': CLI_NAME},
                                       user=user, level=AccessType.READ, limit=1)
    cli = next(iter(found), None)
    if cli is None:
        raise HistomicsLabelError(f'The CLI image {image} is not registered with slicer_cli_web (or not readable '
                                  f'by you): register it (Slicer CLI Web tasks → upload image), or set '
                                  f'histomics_label.cli_image to the registered image\'s name')
    return str(cli['_id'])


def _take_store(outputs: dict, folder: dict, item: dict, destination: Path) -> None:
    """Move the store the run uploaded into place once it is checked as the slide's with the project's settings."""
    upload = Item().findOne({'folderId': outputs['_id'], 'name': STORE_NAME})
    file = upload and File().findOne({'itemId': upload['_id']})
    if file is None:
        raise HistomicsLabelError(f'The CLI image\'s run ended without uploading its store; {AGAIN}')
    take_uploaded_store(file, destination, lambda uploaded, copy: checked_store(copy, folder, item,
                                                                                folders.config_of(folder), uploaded))
