"""The project page of the web client in Chromium, on the live stack: a project made through the REST API on the
real H&E sample, opened from its route and from the folder page's button, next to a folder that is not a project
and a request that fails."""


import pytest
from helpers.live_stack import add_user

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'background', 'color': '#888888', 'excluded': True}]
READER = {'login': 'folderreader', 'password': 'password1'}


@pytest.fixture(scope='module')
def folders(stack, cmu_svs):
    """A project folder holding the uploaded sample slide and its categories, and a plain folder beside it."""
    client = stack.client()
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    project = client.createFolder(private['_id'], 'Browser project')
    item = client.getItem(client.uploadFileToFolder(project['_id'], str(cmu_svs))['itemId'])
    if not item.get('largeImage'):
        client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': next(client.listFile(item['_id']))['_id']})
    client.put(f'histomics_label/project/{project["_id"]}', json={'categories': CATEGORIES})
    plain = client.createFolder(private['_id'], 'Just a folder')
    add_user(client, plain['_id'], READER, 0)
    return {'project': project, 'plain': plain, 'item': item}


@pytest.fixture(scope='module')
def observed(stack, folders, browser_driver) -> dict:
    """What the driver script saw in Chromium (see project_page.mjs)."""
    request = {'projectId': folders['project']['_id'], 'plainFolderId': folders['plain']['_id'],
               'missingId': '0123456789abcdef01234567', 'reader': READER}
    return browser_driver.run('project_page.mjs', stack, request, timeout=300)


def test_project_page_shows_project(observed, stack, folders):
    page = observed['project']
    assert observed['loggedInAs'] == stack.info().admin_login
    assert page['name'] == 'Browser project'
    assert page['categories'] == ['tumor', 'stroma', 'background']
    assert page['excluded'] == ['background']
    assert page['swatches'] == ['rgb(230, 25, 75)', 'rgb(60, 180, 75)', 'rgb(136, 136, 136)']
    assert page['slides'] == [folders['item']['name']]
    assert page['segments'] == ['not segmented yet']
    assert page['round'] == 'No training round yet.'
    assert page['review'] == f'#histomics_label/project/{folders["project"]["_id"]}/review'
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('project')


def test_folder_button_opens_project_or_explains(observed, folders):
    assert observed['folderButton']['hash'] == f'#histomics_label/project/{folders["project"]["_id"]}'
    # the plain folder's admin gets the set-up of a new project; a reader, what its admins could do
    assert observed['setUp']['hash'] == f'#histomics_label/project/{folders["plain"]["_id"]}/new'
    assert observed['setUp']['heading'] == 'Set up Just a folder as a Histomics Label project'
    assert 'is not a Histomics Label project' in observed['notProject']['message']
    assert "One of the folder's administrators can set it up" in observed['notProject']['message']
    assert observed['notProject']['hash'] == f'#folder/{folders["plain"]["_id"]}'
    for phase in ('folderButton', 'setUp', 'notProject'):
        assert not observed['consoleErrors'].get(phase), phase


def test_failed_request_is_shown(observed):
    message = observed['failedRequest']['message']
    assert 'Could not load this Histomics Label project' in message
    assert 'failed (400)' in message and 'Invalid folder id' in message
    # the browser reports the 400 as a console error: proof that the other phases' empty lists were listened for
    assert any('400' in error for error in observed['consoleErrors'].get('failedRequest', []))
