"""The live stack for tests that need real processes (``tests/live``, ``tests/browser``)."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextmanager
def running_stack(folder: Path) -> Iterator:
    """A live stack with its data in ``folder`` on a free port, stopped at the end whatever happened."""
    from histomics_label.stack import Stack

    stack = Stack(folder, port=free_port(), timeout=120)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
