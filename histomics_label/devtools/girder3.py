"""A Girder 3.2 environment with this checkout's plugin: the DSA's stable line (Girder 3 with HistomicsUI 1.8.1), on
which the same plugin package loads through ``girder_compat``.

It is a virtualenv of its own (Girder 3 and Girder 5 cannot share one), made once in the cache and remade when its
pins change, with the pinned Girder 3 stack, the engine's libraries the web server uses, and the plugin installed
from this checkout (editable). The models' libraries (torch and what needs it) are left out: on Girder 3 here the
server answers the REST API and makes segments through the CLI image (the ``cli_image`` executor); rounds need torch
in the server's environment, which a DSA installs with the plugin. Run
``python -m histomics_label.devtools.girder3`` to make it and print its interpreter; the live stack starts Girder in
it with ``Stack(python=...)``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import sys
from pathlib import Path

from . import REPO_ROOT
from .stack.launcher import default_venv_dir, ensure_venv

GIRDER_3_STACK = (
    'girder==3.2.18',
    'girder-jobs==3.2.18',
    # 0.10.7's Girder 3 plugin ("worker") is what slicer_cli_web 1.5 runs its tasks through
    'girder-worker[girder]==0.10.7',
    'large-image[tiff,openslide,pil]==1.35.6',
    'girder-large-image==1.35.6',
    'girder-large-image-annotation==1.35.6',
    'girder-slicer-cli-web[girder]==1.5.14',
    'histomicsui==1.8.1',
    # girder_worker's Celery over Redis (Girder 3 itself needs no Redis); kombu 5.7 needs redis-py 6.1 or later
    'redis==6.4.0',
    # setup.py's editable install needs a setuptools with PEP 660 and bdist_wheel
    'setuptools>=70',
    'wheel',
)
"""The Girder 3 stack the DSA runs today (verified on these machines: ../shared/STACK.md)."""
NOT_IN_THE_SERVER = re.compile(r'^(girder|large-image|torch|efficientnet-lite-pytorch|faiss|umap)', re.IGNORECASE)
"""The plugin's requirements its Girder 3 environment does not take from ``setup.py``: the Girder 5 stack (replaced
by ``GIRDER_3_STACK``) and the models' libraries (the default extractor's weights file stays: a store's features
are checked against it)."""


def engine_requirements() -> list[str]:
    """The plugin's own requirements (``setup.py``'s, read from this environment's installed metadata) that the
    Girder 3 server needs: the engine's array, image and store libraries."""
    requirements = importlib.metadata.requires('histomics-label') or []
    return sorted(requirement for requirement in requirements
                  if 'extra ==' not in requirement and not NOT_IN_THE_SERVER.match(requirement))


def venv_dir() -> Path:
    """Where the Girder 3 virtualenv lives, beside the live stack's Mongo-wire one."""
    return default_venv_dir().with_name('girder3-venv')


def ensure_girder3_venv(folder: Path | None = None) -> Path:
    """Make (once per set of pins) the Girder 3 virtualenv in ``folder``; return its interpreter."""
    requirements = [*GIRDER_3_STACK, *engine_requirements()]
    key = hashlib.sha256('\n'.join([*requirements, str(REPO_ROOT)]).encode()).hexdigest()
    return ensure_venv(folder or venv_dir(), lambda: sys.executable,
                       [requirements, ['--no-deps', '--no-build-isolation', '--editable', str(REPO_ROOT)]], key)


if __name__ == '__main__':
    print(ensure_girder3_venv())
