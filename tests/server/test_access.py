"""Every plugin route, as listed by the live Swagger description, answers 401 without a login on a private
project and 403 to a user whose access on the folder is below what the route needs."""

import json

import pytest

pytestmark = pytest.mark.plugin('histomics_label')

NEEDS = {
    ('GET', ''): 'read', ('PUT', ''): 'admin', ('GET', '/slides'): 'read', ('PUT', '/labels'): 'write',
    ('DELETE', '/labels'): 'write', ('GET', '/labels'): 'read', ('POST', '/labels/undo'): 'write',
    ('POST', '/labels/paint'): 'write',
    ('PUT', '/labels/{labelId}/review'): 'write', ('POST', '/categories/rename'): 'admin',
    ('POST', '/categories/merge'): 'admin', ('GET', '/suggestions'): 'read', ('POST', '/train'): 'write',
    ('GET', '/rounds'): 'read', ('GET', '/work'): 'read', ('POST', '/work/{job}/cancel'): 'admin',
    ('POST', '/segments'): 'admin',
    ('POST', '/annotations'): 'write',
    ('GET', '/agreement'): 'read', ('GET', '/export'): 'read', ('GET', '/similar'): 'read',
    ('POST', '/import'): 'admin', ('GET', '/overlay'): 'read', ('POST', '/unclassifiable'): 'write',
    ('POST', '/slide/{item}/embeddings'): 'admin', ('POST', '/slide/{item}/store'): 'admin',
    ('GET', '/resegmentation'): 'admin',
    ('POST', '/slide/{item}/resegmentation'): 'admin', ('DELETE', '/slide/{item}/resegmentation'): 'admin',
    ('GET', '/stale_labels'): 'read', ('DELETE', '/stale_labels'): 'admin',
    ('GET', '/slide/{item}/segment/{segment}'): 'read',
}
"""The access each route needs on the project folder (docs/rest.md)."""


def _routes(server):
    prefix = '/histomics_label/project/{id}'
    paths = server.request('/describe').json['paths']
    return [(method.upper(), path[len(prefix):]) for path, operations in paths.items()
            if path.startswith(prefix) for method in operations]


def _call(server, project, method, suffix, user):
    path = f'/histomics_label/project/{project["folder"]["_id"]}' + suffix.replace('{labelId}', 'a' * 24).replace(
        '{job}', 'a' * 24).replace('{item}', str(project['item']['_id'])).replace('{segment}', '1')
    params = {'batch': 'x', 'old': 'tumor', 'new': 'x', 'source': 'tumor', 'target': 'stroma', 'format': 'csv',
              'item': str(project['item']['_id']), 'segments': '[1]', 'kind': 'labels'}
    body = json.dumps({'labels': [{'item': str(project['item']['_id']), 'segment': 1, 'category': 'tumor'}]})
    return server.request(path, method=method, user=user, params=params, body=body, type='application/json',
                          isJson=False)


def test_every_route_is_classified(server, project):
    assert sorted(_routes(server)) == sorted(NEEDS)


@pytest.mark.parametrize(('method', 'suffix'), sorted(NEEDS))
def test_access_is_enforced(server, project, user, method, suffix):
    from girder.constants import AccessType
    from girder.models.folder import Folder

    assert _call(server, project, method, suffix, None).status.startswith('401')
    needed = NEEDS[(method, suffix)]
    below = {'read': None, 'write': AccessType.READ, 'admin': AccessType.WRITE}[needed]
    if below is None:
        Folder().setUserAccess(project['folder'], user, None, save=True)  # no access at all
    else:
        Folder().setUserAccess(project['folder'], user, below, save=True)
    assert _call(server, project, method, suffix, user).status.startswith('403')
