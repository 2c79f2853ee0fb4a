"""Build the web client (``plugin_client/`` → ``histomics_label/web_client/dist/``) when it is missing or older than
its sources, and install Debian's Chromium for the browser tests.

The install and test set-up call ``python -m histomics_label.devtools.client_build`` (add ``--chromium`` where browser
tests run). It needs node and npm; without them it says so and what to install instead of failing inside npm.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..web_client import DIST_DIR, SCRIPT
from . import REPO_ROOT
from .debian import DebianPackageError, ensure_debian_packages

CLIENT_DIR = REPO_ROOT / 'plugin_client'
CHROMIUM = '/usr/bin/chromium'


class ClientBuildError(RuntimeError):
    """The client could not be built, or Chromium installed; the message says why and what to do."""


def run_step(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run a build step with its output shown, in ``os.environ`` updated with ``env``; a failure names the step
    and the folder."""
    result = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, check=False)
    if result.returncode:
        raise ClientBuildError(f'{" ".join(command)} failed in {cwd} (exit status {result.returncode}); its output '
                               'is above')


def require_npm() -> str:
    """Path of npm, checking that node is there too."""
    missing = [name for name in ('node', 'npm') if shutil.which(name) is None]
    if missing:
        raise ClientBuildError(f'{" and ".join(missing)} not found on PATH: the web client is built with Node.js 20 '
                               'or newer and npm (Debian: apt-get install -y nodejs npm, or https://nodejs.org)')
    return shutil.which('npm')


def npm_ci(directory: Path) -> bool:
    """``npm ci`` in ``directory`` when its ``node_modules`` is missing or older than its ``package-lock.json``.
    Returns whether it ran."""
    lock = directory / 'package-lock.json'
    if not lock.is_file():
        raise ClientBuildError(f'{lock} is missing: the npm dependencies are installed from the committed lock file')
    installed = directory / 'node_modules' / '.package-lock.json'
    if installed.is_file() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return False
    run_step([require_npm(), 'ci', '--no-audit', '--no-fund'], directory)
    return True


def _sources() -> list[Path]:
    """The files the build depends on."""
    files = [CLIENT_DIR / name for name in ('package.json', 'package-lock.json', 'vite.config.js')]
    return files + sorted(path for path in (CLIENT_DIR / 'src').rglob('*') if path.is_file())


def client_outdated() -> bool:
    """Whether the built script is missing or older than any source file."""
    script = DIST_DIR / SCRIPT
    if not script.is_file():
        return True
    built = script.stat().st_mtime
    return any(path.stat().st_mtime > built for path in _sources())


def build_client(force: bool = False) -> bool:
    """Install the client's npm dependencies and build it into ``DIST_DIR`` when it is missing or outdated (always
    with ``force``). Returns whether it built."""
    if not (CLIENT_DIR / 'package.json').is_file():
        raise ClientBuildError(f'{CLIENT_DIR} not found: the client is built from a checkout of the repository')
    if not force and not client_outdated():
        return False
    npm = require_npm()
    npm_ci(CLIENT_DIR)
    run_step([npm, 'run', 'build'], CLIENT_DIR)
    if client_outdated():
        raise ClientBuildError(f'npm run build finished but {DIST_DIR / SCRIPT} is still missing or outdated')
    return True


def ensure_chromium() -> str:
    """Path of Debian's Chromium, installing it with apt-get when it is missing (as root)."""
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    ensure_debian_packages(['chromium'])
    if not Path(CHROMIUM).is_file():
        raise ClientBuildError(f'apt-get installed chromium but {CHROMIUM} is not there')
    return CHROMIUM


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--force', action='store_true', help='build even when the client looks up to date')
    parser.add_argument('--chromium', action='store_true', help='also install Chromium for the browser tests')
    args = parser.parse_args(argv)
    try:
        start = time.monotonic()
        built = build_client(force=args.force)
        print(f'web client {"built" if built else "up to date"} in {DIST_DIR} ({time.monotonic() - start:.1f} s)')
        if args.chromium:
            print(f'chromium: {ensure_chromium()}')
    except (ClientBuildError, DebianPackageError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
