"""Who is told of a project's training (``projects.notify.readers``): exactly those who may read it."""

import pytest

pytestmark = pytest.mark.plugin('histomics_label')


def test_readers_are_those_the_access_list_names_directly_or_by_group_and_the_admins(server, admin, user):
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.group import Group
    from girder.models.user import User

    from histomics_label.projects.notify import readers

    def new_user(login):
        return User().createUser(login, 'password1', login, login, f'{login}@example.com')

    member, stranger, writer_of_another = new_user('member'), new_user('stranger'), new_user('other')
    group = Group().createGroup('pathologists', admin)
    Group().addUser(group, member, level=AccessType.READ)
    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    folder = Folder().createFolder(home, 'Project', creator=admin)
    Folder().setUserAccess(folder, user, AccessType.READ)
    Folder().setGroupAccess(folder, group, AccessType.READ)
    other = Folder().createFolder(home, 'Other project', creator=admin)
    Folder().setUserAccess(other, writer_of_another, AccessType.WRITE, save=True)
    folder = Folder().save(folder)
    assert readers(folder) == {admin['_id'], user['_id'], member['_id']}
    assert stranger['_id'] not in readers(other) and writer_of_another['_id'] in readers(other)
