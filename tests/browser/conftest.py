"""Browser tests: Debian Chromium driven by npm ``playwright-core`` against the live stack serving the built web
client. The set-up builds what is missing (the client, this folder's npm packages, Chromium) instead of skipping."""

from pathlib import Path

import pytest
from live_stack import running_stack

from histomics_label.client_build import build_client, ensure_chromium, npm_ci

HERE = Path(__file__).parent
ARTIFACTS = HERE.parents[1] / 'test-artifacts' / 'browser'


@pytest.fixture(scope='session')
def chromium() -> str:
    """Path of Chromium, installed with apt-get if missing."""
    return ensure_chromium()


@pytest.fixture(scope='session')
def browser_driver(chromium) -> dict:
    """What the Node driver scripts need: playwright-core installed from this folder's lock file, and Chromium."""
    npm_ci(HERE)
    return {'chromium': chromium, 'cwd': HERE}


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


@pytest.fixture(scope='session')
def artifacts() -> Path:
    """``test-artifacts/browser`` (gitignored): screenshots to look at after a run."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
