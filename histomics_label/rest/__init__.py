"""The plugin's REST resource, ``/histomics_label``: one module per group of routes, each adding its own.

Each route is a decorator block (access, then Girder's description of its parameters and body) and a call into
``projects/``, ``jobs/`` or a model; the checks and queries live there. docs/rest.md documents every route.
"""

from __future__ import annotations

from girder.api.rest import Resource

from . import item_projects, labels, migration, outputs, projects, rounds, segments, similar, work


class HistomicsLabelResource(Resource):
    """``/histomics_label``: projects on Girder folders, their labels, training, outputs and imports."""

    def __init__(self) -> None:
        super().__init__()
        self.resourceName = 'histomics_label'
        projects.add_routes(self)
        labels.add_routes(self)
        rounds.add_routes(self)
        segments.add_routes(self)
        outputs.add_routes(self)
        similar.add_routes(self)
        migration.add_routes(self)
        item_projects.add_routes(self)
        work.add_routes(self)
