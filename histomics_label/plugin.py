"""The Girder 5 plugin entry point.

It loads the plugins Histomics Label builds on (large images, their annotations, jobs, Slicer CLI tasks and
workers), then registers its models, settings, REST resource (``/histomics_label``) and built web client.
"""

from girder import events
from girder.plugin import GirderPlugin, getPlugin
from girder.utility.model_importer import ModelImporter

REQUIRED_PLUGINS = ('large_image', 'large_image_annotation', 'jobs', 'slicer_cli_web', 'worker')


class HistomicsLabelPlugin(GirderPlugin):
    DISPLAY_NAME = 'Histomics Label'
    CLIENT_SOURCE_PATH = 'web_client'
    """Girder 3's ``girder build`` compiles the client package there (its ``package.json``); Girder 5 ignores it
    and serves the built ``dist/`` (``web_client.register_client``)."""

    def load(self, info: dict) -> None:
        for name in REQUIRED_PLUGINS:
            getPlugin(name).load(info)
        from . import settings  # noqa: F401  (registers the settings' defaults and validators)
        from .models.label import Label, LabelEvent
        from .models.round import Round
        from .models.training_state import TrainingState
        from .models.work_queue import HeavyWork
        from .rest import HistomicsLabelResource

        ModelImporter.registerModel('label', Label, 'histomics_label')
        ModelImporter.registerModel('label_event', LabelEvent, 'histomics_label')
        ModelImporter.registerModel('round', Round, 'histomics_label')
        ModelImporter.registerModel('training_state', TrainingState, 'histomics_label')
        ModelImporter.registerModel('heavy_work', HeavyWork, 'histomics_label')
        TrainingState().reset_interrupted(HeavyWork().collection.distinct('project', {'kind': 'round'}))
        from .jobs import queue

        queue.resume()  # work a stopped server left queued or running starts again here
        events.bind('jobs.cancel', 'histomics_label', queue.on_job_cancel)
        info['apiRoot'].histomics_label = HistomicsLabelResource()
        from .projects.segment_images import on_folder_saved

        events.bind('model.folder.save.after', 'histomics_label', on_folder_saved)  # access reaches segment images
        from .projects.removal import on_folder_removed

        events.bind('model.folder.remove', 'histomics_label', on_folder_removed)  # labels, rounds, stores go too
        from .projects import metadata_guard

        events.bind('model.folder.save', 'histomics_label', metadata_guard.guard_folder)  # labelers have WRITE
        events.bind('model.item.save', 'histomics_label', metadata_guard.guard_item)
        from .web_client import register_client

        register_client(info)
