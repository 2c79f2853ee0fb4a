"""Importing a slide's embeddings computed elsewhere over REST: a good file trains the project's rounds on them; a
wrong one is a 400 saying what is wrong, and the slide keeps its features."""

import io
import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _import(server, project, user, data: bytes, name: str):
    """Upload ``data`` as file ``name`` to ``user``'s private folder and import it for the project's slide."""
    from girder.models.folder import Folder
    from girder.models.upload import Upload

    home = Folder().createFolder(user, 'Private', parentType='user', reuseExisting=True)
    file = Upload().uploadFromFile(io.BytesIO(data), len(data), name, parentType='folder', parent=home, user=user)
    path = f'/histomics_label/project/{project["folder"]["_id"]}/slide/{project["item"]["_id"]}/embeddings'
    return server.request(path, method='POST', user=user, params={'fileId': str(file['_id'])})


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _store(project):
    from histomics_label.projects import folders

    return folders.store_path(project['folder'], project['item'])


def _segments(project) -> int:
    from histomics_label.core.io.store import SlideStore

    with SlideStore(_store(project)) as store:
        return store.n_segments


def test_a_round_trains_on_the_imported_embeddings(server, project, admin):
    """Segments are 'tumor' when their id is even, 'stroma' when odd: nothing in the pixels says so, only the
    imported embeddings (two well-separated Gaussian clusters in 8-d, one per class); ten labels must teach a round
    every segment."""
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    n = _segments(project)
    ids = np.arange(1, n + 1)
    rng = np.random.default_rng(0)
    centre = rng.normal(size=8)
    embeddings = np.where(ids[:, None] % 2 == 0, centre, -centre) + rng.normal(scale=0.2, size=(n, 8))
    response = _import(server, project, admin, _npy(embeddings), 'cmu.npy')
    assertStatusOk(response)
    assert response.json['segments'] == n and response.json['dim'] == 8 and response.json['trainsOnThem'] is False
    folders.save_config(project['folder'], {'extractor': 'imported'})
    labels = [{'item': str(project['item']['_id']), 'segment': int(s), 'category': 'tumor' if s % 2 == 0 else
               'stroma'} for s in (2, 4, 6, 8, 10, 3, 5, 7, 9, 11)]
    base = f'/histomics_label/project/{project["folder"]["_id"]}'
    assertStatusOk(server.request(f'{base}/labels', method='PUT', user=admin, type='application/json',
                                  body=json.dumps({'labels': labels, 'view': 'guided'})))
    trained = server.request(f'{base}/train', method='POST', user=admin, params={'wait': 'true'})
    assertStatusOk(trained)
    assert trained.json['round']['number'] == 1 and trained.json['round']['labelsUsed'] == 10
    with SlideStore(_store(project)) as store:
        record = store.latest_round()
        assert record.model_params['representation'] == 'features/imported'
        names = [c['name'] for c in record.categories]
        predicted = np.array(names)[record.probabilities.argmax(axis=1)]
    truth = np.where(ids % 2 == 0, 'tumor', 'stroma')
    assert (predicted == truth).all(), f'{(predicted != truth).sum()} of {n} segments predicted wrong'


@pytest.mark.parametrize('data, name, message', [
    (lambda n: _npy(np.ones((n + 1, 8))), 'cmu.npy', r'embeddings of \d+ segments but the slide has \d+'),
    (lambda n: _npy(np.full((n, 8), np.nan)), 'cmu.npy', 'are NaN, infinite or too large for float32'),
    (lambda n: _npy(np.full((n, 8), 'x')), 'cmu.npy', 'must be real numbers, not text'),
    (lambda n: b'0.1,0.2\n0.3,0.4\n', 'cmu.npy', 'cmu.npy is not a readable .npy file'),
    (lambda n: _npy(np.ones((n, 8))), 'cmu.csv', r'from a \.npy file'),
])
def test_a_wrong_file_is_a_400_and_the_features_stay(server, project, admin, data, name, message):
    import re

    before = _store(project).read_bytes()
    response = _import(server, project, admin, data(_segments(project)), name)
    assertStatus(response, 400)
    assert re.search(message, response.json['message']), response.json['message']
    assert _store(project).read_bytes() == before


def test_a_second_slide_must_match_the_dimension_and_only_admins_import(server, project, admin, user):
    from girder.constants import AccessType
    from girder.models.folder import Folder

    n = _segments(project)
    assertStatusOk(_import(server, project, admin, _npy(np.ones((n, 8))), 'cmu.npy'))
    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    assertStatus(_import(server, project, user, _npy(np.ones((n, 8))), 'cmu.npy'), 403)
    # the same slide again, now 4-d: its own earlier import does not bind it, only the project's other slides
    again = _import(server, project, admin, _npy(np.ones((n, 4))), 'cmu.npy')
    assertStatusOk(again)
    assert again.json['dim'] == 4
