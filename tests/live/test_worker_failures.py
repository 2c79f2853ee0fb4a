"""The job panel's path when a worker is missing or cannot reach Docker: a job sent while no worker runs waits in
the broker and runs once a worker is back (the broker keeps it across the restart); a worker without a Docker daemon
fails the job at once with the reason in its log."""

import os
import signal
import time

import pytest
from helpers.live_stack import private_folder, register_cli_image, running_stack

from histomics_label.devtools.stack.jobs import wait_for_job

pytestmark = [pytest.mark.live, pytest.mark.docker]

INACTIVE, QUEUED, SUCCESS, ERROR = 0, 1, 3, 4
FAST = {'magnification': '5', 'radius': '10', 'patchSize': '48', 'numWorkers': '1', 'tileSize': '256'}


def test_a_job_sent_while_no_worker_runs_waits_and_runs_when_one_is_back(tmp_path, docker_daemon, cli_image,
                                                                         cmu_svs):
    with running_stack(tmp_path / 'data', workers=1, docker_host=docker_daemon.host) as stack:
        client = stack.client()
        registered, clis = register_cli_image(client, cli_image)
        assert registered['status'] == SUCCESS
        cli = clis['SuperpixelClassification']
        folder = private_folder(client, 'Waiting')
        slide = client.uploadFileToFolder(folder['_id'], str(cmu_svs))

        os.killpg(stack.info().pids['worker-1'], signal.SIGKILL)  # the worker's machine goes down
        job = client.post(f'slicer_cli_web/cli/{cli["_id"]}/run', parameters={
            'image': slide['_id'], 'store': 'slide.h5', 'store_folder': folder['_id'], **FAST})
        time.sleep(5)
        assert client.get(f'job/{job["_id"]}')['status'] in (INACTIVE, QUEUED)  # waiting, as Girder shows it

        stack.start()  # brings the worker back (and restarts the rest; Redis keeps the queued task on disk)
        client = stack.client()
        ended = wait_for_job(client, job['_id'], timeout=600)
        assert ended['status'] == SUCCESS, ''.join(ended['log'])[-3000:]
        assert [item['name'] for item in client.listItem(folder['_id'])] == [cmu_svs.name, 'slide.h5']


def test_a_worker_without_a_docker_daemon_fails_the_job_saying_so(tmp_path, cli_image):
    missing = f'unix://{tmp_path}/no-docker.sock'
    with running_stack(tmp_path / 'data', workers=1, docker_host=missing) as stack:
        registered, _ = register_cli_image(stack.client(), cli_image)
    assert registered['status'] == ERROR
    assert 'Could not create the docker client' in ''.join(registered['log'])
