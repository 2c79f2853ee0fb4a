"""Tests against the live stack (``histomics_label.devtools.stack``): real processes, a real HTTP server."""

import pytest
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
