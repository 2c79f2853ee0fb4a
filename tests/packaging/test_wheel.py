"""A release as an admin installs it: ``python -m build`` makes an sdist and a wheel that carry the built web client,
and Girder in a fresh virtualenv, where the plugin comes from the wheel alone (no checkout, no build step, so no
Node.js), serves that client."""

import email
import json
import subprocess
import sys
import sysconfig
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
import requests
from helpers.live_stack import running_stack
from packaging.requirements import Requirement

from histomics_label.devtools import REPO_ROOT
from histomics_label.devtools.girder3 import requirements_by_extra
from histomics_label.devtools.girder3_client import CLIENT_PACKAGE
from histomics_label.web_client import DIST_DIR, SCRIPT, STYLESHEET

pytestmark = pytest.mark.live

CLIENT_FILES = (SCRIPT, STYLESHEET)
PACKAGED = 'histomics_label/web_client/dist'


def only(paths) -> Path:
    found = list(paths)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope='module')
def release(tmp_path_factory) -> Path:
    """The folder where ``python -m build`` put the checkout's sdist and the wheel it built from that sdist."""
    out = tmp_path_factory.mktemp('release')
    built = subprocess.run([sys.executable, '-m', 'build', '--no-isolation', '--outdir', str(out), str(REPO_ROOT)],
                           capture_output=True, text=True, check=False)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


@pytest.fixture(scope='module')
def outside_checkout():
    """An environment where nothing points at the checkout (a developer's PYTHONPATH would import it first)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv('PYTHONPATH', raising=False)
        yield


@pytest.fixture(scope='module')
def installed(release, outside_checkout, tmp_path_factory) -> Path:
    """The Python of a fresh virtualenv with the wheel installed. Its other requirements are this environment's
    packages, seen through a .pth file (a clean install would download several GB of torch); the checkout's own
    editable install is not among them, as a .pth line adds a folder without reading that folder's .pth files."""
    root = tmp_path_factory.mktemp('venv')
    venv.create(root, with_pip=False)
    python = root / 'bin' / 'python'
    site = subprocess.run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, 'requirements.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    # --ignore-installed: install into the virtualenv beside the checkout's editable install, never uninstalling it
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(python), 'install', '--no-deps', '--no-index',
                    '--ignore-installed',
                    str(only(release.glob('*.whl')))], capture_output=True, check=True)
    return python


def test_the_sdist_and_the_wheel_carry_the_built_client(release):
    with zipfile.ZipFile(only(release.glob('*.whl'))) as archive:
        for name in CLIENT_FILES:
            assert archive.read(f'{PACKAGED}/{name}') == (DIST_DIR / name).read_bytes(), name
    with tarfile.open(only(release.glob('*.tar.gz'))) as archive:
        names = {Path(*Path(name).parts[1:]).as_posix() for name in archive.getnames()}
    assert {f'{PACKAGED}/{name}' for name in CLIENT_FILES} <= names
    # and the sources it was built from, with the lock file that pins their dependencies
    assert {'setup.py', 'plugin_client/package.json', 'plugin_client/package-lock.json',
            'plugin_client/src/main.js', 'plugin_client/girder3/package-lock.json'} <= names


def test_the_wheel_carries_the_client_package_girder_3_builds(release):
    package = json.loads((CLIENT_PACKAGE / 'package.json').read_text())
    assert package['girderPlugin'] == {'name': 'histomics_label', 'main': './girder3.js',
                                       'webpack': './girder3.webpack'}
    with zipfile.ZipFile(only(release.glob('*.whl'))) as archive:
        for name in ['package.json', *package['files']]:
            assert archive.read(f'histomics_label/web_client/{name}') == (CLIENT_PACKAGE / name).read_bytes(), name


def test_girder_with_the_plugin_from_the_wheel_serves_its_client(installed, tmp_path):
    imported = subprocess.run([installed, '-c', 'import histomics_label.web_client as c; print(c.DIST_DIR)'],
                              cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    venv_root = installed.parent.parent
    assert Path(imported).is_relative_to(venv_root), imported  # the wheel's copy, not the checkout's
    with running_stack(tmp_path / 'stack', python=str(installed)) as stack:
        info = stack.info()
        command = Path(f'/proc/{info.pids["girder"]}/cmdline').read_bytes().split(b'\0')
        assert command[0].decode() == str(installed)  # Girder runs in the virtualenv
        listed = requests.get(f'{info.api_url}/system/plugin_static_files', timeout=30).json()
        served = [path for path in listed['js'] + listed['css'] if path.startswith('plugin_static/histomics_label/')]
        assert sorted(path.split('?')[0].rsplit('/', 1)[1] for path in served) == sorted(CLIENT_FILES)
        for path in served:
            answer = requests.get(f'{info.url}{path}', timeout=30)
            assert answer.status_code == 200
            assert answer.content == (DIST_DIR / path.split('?')[0].rsplit('/', 1)[1]).read_bytes()


def wheel_requirements(wheel: Path) -> dict[str | None, set[str]]:
    """The wheel's requirements by extra (None: its own), each as its project's name, extras and version
    specifier."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(only(name for name in archive.namelist() if name.endswith('.dist-info/METADATA')))
    message = email.message_from_bytes(metadata)
    grouped = requirements_by_extra(message.get_all('Requires-Dist') or [], message.get_all('Provides-Extra') or [])
    return {extra: {str(requirement) for requirement in requirements} for extra, requirements in grouped.items()}


def test_the_wheel_installs_beside_either_girder_line_and_pins_each_in_its_extra(release):
    requirements = wheel_requirements(only(release.glob('*.whl')))
    girder_names = ('girder', 'histomicsui')
    own = requirements[None]
    assert not [name for name in own if name.lower().startswith(girder_names)], own
    large_image = Requirement(only(name for name in own if name.startswith('large-image[')))
    assert str(large_image.specifier) == '==1.35.6' and {'tiff', 'openslide', 'pil'} <= large_image.extras
    girder5, girder3 = requirements['girder5'], requirements['girder3']
    assert 'girder==5.0.21' in girder5 and 'girder-plugin-worker==5.0.21' in girder5
    assert 'girder==3.2.18' in girder3 and 'histomicsui==1.8.1' in girder3
    assert 'girder-worker[girder]==0.10.7' in girder3
    # every Girder package either line needs is pinned exactly, so neither extra resolves to the other line
    for stack in (girder5, girder3):
        assert all('==' in requirement for requirement in stack), stack
