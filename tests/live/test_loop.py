"""The product on the live stack, through its REST API: the labeling loop on a real slide, many labelers at once,
a server killed mid-write, and schemathesis over the plugin's routes.

One stack per Girder line (Girder 5, and Girder 3.2 with HistomicsUI 1.8.1, the DSA's stable line), one project on
the real H&E sample made through the API: segment generation runs as a Girder job in the server, exactly as for a
user.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import girder_client
import pytest
from helpers.live_stack import make_segments, running_stack, slide_project, store_path

from histomics_label.devtools.cli_demo import seed_labels
from histomics_label.devtools.girder3 import ensure_girder3_venv

pytestmark = pytest.mark.live
CONFIG = {'categories': [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
                         {'name': 'background', 'color': '#888888', 'excluded': True}],
          'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0, 'batchSize': 8}
NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}


def total(client, path: str, **params) -> int:
    response = client.sendRestRequest('GET', path, parameters={'limit': 1, **params}, jsonResp=False)
    return int(response.headers['Girder-Total-Count'])


@pytest.fixture(scope='module', params=['girder5', 'girder3'])
def stack(request, tmp_path_factory):
    """A live stack of the module's own on each Girder line: Girder 5 in this environment, Girder 3 in its own."""
    python = str(ensure_girder3_venv()) if request.param == 'girder3' else None
    with running_stack(tmp_path_factory.mktemp(request.param) / 'data', python=python) as stack:
        yield stack


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A project made through the API: the H&E sample uploaded, configured, segmented by a job."""
    client = stack.client()
    folder, item, base = slide_project(client, cmu_svs, 'Live project', CONFIG)
    make_segments(client, base)
    store = store_path(client, folder, item)
    seeds = {int(s): NAMES[c] for s, c in seed_labels(str(store), str(cmu_svs), 5)['labels'].items()}
    return {'folder': folder, 'item': item, 'base': base, 'seeds': seeds}


def test_label_retrain_suggest_and_annotations(stack, project):
    client, base, item = stack.client(), project['base'], project['item']['_id']
    segments = client.get(f'{base}/slides')[0]['segments']
    assert segments > 100
    labels = [{'item': item, 'segment': s, 'category': c} for s, c in project['seeds'].items()]
    client.put(f'{base}/labels', json={'labels': labels, 'view': 'guided'})
    first = client.post(f'{base}/train', parameters={'wait': 'true'})['round']
    suggested = client.get(f'{base}/suggestions', parameters={'limit': 8})
    assert len(suggested) == 8 and not {s['segment'] for s in suggested} & set(project['seeds'])
    client.put(f'{base}/labels', json={'labels': [{'item': item, 'segment': s['segment'],
                                                   'category': s['predicted']} for s in suggested]})
    second = client.post(f'{base}/train', parameters={'wait': 'true'})['round']
    assert second['number'] == first['number'] + 1 and second['labelsUsed'] == first['labelsUsed'] + 8
    fresh = client.get(f'{base}/suggestions', parameters={'limit': 8})
    assert not {s['segment'] for s in fresh} & ({s['segment'] for s in suggested} | set(project['seeds']))
    # the round publishes labels and predictions (in the background) as pixelmap annotations any large_image
    # viewer reads
    deadline = time.monotonic() + 60
    while True:
        annotations = {a['annotation']['name']: a for a in client.get('annotation', parameters={'itemId': item})}
        if {'Histomics Label labels', 'Histomics Label predictions'} <= set(annotations) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert {'Histomics Label labels', 'Histomics Label predictions'} <= set(annotations)
    predictions = client.get(f'annotation/{annotations["Histomics Label predictions"]["_id"]}')
    element = predictions['annotation']['elements'][0]
    assert element['type'] == 'pixelmap' and len(element['values']) == segments + 1
    image = client.getItem(element['girderId'])
    assert image['largeImage']
    assert client.get(f'item/{image["_id"]}/tiles')['sizeX'] > 0
    rounds = client.get(f'{base}/rounds')['rounds']
    assert [r['labelsUsed'] for r in rounds][-2:] == [first['labelsUsed'], second['labelsUsed']]


def test_eight_labelers_at_once_lose_nothing(stack, project):
    admin, base, item = stack.client(), project['base'], project['item']['_id']
    users = [admin.post('user', parameters={'login': f'labeler{k}', 'email': f'labeler{k}@example.com',
                                             'firstName': 'L', 'lastName': str(k), 'password': 'password1'})
             for k in range(8)]
    access = admin.get(f'folder/{project["folder"]["_id"]}/access')
    access['users'] += [{'id': u['_id'], 'level': 1} for u in users]
    admin.put(f'folder/{project["folder"]["_id"]}/access', parameters={'access': json.dumps(access)})
    segments = admin.get(f'{base}/slides')[0]['segments']

    def label(k: int) -> int:
        client = girder_client.GirderClient(apiUrl=stack.info().api_url)
        client.authenticate(f'labeler{k}', 'password1')
        written = 0
        for start in range(0, 60, 6):  # overlapping segments: every labeler labels some the others do
            batch = [{'item': item, 'segment': 1 + (3 * k + s) % segments, 'category': ('tumor', 'stroma')[s % 2]}
                     for s in range(start, start + 6)]
            written += client.put(f'{base}/labels', json={'labels': batch, 'view': 'bulk'})['labeled']
        return written

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(label, range(8))) == [60] * 8
    for user in users:
        assert total(admin, f'{base}/labels', labeler=user['_id']) == 60
    listed = admin.get(f'{base}/labels', parameters={'limit': 0, 'sortdir': 1})
    keys = [(label['labeler'], label['segment']) for label in listed
            if label['labeler'] in {u['_id'] for u in users}]
    assert len(keys) == len(set(keys)) == 8 * 60


def test_kill_9_mid_write_loses_no_committed_label(stack, project):
    """A labeler keeps relabeling the slide (each pass flips the category) while Girder is killed with SIGKILL:
    after a restart every acknowledged label is there, as acknowledged or as the request in flight left it."""
    client, base, item = stack.client(), project['base'], project['item']['_id']
    segments = client.get(f'{base}/slides')[0]['segments']
    acknowledged: dict[int, str] = {}
    in_flight: dict[int, str] = {}
    stop = threading.Event()

    def write() -> None:
        writer = stack.client()
        step = 0
        while not stop.is_set():
            start = 1 + (4 * step) % segments
            category = ('stroma', 'tumor')[(4 * step // segments) % 2]
            batch = {s: category for s in range(start, min(start + 4, segments + 1))}
            step += 1
            try:
                writer.put(f'{base}/labels', json={'labels': [{'item': item, 'segment': s, 'category': c}
                                                              for s, c in batch.items()], 'view': 'api'})
            except Exception:  # the server died under this request: committed or not, both are fine
                in_flight.update(batch)
                return
            acknowledged.update(batch)

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(2)
    os.kill(stack.info().pids['girder'], signal.SIGKILL)
    thread.join(30)
    stop.set()
    assert len(acknowledged) >= 8, 'too few writes finished before the kill'
    assert in_flight, 'the kill did not land during a write'
    stack.start()  # restarts what died, keeps the data
    client = stack.client()
    me = client.get('user/me')
    stored = {label['segment']: label['category'] for label in client.get(
        f'{base}/labels', parameters={'limit': 0, 'labeler': me['_id']})}
    lost = [s for s, category in acknowledged.items()
            if stored.get(s) != category and stored.get(s) != in_flight.get(s)]
    assert lost == []


@pytest.mark.parametrize('stack', ['girder5'], indirect=True)  # slicer_cli_web 1.5 registers only Docker images
def test_cli_specs_registered_for_the_job_panel(stack):
    from histomics_label.devtools.stack.demo import CLI_IMAGE, register_cli_specs

    client = stack.client()
    assert register_cli_specs(client) == ['SuperpixelClassification', 'SimilarSegments']
    register_cli_specs(client)  # again: replaced, not doubled
    listed = client.get('slicer_cli_web/cli')
    assert sorted(entry['name'] for entry in listed) == ['SimilarSegments', 'SuperpixelClassification']
    assert {entry['image'] for entry in listed} == {CLI_IMAGE}
    xml = client.sendRestRequest('GET', f'slicer_cli_web/cli/{listed[0]["_id"]}/xml', jsonResp=False).text
    assert '<executable>' in xml


def test_schemathesis_finds_no_server_error(stack, project, tmp_path):
    """Generated valid and invalid requests to every plugin route: none may answer 5xx.

    The project's folder and slide are given as ``id`` and ``item``, so the requests reach the routes' own code
    instead of stopping at an unknown id. Its coverage phase is left out: it sends ``multipart/form-data`` without
    a boundary, which CherryPy's body parser (under Girder, before any route runs) answers with a 500 for every
    Girder route alike.
    """
    info = stack.info()
    token = stack.client().token
    report = tmp_path / 'schemathesis.txt'
    config = tmp_path / 'schemathesis.toml'
    config.write_text(f'[parameters]\n"path.id" = "{project["folder"]["_id"]}"\n'
                      f'"query.item" = "{project["item"]["_id"]}"\n')
    command = [Path(sys.executable).with_name('st'), '--config-file', str(config), 'run', f'{info.api_url}/describe',
               '--url', info.api_url,
               '--include-path-regex', '^/histomics_label', '--checks', 'not_a_server_error',
               '-H', f'Girder-Token: {token}', '--max-examples', '8', '--seed', '1', '--workers', '2',
               '--phases', 'examples,fuzzing', '--generation-database', 'none',
               '--request-timeout', '300']  # train?wait=true answers when its round (queued behind others) is done
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    report.write_text(result.stdout + result.stderr)
    assert 'histomics_label' in result.stdout
    assert result.returncode == 0, result.stdout[-6000:]
