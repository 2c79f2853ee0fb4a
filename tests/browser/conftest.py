"""Browser tests: Debian Chromium driven by npm ``playwright-core`` against the live stack serving the built web
client. The set-up builds what is missing (the client, this folder's npm packages, Chromium) instead of skipping."""

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.live_stack import running_stack, stack_on

from histomics_label.devtools.client_build import build_client, ensure_chromium, npm_ci

HERE = Path(__file__).parent
ARTIFACTS = HERE.parents[1] / 'test-artifacts' / 'browser'


@pytest.fixture(scope='session')
def chromium() -> str:
    """Path of Chromium, installed with apt-get if missing."""
    return ensure_chromium()


@dataclass(frozen=True)
class BrowserDriver:
    """Runs this folder's Node driver scripts (``driver.mjs`` and one script per view) in Chromium."""

    chromium: str
    artifacts: Path

    def run(self, script: str, stack, request: dict, timeout: int) -> dict:
        """Run ``script`` against ``stack`` as its admin with ``request`` (the script's own inputs) and return the
        JSON it prints, saved as ``<script>.json`` beside its screenshots with the seconds it took. A driver that
        crashes or reports a ``failure`` fails the test, with what it saw so far."""
        info = stack.info()
        request = {'url': info.url.rstrip('/'), 'login': info.admin_login, 'password': info.admin_password,
                   'artifacts': str(self.artifacts), 'chromium': self.chromium, **request}
        started = time.monotonic()
        run = subprocess.run(['node', script], cwd=HERE, capture_output=True, text=True, timeout=timeout,
                             env={**os.environ, 'HL_BROWSER_INPUT': json.dumps(request)}, check=False)
        assert run.returncode == 0, f'driver failed: {run.stderr}'
        result = json.loads(run.stdout)
        result['driverSeconds'] = round(time.monotonic() - started, 1)
        (self.artifacts / f'{Path(script).stem}.json').write_text(json.dumps(result, indent=1))
        assert 'failure' not in result, f'{result["failure"]}; seen so far: {result}'
        return result


@pytest.fixture(scope='session')
def browser_driver(chromium, artifacts) -> BrowserDriver:
    """The Node drivers' runner: playwright-core installed from this folder's lock file, and Chromium."""
    npm_ci(HERE)
    return BrowserDriver(chromium, artifacts)


@pytest.fixture(scope='session')
def web_client() -> None:
    """The web client built from the current sources (the server registers it only if it exists at start)."""
    build_client()


@pytest.fixture(scope='module')
def stack(web_client, tmp_path_factory):
    """A live stack of the test module's own, in a temporary folder on a free port, stopped at the end whatever
    happened; started after the client is built so that the plugin serves it."""
    with running_stack(tmp_path_factory.mktemp('live') / 'data') as stack:
        yield stack


@pytest.fixture(scope='module', params=['girder5', 'girder3'])
def either_girder(request, web_client, tmp_path_factory):
    """A live stack of the test module's own on each Girder line (``stack_on``)."""
    with stack_on(request.param, tmp_path_factory.mktemp(request.param) / 'data') as stack:
        yield stack


@pytest.fixture(scope='session')
def artifacts() -> Path:
    """``test-artifacts/browser`` (gitignored): screenshots to look at after a run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
