"""Tests against the live stack (``histomics_label.devtools.stack``): real processes, a real HTTP server."""

from pathlib import Path

import pytest
import tifffile
from helpers.crops import write_crop
from helpers.live_stack import running_stack


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    """A live stack of the test module's own, in a temporary folder on a free port."""
    with running_stack(tmp_path_factory.mktemp('live') / 'data') as stack:
        yield stack


@pytest.fixture
def client(stack):
    """A Girder client logged in as the stack's admin."""
    return stack.client()


@pytest.fixture(scope='module')
def crops(cmu_svs, tmp_path_factory) -> list[Path]:
    """Six different small slides cut from the real H&E sample (2220 x 2967 px)."""
    source = tifffile.imread(cmu_svs, key=0)
    folder = tmp_path_factory.mktemp('crops')
    corners = [(top, left) for top in (0, 960, 1920) for left in (0, 1180)]
    return [write_crop(source, top, left, folder / f'crop-{top}-{left}.tiff') for top, left in corners]
