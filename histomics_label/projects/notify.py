"""Tell every open view of a project what its training did, through Girder's notification stream.

A round may be started by anyone's label writes, a button or a re-segmentation, and it ends minutes later; every
labeler with the project open should see it without reloading ("round 7 trained on 64 labels"). Girder 5 publishes
a notification to one user's channel (Redis), which that user's open pages receive over a websocket
(``/notifications/me``, ``girder.utilities.eventStream`` in the client, an event ``g:event.<type>``); Girder 3 keeps
it in the database for its pages' event stream (``girder_compat.notify``). So a training
event goes to each user who may read the project: those its folder's access list names, directly or through a group,
and the site's administrators. Where Redis cannot be reached Girder logs it and the pages keep what they show.
"""

from __future__ import annotations

from bson.objectid import ObjectId
from girder.constants import AccessType
from girder.models.user import User

from .. import girder_compat

TRAINING = 'histomics_label.training'
"""The notification type: ``data`` has ``project`` (id), ``state`` (``running``, ``done``, ``failed`` or
``stopped``), with ``done`` the ``round`` (number, labels used, predictions changed and accuracies) and with
``failed`` the ``message``."""


def training(folder: dict, state: str, round_document: dict | None = None, message: str | None = None) -> None:
    """Send a training event of ``folder`` (module notes) to everyone who may read it."""
    data = {'project': str(folder['_id']), 'state': state}
    if round_document is not None:
        data['round'] = {key: round_document.get(key) for key in (
            'number', 'labelsUsed', 'predictionsChanged', 'accuracy', 'auditAccuracy', 'modelUnchanged')}
    if message is not None:
        data['message'] = message
    for user_id in readers(folder):
        girder_compat.notify(user_id, TRAINING, data)


def readers(folder: dict) -> set[ObjectId]:
    """The ids of the users who may read ``folder``: named in its access list with READ or more, members of a
    group named there, and the site's administrators. Others who read a public project are named nowhere and are not
    told: their pages show a new round at their next request, as before."""
    access = folder.get('access') or {}
    users = {entry['id'] for entry in access.get('users', []) if entry.get('level', -1) >= AccessType.READ}
    groups = [entry['id'] for entry in access.get('groups', []) if entry.get('level', -1) >= AccessType.READ]
    query = {'$or': [{'admin': True}, *([{'groups': {'$in': groups}}] if groups else [])]}
    users.update(user['_id'] for user in User().find(query, fields=['_id']))
    return users
