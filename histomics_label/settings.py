"""Server settings of the plugin, with their defaults and validators."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from girder.constants import AssetstoreType
from girder.exceptions import GirderException, ValidationException
from girder.models.assetstore import Assetstore
from girder.models.setting import Setting
from girder.utility import setting_utilities

DATA_DIR = 'histomics_label.data_dir'
"""Folder where the server keeps each slide's store (segments, features, rounds); local to the Girder server."""
LEGACY_DATA_DIR = Path.home() / '.local' / 'share' / 'histomics_label'
"""Where stores went by default before the default moved beside the assetstore; kept where it holds stores."""

logger = logging.getLogger(__name__)


@setting_utilities.default(DATA_DIR)
def _default_data_dir() -> str:
    """``$HISTOMICS_LABEL_DATA_DIR``, else a folder ``histomics_label`` in the root of the current filesystem
    assetstore: on the disk (and in the backups and container volume) that holds the slides the stores are made
    from, never in a home folder. A server whose stores already lie in the old default folder keeps it."""
    if os.environ.get('HISTOMICS_LABEL_DATA_DIR'):
        return os.environ['HISTOMICS_LABEL_DATA_DIR']
    if LEGACY_DATA_DIR.is_dir() and any(LEGACY_DATA_DIR.iterdir()):
        logger.warning('Histomics Label keeps using %s, where its slide stores are; set %s to move them',
                       LEGACY_DATA_DIR, DATA_DIR)
        return str(LEGACY_DATA_DIR)
    try:
        current = Assetstore().getCurrent()
    except GirderException as exc:
        raise GirderException(f'Set {DATA_DIR} (an absolute path on the server) or make an assetstore: the slide '
                              'stores go beside the current filesystem assetstore by default') from exc
    if current.get('type') != AssetstoreType.FILESYSTEM:
        raise GirderException(f'Set {DATA_DIR} (an absolute path on the server): the current assetstore '
                              f'"{current["name"]}" is not a folder on this server, where the slide stores could go')
    return str(Path(current['root']) / 'histomics_label')


@setting_utilities.validator(DATA_DIR)
def _validate_data_dir(doc: dict) -> None:
    value = doc['value']
    if not isinstance(value, str) or not value.strip() or not os.path.isabs(value.strip()):
        raise ValidationException('The data folder must be an absolute path', 'value')
    doc['value'] = value.strip()


def data_dir() -> Path:
    """The data folder, created when missing. The first use stores the default in the setting, so that a later
    change of the current assetstore (or of the environment) never moves the stores out from under the projects."""
    if Setting()._get(DATA_DIR) is None:  # girder's cached read of the stored setting; None: only the default
        Setting().set(DATA_DIR, _default_data_dir())
    path = Path(Setting().get(DATA_DIR))
    path.mkdir(parents=True, exist_ok=True)
    return path


HEAVY_JOBS = 'histomics_label.heavy_jobs_per_process'
"""How many pieces of heavy work (a slide's segments and features) one Girder process runs at once; more wait in
the queue. Each runs a child process whose dask cluster uses the machine's cores, so one is the default."""
TRAINING_JOBS = 'histomics_label.training_jobs_per_process'
"""How many projects' training rounds one Girder process runs at once, apart from ``HEAVY_JOBS``: a labeler's next
round must not wait behind another project's hours of segments. A round of the linear head takes seconds in the
server; a CNN's runs in a child process for minutes."""
JOB_TIMEOUT_MINUTES = 'histomics_label.job_timeout_minutes'
"""Minutes a piece of heavy work may run before it is stopped (its child process killed) and its job fails."""


EXECUTOR = 'histomics_label.heavy_work_executor'
"""Where a slide's segments and features are made: ``server`` (a child process of the Girder server, limited by
``HEAVY_JOBS``), ``girder_worker`` (a Celery task on the DSA's girder_worker workers, which need this package
installed; they fetch the slide and send the store back through Girder's API, so they may run on other machines) or
``cli_image`` (the CLI image's SuperpixelClassification, run through slicer_cli_web as the job panel runs it: the
workers need Docker and the image registered (``CLI_IMAGE``), not this package). With either of the last two (a
production deployment) the web server process also never trains a model itself: every round runs in a child
process of the server (a CNN's on the workers with ``girder_worker``), so the server never loads torch."""
EXECUTORS = ('server', 'girder_worker', 'cli_image')
CLI_IMAGE = 'histomics_label.cli_image'
"""With the ``cli_image`` executor, the Docker image whose registered SuperpixelClassification CLI makes the slides'
segments and features (registered through slicer_cli_web, as the job panel's tasks are)."""
WORKER_JOBS = 'histomics_label.worker_jobs_per_process'
"""With the ``girder_worker`` or ``cli_image`` executor, how many pieces of heavy work one Girder process hands to
the workers at once; the broker queues them and each worker takes as many as its Celery concurrency allows."""
FEATURE_ROWS = 'histomics_label.feature_rows_per_task'
"""With the ``girder_worker`` executor, a slide of more segments than this gets its features from several tasks of
this many segments each, which several workers run at once (a band of the slide's tiles each); 0 never splits."""


@setting_utilities.default(HEAVY_JOBS)
def _default_heavy_jobs() -> int:
    return 1


@setting_utilities.validator(HEAVY_JOBS)
def _validate_heavy_jobs(doc: dict) -> None:
    doc['value'] = _whole_in(doc['value'], 1, 64, 'Heavy jobs per server process')


@setting_utilities.default(TRAINING_JOBS)
def _default_training_jobs() -> int:
    return 1


@setting_utilities.validator(TRAINING_JOBS)
def _validate_training_jobs(doc: dict) -> None:
    doc['value'] = _whole_in(doc['value'], 1, 64, 'Training rounds per server process')


@setting_utilities.default(EXECUTOR)
def _default_executor() -> str:
    """``$HISTOMICS_LABEL_HEAVY_WORK_EXECUTOR`` (a deployment's compose file sets it), else ``server``: without
    workers the work runs where it always can."""
    value = os.environ.get('HISTOMICS_LABEL_HEAVY_WORK_EXECUTOR', 'server')
    if value not in EXECUTORS:
        logger.error('HISTOMICS_LABEL_HEAVY_WORK_EXECUTOR=%s is none of %s; heavy work runs in the server', value,
                     ', '.join(EXECUTORS))
        return 'server'
    return value


@setting_utilities.validator(EXECUTOR)
def _validate_executor(doc: dict) -> None:
    if doc['value'] not in EXECUTORS:
        raise ValidationException(f'The heavy-work executor must be one of {", ".join(EXECUTORS)}', 'value')


@setting_utilities.default(CLI_IMAGE)
def _default_cli_image() -> str:
    """``$HISTOMICS_LABEL_CLI_IMAGE``, else the name the ``Dockerfile``'s image is built under here."""
    return os.environ.get('HISTOMICS_LABEL_CLI_IMAGE') or 'histomics-label:latest'


@setting_utilities.validator(CLI_IMAGE)
def _validate_cli_image(doc: dict) -> None:
    value = doc['value'].strip() if isinstance(doc['value'], str) else ''
    if not value or any(character.isspace() for character in value):
        raise ValidationException('The CLI image must be a Docker image name, such as histomics-label:latest',
                                  'value')
    doc['value'] = value


@setting_utilities.default(WORKER_JOBS)
def _default_worker_jobs() -> int:
    return 64


@setting_utilities.validator(WORKER_JOBS)
def _validate_worker_jobs(doc: dict) -> None:
    doc['value'] = _whole_in(doc['value'], 1, 10000, 'Heavy jobs handed to girder_worker per server process')


@setting_utilities.default(FEATURE_ROWS)
def _default_feature_rows() -> int:
    return 100000


@setting_utilities.validator(FEATURE_ROWS)
def _validate_feature_rows(doc: dict) -> None:
    doc['value'] = _whole_in(doc['value'], 0, 10 ** 9, 'Segments per feature task (0: never split)')


def feature_rows_per_task() -> int | None:
    """How many segments' features one task computes, where a slide's features are split over the workers; None
    where they are not (``FEATURE_ROWS``)."""
    return Setting().get(FEATURE_ROWS) or None


@setting_utilities.default(JOB_TIMEOUT_MINUTES)
def _default_job_timeout() -> int:
    return 720


@setting_utilities.validator(JOB_TIMEOUT_MINUTES)
def _validate_job_timeout(doc: dict) -> None:
    doc['value'] = _whole_in(doc['value'], 1, 7 * 24 * 60, 'The time limit of heavy work (minutes)')


def heavy_work_executor() -> str:
    """Where heavy work runs now: ``server``, ``girder_worker`` or ``cli_image`` (``EXECUTOR``)."""
    return Setting().get(EXECUTOR)


def _whole_in(value, low: int, high: int, what: str) -> int:
    """``value`` (a number or its text) as a whole number in [low, high], or a ValidationException that says so."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationException(f'{what} must be a whole number from {low} to {high}', 'value')
    return value
