"""Projects: a Girder folder of slides with its configuration (``config``, ``folders``), its labels, categories and
painting, overlays, agreement, exports, published annotations, summaries, "more like this", and the import of projects
from the published Histomics Label. Called by the REST routes and the jobs; no routes here."""
