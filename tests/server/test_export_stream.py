"""Exports stream: CSV and GeoJSON leave the server in blocks as they are read, equal to the rows the stores and
labels say, and an export's memory does not grow with its number of rows."""

import csv
import io
import json
import tracemalloc

import h5py
import numpy as np
import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _export(server, project, user, **params):
    response = server.request(_path(project, '/export'), user=user, params=params, isJson=False)
    assertStatusOk(response)
    return response


@pytest.fixture
def labeled(server, project, admin, user):
    """Admin labeled 12 real segments and trained a round; ``user`` (WRITE) relabeled three of them."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    from histomics_label.jobs.rankings import wait_for_rankings

    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    item = str(project['item']['_id'])
    admins = {s: ('tumor', 'stroma')[s % 2] for s in range(3, 150, 13)}
    users = {3: 'stroma', 16: 'tumor', 29: 'background'}
    for who, labels in ((admin, admins), (user, users)):
        body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels.items()]}
        assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=who, type='application/json',
                                      body=json.dumps(body)))
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    wait_for_rankings(project['folder']['_id'])  # the functions ranked after the round read the store too
    labelers = {s: 'admin;user' if s in users else 'admin' for s in admins}
    return {**admins, **users}, labelers


def _expected_rows(project, labels, labelers, predictions):
    """The export's rows read straight from the slide's store file (segment table, newest round) and the labels
    the fixture wrote. The files are opened as the server opens them (no HDF5 file locking): this process is the
    server, and HDF5 refuses a second open of a file with other locking flags."""
    from histomics_label.projects import folders

    path = folders.store_path(project['folder'], project['item'])
    with h5py.File(path, 'r', locking=False) as h5:
        info = json.loads(h5.attrs['slide_info'])
        bbox, centroid = h5['segments/bbox'][()], h5['segments/centroid'][()]
    rounds = sorted(path.parent.glob(f'{path.name}.rounds/*.h5'), key=lambda p: int(p.name.split('.')[0]))
    with h5py.File(rounds[-1], 'r', locking=False) as h5:
        names = [c['name'] for c in json.loads(h5.attrs['categories'])]
        probabilities = h5['probabilities'][()]
    scale = info['scale']
    segments = range(1, len(bbox) + 1) if predictions else sorted(labels)
    rows = []
    for s in segments:
        best = int(probabilities[s - 1].argmax())
        rows.append({'item': str(project['item']['_id']), 'slide': project['item']['name'], 'segment': str(s),
                     'label': labels.get(s, ''), 'labelers': labelers.get(s, ''), 'predicted': names[best],
                     'probability': f'{probabilities[s - 1][best]:.4f}',
                     'x': f'{centroid[s - 1][0] * scale:.1f}', 'y': f'{centroid[s - 1][1] * scale:.1f}',
                     **{k: str(int(round(v * scale))) for k, v in zip(('x0', 'y0', 'x1', 'y1'), bbox[s - 1],
                                                                    strict=True)}})
    return rows


@pytest.mark.parametrize('predictions', [False, True])
def test_the_streamed_csv_is_the_projects_rows(server, project, admin, labeled, predictions):
    labels, labelers = labeled
    response = _export(server, project, admin, format='csv', predictions=str(predictions).lower())
    rows = list(csv.DictReader(io.StringIO(b''.join(response.body).decode())))
    assert rows == _expected_rows(project, labels, labelers, predictions)


def test_the_streamed_geojson_carries_the_same_rows(server, project, admin, labeled):
    labels, labelers = labeled
    response = _export(server, project, admin, format='geojson')
    collection = json.loads(b''.join(response.body).decode())
    assert collection['type'] == 'FeatureCollection'
    expected = _expected_rows(project, labels, labelers, False)
    assert [f['properties']['segment'] for f in collection['features']] == [int(r['segment']) for r in expected]
    for feature, row in zip(collection['features'], expected, strict=True):
        assert feature['properties']['label'] == row['label']
        assert ';'.join(feature['properties']['labelers']) == row['labelers']
        ring = np.array(feature['geometry']['coordinates'][0])
        assert (ring[0] == ring[-1]).all()
        assert int(row['x0']) - 4 <= ring[:, 0].min() and ring[:, 0].max() <= int(row['x1']) + 4


def test_the_export_route_streams_in_blocks(server, project, admin, labeled, monkeypatch):
    """The route hands Girder a generator: the CSV leaves in many blocks of about CHUNK_BYTES, not one string."""
    from histomics_label.projects import export

    monkeypatch.setattr(export, 'CHUNK_BYTES', 2048)
    response = _export(server, project, admin, format='csv', predictions='true')
    assert not isinstance(response.body, list | bytes | str)  # an iterator Girder had not joined
    chunks = list(response.body)
    longest_line = max(len(line) for line in b''.join(chunks).split(b'\n'))
    assert len(chunks) > 5 and all(len(c) <= 2048 + longest_line + 1 for c in chunks)


def _many_segments_store(path, height=200, width=240):
    """A slide store of ``height × width`` one-pixel segments with a round of seeded probabilities."""
    from histomics_label.core.io.slide import SlideInfo
    from histomics_label.core.io.store import SlideStore, append_round
    from histomics_label.core.segments.base import SegmentTable

    info = SlideInfo(path='many', base_width=width * 4, base_height=height * 4, base_magnification=20.0,
                     magnification=5.0, scale=4.0, width=width, height=height)
    ys, xs = np.mgrid[0:height, 0:width]
    with SlideStore.create(path, info, {'source': 'pixels'}) as writer:
        writer.create_label_raster(height, width)[...] = (ys * width + xs + 1).astype(np.uint32)
        bbox = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + 1, ys.ravel() + 1], axis=1)
        writer.write_segments(SegmentTable(bbox=bbox, centroid=bbox[:, :2] + 0.5, area=np.ones(height * width)))
    probabilities = np.random.default_rng(0).dirichlet(np.ones(2), height * width)
    append_round(path, categories=[{'name': 'tumor'}, {'name': 'stroma'}], label_ids=[1], label_categories=[0],
                 probabilities=probabilities, model_name='fixed', model_params={}, model_state={}, metrics={})
    return height * width


def test_an_exports_memory_does_not_grow_with_its_rows(project):
    """48 000 rows (about 3.6 MB of CSV) are exported holding a small, fixed amount of memory."""
    from histomics_label.projects import folders
    from histomics_label.projects.export import download

    n = _many_segments_store(folders.store_path(project['folder'], project['item']))
    body = download(project['folder'], 'csv', None, True).body
    tracemalloc.start()
    try:
        size, lines = 0, 0
        for chunk in body():
            size += len(chunk)
            lines += chunk.count(b'\n')
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == n + 1 and size > 3e6
    assert peak < 1.5e6, f'{peak / 1e6:.1f} MB held to export {size / 1e6:.1f} MB'
