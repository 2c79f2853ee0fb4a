"""Projects over REST: create and configure with validation, and Girder access deciding who may do what."""

import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

from histomics_label.projects.config import DEFAULTS

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def test_get_project_shows_config_slides_and_access(server, project, admin, user):
    response = server.request(_path(project), user=user)
    assertStatusOk(response)
    assert response.json['config']['model'] == DEFAULTS['model']
    assert [c['name'] for c in response.json['config']['categories']] == ['tumor', 'stroma', 'background']
    assert response.json['slides'] == 1
    assert response.json['access'] == {'write': False, 'admin': False}
    assert server.request(_path(project), user=admin).json['access'] == {'write': True, 'admin': True}
    slides = server.request(_path(project, '/slides'), user=user)
    assertStatusOk(slides)
    assert slides.json[0]['name'] == 'cmu_small_region.svs' and slides.json[0]['segments'] > 100


def test_create_and_update_a_project(server, project, admin):
    from girder.models.folder import Folder

    fresh = Folder().createFolder(project['folder'], 'Second', creator=admin)
    path = f'/histomics_label/project/{fresh["_id"]}'
    assertStatus(server.request(path, user=admin), 400)  # not a project yet
    response = server.request(path, method='PUT', user=admin, type='application/json',
                              body='{"categories": [{"name": "a"}, {"name": "b", "hotkey": "B"}], "radius": 50}')
    assertStatusOk(response)
    config = response.json['config']
    assert config['radius'] == 50 and config['categories'][1]['hotkey'] == 'b'
    assert config['categories'][0]['color'].startswith('#')
    response = server.request(path, method='PUT', user=admin, type='application/json', body='{"certainty": "margin"}')
    assert response.json['config']['radius'] == 50 and response.json['config']['certainty'] == 'margin'


@pytest.mark.parametrize(('body', 'message'), [
    ('{"model": "svm"}', 'model must be one of'),
    ('{"model": "cnn_torch"}', 'image'),
    ('{"radius": -1}', 'radius must be between'),
    ('{"radius": 2.5}', 'whole number'),
    ('{"colour": "red"}', 'Unknown configuration fields'),
    ('{"categories": [{"name": "a"}, {"name": "a"}]}', 'repeated'),
    ('{"categories": [{"name": "Stroma"}, {"name": "stroma"}]}', "'stroma' is repeated (as 'Stroma')"),
    ('{"categories": [{"name": "%s"}]}' % ('x' * 101), '1–100 characters'),
    ('{"categories": [{"name": "a", "color": "blue-ish"}]}', 'not a colour'),
    ('{"categories": [{"name": "a", "hotkey": "1"}]}', 'hotkey'),
    ('[1, 2]', 'JSON object'),
])
def test_bad_configuration_is_a_400(server, project, admin, body, message):
    response = server.request(_path(project), method='PUT', user=admin, type='application/json', body=body)
    assertStatus(response, 400)
    assert message in response.json['message']


def test_access_decides_who_may_configure(server, project, user):
    assertStatus(server.request(_path(project)), 401)  # anonymous: the folder is private
    response = server.request(_path(project), method='PUT', user=user, type='application/json', body='{}')
    assertStatus(response, 403)


def test_a_category_with_labels_cannot_be_dropped(server, project, admin):
    item = str(project['item']['_id'])
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=admin, type='application/json',
                                  body=f'{{"labels": [{{"item": "{item}", "segment": 3, "category": "stroma"}}]}}'))
    response = server.request(_path(project), method='PUT', user=admin, type='application/json',
                              body='{"categories": [{"name": "tumor"}]}')
    assertStatus(response, 400)
    assert 'stroma' in response.json['message']
