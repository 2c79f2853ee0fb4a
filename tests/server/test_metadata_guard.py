"""Only a project's admins change the metadata the plugin acts on (``projects/metadata_guard.py``): a labeler with
WRITE cannot rewrite the project configuration or a slide's segment metadata through Girder's own metadata routes,
while other metadata and the admin's own routes keep working."""

import json

import pytest

pytestmark = pytest.mark.plugin('histomics_label')


@pytest.fixture
def labeler_project(bare_project, user):
    from girder.constants import AccessType
    from girder.models.folder import Folder

    folder = Folder().setUserAccess(bare_project['folder'], user, AccessType.WRITE, save=True)
    return {**bare_project, 'folder': folder}


def test_a_labeler_cannot_rewrite_the_project_configuration(server, user, admin, labeler_project):
    from girder.models.folder import Folder

    from histomics_label.projects.config import META_KEY

    folder = labeler_project['folder']
    before = Folder().load(folder['_id'], force=True)['meta'][META_KEY]
    planted = {**before, 'radius': 99, 'categories': [{'name': 'mine', 'color': '#000000'}] * 2}
    response = server.request(f'/folder/{folder["_id"]}/metadata', method='PUT', user=user,
                              body=json.dumps({META_KEY: planted}), type='application/json')
    assert response.output_status.startswith(b'403')
    assert 'Only an admin of the project folder' in response.json['message']
    assert Folder().load(folder['_id'], force=True)['meta'][META_KEY] == before
    removed = server.request(f'/folder/{folder["_id"]}/metadata', method='DELETE', user=user,
                             body=json.dumps([META_KEY]), type='application/json')
    assert removed.output_status.startswith(b'403')
    assert Folder().load(folder['_id'], force=True)['meta'][META_KEY] == before
    # other metadata stays the labeler's to set, and the admin's settings route still works
    other = server.request(f'/folder/{folder["_id"]}/metadata', method='PUT', user=user,
                           body=json.dumps({'note': 'stain batch 3'}), type='application/json')
    assert other.output_status.startswith(b'200') and other.json['meta']['note'] == 'stain batch 3'
    configured = server.request(f'/histomics_label/project/{folder["_id"]}', method='PUT', user=admin,
                                body=json.dumps({'radius': 12}), type='application/json')
    assert configured.output_status.startswith(b'200'), configured.json
    assert Folder().load(folder['_id'], force=True)['meta'][META_KEY]['radius'] == 12


def test_a_labeler_cannot_repoint_a_slides_segments(server, user, admin, labeler_project):
    from girder.models.item import Item

    from histomics_label.projects.folders import IMPORTED_SEGMENTATION_KEY
    from histomics_label.projects.segment_images import SEGMENT_IMAGE_KEY

    item = labeler_project['item']
    for key, value in ((IMPORTED_SEGMENTATION_KEY, {'image': str(item['_id'])}), (SEGMENT_IMAGE_KEY, 'x' * 24)):
        response = server.request(f'/item/{item["_id"]}/metadata', method='PUT', user=user,
                                  body=json.dumps({key: value}), type='application/json')
        assert response.output_status.startswith(b'403'), (key, response.json)
        assert key not in (Item().load(item['_id'], force=True).get('meta') or {})
    allowed = server.request(f'/item/{item["_id"]}/metadata', method='PUT', user=admin,
                             body=json.dumps({SEGMENT_IMAGE_KEY: 'x' * 24}), type='application/json')
    assert allowed.output_status.startswith(b'200')
