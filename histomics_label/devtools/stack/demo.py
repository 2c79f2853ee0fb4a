"""The live demo: the local stack with a demo project on the bundled H&E sample slide, ready to label in a browser.

``python -m histomics_label.devtools.stack.demo [--data live-data] [--port 8080]`` (what ``tox -e demo`` runs) starts
the live stack (or finds it running), and through the REST API, as a user would: makes the collection "Histomics Label
demo" with a project folder holding the sample slide, configures its categories, starts segment generation (on the
stack's girder_worker process: ``--workers``) and follows its job to the end, labels a few segments picked by stain
(``demo.seed_labels``: enough to show a model, not a pathologist's work), trains a round, and prints the URL, the
login and what to open. Run again, it reuses everything it made; stop the stack with ``python -m
histomics_label.devtools.stack stop --data live-data``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import REPO_ROOT
from .launcher import Stack, StackError

COLLECTION = 'Histomics Label demo'
PROJECT = 'H&E sample'
CONFIG = {
    'categories': [{'name': 'cellular', 'color': '#7b2cbf', 'hotkey': 'c'},
                   {'name': 'stroma', 'color': '#f72585', 'hotkey': 's'},
                   {'name': 'lumen/fat', 'color': '#4cc9f0', 'hotkey': 'l'},
                   {'name': 'background', 'color': '#9e9e9e', 'excluded': True, 'hotkey': 'b'}],
    'magnification': 5, 'radius': 24, 'patchSize': 64, 'batchSize': 8,
    'retrainEvery': 10, 'embeddingMap': True,
}
"""The demo project's configuration: superpixels about 50 px across at 5× (some 560 on the sample slide), with the
embedding map so that the painting view shows every overlay."""
JOB_TIMEOUT = 1800


def demo_project(client) -> tuple[dict, dict]:
    """The demo collection's project folder and its slide item, made (and uploaded) if missing."""
    from .. import sample_data

    collection = next((c for c in client.listCollection() if c['name'] == COLLECTION), None)
    if collection is None:
        collection = client.createCollection(COLLECTION, description='A Histomics Label project on the bundled '
                                             'H&E sample slide', public=True)
    folder = client.createFolder(collection['_id'], PROJECT, parentType='collection', reuseExisting=True,
                                 public=True)
    slide = Path(sample_data.sample_slide())
    item = next(client.listItem(folder['_id'], name=slide.name), None)
    if item is None:
        print(f'uploading the sample slide {slide.name} ({slide.stat().st_size / 1e6:.0f} MB)', flush=True)
        uploaded = client.uploadFileToFolder(folder['_id'], str(slide))
        item = client.getItem(uploaded['itemId'])
    if not item.get('largeImage'):
        file_id = next(client.listFile(item['_id']))['_id']
        client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': file_id})
        item = client.getItem(item['_id'])
    return folder, item


def follow_jobs(client, started: list[dict]) -> None:
    """Print the segment jobs' progress until they end; raise with the job log when one fails."""
    for entry in started:
        if entry['status'] != 'started':
            print(f'segments of {entry["name"]}: {entry["status"]}', flush=True)
            continue
        deadline, last = time.monotonic() + JOB_TIMEOUT, None
        while True:
            job = client.get(f'job/{entry["job"]}')
            progress = job.get('progress') or {}
            shown = (progress.get('message'), progress.get('current'))
            if shown != last and progress.get('total'):
                print(f'segments of {entry["name"]}: {progress.get("message")} '
                      f'{100 * progress.get("current", 0) / progress["total"]:.0f} %', flush=True)
                last = shown
            if job['status'] == 3:
                break
            if job['status'] in (4, 5) or time.monotonic() > deadline:
                log = ''.join(client.get(f'job/{entry["job"]}', parameters={'includeLog': 'true'}).get('log', []))
                raise StackError(f'segment generation of {entry["name"]} did not finish:\n{log}')
            time.sleep(1)


def seed(client, folder: dict, item: dict, data_dir: Path) -> int:
    """Label the stain-picked seed segments (once) and train a round; returns how many labels the project has."""
    from ..cli_demo import seed_labels
    from ..sample_data import sample_slide

    base = f'histomics_label/project/{folder["_id"]}'
    have = client.sendRestRequest('GET', f'{base}/labels', parameters={'limit': 1}, jsonResp=False)
    if int(have.headers.get('Girder-Total-Count', 0)):
        return int(have.headers['Girder-Total-Count'])
    store = data_dir / folder['_id'] / f'{item["_id"]}.h5'
    seeds = seed_labels(str(store), str(sample_slide()), CONFIG['magnification'])['labels']
    labels = [{'item': item['_id'], 'segment': int(segment), 'category': category}
              for segment, category in seeds.items()]
    written = client.put(f'{base}/labels', json={'labels': labels, 'view': 'api'})
    if written.get('training'):  # the seeds reached retrainEvery: that round is the demo's, not one more after it
        latest = _wait_for_rounds(client, base)
    else:
        latest = client.post(f'{base}/train', parameters={'wait': 'true'}).get('round')
    if latest:
        print(f'round {latest["number"]} trained on {latest["labelsUsed"]} seed labels', flush=True)
    return len(labels)


def _wait_for_rounds(client, base: str, timeout: float = 600.0) -> dict | None:
    """The project's latest round once no round runs or waits."""
    deadline = time.monotonic() + timeout
    while True:
        curve = client.get(f'{base}/rounds')
        if not (curve['state']['running'] or curve['state']['pending']) or time.monotonic() > deadline:
            return curve['rounds'][-1] if curve['rounds'] else None
        time.sleep(0.5)


CLI_IMAGE = 'histomics-label:latest'
TASKS = ('Tasks', 'Slicer CLI Web Tasks')
"""Collection and folder of the Slicer CLI tasks, as a DSA provisions them."""


NO_TASKS = {'5': 'none (no slicer_cli folder)',
            '3': 'none (on Girder 3, register the image from a Docker host: PUT slicer_cli_web/docker_image)'}
"""Why the demo registered no Slicer CLI tasks, on each Girder line."""


def register_cli_specs(client) -> list[str]:
    """Register the Slicer CLI specs of this checkout with slicer_cli_web, under the CLI image's name, so the job
    panel lists the tasks (running them needs the image on a Docker host, as in a DSA)."""
    import base64
    import json

    root = REPO_ROOT / 'slicer_cli'
    listing = root / 'slicer_cli_list.json'
    if not listing.exists():
        return []
    collection = next((c for c in client.listCollection() if c['name'] == TASKS[0]), None) or \
        client.createCollection(TASKS[0], public=True)
    folder = client.createFolder(collection['_id'], TASKS[1], parentType='collection', reuseExisting=True,
                                 public=True)
    names = list(json.loads(listing.read_text()))
    for name in names:
        spec = (root / name / f'{name}.xml').read_bytes()
        client.post('slicer_cli_web/cli', data={'folder': folder['_id'], 'image': CLI_IMAGE, 'name': name,
                                                'replace': 'true', 'desc_type': 'xml',
                                                'spec': base64.b64encode(spec).decode()})
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, default=Path('live-data'), help='the stack\'s data folder')
    parser.add_argument('--port', type=int, default=8080, help='Girder\'s port')
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--workers', type=int, default=1,
                        help='girder_worker processes that make the segments (0: the server makes them; default: '
                             '%(default)s)')
    parser.add_argument('--girder', choices=('5', '3'), default='5',
                        help='Girder 5 (the default) or Girder 3.2 with HistomicsUI 1.8.1, whose image view then '
                             'offers the labeling panels (as python -m histomics_label.devtools.stack start --girder)')
    args = parser.parse_args(argv)
    try:
        python = None
        if args.girder == '3':
            from ..girder3_client import girder3_python

            python = girder3_python()
        info = Stack(args.data, port=args.port, host=args.host, workers=args.workers, python=python).start()
        print(f'live stack {"running" if info.already_running else "started"} at {info.url}', flush=True)
        client = info.client()
        client.put('system/setting', parameters={'key': 'histomics_label.heavy_work_executor',
                                                 'value': 'girder_worker' if args.workers else 'server'})
        # slicer_cli_web 1.5 (Girder 3's) registers a CLI only from its Docker image, with PUT docker_image
        tasks = register_cli_specs(client) if args.girder == '5' else []
        folder, item = demo_project(client)
        client.put(f'histomics_label/project/{folder["_id"]}', json=CONFIG)
        follow_jobs(client, client.post(f'histomics_label/project/{folder["_id"]}/segments'))
        data_dir = Path(client.get('system/setting', parameters={'key': 'histomics_label.data_dir'}))
        count = seed(client, folder, item, data_dir)
        slides = client.get(f'histomics_label/project/{folder["_id"]}/slides')
    except StackError as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'\nHistomics Label is running at {info.url}\n'
          f'  login: {info.admin_login}   password: {info.admin_password}\n'
          f'  demo project: {info.url}#folder/{folder["_id"]} ({slides[0]["segments"]} segments, {count} labels)\n'
          f'  REST API: {info.api_url} (docs/rest.md)\n'
          f'  Slicer CLI tasks registered for {CLI_IMAGE}: {", ".join(tasks) or NO_TASKS[args.girder]}\n'
          f'  stop: {sys.executable} -m histomics_label.devtools.stack stop --data {args.data}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
