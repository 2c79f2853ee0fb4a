"""Girder 3's client build (``devtools.girder3_client``) installs from the committed lock file: the lock must list
exactly the packages the Girder 3 environment's ``girder build`` asks for, each plugin's client at a path that holds
on any machine, or ``npm ci`` refuses it."""

import json
from pathlib import Path

import pytest

from histomics_label.devtools.girder3 import ensure_girder3_venv
from histomics_label.devtools.girder3_client import (
    CLIENT_PACKAGE,
    EMPTY_CANVAS,
    LOCK_FILE,
    OWN_PACKAGE,
    PLACEHOLDER,
    build_layout,
    package_json,
)

pytestmark = pytest.mark.live


@pytest.fixture(scope='module')
def layout() -> dict:
    return build_layout(ensure_girder3_venv())


def test_the_build_asks_for_every_plugin_client_relative_to_its_folder(layout):
    package = package_json(layout)
    staging = Path(layout['staging'])
    plugins = {name: spec for name, spec in package['dependencies'].items() if name.startswith('@girder/')}
    assert {'@girder/core', OWN_PACKAGE, '@girder/histomicsui', '@girder/large_image'} <= set(plugins)
    for name, spec in plugins.items():
        folder = (staging / spec.removeprefix('file:')).resolve()
        assert not Path(spec.removeprefix('file:')).is_absolute() and (folder / 'package.json').is_file(), name
    assert (staging / plugins[OWN_PACKAGE].removeprefix('file:')).resolve() == CLIENT_PACKAGE.resolve()
    assert package['overrides'] == EMPTY_CANVAS and 'preinstall' not in package['scripts']


def test_the_committed_lock_file_matches_what_the_build_asks_for(layout):
    package = package_json(layout)
    lock = json.loads(LOCK_FILE.read_text())
    root = lock['packages']['']
    wanted = {**package['dependencies'], OWN_PACKAGE: PLACEHOLDER}
    assert root['dependencies'] == wanted
    assert root.get('devDependencies', {}) == package.get('devDependencies', {})
    assert not [path for path, entry in lock['packages'].items()
                if entry.get('resolved', '').startswith('file:/')]
    registry = [entry for path, entry in lock['packages'].items()
                if path and not entry.get('resolved', '').startswith('file:') and not entry.get('link')]
    assert registry and all(entry.get('integrity') for entry in registry)
