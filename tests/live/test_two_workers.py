"""A two-machine rehearsal on one machine: two girder_worker processes with separate working folders, sharing only
the broker (the stack's Redis) and Girder's API, take a 4-slide batch of SuperpixelClassification jobs sent through
slicer_cli_web as the job panel sends them; the jobs split across both workers, each runs once, one at a time per
worker, in its own worker's folder, and every slide's store comes back. (The plugin's own segment jobs still run in
the server's queue; this is slicer_cli_web's path.)"""

import re
import shutil

import numpy as np
import pytest
from helpers.live_stack import private_folder, register_cli_image, running_stack

from histomics_label.core.io.store import SlideStore
from histomics_label.devtools.stack.jobs import wait_for_job

pytestmark = [pytest.mark.live, pytest.mark.docker]

RUNNING, SUCCESS = 2, 3
SLIDES = 4
FAST = {'magnification': '5', 'radius': '10', 'patchSize': '48', 'numWorkers': '1', 'tileSize': '256'}


@pytest.fixture(scope='module')
def stack(tmp_path_factory, docker_daemon, cli_image):
    with running_stack(tmp_path_factory.mktemp('two-workers') / 'data', workers=2,
                       docker_host=docker_daemon.host) as stack:
        yield stack


def test_a_batch_of_slides_splits_across_two_workers(stack, cli_image, cmu_svs, tmp_path):
    client = stack.client()
    registered, clis = register_cli_image(client, cli_image)
    assert registered['status'] == SUCCESS
    batch = private_folder(client, 'Batch')
    jobs = []
    for number in range(1, SLIDES + 1):
        slide = tmp_path / f'slide-{number}.svs'
        shutil.copy(cmu_svs, slide)
        uploaded = client.uploadFileToFolder(batch['_id'], str(slide))
        jobs.append(client.post(f'slicer_cli_web/cli/{clis["SuperpixelClassification"]["_id"]}/run', parameters={
            'image': uploaded['_id'], 'store': f'slide-{number}.h5', 'store_folder': batch['_id'], **FAST}))
    ended = [wait_for_job(client, job['_id'], timeout=900) for job in jobs]
    assert [job['status'] for job in ended] == [SUCCESS] * SLIDES, [''.join(job['log'])[-2000:] for job in ended]

    # which worker ran each job: its Celery task in that worker's log, and the folder the job mounted
    logs = {name: stack.info().logs[name].read_text(errors='replace') for name in ('worker-1', 'worker-2')}
    ran_by = {}
    for job in ended:
        received = [name for name, log in logs.items() if f'[{job["celeryTaskId"]}] received' in log]
        assert len(received) == 1, (job['celeryTaskId'], received)
        ran_by[job['_id']] = received[0]
        mounted = re.findall(r"'(/[^']*/worker-\d/tmp/[^']*)': \{'bind'", ''.join(job['log']))
        assert mounted and all(f'/{received[0]}/tmp/' in path for path in mounted), mounted
    assert sorted(set(ran_by.values())) == ['worker-1', 'worker-2'], ran_by
    # one task at a time on each worker
    for worker in ('worker-1', 'worker-2'):
        spans = sorted((next(stamp['time'] for stamp in job['timestamps'] if stamp['status'] == RUNNING),
                        job['timestamps'][-1]['time']) for job in ended if ran_by[job['_id']] == worker)
        assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:], strict=False)), spans

    # every slide's store came back, and they agree (the same slide under four names)
    rasters = []
    for number in range(1, SLIDES + 1):
        item = next(client.listItem(batch['_id'], name=f'slide-{number}.h5'))
        client.downloadItem(item['_id'], str(tmp_path))
        with SlideStore(tmp_path / f'slide-{number}.h5') as store:
            rasters.append(store.label_raster[:])
    for raster in rasters[1:]:
        np.testing.assert_array_equal(raster, rasters[0])
