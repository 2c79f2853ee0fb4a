"""The live stack for tests that need real processes (``tests/live``, ``tests/browser``)."""

import json
import socket
import time
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
    from histomics_label.devtools.stack import Stack

    stack = Stack(folder, port=free_port(), timeout=120)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def wait_for_job(client, job_id: str, timeout: float = 600) -> dict:
    """The Girder job once it ended (success, error or cancelled), with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f'job/{job_id}')
        if job['status'] in (3, 4, 5):
            return client.get(f'job/{job_id}', parameters={'includeLog': 'true'})
        time.sleep(0.5)
    raise AssertionError(f'job {job_id} did not end in {timeout} s')


def slide_project(client, slide: Path, name: str, config: dict) -> tuple[dict, dict, str]:
    """A project made through the REST API as a user would: a folder ``name`` in the user's Private folder holding
    ``slide`` as a large image, configured with ``config``; returns the folder, the item and the project's route."""
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    folder = client.createFolder(private['_id'], name)
    item = client.getItem(client.uploadFileToFolder(folder['_id'], str(slide))['itemId'])
    if not item.get('largeImage'):
        client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': next(client.listFile(item['_id']))['_id']})
    base = f'histomics_label/project/{folder["_id"]}'
    client.put(base, json=config)
    return folder, item, base


def add_user(client, folder_id: str, user: dict, level: int) -> dict:
    """A new user (``user``: its login and password) with ``level`` access (0 read, 1 write) on the folder."""
    created = client.post('user', parameters={**user, 'email': f'{user["login"]}@example.com', 'firstName': 'A',
                                              'lastName': 'User'})
    access = client.get(f'folder/{folder_id}/access')
    access['users'].append({'id': created['_id'], 'level': level})
    client.put(f'folder/{folder_id}/access', parameters={'access': json.dumps(access)})
    return created


def make_segments(client, base: str) -> None:
    """Start the project's segment job and wait until it succeeded."""
    job = wait_for_job(client, client.post(f'{base}/segments')[0]['job'])
    assert job['status'] == 3, job.get('log')


def store_path(client, folder: dict, item: dict) -> Path:
    """Where the server keeps the slide's store (the stack runs on this machine)."""
    data_dir = Path(client.get('system/setting', parameters={'key': 'histomics_label.data_dir'}))
    return data_dir / folder['_id'] / f'{item["_id"]}.h5'
