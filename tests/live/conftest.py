"""Tests against the live stack (``histomics_label.stack``): real processes, a real HTTP server."""

import pytest


def pytest_configure(config):
    config.addinivalue_line('markers', 'live: starts the local live stack (Redis, Mongo-wire server, Girder)')


def free_port() -> int:
    """A loopback port nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture(scope='module')
def stack(tmp_path_factory):
    """A live stack of the test module's own, in a temporary folder on a free port, stopped at the end whatever
    happened."""
    from histomics_label.stack import Stack

    stack = Stack(tmp_path_factory.mktemp('live') / 'data', port=free_port(), timeout=120)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def client(stack):
    """A Girder client logged in as the stack's admin."""
    return stack.client()
