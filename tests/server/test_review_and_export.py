"""Review figures and exports over REST: agreement between labelers and with the model, CSV, GeoJSON, HDF5."""

import csv
import io
import json

import h5py
import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, labels):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels]}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                                  body=json.dumps(body)))


@pytest.fixture
def trained(server, project, admin, user, embedded_cmu, cmu_svs):
    """Admin labeled the seed segments and trained a round; ``user`` (WRITE) labeled six of them, two otherwise."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    from histomics_label.devtools.cli_demo import seed_labels

    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    names = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
    seeds = {int(s): names[c] for s, c in seed_labels(str(embedded_cmu), str(cmu_svs), 5)['labels'].items()}
    _label(server, project, admin, list(seeds.items()))
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    chosen = [s for s, c in seeds.items() if c != 'background'][:6]
    theirs = [(s, seeds[s] if k >= 2 else ('stroma' if seeds[s] == 'tumor' else 'tumor'))
              for k, s in enumerate(chosen)]
    _label(server, project, user, theirs)
    return seeds, dict(theirs)


def test_agreement_between_labelers_and_with_the_model(server, project, user, trained):
    seeds, theirs = trained
    response = server.request(_path(project, '/agreement'), user=user)
    assertStatusOk(response)
    figures = response.json
    assert figures['categories'] == ['tumor', 'stroma', 'background']
    pair = figures['labelers'][0]
    assert sorted(pair['logins']) == ['admin', 'user']
    assert pair['count'] == 6 and pair['agreement'] == pytest.approx(4 / 6)
    assert -1 <= pair['kappa'] < 1
    assert np.array(pair['confusion']).sum() == 6 and np.trace(pair['confusion']) == 4
    overall = figures['labelsVsModel']
    assert overall['count'] == len(seeds) and 0 <= overall['agreement'] <= 1
    assert {entry['login'] for entry in figures['labelersVsModel']} == {'admin', 'user'}


def test_labels_the_model_disagrees_with(server, project, admin, trained):
    every = server.request(_path(project, '/labels'), user=admin, params={'limit': 0}).json
    disagree = server.request(_path(project, '/labels'), user=admin, params={'disagree': 'true', 'limit': 0})
    agree = server.request(_path(project, '/labels'), user=admin, params={'disagree': 'false', 'limit': 0})
    assert int(disagree.headers['Girder-Total-Count']) + int(agree.headers['Girder-Total-Count']) == len(every)
    assert all(label['predicted'] != label['category'] for label in disagree.json)
    assert all(label['predicted'] == label['category'] for label in agree.json)
    assert any(label['category'] == 'background' for label in disagree.json)  # excluded: never predicted


def test_csv_and_geojson_exports(server, project, admin, trained):
    seeds, theirs = trained
    response = server.request(_path(project, '/export'), user=admin, params={'format': 'csv'}, isJson=False)
    assertStatusOk(response)
    rows = list(csv.DictReader(io.StringIO(b''.join(response.body).decode())))
    assert len(rows) == len(seeds)
    effective = {**seeds, **theirs}  # the most recent label wins
    assert {int(r['segment']): r['label'] for r in rows} == effective
    assert all(r['predicted'] in ('tumor', 'stroma') and 0 < float(r['probability']) <= 1 for r in rows)
    assert {r['labelers'] for r in rows} == {'admin', 'admin;user'}
    response = server.request(_path(project, '/export'), user=admin, params={'format': 'geojson'}, isJson=False)
    collection = json.loads(b''.join(response.body).decode())
    assert len(collection['features']) == len(seeds)
    feature = collection['features'][0]
    ring = np.array(feature['geometry']['coordinates'][0])
    assert ring.shape[1] == 2 and (ring[0] == ring[-1]).all() and len(ring) > 4
    row = next(r for r in rows if int(r['segment']) == feature['properties']['segment'])
    assert float(row['x0']) - 2 <= ring[:, 0].min() and ring[:, 0].max() <= float(row['x1']) + 2
    everything = server.request(_path(project, '/export'), user=admin, isJson=False,
                                params={'format': 'csv', 'predictions': 'true'})
    assert len(b''.join(everything.body).decode().strip().split('\n')) - 1 > 100


def test_hdf5_training_set(server, project, admin, trained):
    seeds, theirs = trained
    response = server.request(_path(project, '/export'), user=admin, params={'format': 'hdf5'}, isJson=False)
    assertStatusOk(response)
    data = b''.join(response.body)
    with h5py.File(io.BytesIO(data), 'r') as h5:
        assert h5['features'].shape == (len(seeds), 1280)
        categories = list(h5.attrs['categories'])
        got = {int(s): categories[k] for s, k in zip(h5['segment'][()], h5['label'][()], strict=True)}
    assert got == {**seeds, **theirs}


def test_bad_export_requests(server, project, admin, user):
    assertStatus(server.request(_path(project, '/export'), user=admin, params={'format': 'xlsx'}), 400)
    assertStatus(server.request(_path(project, '/export'), user=admin, params={'format': 'hdf5'}), 400)
    assertStatus(server.request(_path(project, '/export'), params={'format': 'csv'}), 401)


def test_more_like_this(server, project, admin, user, trained):
    seeds, _ = trained
    example = next(s for s, c in seeds.items() if c == 'tumor')
    response = server.request(_path(project, '/similar'), user=user,
                              params={'item': str(project['item']['_id']), 'segments': json.dumps([example]),
                                      'limit': 5})
    assertStatusOk(response)
    found = response.json
    assert len(found) == 5 and [f['rank'] for f in found] == [1, 2, 3, 4, 5]
    assert all(f['kind'] == 'unlabeled' and f['segment'] not in seeds for f in found)
    assert [f['distance'] for f in found] == sorted(f['distance'] for f in found)
    negatives = [s for s, c in seeds.items() if c == 'stroma'][:2]
    mixed = server.request(_path(project, '/similar'), user=user,
                           params={'item': str(project['item']['_id']), 'segments': json.dumps([example]),
                                   'negatives': json.dumps(negatives), 'limit': 6}).json
    assert {f['kind'] for f in mixed} == {'unlabeled', 'negative', 'positive'}
    bad = server.request(_path(project, '/similar'), user=user,
                         params={'item': str(project['item']['_id']), 'segments': '[99999999]'})
    assertStatus(bad, 400)
