"""A Girder 3.2 environment with this checkout's plugin: the DSA's stable line (Girder 3 with HistomicsUI 1.8.1), on
which the same plugin package loads through ``girder_compat``.

It is a virtualenv of its own (Girder 3 and Girder 5 cannot share one), made once in the cache and remade when its
pins change, with the plugin's ``girder3`` extra (the pinned Girder 3 stack), the engine's libraries (what
``pip install histomics-label[girder3]`` gives an admin), and the plugin installed from this checkout (editable).
torch is the CPU build of 2.13 (rounds train in Girder's environment, as on Girder 5 with the server executor). Run
``python -m histomics_label.devtools.girder3`` to make it and print its interpreter; the live stack starts Girder in
it with ``Stack(python=...)``. It also holds the ``girder3-test`` extra (pytest-girder 3.2), so that
``python -m histomics_label.devtools.girder3 --pytest tests/server`` runs the server test suite on Girder 3 as the test
command runs it on Girder 5.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

from . import REPO_ROOT
from .docker.image import LOCAL_TORCH
from .stack.launcher import default_venv_dir, ensure_venv

BUILD_TOOLS = ('setuptools>=70', 'wheel')
"""What the plugin's editable install needs there (PEP 660 and bdist_wheel)."""
TORCH = re.compile(r'^torch\b', re.IGNORECASE)
"""The engine's torch requirement, which the environment replaces by ``LOCAL_TORCH``: the release whose CPU build
these machines have (190 MB, where the newest allowed release is PyPI's 5 GB CUDA build); rounds train with it."""


def requirements_of(extra: str | None = None) -> list[str]:
    """The plugin's requirements (``setup.py``'s, read from this environment's installed metadata): its own with no
    ``extra``, else those the extra adds (``girder3``: the Girder 3 stack the DSA runs today, ../shared/STACK.md)."""
    metadata = importlib.metadata.metadata('histomics-label')
    by_extra = requirements_by_extra(metadata.get_all('Requires-Dist') or [], metadata.get_all('Provides-Extra') or [])
    return sorted(str(requirement) for requirement in by_extra.get(extra, []))


def requirements_by_extra(lines: list[str], extras: list[str]) -> dict[str | None, list[Requirement]]:
    """A package's ``Requires-Dist`` ``lines`` grouped by the extra of ``extras`` that adds each (None: the package's
    own), each without its marker."""
    grouped: dict[str | None, list[Requirement]] = {}
    for requirement in map(Requirement, lines):
        adds = [extra for extra in extras if _added_by(requirement, extra)]
        for extra in adds or [None]:
            bare = Requirement(str(requirement))
            bare.marker = None
            grouped.setdefault(extra, []).append(bare)
    return grouped


def _added_by(requirement: Requirement, extra: str) -> bool:
    """Whether ``extra`` adds ``requirement`` (its marker holds with the extra and not without it)."""
    marker = requirement.marker
    return marker is not None and marker.evaluate({'extra': extra}) and not marker.evaluate({'extra': ''})


def server_requirements() -> list[str]:
    """What the Girder 3 server's environment installs before the plugin: the ``girder3`` extra's stack, the
    engine's libraries (torch as its CPU build), and the ``girder3-test`` extra's test tools."""
    stack = requirements_of('girder3')
    if not stack:
        raise RuntimeError('The installed histomics-label has no girder3 extra: its metadata predates setup.py\'s; '
                           'install the checkout again (pip install -e .[girder5])')
    engine = [LOCAL_TORCH if TORCH.match(requirement) else requirement for requirement in requirements_of()]
    return [*stack, *engine, *requirements_of('girder3-test'), *BUILD_TOOLS]


def venv_dir() -> Path:
    """Where the Girder 3 virtualenv lives, beside the live stack's Mongo-wire one."""
    return default_venv_dir().with_name('girder3-venv')


def ensure_girder3_venv(folder: Path | None = None) -> Path:
    """Make (once per set of pins) the Girder 3 virtualenv in ``folder``; return its interpreter."""
    requirements = server_requirements()
    key = hashlib.sha256('\n'.join([*requirements, str(REPO_ROOT)]).encode()).hexdigest()
    return ensure_venv(folder or venv_dir(), lambda: sys.executable,
                       [requirements, ['--no-deps', '--no-build-isolation', '--editable', str(REPO_ROOT)]], key)


def run_pytest(arguments: list[str]) -> int:
    """Run pytest with ``arguments`` in the Girder 3 environment, from the checkout (its ``tox.ini`` settings apply);
    answer its exit status."""
    return subprocess.call([str(ensure_girder3_venv()), '-m', 'pytest', *arguments], cwd=REPO_ROOT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Make the Girder 3 environment (and print its interpreter), or run '
                                     'pytest there.')
    parser.add_argument('--pytest', nargs=argparse.REMAINDER, metavar='ARGUMENT',
                        help='run pytest in the environment with the arguments that follow (e.g. tests/server)')
    arguments = parser.parse_args(argv)
    if arguments.pytest is not None:
        return run_pytest(arguments.pytest)
    print(ensure_girder3_venv())
    return 0


if __name__ == '__main__':
    sys.exit(main())
