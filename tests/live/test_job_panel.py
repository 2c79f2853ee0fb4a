"""The DSA job panel's path, end to end: slicer_cli_web registers the CLI image from the Docker daemon, and
SuperpixelClassification sent through slicer_cli_web's REST call (what the job panel sends) becomes a Girder job that
a girder_worker process (its own process; Celery over the stack's Redis) runs in the container, reporting progress
into the job and uploading its outputs to Girder. The outputs are checked against the same CLI run outside Girder on
the same slide and labels, and a project on that slide adopts the uploaded store (``POST .../slide/{item}/store``)."""

import contextlib
import json
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers.live_stack import (
    FAST,
    OUTPUTS,
    private_folder,
    register_cli_image,
    running_stack,
    send_run,
    slide_project,
    store_path,
)

from histomics_label.core.io.store import SlideStore
from histomics_label.core.pipeline import PipelineConfig, run_pipeline
from histomics_label.devtools import REPO_ROOT
from histomics_label.devtools.stack.jobs import wait_for_job
from histomics_label.jobs.cli_image_segments import SENT
from histomics_label.projects.segment_images import SEGMENTS_FOLDER
from histomics_label.settings import CLI_IMAGE, EXECUTOR

pytestmark = [pytest.mark.live, pytest.mark.docker]

SUCCESS, ERROR, CANCELED = 3, 4, 5
LISTED = json.loads((REPO_ROOT / 'slicer_cli' / 'slicer_cli_list.json').read_text())
PROJECT = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}],
           'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0}
"""A project with the settings of ``FAST``, those of the job panel runs here."""


@pytest.fixture(scope='module')
def stack(tmp_path_factory, docker_daemon, cli_image):
    """A live stack with one girder_worker running Docker tasks on the session's private daemon."""
    with running_stack(tmp_path_factory.mktemp('job-panel') / 'data', workers=1,
                       docker_host=docker_daemon.host) as stack:
        yield stack


@pytest.fixture(scope='module')
def tasks(stack, cli_image) -> dict[str, dict]:
    """The image registered as a DSA admin does it (Slicer CLI Web → upload image): its CLIs, by name."""
    ended, clis = register_cli_image(stack.client(), cli_image)
    assert ended['status'] == SUCCESS, ended.get('log')
    return clis


def test_registering_the_image_lists_its_clis_with_their_specifications(stack, tasks, cli_image):
    assert set(tasks) == set(LISTED)
    client = stack.client()
    for name, cli in tasks.items():
        assert cli['image'] == cli_image
        spec = client.get(f'slicer_cli_web/cli/{cli["_id"]}')['xml']
        assert spec.strip() == (REPO_ROOT / 'slicer_cli' / name / f'{name}.xml').read_text().strip()


def run_outside(slide, label_file, folder) -> None:
    """The same CLI run on the same files, outside Girder and Docker."""
    script = REPO_ROOT / 'slicer_cli' / 'SuperpixelClassification' / 'SuperpixelClassification.py'
    args = [str(slide), '--labelfile', str(label_file)]
    for name, value in FAST.items():
        args += [f'--{"workers" if name == "numWorkers" else name.lower()}', value]
    for name, filename in OUTPUTS.items():
        args += [f'--{name.lower()}', str(folder / filename)]
    subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True, timeout=900)


def test_superpixel_classification_from_the_job_panel(stack, tasks, cmu_svs, seed_label_file, tmp_path):
    client = stack.client()
    ended, results = send_run(client, tasks, 'job panel', cmu_svs, seed_label_file)
    log = ''.join(ended.get('log') or [])
    assert ended['status'] == SUCCESS, log[-4000:]
    # the CLI's progress reached the job (slicer_cli_web reads the container's progress tags)
    assert ended['progress']['total'] > 0 and ended['progress']['current'] == ended['progress']['total']

    # the outputs are in Girder, and are what the CLI writes outside Girder and Docker from the same inputs
    uploaded = {item['name']: item for item in client.listItem(results['_id'])}
    assert set(uploaded) == set(OUTPUTS.values())
    fetched, local = tmp_path / 'fetched', tmp_path / 'local'
    for folder in (fetched, local):
        folder.mkdir()
    for name, item in uploaded.items():
        client.downloadItem(item['_id'], str(fetched), name)
    run_outside(cmu_svs, seed_label_file, local)
    with SlideStore(fetched / 'slide.h5') as a, SlideStore(local / 'slide.h5') as b:
        np.testing.assert_array_equal(a.label_raster[:], b.label_raster[:])
        np.testing.assert_allclose(a.latest_round().probabilities, b.latest_round().probabilities, atol=1e-3)
    suggested = [json.loads((folder / 'suggestions.json').read_text())['suggestions'] for folder in (fetched, local)]
    assert [s['segment'] for s in suggested[0]] == [s['segment'] for s in suggested[1]] != []
    assert (fetched / 'segments.tiff').read_bytes() == (local / 'segments.tiff').read_bytes()

    # the plugin's project picks the store up: a project on the same slide with the run's settings adopts it (its
    # round, trained on the run's labels, is not the project's and stays behind)
    folder, item, base = slide_project(client, cmu_svs, 'Adopts the job panel store', PROJECT)
    store_file = next(client.listFile(uploaded['slide.h5']['_id']))
    adopted = client.post(f'{base}/slide/{item["_id"]}/store', parameters={'fileId': store_file['_id']})
    assert adopted['status'] == 'applied', adopted
    with SlideStore(store_path(client, folder, item)) as served, SlideStore(fetched / 'slide.h5') as made:
        np.testing.assert_array_equal(served.label_raster[:], made.label_raster[:])
        assert served.rounds() == [] and made.rounds() != []
    assert client.get(f'{base}/slides')[0]['segments'] == adopted['segments']
    assert [s['status'] for s in client.post(f'{base}/segments')] == ['current']


def test_a_cli_that_fails_fails_its_job_with_the_reason_and_uploads_nothing(stack, tasks, cmu_svs, tmp_path):
    client = stack.client()
    bad = tmp_path / 'labels.json'
    bad.write_text(json.dumps({'categories': ['tumor', 'stroma'], 'labels': {'1': 'tumor', '2': 'zebra'}}))
    ended, results = send_run(client, tasks, 'job panel, bad labels', cmu_svs, bad)
    log = ''.join(ended.get('log') or [])
    assert ended['status'] == ERROR
    assert "Unknown category 'zebra'" in log, log[-3000:]
    assert list(client.listItem(results['_id'])) == []


def test_an_image_that_is_not_built_fails_its_registration_naming_it(stack):
    ended, clis = register_cli_image(stack.client(), 'histomics-label:not-built', collection='More tasks')
    assert ended['status'] == ERROR
    assert 'Could not find the following images\nhistomics-label:not-built' in ''.join(ended['log'])
    assert clis == {}


def leftover_volumes(stack) -> list[str]:
    """Temporary folders the worker mounted into containers and has not removed."""
    return [path.name for path in (stack.data_dir / 'worker-1' / 'tmp').iterdir() if path.name.startswith('tmp')]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_a_container_killed_mid_run_fails_its_job_leaves_nothing_and_a_rerun_succeeds(stack, tasks, docker_daemon,
                                                                                     cli_image, cmu_svs):
    client = stack.client()
    inputs = private_folder(client, 'job panel, killed')
    results = client.createFolder(inputs['_id'], 'results')
    slide = client.uploadFileToFolder(inputs['_id'], str(cmu_svs))
    parameters = {'image': slide['_id'], **FAST, 'store': 'slide.h5', 'store_folder': results['_id'],
                  'segmentImage': 'segments.tiff', 'segmentImage_folder': results['_id']}
    run = f'slicer_cli_web/cli/{tasks["SuperpixelClassification"]["_id"]}/run'

    job = client.post(run, parameters=parameters)
    running = wait_until(lambda: docker_daemon.docker('ps', '--quiet', '--filter', f'ancestor={cli_image}')
                         .stdout.split(), 120, 'the CLI container did not start')
    docker_daemon.docker('kill', *running)
    ended = wait_for_job(client, job['_id'], timeout=300)
    assert ended['status'] == ERROR
    assert 'Non-zero exit code from docker container (137)' in ''.join(ended['log'])
    assert list(client.listItem(results['_id'])) == []
    wait_until(lambda: leftover_volumes(stack) == [], 30, f'the worker left {leftover_volumes(stack)}')

    again = wait_for_job(client, client.post(run, parameters=parameters)['_id'], timeout=900)
    assert again['status'] == SUCCESS, ''.join(again['log'])[-3000:]
    assert {item['name'] for item in client.listItem(results['_id'])} == {'slide.h5', 'segments.tiff'}
    wait_until(lambda: leftover_volumes(stack) == [], 30, f'the worker left {leftover_volumes(stack)}')


@contextlib.contextmanager
def cli_image_executor(client, image: str):
    """The ``cli_image`` executor with ``image`` as the admin sets it, the server executor again afterwards."""
    client.put('system/setting', parameters={'key': CLI_IMAGE, 'value': image})
    client.put('system/setting', parameters={'key': EXECUTOR, 'value': 'cli_image'})
    try:
        yield
    finally:
        client.put('system/setting', parameters={'key': EXECUTOR, 'value': 'server'})


def test_make_segments_runs_the_cli_image_through_slicer_cli_web(stack, tasks, cli_image, cmu_svs, tmp_path):
    """The ``cli_image`` executor: "Make segments" sends the image's SuperpixelClassification through slicer_cli_web's
    run call; its job runs the container on the worker; the slide's job relays its progress and puts its store in
    place, which holds the very segments and features the engine makes here from the same slide with the project's
    settings. Nothing the run travelled through is left, and the slide is then current."""
    client = stack.client()
    with cli_image_executor(client, cli_image):
        folder, item, base = slide_project(client, cmu_svs, 'Segments by the CLI image', PROJECT)
        started = client.post(f'{base}/segments')
        job = wait_for_job(client, started[0]['job'], timeout=900)
    log = ''.join(job.get('log') or [])
    assert job['status'] == SUCCESS, log[-3000:]
    run = client.get(f'job/{log.split(SENT, 1)[1].split()[0]}')
    assert run['type'] == f'{cli_image}#SuperpixelClassification' and run['status'] == SUCCESS
    assert run['progress']['current'] == run['progress']['total'] > 0

    local = run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(tmp_path / 'here.h5'), magnification=5,
                                        radius=10, patch_size=48))
    with SlideStore(store_path(client, folder, item)) as served, SlideStore(local.store) as here:
        np.testing.assert_array_equal(served.label_raster[:], here.label_raster[:])
        assert served.feature_names() == here.feature_names() != []
        name = here.feature_names()[0]
        np.testing.assert_allclose(served.features(name), here.features(name), atol=1e-3)
        assert served.rounds() == []
    segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER))
    assert list(client.listFolder(segments_folder['_id'])) == []
    assert [entry['name'] for entry in client.listItem(segments_folder['_id'])] == [f'{item["_id"]}.segments.tiff']
    assert client.get(f'{base}/slides')[0]['segments'] == local.n_segments
    assert [s['status'] for s in client.post(f'{base}/segments')] == ['current']


def test_an_image_not_registered_fails_the_slides_job_saying_how_to_register_it(stack, tasks, cmu_svs):
    client = stack.client()
    with cli_image_executor(client, 'histomics-label:never-registered'):
        folder, item, base = slide_project(client, cmu_svs, 'An image not registered', PROJECT)
        job = wait_for_job(client, client.post(f'{base}/segments')[0]['job'], timeout=120)
    assert job['status'] == ERROR
    assert ('The CLI image histomics-label:never-registered is not registered with slicer_cli_web'
            in ''.join(job['log'])), job['log']
    assert not store_path(client, folder, item).exists()
    segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER), None)
    assert segments_folder is None or list(client.listFolder(segments_folder['_id'])) == []


def test_cancelling_the_slides_job_cancels_the_cli_images_run_and_leaves_the_slide_as_it_was(stack, tasks, cli_image,
                                                                                         docker_daemon, cmu_svs):
    client = stack.client()
    with cli_image_executor(client, cli_image):
        folder, item, base = slide_project(client, cmu_svs, 'Segments by the CLI image, cancelled', PROJECT)
        job_id = client.post(f'{base}/segments')[0]['job']
        wait_until(lambda: docker_daemon.docker('ps', '--quiet', '--filter', f'ancestor={cli_image}').stdout.split(),
                   120, 'the CLI container did not start')
        client.put(f'job/{job_id}/cancel')
        job = wait_for_job(client, job_id, timeout=120)
    assert job['status'] == CANCELED, job.get('log')
    run_id = ''.join(job['log']).split(SENT, 1)[1].split()[0]
    run = wait_until(lambda: (lambda run: run if run['status'] in (SUCCESS, ERROR, CANCELED) else None)(
        client.get(f'job/{run_id}')), 120, 'the run did not end')
    assert run['status'] == CANCELED, run.get('log')
    wait_until(lambda: docker_daemon.docker('ps', '--quiet', '--filter', f'ancestor={cli_image}').stdout.split() == [],
               60, 'the CLI container still runs')
    assert not store_path(client, folder, item).exists()
    segments_folder = next(client.listFolder(folder['_id'], name=SEGMENTS_FOLDER))
    assert list(client.listFolder(segments_folder['_id'])) == []
