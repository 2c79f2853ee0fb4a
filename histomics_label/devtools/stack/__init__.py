"""The persistent local live stack: Girder 5 with Histomics Label on a Mongo-wire server over SQLite, and Redis.

``python -m histomics_label.devtools.stack start|stop|status`` on the command line; ``Stack(data_dir, port).start()``
from Python (tests, the demo), which returns a ``StackInfo`` whose ``client()`` is a logged-in ``GirderClient``.
"""

from .launcher import ServiceStatus, Stack, StackError, StackInfo

__all__ = ['ServiceStatus', 'Stack', 'StackError', 'StackInfo']
