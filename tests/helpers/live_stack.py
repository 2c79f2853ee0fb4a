"""The live stack for tests that need real processes (``tests/live``, ``tests/browser``)."""

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from histomics_label.core.acquisition import audit
from histomics_label.core.io.store import SlideStore
from histomics_label.devtools.cli_demo import seed_labels
from histomics_label.devtools.stack.jobs import wait_for_job


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


PORT_TRIES = 3
"""Starts on a new free port when another process took the one chosen (an outgoing connection of any process may get
a port ``free_port`` answered, between the answer and Girder's bind)."""


@contextmanager
def running_stack(folder: Path, python: str | None = None, **options) -> Iterator:
    """A live stack with its data in ``folder`` on a free port, stopped at the end whatever happened; Girder runs in
    ``python`` (this interpreter by default); ``options`` go to ``Stack`` (workers, docker_host)."""
    from histomics_label.devtools.stack import Stack
    from histomics_label.devtools.stack.launcher import StackError

    for attempt in range(1, PORT_TRIES + 1):
        stack = Stack(folder, port=free_port(), timeout=120, python=python, **options)
        try:
            stack.start()
            break
        except StackError as exc:
            stack.stop()
            if 'address already in use' not in str(exc) or attempt == PORT_TRIES:
                raise
    try:
        yield stack
    finally:
        stack.stop()


@contextmanager
def stack_on(line: str, folder: Path) -> Iterator:
    """``running_stack`` on Girder ``line`` serving the client: Girder 5's (``girder5``), or on Girder 3.2 with
    HistomicsUI 1.8.1 (``girder3``) the one ``girder build`` compiled (``devtools.girder3_client``)."""
    from histomics_label.devtools.girder3_client import girder3_python

    python = girder3_python() if line == 'girder3' else None
    with running_stack(folder, python=python and str(python)) as stack:
        yield stack


def slide_project(client, slide: Path, name: str, config: dict) -> tuple[dict, dict, str]:
    """A project made through the REST API as a user would: a folder ``name`` in the user's Private folder holding
    ``slide`` as a large image, configured with ``config``; returns the folder, the item and the project's route."""
    folder, items, base = slides_project(client, [slide], name, config)
    return folder, items[0], base


def project_and_plain_slide(client, slide: Path, name: str, config: dict) -> dict:
    """``slide`` in a project ``name`` (``slide_project``), and the same slide in a plain folder, in no project:
    ``project`` (its folder), ``slide`` and ``plainSlide`` (their items)."""
    project, item, _ = slide_project(client, slide, name, config)
    return {'project': project, 'slide': item, 'plainSlide': plain_slide(client, slide)}


def plain_slide(client, slide: Path) -> dict:
    """``slide`` as a large image in a new plain folder of the user's, in no project: its item."""
    plain = private_folder(client, 'Plain slides')
    item = client.getItem(client.uploadFileToFolder(plain['_id'], str(slide))['itemId'])
    if not item.get('largeImage'):
        client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': next(client.listFile(item['_id']))['_id']})
    return item


def slides_project(client, slides: list[Path], name: str, config: dict) -> tuple[dict, list[dict], str]:
    """``slide_project`` with several slides: the folder, the items in the order of ``slides`` and the route."""
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    folder = client.createFolder(private['_id'], name)
    items = []
    for slide in slides:
        item = client.getItem(client.uploadFileToFolder(folder['_id'], str(slide))['itemId'])
        if not item.get('largeImage'):
            client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': next(client.listFile(item['_id']))['_id']})
        items.append(item)
    base = f'histomics_label/project/{folder["_id"]}'
    client.put(base, json=config)
    return folder, items, base


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


def seeds_outside_audit(client, folder: dict, item: dict, slide: Path, magnification: float,
                        names: dict) -> dict[int, str]:
    """The demo's seed labels (``cli_demo.seed_labels``, its classes renamed by ``names``) less any segment of the
    project's audit sample, so that the seeds make no audited label: a seed drawn early in the sample's random order
    would be one (an audited prefix does not care how its labels came to be), which a test of the first round's
    audit figures and of the audit suggestions that follow cannot allow for."""
    store = store_path(client, folder, item)
    seeds = {int(s): names[c] for s, c in seed_labels(str(store), str(slide), magnification)['labels'].items()}
    with SlideStore(store) as opened:
        draws = audit.draws(f'{folder["_id"]}/{item["_id"]}', opened.n_segments)
    return {segment: name for segment, name in seeds.items() if draws[segment - 1] >= audit.MEMBER_SHARE}


def seeded_project(client, slide: Path, name: str, config: dict, names: dict) -> dict:
    """A project on ``slide`` made through the REST API as an admin would: segmented by its job, labeled with
    ``seeds_outside_audit`` (view "api") and trained once. ``{folder, item, base, seeds, first}``: ``seeds`` by
    segment, ``first`` the first round."""
    folder, item, base = slide_project(client, slide, name, config)
    make_segments(client, base)
    seeds = seeds_outside_audit(client, folder, item, slide, config['magnification'], names)
    client.put(f'{base}/labels', json={'labels': [{'item': item['_id'], 'segment': s, 'category': c}
                                                  for s, c in seeds.items()], 'view': 'api'})
    first = client.post(f'{base}/train', parameters={'wait': 'true'})['round']
    return {'folder': folder, 'item': item, 'base': base, 'seeds': seeds, 'first': first}


def register_cli_image(client, image: str, collection: str = 'Tasks') -> tuple[dict, dict[str, dict]]:
    """The CLI image registered as a DSA admin does it (Slicer CLI Web → upload image) into a new tasks folder: the
    registration job once ended, and the CLIs it made, by name."""
    folder = client.createFolder(client.createCollection(collection, public=True)['_id'], 'Slicer CLI Web Tasks',
                                 parentType='collection')
    job = client.put('slicer_cli_web/docker_image', parameters={'name': json.dumps([image]), 'folder': folder['_id']})
    ended = wait_for_job(client, job['_id'], timeout=300)
    clis = client.get('slicer_cli_web/cli', parameters={'folder': folder['_id']})
    return ended, {cli['name']: cli for cli in clis}


FAST = {'magnification': '5', 'radius': '10', 'patchSize': '48', 'numWorkers': '1', 'tileSize': '256'}
"""SuperpixelClassification's settings in the job panel runs of the tests: those of ``EMBEDDED_FAST``."""
OUTPUTS = {'store': 'slide.h5', 'segmentImage': 'segments.tiff', 'suggestions': 'suggestions.json'}
"""Its outputs as the job panel runs name them."""


def send_run(client, tasks: dict[str, dict], name: str, slide: Path, label_file: Path) -> tuple[dict, dict]:
    """SuperpixelClassification (of the registered CLIs ``tasks``) on ``slide`` and ``label_file``, uploaded into a
    new folder ``name``, sent as the job panel sends it with ``OUTPUTS`` into its subfolder ``results``: the job once
    ended, and that subfolder."""
    inputs = private_folder(client, name)
    results = client.createFolder(inputs['_id'], 'results')
    slide = client.uploadFileToFolder(inputs['_id'], str(slide))
    labels = client.uploadFileToFolder(inputs['_id'], str(label_file))
    parameters = {'image': slide['_id'], 'labelFile': labels['_id'], **FAST}
    for output, filename in OUTPUTS.items():
        parameters |= {output: filename, f'{output}_folder': results['_id']}
    job = client.post(f'slicer_cli_web/cli/{tasks["SuperpixelClassification"]["_id"]}/run', parameters=parameters)
    return wait_for_job(client, job['_id'], timeout=900), results


def private_folder(client, name: str) -> dict:
    """A new folder ``name`` in the user's Private folder."""
    me = client.get('user/me')
    return client.createFolder(next(client.listFolder(me['_id'], 'user', name='Private'))['_id'], name)
