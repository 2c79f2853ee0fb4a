"""The plugin on Girder 3.2, the DSA's stable line (HistomicsUI 1.8.1), beside Girder 5: the same package loads
there (``girder_compat`` bridges the few APIs that differ), answers the very REST routes it answers on Girder 5, and
serves a project: set-up, a store made here adopted as the slide's, labels written, painted, read back with who and
when, reviewed and undone, as on Girder 5. Its segments are made as in a DSA of today: the CLI image registered with
slicer_cli_web 1.5 and run by girder_worker 0.10 (the ``cli_image`` executor). Its rounds learn from its labels as
Girder 5's do."""

import io
import json
import time

import numpy as np
import pytest
from helpers.live_stack import (
    OUTPUTS,
    free_port,
    private_folder,
    register_cli_image,
    running_stack,
    send_run,
    slide_project,
    store_path,
)

from histomics_label.core.io.store import SlideStore
from histomics_label.core.pipeline import PipelineConfig, run_pipeline
from histomics_label.devtools.girder3 import ensure_girder3_venv
from histomics_label.devtools.stack import Stack
from histomics_label.devtools.stack.__main__ import main
from histomics_label.devtools.stack.jobs import wait_for_job
from histomics_label.jobs.cli_image_segments import SENT
from histomics_label.settings import CLI_IMAGE, EXECUTOR

pytestmark = [pytest.mark.live, pytest.mark.docker]

PROJECT = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}],
           'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0}
"""A project with the settings ``embedded_cmu`` was made with."""
SUCCESS = 3


@pytest.fixture(scope='module')
def girder3(tmp_path_factory, docker_daemon, cli_image):
    """A live stack on Girder 3 with one girder_worker (0.10.7, Girder 3's) running Docker tasks."""
    with running_stack(tmp_path_factory.mktemp('girder3') / 'data', python=str(ensure_girder3_venv()), workers=1,
                       docker_host=docker_daemon.host) as stack:
        yield stack


@pytest.fixture(scope='module')
def tasks(girder3, cli_image) -> dict[str, dict]:
    """The CLI image registered with Girder 3's slicer_cli_web as a DSA admin registers it: its CLIs, by name."""
    ended, clis = register_cli_image(girder3.client(), cli_image)
    assert ended['status'] == SUCCESS, ended.get('log')
    return clis


@pytest.fixture(scope='module')
def girder5(tmp_path_factory):
    with running_stack(tmp_path_factory.mktemp('girder5') / 'data') as stack:
        yield stack


def routes(client) -> dict[tuple[str, str], list[str]]:
    """The plugin's routes in the server's Swagger description, with their parameters' names."""
    return {(method.upper(), path): sorted(parameter['name'] for parameter in operation.get('parameters', []))
            for path, operations in client.get('describe')['paths'].items() if path.startswith('/histomics_label')
            for method, operation in operations.items()}


def adopted_project(client, cmu_svs, embedded_cmu, name: str) -> tuple[dict, dict, str]:
    """A project of the H&E sample made through the REST API whose slide adopted the store ``embedded_cmu``, as an
    admin adopts one made elsewhere (uploaded, then named): the folder, the item and the project's route."""
    folder, item, base = slide_project(client, cmu_svs, name, PROJECT)
    uploads = private_folder(client, f'{name}, the store made elsewhere')
    data = embedded_cmu.read_bytes()
    store_file = client.uploadStreamToFolder(uploads['_id'], io.BytesIO(data), 'cmu.h5', len(data))
    adopted = client.post(f'{base}/slide/{item["_id"]}/store', parameters={'fileId': store_file['_id']})
    assert adopted['status'] == 'applied', adopted
    return folder, item, base


def test_the_plugin_loads_on_girder_3_and_answers_the_routes_it_answers_on_girder_5(girder3, girder5):
    client = girder3.client()
    assert client.get('system/version')['release'] == '3.2.18'
    loaded = set(client.get('system/plugins')['loaded'])
    assert {'histomics_label', 'histomicsui', 'large_image', 'large_image_annotation', 'jobs', 'slicer_cli_web',
            'worker'} <= loaded
    on_girder_3, on_girder_5 = routes(client), routes(girder5.client())
    assert len(on_girder_3) >= 18
    assert on_girder_3 == on_girder_5


def test_a_project_on_girder_3_adopts_a_store_and_keeps_its_labels_with_who_and_when(girder3, cmu_svs,
                                                                                     embedded_cmu):
    client = girder3.client()
    folder, item, base = adopted_project(client, cmu_svs, embedded_cmu, 'On Girder 3')
    with SlideStore(store_path(client, folder, item)) as served, SlideStore(embedded_cmu) as made:
        np.testing.assert_array_equal(served.label_raster[:], made.label_raster[:])
        count, raster, info = made.n_segments, made.label_raster[:], made.slide_info
    assert client.get(f'{base}/slides')[0]['segments'] == count
    assert [s['status'] for s in client.post(f'{base}/segments')] == ['current']

    labels = [{'item': item['_id'], 'segment': segment, 'category': category}
              for segment, category in ((1, 'tumor'), (2, 'stroma'), (3, 'tumor'))]
    written = client.put(f'{base}/labels', data=json.dumps({'labels': labels, 'view': 'guided'}))
    assert (written['labeled'], written['changed']) == (3, 3)
    me = client.get('user/me')
    listed = client.get(f'{base}/labels', parameters={'sort': 'segment', 'sortdir': 1, 'limit': 0})
    assert [(label['segment'], label['category'], label['labeler'], label['view']) for label in listed] == [
        (1, 'tumor', me['_id'], 'guided'), (2, 'stroma', me['_id'], 'guided'), (3, 'tumor', me['_id'], 'guided')]
    assert all(label['created'] and label['updated'] for label in listed)

    reviewed = client.put(f'{base}/labels/{listed[1]["_id"]}/review', parameters={'category': 'tumor'})
    assert (reviewed['category'], reviewed['review']['status'], reviewed['review']['category']) == (
        'stroma', 'overridden', 'tumor')

    # a dab on the centre of an analysis pixel labels the segment the raster has there, and only that one; undoing
    # it gives back the labels as they were
    before = [(label['segment'], label['category']) for label in client.get(
        f'{base}/labels', parameters={'sort': 'segment', 'sortdir': 1, 'limit': 0})]
    factor = info.base_width / info.width
    row, col = info.height // 2, info.width // 2
    painted = client.post(f'{base}/labels/paint', data=json.dumps({
        'item': item['_id'], 'points': [[(col + 0.5) * factor, (row + 0.5) * factor]], 'radius': 1,
        'category': 'stroma'}))
    assert painted['segments'] == [int(raster[row, col])] and painted['labeled'] == 1
    assert client.post(f'{base}/labels/undo', parameters={'batch': painted['batch']})['reverted'] == 1
    assert [(label['segment'], label['category']) for label in client.get(
        f'{base}/labels', parameters={'sort': 'segment', 'sortdir': 1, 'limit': 0})] == before


def test_a_rounds_news_reaches_the_project_readers_pages_through_girder_3s_notifications(girder3, cmu_svs,
                                                                                         embedded_cmu):
    """Girder 3 has no Redis channel: the training event is kept in the database for the pages' event stream
    (``GET /notification``, which ``/notification/stream`` serves to open pages)."""
    client = girder3.client()
    folder, item, base = adopted_project(client, cmu_svs, embedded_cmu, 'News on Girder 3')
    labels = [{'item': item['_id'], 'segment': segment, 'category': category}
              for segment, category in ((1, 'tumor'), (2, 'stroma'))]
    client.put(f'{base}/labels', data=json.dumps({'labels': labels, 'view': 'guided'}))
    client.post(f'{base}/train')
    deadline = time.monotonic() + 60
    while not (news := [note['data'] for note in client.get('notification')
                        if note['type'] == 'histomics_label.training' and note['data']['project'] == folder['_id']]):
        assert time.monotonic() < deadline, 'no training event reached the admin'
        time.sleep(0.5)
    assert news[0]['state'] == 'running'


def oracle_categories(store) -> np.ndarray:
    """A category per segment that a linear model on the store's features can learn: which side of the median
    each segment's feature vector lies along the features' first principal direction."""
    with SlideStore(store) as made:
        features = made.features(made.feature_names()[0]).astype(np.float64)
    centred = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-9)
    score = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
    return np.where(score > np.median(score), 'tumor', 'stroma')


@pytest.mark.parametrize('line', ['girder3', 'girder5'])
def test_a_round_learns_its_labels_on_either_girder_line(line, request, cmu_svs, embedded_cmu):
    """Forty segments labeled by an oracle, one round: the model the server stored predicts the oracle's category
    for the segments it was never shown (a round that ignored its labels would be right about half the time)."""
    client = request.getfixturevalue(line).client()
    folder, item, base = adopted_project(client, cmu_svs, embedded_cmu, f'A round on {line}')
    truth = oracle_categories(embedded_cmu)
    shown = np.random.default_rng(7).choice(len(truth), 40, replace=False)
    labels = [{'item': item['_id'], 'segment': int(row) + 1, 'category': str(truth[row])} for row in shown]
    client.put(f'{base}/labels', data=json.dumps({'labels': labels, 'view': 'guided'}))

    trained = client.post(f'{base}/train', parameters={'wait': 'true'})['round']
    assert trained['labelsUsed'] == 40, trained
    with SlideStore(store_path(client, folder, item)) as served:
        number = served.rounds()[-1]
        names = np.array([category['name'] for category in served.round_categories(number)])
        predicted = names[served.round_probabilities(number).argmax(axis=1)]
    unseen = np.setdiff1d(np.arange(len(truth)), shown)
    assert (predicted[unseen] == truth[unseen]).mean() >= 0.85


def test_girder_3_makes_a_slides_segments_through_the_cli_image_registered_with_its_slicer_cli_web(
        girder3, tasks, cli_image, cmu_svs, tmp_path):
    client = girder3.client()
    assert {'SuperpixelClassification', 'SimilarSegments'} <= set(tasks)
    client.put('system/setting', parameters={'key': CLI_IMAGE, 'value': cli_image})
    client.put('system/setting', parameters={'key': EXECUTOR, 'value': 'cli_image'})
    folder, item, base = slide_project(client, cmu_svs, 'Segments on Girder 3', PROJECT)
    job = wait_for_job(client, client.post(f'{base}/segments')[0]['job'], timeout=900)
    log = ''.join(job.get('log') or [])
    assert job['status'] == SUCCESS, log[-3000:]
    run = client.get(f'job/{log.split(SENT, 1)[1].split()[0]}')
    assert run['type'] == f'{cli_image}#SuperpixelClassification' and run['status'] == SUCCESS

    local = run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(tmp_path / 'here.h5'), magnification=5,
                                        radius=10, patch_size=48))
    with SlideStore(store_path(client, folder, item)) as served, SlideStore(local.store) as here:
        np.testing.assert_array_equal(served.label_raster[:], here.label_raster[:])
        name = here.feature_names()[0]
        np.testing.assert_allclose(served.features(name), here.features(name), atol=1e-3)
    slide = client.get(f'{base}/slides')[0]
    assert slide['segments'] == local.n_segments and slide['segmentImage']['id']
    assert [s['status'] for s in client.post(f'{base}/segments')] == ['current']


def test_superpixel_classification_from_girder_3s_job_panel(girder3, tasks, cmu_svs, seed_label_file, embedded_cmu,
                                                             tmp_path):
    """What HistomicsUI's job panel sends (slicer_cli_web's run route, with the labeler's files and output folder)
    runs the CLI image through girder_worker 0.10 and uploads its outputs: a store with the engine's very segments
    and features at the same settings, and a round trained on the label file's labels."""
    client = girder3.client()
    ended, results = send_run(client, tasks, 'job panel on Girder 3', cmu_svs, seed_label_file)
    assert ended['status'] == SUCCESS, ''.join(ended.get('log') or [])[-4000:]
    assert ended['progress']['total'] > 0 and ended['progress']['current'] == ended['progress']['total']
    uploaded = {item['name']: item for item in client.listItem(results['_id'])}
    assert set(uploaded) == set(OUTPUTS.values())
    client.downloadItem(uploaded['slide.h5']['_id'], str(tmp_path), 'slide.h5')
    labels = json.loads(seed_label_file.read_text())
    with SlideStore(tmp_path / 'slide.h5') as made, SlideStore(embedded_cmu) as here:
        np.testing.assert_array_equal(made.label_raster[:], here.label_raster[:])
        name = here.feature_names()[0]
        np.testing.assert_allclose(made.features(name), here.features(name), atol=1e-3)
        segments = len(here.features(name))
        trained = made.latest_round()
    # the round is the label file's: its labels, and a prediction for every segment
    assert {int(segment): trained.categories[index]['name'] for segment, index in
            zip(trained.label_ids, trained.label_categories, strict=True)} == {
        int(segment): category for segment, category in labels['labels'].items()}
    assert trained.probabilities.shape == (segments, len(labels['categories']))


def test_the_stack_command_starts_girder_3_on_request(tmp_path, capsys):
    data, port = tmp_path / 'data', free_port()
    assert main(['start', '--girder', '3', '--data', str(data), '--port', str(port)]) == 0
    try:
        assert f'http://127.0.0.1:{port}/' in capsys.readouterr().out
        assert Stack(data, port).client().get('system/version')['release'] == '3.2.18'
        assert main(['status', '--data', str(data), '--port', str(port)]) == 0
    finally:
        assert main(['stop', '--data', str(data), '--port', str(port)]) == 0
