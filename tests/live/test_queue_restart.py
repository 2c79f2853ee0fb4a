"""The heavy-work queue on the live stack (issue 15): slides queued at once run one at a time under a limit of one
per server process, and a Girder server killed with SIGKILL mid-queue loses nothing: its segment child processes
die with it, and the restarted server runs again what was running and then the rest, each store whole.

Real processes, no mocks: the stack's Girder, its jobs' child processes and their dask workers. Each slide is a
small crop of the real H&E sample written as a pyramidal TIFF, so a job takes seconds.
"""

import datetime
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from helpers.live_stack import slides_project, store_path
from helpers.processes import command_line, descendants

from histomics_label.core.io.store import SlideStore
from histomics_label.devtools.stack.jobs import wait_for_job

pytestmark = pytest.mark.live
# image patches, not CNN embeddings: a job need not load a CNN, so each takes seconds
CONFIG = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}],
          'magnification': 5, 'radius': 10, 'patchSize': 32, 'feature': 'image', 'model': 'cnn_torch',
          'retrainEvery': 0, 'batchSize': 8}
RUNNING, SUCCESS = 2, 3
SEGMENT_WORKER = b'histomics_label.jobs.workers.segments'


def project_of(client, slides: list[Path], name: str) -> tuple[dict, list[dict], str]:
    """A project made through the REST API holding ``slides`` as large images; its folder, items and route."""
    return slides_project(client, slides, name, CONFIG)


def set_heavy_jobs(client, count: int) -> None:
    client.put('system/setting', parameters={'key': 'histomics_label.heavy_jobs_per_process', 'value': count})


def running_intervals(jobs: list[dict]) -> list[tuple[datetime.datetime, datetime.datetime]]:
    """Each ended job's time running: from its first RUNNING status to its last status, from Girder's timestamps."""
    intervals = []
    for job in jobs:
        stamps = [(stamp['status'], datetime.datetime.fromisoformat(stamp['time'])) for stamp in job['timestamps']]
        start = min(when for status, when in stamps if status == RUNNING)
        intervals.append((start, max(when for _, when in stamps)))
    return sorted(intervals)


def overlapping(intervals: list[tuple[datetime.datetime, datetime.datetime]]) -> list[tuple]:
    """The pairs of consecutive intervals (sorted by start) of which the second starts before the first ends."""
    return [(first, second) for first, second in zip(intervals, intervals[1:], strict=False) if second[0] < first[1]]


def assert_whole_store(client, folder: dict, item: dict) -> int:
    """The slide's store opens, has segments and its label raster numbers them 1..n; returns n."""
    with SlideStore(store_path(client, folder, item)) as store:
        count = store.n_segments
        assert count > 0
        assert int(np.max(store.label_raster[...])) == count
    return count


def alive(pid: int, command: bytes) -> bool:
    """Whether ``pid`` still runs the same command (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rpartition(')')[2].split()[0]
    except OSError:
        return False
    return state not in ('Z', 'X') and command_line(pid) == command


def wait_for(condition, timeout: float, what: str, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f'{what} within {timeout:g} s')


def test_slides_queued_at_once_never_run_more_heavy_jobs_than_the_limit(stack, crops):
    client = stack.client()
    set_heavy_jobs(client, 1)
    folder, items, base = project_of(client, crops[:3], 'Queued at once')
    answers = client.post(f'{base}/segments')
    assert sorted(answer['status'] for answer in answers) == ['started'] * 3
    jobs = [wait_for_job(client, answer['job'], timeout=300) for answer in answers]
    assert [job['status'] for job in jobs] == [SUCCESS] * 3, [job.get('log') for job in jobs]
    assert overlapping(running_intervals(jobs)) == []
    assert all('Started again' not in ''.join(job['log']) for job in jobs)
    for item in items:
        assert assert_whole_store(client, folder, item) > 0


def test_kill_9_of_the_server_mid_queue_loses_no_slide(stack, crops):
    client = stack.client()
    set_heavy_jobs(client, 1)
    folder, items, base = project_of(client, crops[3:], 'Killed mid-queue')
    answers = client.post(f'{base}/segments')
    assert sorted(answer['status'] for answer in answers) == ['started'] * 3
    girder = stack.info().pids['girder']

    def segmenting() -> dict[int, bytes] | None:
        """The server's processes below it once a segment child runs its dask workers (mid-segmentation)."""
        below = descendants(girder)
        workers = [pid for pid, command in below.items() if SEGMENT_WORKER in command]
        return below if workers and descendants(workers[0]) else None

    below = wait_for(segmenting, 120, 'no segment child of the server started its dask workers')
    running = [answer['job'] for answer in answers if client.get(f'job/{answer["job"]}')['status'] == RUNNING]
    assert len(running) == 1
    os.kill(girder, signal.SIGKILL)

    # the segment child dies with the server at once (PR_SET_PDEATHSIG: the kernel kills it), not at its next
    # progress line into the dead server's pipe (seconds later); its dask workers follow it (dask's parent watch)
    children = {pid: command for pid, command in below.items() if SEGMENT_WORKER in command}
    wait_for(lambda: not [pid for pid, command in children.items() if alive(pid, command)], 2,
             f'the segment child of the killed server still runs: {children}', poll=0.02)
    wait_for(lambda: not [pid for pid, command in below.items() if alive(pid, command)], 30,
             f'processes of the killed server still run: {below}')
    stack.start()  # restarts what died, keeps the database
    client = stack.client()
    jobs = {answer['job']: wait_for_job(client, answer['job'], timeout=300) for answer in answers}
    assert [job['status'] for job in jobs.values()] == [SUCCESS] * 3, [job.get('log') for job in jobs.values()]
    again = [job_id for job_id, job in jobs.items() if 'Started again (attempt 2)' in ''.join(job['log'])]
    assert again == running
    # the restarted server ran the interrupted slide first, then the others one at a time
    queue_log = [line for line in (stack.logs_dir / 'girder.log').read_text(errors='replace').splitlines()
                 if 'histomics_label.jobs.queue' in line]
    assert overlapping(running_intervals(list(jobs.values()))) == [], (
        [job['timestamps'] for job in jobs.values()], queue_log[-20:])
    for item in items:
        assert assert_whole_store(client, folder, item) > 0
    # nor anything of the half-written store the killed child left beside the stores
    leftovers = sorted(path.name for path in store_path(client, folder, items[0]).parent.iterdir()
                       if path.suffix == '.tmp')
    assert leftovers == []
