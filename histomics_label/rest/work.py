"""``/histomics_label/project/{id}/work``: the project's heavy work (segments and features of its slides) in the
server's queue, with each piece's place in it. READ on the project folder lets a user see it; ADMIN (who starts
that work) lets a user cancel any of it, whoever started it: Girder's own ``PUT /job/{id}/cancel`` lets only the
job's owner and site admins, so one project admin could not stop another's queued slides."""

from __future__ import annotations

from girder.api import access
from girder.api.describe import Description, autoDescribeRoute
from girder.api.rest import Resource
from girder.constants import AccessType, TokenScope
from girder.exceptions import ValidationException
from girder.models.folder import Folder

from ..core.errors import HistomicsLabelError
from ..jobs import queue


def add_routes(resource: Resource) -> None:
    """Add the queue route to the plugin's ``/histomics_label`` resource."""
    resource.route('GET', ('project', ':id', 'work'), get_work)
    resource.route('POST', ('project', ':id', 'work', ':job', 'cancel'), cancel_work)


@access.public(scope=TokenScope.DATA_READ)
@autoDescribeRoute(
    Description('The project\'s queued and running heavy work, in queue order.')
    .notes('Each entry: kind (segments), item, job, status (queued or running), position (1: next to run across '
           'the server; 0: running) and when it was queued; plus the server-wide limit of pieces each server '
           'process runs at once.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.READ)
    .errorResponse('Read access was denied on the folder.', 403))
def get_work(folder: dict) -> dict:
    return queue.project_work(folder['_id'])


@access.user(scope=TokenScope.DATA_WRITE)
@autoDescribeRoute(
    Description('Cancel a piece of the project\'s heavy work, whoever started it.')
    .notes('Queued work leaves the queue at once; running work has its child process killed within a second. The '
           'job ends cancelled, as from the job list.')
    .modelParam('id', 'The project folder.', model=Folder, level=AccessType.ADMIN)
    .param('job', 'The id of the work\'s job (as GET .../work lists it).', paramType='path')
    .errorResponse('The job is no queued or running work of this project.', 400)
    .errorResponse('Admin access was denied on the folder.', 403))
def cancel_work(folder: dict, job: str) -> dict:
    try:
        return queue.cancel_project_work(folder['_id'], job)
    except HistomicsLabelError as exc:
        raise ValidationException(str(exc), 'job') from exc
