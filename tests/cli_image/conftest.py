"""The CLI image on a private Docker daemon: started once for these tests and stopped by its PID after them."""

import pytest

from histomics_label.devtools.docker.daemon import PrivateDaemon
from histomics_label.devtools.docker.image import CLI_IMAGE, build_cli_image


@pytest.fixture(scope='session')
def docker_daemon():
    with PrivateDaemon() as daemon:
        yield daemon


@pytest.fixture(scope='session')
def cli_image(docker_daemon) -> str:
    """The image of this checkout (built by the test command's set-up; built here when it is missing or stale)."""
    build_cli_image(docker_daemon)
    return CLI_IMAGE
