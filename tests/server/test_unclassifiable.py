"""Marking a segment "not classifiable / artifact" over REST: the excluded category appears once, the label is the
labeler's, and the segment and exactly its near-duplicates in the embeddings leave the suggestions."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

from histomics_label.core.acquisition.suggestions import MAX_NEAR_DUPLICATES, NEAR_DUPLICATE_SHARE

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _all_suggestions(server, project, user) -> set[int]:
    response = server.request(_path(project, '/suggestions'), user=user, params={'limit': 1000})
    assertStatusOk(response)
    return {s['segment'] for s in response.json}


def _mark(server, project, user, segment):
    body = {'item': str(project['item']['_id']), 'segment': segment}
    return server.request(_path(project, '/unclassifiable'), method='POST', user=user, type='application/json',
                          body=json.dumps(body))


def test_a_segment_marked_not_classifiable_takes_its_near_duplicates_out_of_suggestions(server, project, admin,
                                                                                         user, embedded_cmu):
    from girder.constants import AccessType
    from girder.models.folder import Folder

    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    folders.save_config(project['folder'], {'auditEvery': 0, 'certainty': 'coreset'})  # model-free, all ranked
    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    before = _all_suggestions(server, project, user)
    marked = sorted(before)[len(before) // 2]
    response = _mark(server, project, user, marked)
    assertStatusOk(response)
    assert response.json['changed'] == 1 and response.json['training'] is None
    config = folders.config_of(Folder().load(project['folder']['_id'], force=True))
    assert [c for c in config['categories'] if c['name'] == 'not classifiable'] == [
        {'name': 'not classifiable', 'color': '#7f7f7f', 'excluded': True, 'hotkey': None}]
    labels = server.request(_path(project, '/labels'), user=user).json
    assert [(label['segment'], label['category'], label['labeler']) for label in labels] == [
        (marked, 'not classifiable', str(user['_id']))]
    # ground truth: the marked segment's nearest segments by cosine in the stored embeddings
    with SlideStore(embedded_cmu) as store:
        vectors = store.features('efficientnet_lite0').astype(np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    count = int(min(MAX_NEAR_DUPLICATES, max(1, round(NEAR_DUPLICATE_SHARE * len(vectors)))))
    nearest = set((np.argsort(-(vectors @ vectors[marked - 1]))[:count + 1] + 1).tolist())
    assert marked in nearest
    after = _all_suggestions(server, project, user)
    assert before - after == nearest & before and after <= before
    # a second mark reuses the category: it is added once
    assertStatusOk(_mark(server, project, user, sorted(after)[0]))
    config = folders.config_of(Folder().load(project['folder']['_id'], force=True))
    assert [c['name'] for c in config['categories']].count('not classifiable') == 1


def test_marking_needs_write_access_and_a_real_segment(server, project, admin, user):
    from girder.models.folder import Folder

    from histomics_label.projects import folders

    assertStatus(_mark(server, project, user, 3), 403)  # READ only
    assertStatus(_mark(server, project, admin, 10**6), 400)
    config = folders.config_of(Folder().load(project['folder']['_id'], force=True))
    categories = config['categories'] + [{'name': 'not classifiable', 'color': '#000000', 'excluded': False}]
    folders.save_config(project['folder'], {'categories': categories})
    response = _mark(server, project, admin, 3)
    assertStatus(response, 400)
    assert 'trains' in response.json['message']
    assert server.request(_path(project, '/labels'), user=admin).json == []
