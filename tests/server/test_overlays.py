"""GET .../overlay: a slide's segments coloured by labels, predictions, certainty or the embedding map, one byte
per index of the segment image, on the real H&E store; and the segment image's outline encoding it relies on."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _overlay(server, project, user, kind):
    response = server.request(_path(project, '/overlay'), user=user, isJson=False,
                              params={'item': str(project['item']['_id']), 'kind': kind})
    return response


def _bytes(response):
    assertStatusOk(response)
    return np.frombuffer(b''.join(response.body), np.uint8)


def _label(server, project, user, pairs):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in pairs], 'view': 'bulk'}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                                  body=json.dumps(body)))


def test_segment_image_carries_outlines_and_is_described(server, project, admin, user):
    from girder.models.item import Item
    from girder_large_image.models.image_item import ImageItem

    from histomics_label.core.io.label_tiff import decode_rgb
    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects import folders

    assert server.request(_path(project, '/slides'), user=user).json[0]['segmentImage'] is None
    assertStatus(_overlay(server, project, user, 'labels'), 404)
    image = segment_jobs.publish_segment_image(project['folder'], project['item'])
    slide = server.request(_path(project, '/slides'), user=user).json[0]
    assert slide['segmentImage'] == {'id': str(image['_id']), 'boundaries': True, 'offset': 0, 'scale': 4.0,
                                     'predictions': False, 'embeddingMap': False}
    tile, _ = ImageItem().getRegion(Item().load(image['_id'], force=True), format='numpy',
                                    region={'left': 0, 'top': 0, 'width': 256, 'height': 256})
    encoded = decode_rgb(tile[..., :3])
    with SlideStore(folders.store_path(project['folder'], project['item'])) as store:
        ids = np.asarray(store.label_raster[:encoded.shape[0], :encoded.shape[1]])
    assert np.array_equal(encoded >> 1, ids)  # 2·id inside, 2·id + 1 on the outline
    outline = (encoded & 1).astype(bool)
    assert 0.05 < outline[ids > 0].mean() < 0.6 and not outline[ids == 0].any()


def test_whoever_may_read_the_project_may_read_its_segment_images(server, project, admin):
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.user import User

    from histomics_label.jobs import segments as segment_jobs

    image = segment_jobs.publish_segment_image(project['folder'], project['item'])
    late = User().createUser('latecomer', 'password1', 'Late', 'Comer', 'late@example.com')
    assertStatus(server.request(f'/item/{image["_id"]}/tiles', user=late), 403)
    Folder().setUserAccess(project['folder'], late, AccessType.READ, save=True)  # given access after segmenting
    assertStatusOk(server.request(f'/item/{image["_id"]}/tiles', user=late))
    Folder().setUserAccess(Folder().load(project['folder']['_id'], force=True), late, None, save=True)
    assertStatus(server.request(f'/item/{image["_id"]}/tiles', user=late), 403)


def test_labels_overlay_follows_labels_and_reviews(server, project, admin, user):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects.folders import store_path

    segment_jobs.publish_segment_image(project['folder'], project['item'])
    with SlideStore(store_path(project['folder'], project['item'])) as store:
        n = store.n_segments
    assert not _bytes(_overlay(server, project, user, 'labels')).any()
    _label(server, project, admin, [(1, 'tumor'), (7, 'stroma'), (9, 'background'), (n, 'tumor')])
    values = _bytes(_overlay(server, project, user, 'labels'))
    assert values.shape == (n + 1,)
    assert {int(k): int(v) for k, v in enumerate(values) if v} == {1: 1, 7: 2, 9: 3, n: 1}
    listed = server.request(_path(project, '/labels'), user=admin, params={'limit': 0}).json
    seven = next(label for label in listed if label['segment'] == 7)
    assertStatusOk(server.request(_path(project, f'/labels/{seven["_id"]}/review'), method='PUT', user=admin,
                                  params={'category': 'tumor'}))
    assert _bytes(_overlay(server, project, user, 'labels'))[7] == 1  # the override wins


def test_prediction_and_certainty_overlays_match_the_round(server, project, admin, user):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects.folders import store_path

    segment_jobs.publish_segment_image(project['folder'], project['item'])
    response = _overlay(server, project, user, 'predictions')
    assertStatus(response, 404)
    assert 'train a first round' in b''.join(response.body).decode()
    _label(server, project, admin, [(s, 'tumor') for s in range(1, 6)] + [(s, 'stroma') for s in range(40, 46)])
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    predictions = _bytes(_overlay(server, project, user, 'predictions'))
    certainty = _bytes(_overlay(server, project, user, 'certainty'))
    with SlideStore(store_path(project['folder'], project['item'])) as store:
        record = store.latest_round()
    names = [c['name'] for c in record.categories]
    trained = record.model_params['classes']
    probabilities = record.probabilities[:, trained]
    expected_names = [names[trained[k]] for k in probabilities.argmax(axis=1)]
    project_index = {'tumor': 1, 'stroma': 2, 'background': 3}
    assert predictions[0] == 0 and certainty[0] == 0
    assert [int(v) for v in predictions[1:]] == [project_index[name] for name in expected_names]
    assert set(np.unique(predictions[1:])) == {1, 2}
    expected = 1 + np.rint(254 * probabilities.max(axis=1))
    assert np.array_equal(certainty[1:], expected.astype(np.uint8))
    assert certainty[1:].min() >= 1 + 254 // 2 - 1  # two classes: the predicted one has at least one half


def test_embedding_overlay_needs_the_map_and_returns_its_colours(server, project, user):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects.folders import store_path

    segment_jobs.publish_segment_image(project['folder'], project['item'])
    response = _overlay(server, project, user, 'embedding')
    assertStatus(response, 404)
    assert 'embeddingMap' in b''.join(response.body).decode()
    path = store_path(project['folder'], project['item'])
    with SlideStore(path) as store:
        n = store.n_segments
    colours = np.random.default_rng(0).integers(0, 256, (n, 3), dtype=np.uint8)
    with SlideStore.update(path) as writer:
        writer.write_embedding_map('efficientnet_lite0', colours, {'method': 'umap'})
    values = _bytes(_overlay(server, project, user, 'embedding')).reshape(-1, 3)
    assert values.shape == (n + 1, 3) and not values[0].any()
    assert np.array_equal(values[1:], colours)


def test_bad_overlay_requests_are_refused_clearly(server, project, user):
    assertStatus(_overlay(server, project, user, 'heat'), 400)
    response = server.request(_path(project, '/overlay'), user=user, isJson=False,
                              params={'item': 'nope', 'kind': 'labels'})
    assertStatus(response, 400)
    assert 'not an item id' in b''.join(response.body).decode()


def test_an_imported_superpixel_image_is_read_with_its_offset():
    from histomics_label.projects.segment_images import SegmentImage

    imported = SegmentImage('a' * 24, boundaries=True, offset=1)  # superpixel k is segment k + 1
    assert imported.per_index(np.array([0, 5, 6, 7])).tolist() == [5, 6, 7]
    assert SegmentImage('a' * 24, boundaries=True, offset=0).per_index(np.array([0, 5])).tolist() == [0, 5]
