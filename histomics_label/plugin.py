"""The Girder 5 plugin entry point.

It loads the plugins Histomics Label builds on (large images, their annotations, jobs, Slicer CLI tasks and
workers). Its REST resource, models and client arrive with the server issue.
"""

from girder.plugin import GirderPlugin, getPlugin

REQUIRED_PLUGINS = ('large_image', 'large_image_annotation', 'jobs', 'slicer_cli_web', 'worker')


class HistomicsLabelPlugin(GirderPlugin):
    DISPLAY_NAME = 'Histomics Label'

    def load(self, info: dict) -> None:
        for name in REQUIRED_PLUGINS:
            getPlugin(name).load(info)
