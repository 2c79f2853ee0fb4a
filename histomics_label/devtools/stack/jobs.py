"""Waiting on the live stack's Girder jobs from a ``GirderClient`` (the live tests and the benchmarks share it)."""

from __future__ import annotations

import time

ENDED = (3, 4, 5)
"""Girder job statuses that end a job: success, error, cancelled."""


def wait_for_job(client, job_id: str, timeout: float = 600.0, poll: float = 0.2) -> dict:
    """The Girder job once it ended, with its log; ``TimeoutError`` when it has not ended within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f'job/{job_id}')['status'] in ENDED:
            return client.get(f'job/{job_id}', parameters={'includeLog': 'true'})
        time.sleep(poll)
    raise TimeoutError(f'job {job_id} did not end in {timeout:.0f} s')
