"""Projects: a Girder folder of slides with its configuration, labels, overlays, agreement, exports, published
annotations and the import of projects from the published Histomics Label. Called by the REST routes and the jobs;
no routes here."""
