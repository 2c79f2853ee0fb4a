"""``GET /histomics_label/item/{id}/projects``: the projects a slide belongs to, as its caller may see them."""

import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(item) -> str:
    return f'/histomics_label/item/{item["_id"]}/projects'


def _folder(admin, name, categories=None):
    """A folder in admin's private folder; a project when ``categories`` are given."""
    from girder.models.folder import Folder

    from histomics_label.projects import folders

    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    folder = Folder().createFolder(home, name, creator=admin)
    if categories is not None:
        folders.save_config(folder, {'categories': categories})
    return Folder().load(folder['_id'], force=True)


def _item(admin, folder, name, large_image=True):
    """An item of ``folder``; marked as a large image the way large_image marks one (only its presence counts)."""
    from bson.objectid import ObjectId
    from girder.models.item import Item

    item = Item().createItem(name, creator=admin, folder=folder)
    if large_image:
        Item().update({'_id': item['_id']}, {'$set': {'largeImage': {'fileId': ObjectId()}}})
    return Item().load(item['_id'], force=True)


@pytest.fixture
def layout(server, admin, user):
    """Two projects (the user reads one, writes the other), a plain folder, and a project the user cannot read."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    read = _folder(admin, 'Read project', [{'name': 'tumor'}])
    write = _folder(admin, 'Write project', [{'name': 'stroma'}])
    plain = _folder(admin, 'Plain')
    hidden = _folder(admin, 'Hidden project', [{'name': 'tumor'}])
    for folder, level in ((read, AccessType.READ), (write, AccessType.WRITE), (plain, AccessType.READ)):
        Folder().setUserAccess(folder, user, level, save=True)
    return {'read': read, 'write': write, 'plain': plain, 'hidden': hidden,
            'inRead': _item(admin, read, 'a.svs'), 'inWrite': _item(admin, write, 'b.svs'),
            'notImage': _item(admin, read, 'notes.txt', large_image=False),
            'inPlain': _item(admin, plain, 'c.svs'), 'inHidden': _item(admin, hidden, 'd.svs')}


def test_slide_lists_its_project_with_the_callers_access(server, layout, user, admin):
    response = server.request(_path(layout['inRead']), user=user)
    assertStatusOk(response)
    assert response.json == [{'_id': str(layout['read']['_id']), 'name': 'Read project', 'access': {'write': False}}]
    assert server.request(_path(layout['inRead']), user=admin).json[0]['access'] == {'write': True}
    response = server.request(_path(layout['inWrite']), user=user)
    assert response.json == [{'_id': str(layout['write']['_id']), 'name': 'Write project', 'access': {'write': True}}]


def test_items_in_no_project_list_none(server, layout, user):
    for name in ('inPlain', 'notImage'):
        response = server.request(_path(layout[name]), user=user)
        assertStatusOk(response)
        assert response.json == [], name


def test_a_real_large_image_slide_is_found(server, bare_project, user):
    response = server.request(_path(bare_project['item']), user=user)
    assertStatusOk(response)
    assert [p['_id'] for p in response.json] == [str(bare_project['folder']['_id'])]


def test_read_access_is_needed(server, layout, user):
    assertStatus(server.request(_path(layout['inHidden']), user=user), 403)
    assertStatus(server.request(_path(layout['inRead'])), 401)


def test_a_public_project_answers_anonymous_callers(server, layout):
    from girder.models.folder import Folder

    Folder().setPublic(layout['read'], True, save=True)
    response = server.request(_path(layout['inRead']))
    assertStatusOk(response)
    assert response.json == [{'_id': str(layout['read']['_id']), 'name': 'Read project', 'access': {'write': False}}]


@pytest.mark.parametrize(('item_id', 'message'), [('not-an-id', 'Invalid ObjectId'),
                                                   ('0123456789abcdef01234567', 'Invalid item id')])
def test_bad_item_id_is_a_400(server, user, item_id, message):
    response = server.request(f'/histomics_label/item/{item_id}/projects', user=user)
    assertStatus(response, 400)
    assert message in response.json['message']
