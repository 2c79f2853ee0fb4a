"""Labels over REST: batch upsert with who and when, listing with filters, delete, undo, review, rename, merge."""

import json
import threading

import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, labels, view='guided'):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels], 'view': view}
    return server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                          body=json.dumps(body))


def _list(server, project, user, **params):
    response = server.request(_path(project, '/labels'), user=user, params=params)
    assertStatusOk(response)
    return response


@pytest.fixture
def labeler(project, user):
    """``user`` with WRITE access on the project."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    return user


def test_labels_record_who_when_and_where(server, project, labeler):
    response = _label(server, project, labeler, [(1, 'tumor'), (2, 'stroma'), (3, 'background')])
    assertStatusOk(response)
    assert response.json['labeled'] == 3 and response.json['changed'] == 3
    listed = _list(server, project, labeler, sort='segment', sortdir=1)
    assert int(listed.headers['Girder-Total-Count']) == 3
    first = listed.json[0]
    assert (first['segment'], first['category'], first['labelerLogin'], first['view']) == (1, 'tumor', 'user',
                                                                                         'guided')
    assert first['created'] and first['updated'] and first['review'] is None
    x0, y0, x1, y1 = first['region']
    assert 0 <= x0 < x1 and 0 <= y0 < y1  # base-pixel box of the segment, for a thumbnail
    thumbnail = server.request('/' + first['thumbnail'].split('?')[0], user=labeler, isJson=False,
                               params=dict(pair.split('=') for pair in first['thumbnail'].split('?')[1].split('&')))
    assertStatusOk(thumbnail)
    assert b''.join(thumbnail.body)[:8] == b'\x89PNG\r\n\x1a\n'


def test_relabeling_updates_in_place(server, project, labeler):
    _label(server, project, labeler, [(5, 'tumor')])
    again = _label(server, project, labeler, [(5, 'stroma'), (6, 'tumor')])
    assert again.json['changed'] == 2
    listed = _list(server, project, labeler, sort='segment', sortdir=1).json
    assert [(label['segment'], label['category']) for label in listed] == [(5, 'stroma'), (6, 'tumor')]


def test_filters_sorting_and_pages(server, project, labeler, admin):
    _label(server, project, labeler, [(s, 'tumor' if s % 2 else 'stroma') for s in range(1, 21)])
    _label(server, project, admin, [(1, 'stroma')])
    assert int(_list(server, project, labeler).headers['Girder-Total-Count']) == 21
    tumors = _list(server, project, labeler, category='tumor', limit=4, offset=2, sort='segment', sortdir=1)
    assert int(tumors.headers['Girder-Total-Count']) == 10
    assert [label['segment'] for label in tumors.json] == [5, 7, 9, 11]
    by_admin = _list(server, project, labeler, labeler=str(admin['_id'])).json
    assert [(label['segment'], label['labelerLogin']) for label in by_admin] == [(1, 'admin')]
    assert int(_list(server, project, labeler, since='2000-01-01T00:00:00').headers['Girder-Total-Count']) == 21
    assert int(_list(server, project, labeler, until='2000-01-01T00:00:00').headers['Girder-Total-Count']) == 0
    newest = _list(server, project, labeler, limit=1).json[0]
    assert newest['labelerLogin'] == 'admin'  # default: most recently changed first


@pytest.mark.parametrize(('labels', 'message'), [
    ([(10**6, 'tumor')], 'has segments 1–'),
    ([(0, 'tumor')], 'has segments 1–'),
    ([(1, 'necrosis')], 'Unknown categories: necrosis'),
])
def test_bad_labels_are_a_400_and_change_nothing(server, project, labeler, labels, message):
    _label(server, project, labeler, [(1, 'tumor')])
    response = _label(server, project, labeler, [(2, 'stroma'), *labels])
    assertStatus(response, 400)
    assert message in response.json['message']
    assert [label['segment'] for label in _list(server, project, labeler).json] == [1]


@pytest.mark.parametrize('body', [{'labels': []}, {'labels': [{'segment': 1}]}, {'labels': 'all'},
                                  {'labels': [{'item': 'zzz', 'segment': 1, 'category': 'tumor'}]},
                                  {'labels': [{'item': None, 'segment': True, 'category': 'tumor'}]}])
def test_malformed_bodies_are_a_400(server, project, labeler, body):
    response = server.request(_path(project, '/labels'), method='PUT', user=labeler, type='application/json',
                              body=json.dumps(body))
    assertStatus(response, 400)


def test_body_errors_say_where_and_what(server, project, labeler, monkeypatch):
    """A body that breaks its schema is a one-line 400 naming the place; one that is not UTF-8 a 400, not a 500;
    one over the size limit a 413 before it is read. None of them labels anything."""
    from histomics_label.rest import bodies

    def put(body):
        return server.request(_path(project, '/labels'), method='PUT', user=labeler, type='application/json',
                              body=body)

    wrong_type = put(json.dumps({'labels': 'all'}))
    assertStatus(wrong_type, 400)
    assert wrong_type.json['message'] == "Invalid body at labels: 'all' is not of type 'array'"
    item = str(project['item']['_id'])
    nested = put(json.dumps({'labels': [{'item': item, 'segment': 'one', 'category': 'tumor'}]}))
    assertStatus(nested, 400)
    assert nested.json['message'] == "Invalid body at labels/0/segment: 'one' is not of type 'integer'"
    not_utf8 = put(b'{"labels": [{"item": "\xff", "segment": 1, "category": "tumor"}]}')
    assertStatus(not_utf8, 400)
    assert 'is not valid UTF-8 JSON' in not_utf8.json['message']
    monkeypatch.setattr(bodies, 'MAX_BODY_BYTES', 100)
    too_large = put(json.dumps({'labels': [{'item': item, 'segment': s, 'category': 'tumor'} for s in (1, 2, 3)]}))
    assertStatus(too_large, 413)
    assert 'is larger than' in too_large.json['message']
    assert _list(server, project, labeler).json == []


def test_read_access_cannot_label(server, project, user):
    assertStatus(_label(server, project, user, [(1, 'tumor')]), 403)
    assertStatusOk(_list(server, project, user))
    assertStatus(_label(server, project, None, [(1, 'tumor')]), 401)


def test_delete_and_undo(server, project, labeler):
    first = _label(server, project, labeler, [(1, 'tumor'), (2, 'stroma')]).json['batch']
    second = _label(server, project, labeler, [(1, 'stroma'), (3, 'tumor')]).json['batch']
    undo = server.request(_path(project, '/labels/undo'), method='POST', user=labeler, params={'batch': second})
    assertStatusOk(undo)
    assert undo.json['reverted'] == 2
    state = {label['segment']: label['category'] for label in _list(server, project, labeler).json}
    assert state == {1: 'tumor', 2: 'stroma'}
    gone = server.request(_path(project, '/labels'), method='DELETE', user=labeler, type='application/json',
                          body=json.dumps({'labels': [{'item': str(project['item']['_id']), 'segment': 2}]}))
    assertStatusOk(gone)
    assert gone.json['deleted'] == 1
    assert {label['segment'] for label in _list(server, project, labeler).json} == {1}
    assertStatusOk(server.request(_path(project, '/labels/undo'), method='POST', user=labeler,
                                  params={'batch': gone.json['batch']}))
    assert {label['segment'] for label in _list(server, project, labeler).json} == {1, 2}
    again = server.request(_path(project, '/labels/undo'), method='POST', user=labeler, params={'batch': second})
    assertStatus(again, 400)
    assert first


def test_undo_leaves_labels_changed_since(server, project, labeler):
    batch = _label(server, project, labeler, [(1, 'tumor'), (2, 'tumor')]).json['batch']
    _label(server, project, labeler, [(2, 'stroma')])
    undo = server.request(_path(project, '/labels/undo'), method='POST', user=labeler, params={'batch': batch})
    assert (undo.json['reverted'], undo.json['skipped']) == (1, 1)
    assert {label['segment']: label['category'] for label in _list(server, project, labeler).json} == {2: 'stroma'}


def test_undo_is_only_for_your_own_batches(server, project, labeler, admin):
    batch = _label(server, project, admin, [(1, 'tumor')]).json['batch']
    response = server.request(_path(project, '/labels/undo'), method='POST', user=labeler, params={'batch': batch})
    assertStatus(response, 400)


def test_review_approves_or_overrides_beside_the_original(server, project, labeler, admin):
    _label(server, project, labeler, [(1, 'tumor'), (2, 'tumor')])
    labels = {label['segment']: label for label in _list(server, project, admin).json}
    approved = server.request(_path(project, f'/labels/{labels[1]["_id"]}/review'), method='PUT', user=admin)
    assertStatusOk(approved)
    assert approved.json['review']['status'] == 'approved' and approved.json['review']['reviewerLogin'] == 'admin'
    overridden = server.request(_path(project, f'/labels/{labels[2]["_id"]}/review'), method='PUT', user=admin,
                                params={'category': 'stroma'})
    assert overridden.json['category'] == 'tumor'  # the original is kept
    assert overridden.json['review'] == {**overridden.json['review'], 'status': 'overridden', 'category': 'stroma'}
    assert int(_list(server, project, admin, reviewed='true').headers['Girder-Total-Count']) == 2
    from histomics_label.models.label import Label

    effective = Label().effective(project['folder']['_id'])
    assert sorted((s, c) for (_, s), c in effective.items()) == [(1, 'tumor'), (2, 'stroma')]
    bad = server.request(_path(project, f'/labels/{labels[2]["_id"]}/review'), method='PUT', user=admin,
                         params={'category': 'necrosis'})
    assertStatus(bad, 400)


def test_rename_and_merge_relabel_server_side(server, project, labeler, admin):
    _label(server, project, labeler, [(1, 'tumor'), (2, 'stroma'), (3, 'stroma')])
    renamed = server.request(_path(project, '/categories/rename'), method='POST', user=admin,
                             params={'old': 'stroma', 'new': 'connective tissue'})
    assertStatusOk(renamed)
    assert renamed.json['relabeled'] == 2
    merged = server.request(_path(project, '/categories/merge'), method='POST', user=admin,
                            params={'source': 'tumor', 'target': 'connective tissue'})
    assertStatusOk(merged)
    assert [c['name'] for c in merged.json['config']['categories']] == ['connective tissue', 'background']
    assert {label['category'] for label in _list(server, project, labeler).json} == {'connective tissue'}
    assertStatus(server.request(_path(project, '/categories/merge'), method='POST', user=labeler,
                                params={'source': 'background', 'target': 'connective tissue'}), 403)
    assertStatus(server.request(_path(project, '/categories/rename'), method='POST', user=admin,
                                params={'old': 'nothing', 'new': 'x'}), 400)


def test_concurrent_labelers_lose_nothing(server, project, admin):
    """8 labelers writing at once on one slide: every label of every labeler is there exactly once."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.user import User

    from histomics_label.models.label import Label

    users = [User().createUser(f'labeler{k}', 'password', 'L', str(k), f'l{k}@example.com') for k in range(8)]
    for user in users:
        Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    errors = []

    def work(user, offset):
        for start in range(0, 60, 10):
            segments = [1 + (offset + s) % 200 for s in range(start, start + 10)]
            response = _label(server, project, user, [(s, 'tumor' if s % 2 else 'stroma') for s in segments])
            if response.status != '200 OK':
                errors.append(response.status)

    threads = [threading.Thread(target=work, args=(user, 7 * k)) for k, user in enumerate(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = list(Label().find({'project': project['folder']['_id']}))
    assert len(stored) == 8 * 60
    assert len({(d['labeler'], d['segment']) for d in stored}) == 8 * 60


def test_paint_and_erase_a_stroke(server, project, labeler):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.segments.strokes import segments_under_stroke
    from histomics_label.projects import folders

    item = str(project['item']['_id'])
    with SlideStore(folders.store_path(project['folder'], project['item'])) as store:
        x0, y0, x1, y1 = store.segments(np.array([20])).bbox[0] * store.slide_info.scale
        points = [[float(x0), float(y0)], [float(x1), float(y1)]]
        expected = segments_under_stroke(store, points, 30).tolist()
    painted = server.request(_path(project, '/labels/paint'), method='POST', user=labeler, type='application/json',
                             body=json.dumps({'item': item, 'points': points, 'radius': 30, 'category': 'stroma'}))
    assertStatusOk(painted)
    assert painted.json['segments'] == expected and painted.json['labeled'] == len(expected) >= 1
    listed = _list(server, project, labeler, limit=0).json
    assert {label['segment'] for label in listed} == set(expected)
    assert {(label['category'], label['view']) for label in listed} == {('stroma', 'bulk')}
    erased = server.request(_path(project, '/labels/paint'), method='POST', user=labeler, type='application/json',
                            body=json.dumps({'item': item, 'points': points, 'radius': 30, 'erase': True}))
    assert erased.json['deleted'] == len(expected)
    assert _list(server, project, labeler, limit=0).json == []
    undo = server.request(_path(project, '/labels/undo'), method='POST', user=labeler,
                          params={'batch': erased.json['batch']})
    assert undo.json['reverted'] == len(expected)
    for body in ({'item': item, 'points': points, 'category': 'necrosis'}, {'item': item, 'points': 'x'},
                 {'item': item, 'points': points, 'radius': 'big', 'category': 'tumor'}):
        response = server.request(_path(project, '/labels/paint'), method='POST', user=labeler,
                                  type='application/json', body=json.dumps(body))
        assertStatus(response, 400)
