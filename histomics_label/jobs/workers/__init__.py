"""Child-process entry points of the jobs (``python -m histomics_label.jobs.workers.segments`` and ``.rounds``) and
the reason a child gives when it fails: the engine runs in its own interpreter so it cannot slow or crash Girder."""
