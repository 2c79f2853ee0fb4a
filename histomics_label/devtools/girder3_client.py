"""Girder 3's web client with this plugin's, built as a DSA admin builds it (``girder build``) in the Girder 3
environment of ``devtools.girder3``, reproducibly and once per set of inputs.

``girder build`` installs the client's npm packages from version ranges, so two builds a month apart differ; here
they come from a committed lock file (``plugin_client/girder3/package-lock.json``) through ``npm ci``, and
``girder build --no-reinstall`` then compiles. What differs from a plain ``girder build``, and why:
- the package list is the one ``girder build`` writes, with each plugin's folder relative to the build folder (so
  the lock file holds no machine's paths; this checkout's client, whose place varies, is a placeholder there);
- ``canvas`` (a Node-only dependency of geojs) is replaced by an empty package, so nothing is compiled from C++ and
  no Debian development packages are needed, and npm's legacy peer resolution keeps one Backbone (../shared/STACK.md);
- ``node_modules/@girder/core`` is a link to Girder's client sources, as npm 6 (which Girder 3's build was written
  for) made it, not the copy newer npm makes: Girder's webpack rules compile its sources only outside
  ``node_modules``, and untranspiled they break large_image's client ("Cannot set property restRequest ... which has
  only a getter");
- webpack 3 runs with ``--openssl-legacy-provider`` (its md4 hashes; Node 20 refuses them otherwise).

The built files land in the environment's static folder, which Girder 3 serves, with a stamp of what made them; a
build with the same lock file, client files and Girder is skipped. ``python -m histomics_label.devtools.girder3_client``
builds; ``--lock`` writes the lock file anew from the registry (then commit it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from ..web_client import DIST_DIR
from . import REPO_ROOT
from .client_build import ClientBuildError, build_client, require_npm, run_step
from .girder3 import ensure_girder3_venv
from .stack.launcher import file_lock

LOCK_FILE = REPO_ROOT / 'plugin_client' / 'girder3' / 'package-lock.json'
CLIENT_PACKAGE = DIST_DIR.parent
"""The client package ``girder build`` compiles: the plugin's ``web_client`` folder."""
OWN_PACKAGE = '@girder/histomics_label'
PLACEHOLDER = 'file:@HISTOMICS_LABEL_CLIENT@'
"""This checkout's client package in the committed lock file, where the build writes its relative path."""
EMPTY_CANVAS = {'canvas': 'npm:empty-npm-package@1.0.0'}
NPM_ENVIRONMENT = {'npm_config_legacy_peer_deps': 'true', 'npm_config_omit_lockfile_registry_resolved': 'false',
                   'npm_config_audit': 'false', 'npm_config_fund': 'false'}
"""One Backbone (see above), and a lock file that says where each package came from whatever the user's npm
configuration."""
STAMP = '.histomics-label-build'

_LAYOUT = '''
import importlib.resources, json
from girder.constants import STATIC_ROOT_DIR
from girder.plugin import allPlugins, getPlugin
packages = {}
for name in allPlugins():
    packages.update(getPlugin(name).npmPackages())
staging = str(importlib.resources.files('girder') / 'web_client')
print(json.dumps({'staging': staging, 'static': STATIC_ROOT_DIR, 'packages': packages}))
'''
"""Asks the Girder 3 environment where ``girder build`` works, where it writes, and each plugin's client package."""


def build_layout(python: Path) -> dict:
    """``staging`` (the build folder), ``static`` (Girder's static folder) and ``packages`` (npm name → ``file:``
    folder of each plugin's client) of the Girder 3 environment whose interpreter is ``python``."""
    result = subprocess.run([str(python), '-c', _LAYOUT], capture_output=True, text=True, check=False)
    if result.returncode:
        raise ClientBuildError(f'Girder 3\'s environment ({python}) could not list its plugins:\n{result.stderr}')
    return json.loads(result.stdout.strip().splitlines()[-1])


def package_json(layout: dict) -> dict:
    """The build folder's ``package.json``: Girder's template with every plugin's client, its folder relative to the
    build folder, and the empty ``canvas``."""
    staging = Path(layout['staging'])
    package = json.loads((staging / 'package.json.template').read_text())
    plugins = {name: 'file:' + os.path.relpath(spec.removeprefix('file:'), staging)
               for name, spec in sorted(layout['packages'].items())}
    package['dependencies'].update({'@girder/core': 'file:src', **plugins})
    package['girder'] = {'plugins': sorted(plugins)}
    package['overrides'] = EMPTY_CANVAS
    package['scripts'].pop('preinstall', None)  # it made a lock file from ranges: the committed one replaces it
    return package


def own_spec(package: dict) -> str:
    """The ``file:`` spec by which the build folder's package list names this plugin's client."""
    return package['dependencies'][OWN_PACKAGE]


def client_digest() -> str:
    """A digest of this plugin's client package as npm copies it (its ``files``)."""
    listed = json.loads((CLIENT_PACKAGE / 'package.json').read_text())['files']
    digest = hashlib.sha256()
    for name in ['package.json', *sorted(listed)]:
        digest.update(name.encode() + b'\0' + (CLIENT_PACKAGE / name).read_bytes())
    return digest.hexdigest()


def stage(staging: Path, package: dict, lock: str | None = None) -> None:
    """Write the build folder's package list and, when given, its lock file (else remove the old one)."""
    (staging / 'package.json').write_text(json.dumps(package, indent=2))
    if lock is None:
        (staging / 'package-lock.json').unlink(missing_ok=True)
    else:
        (staging / 'package-lock.json').write_text(lock)


def write_lock_file(python: Path) -> Path:
    """Resolve the build's packages from the registry and write them to ``LOCK_FILE`` (this checkout's path
    replaced by the placeholder)."""
    layout = build_layout(python)
    package = package_json(layout)
    staging = Path(layout['staging'])
    stage(staging, package)
    shutil.rmtree(staging / 'node_modules', ignore_errors=True)  # resolved from the registry, not from a past install
    run_step([require_npm(), 'install', '--install-links', '--package-lock-only'], staging, NPM_ENVIRONMENT)
    lock = (staging / 'package-lock.json').read_text()
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    LOCK_FILE.write_text(lock.replace(json.dumps(own_spec(package)), json.dumps(PLACEHOLDER)))
    return LOCK_FILE


def build_girder3_client(python: Path | None = None) -> Path:
    """Build Girder 3's client with this plugin's in the environment of ``python`` (by default ``devtools.girder3``'s,
    made if missing) unless a build from the same inputs is there; returns the folder of the built files."""
    python = python or ensure_girder3_venv()
    build_client()  # the shared views the Girder 3 package carries (dist/)
    layout = build_layout(python)
    staging, built = Path(layout['staging']), Path(layout['static']) / 'built'
    package = package_json(layout)
    lock = LOCK_FILE.read_text().replace(json.dumps(PLACEHOLDER), json.dumps(own_spec(package)))
    procedure = Path(__file__).read_text()  # how it is built is one of its inputs
    inputs = hashlib.sha256('\0'.join([lock, client_digest(), procedure, str(python)]).encode()).hexdigest()
    with file_lock(staging / '.histomics-label-build.lock'):
        if (built / STAMP).is_file() and (built / STAMP).read_text() == inputs:
            return built
        stage(staging, package, lock)
        run_step([require_npm(), 'ci', '--install-links'], staging, NPM_ENVIRONMENT)
        core = staging / 'node_modules' / '@girder' / 'core'
        shutil.rmtree(core)
        core.symlink_to(staging / 'src', target_is_directory=True)
        run_step([str(python.with_name('girder')), 'build', '--no-reinstall'], staging,
                 {'NODE_OPTIONS': '--openssl-legacy-provider'})
        (built / STAMP).write_text(inputs)
    return built


def girder3_python() -> Path:
    """The interpreter of the Girder 3 environment (made if missing) with the client built there: what a stack on
    Girder 3 runs."""
    python = ensure_girder3_venv()
    build_girder3_client(python)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--lock', action='store_true', help='write the lock file anew from the registry')
    arguments = parser.parse_args()
    print(write_lock_file(ensure_girder3_venv()) if arguments.lock else build_girder3_client())


if __name__ == '__main__':
    main()
