"""The few Girder APIs that differ between Girder 5 (the stack pinned in ``setup.py``) and Girder 3.2 (the DSA's
stable line, the one HistomicsUI 1.8 runs on), so that one plugin package loads on both.

Everything else the plugin uses (models, access decorators, events, jobs, large_image) is the same on both; these
are the differences found by importing every Girder name the plugin uses on Girder 3.2.18 and by running the live
loop there: where girder_worker's Girder plugin lives, how a notification reaches a user's open pages, how a plugin's
built client is served, and how dates come back from the database.
"""

from __future__ import annotations

import datetime
from importlib.metadata import version

from bson.codec_options import CodecOptions
from bson.objectid import ObjectId

GIRDER_MAJOR = int(version('girder').split('.')[0])
NOTIFICATION_LIFETIME = datetime.timedelta(minutes=1)
"""Girder 3 keeps a notification in the database for its pages' event stream to pick up; this long."""


def worker_api_url() -> str:
    """girder_worker's API URL for workers (its setting, the server root, or the current request's); raises
    ``GirderException`` where none is known."""
    if GIRDER_MAJOR >= 5:
        from girder_plugin_worker.utils import getWorkerApiUrl
    else:
        from girder_worker.girder_plugin.utils import getWorkerApiUrl
    return getWorkerApiUrl()


def notify(user_id: ObjectId, kind: str, data: dict) -> None:
    """Send the event ``g:event.<kind>`` with ``data`` to the open pages of user ``user_id``: through Redis on Girder
    5, through the database and the pages' event stream on Girder 3."""
    if GIRDER_MAJOR >= 5:
        from girder.notification import Notification

        Notification(kind, data, {'_id': user_id}).flush()
    else:
        from girder.models.notification import Notification

        expires = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + NOTIFICATION_LIFETIME
        Notification().createNotification(kind, data, {'_id': user_id}, expires=expires)


def serves_built_clients() -> bool:
    """Whether Girder serves a plugin's built client files itself (Girder 5: ``registerPluginStaticContent``); Girder
    3 compiles every plugin's client sources together with ``girder build`` instead."""
    return GIRDER_MAJOR >= 5


class UtcDates:
    """A mixin for the plugin's models: their documents' dates come back from the database as aware UTC datetimes,
    as every model's do on Girder 5; Girder 3 reads them naive, and comparing those with the aware times the plugin
    makes fails ("can't compare offset-naive and offset-aware datetimes")."""

    def reconnect(self) -> None:
        super().reconnect()
        self.collection = self.collection.with_options(
            codec_options=CodecOptions(tz_aware=True, tzinfo=datetime.UTC))
