"""HistomicsUI on Girder 3, the DSA of today, in Chromium: Girder 3.2.18 with HistomicsUI 1.8.1, and this plugin's
client compiled by ``girder build`` as an admin compiles it (``devtools.girder3_client``: pinned by the committed lock
file, cached by what made it). The same views as on Girder 5 draw in Girder 3's pages; HistomicsUI's image view links
a project's slide to its project, and shows nothing of ours, and no error, for a slide in none."""

import pytest
from helpers.live_stack import project_and_plain_slide, stack_on

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}]


@pytest.fixture(scope='module')
def girder3(web_client, tmp_path_factory):
    """A live stack on Girder 3 serving the client built for it."""
    with stack_on('girder3', tmp_path_factory.mktemp('girder3') / 'data') as stack:
        yield stack


@pytest.fixture(scope='module')
def slides(girder3, cmu_svs):
    """The sample slide in a project, and the same slide in a plain folder (in no project)."""
    return project_and_plain_slide(girder3.client(), cmu_svs, 'HistomicsUI project', {'categories': CATEGORIES})


@pytest.fixture(scope='module')
def observed(girder3, slides, browser_driver) -> dict:
    """What the driver script saw in Chromium (see histomicsui_girder3.mjs)."""
    request = {'projectId': slides['project']['_id'], 'slideId': slides['slide']['_id'],
               'plainSlideId': slides['plainSlide']['_id']}
    return browser_driver.run('histomicsui_girder3.mjs', girder3, request, timeout=400)


def test_girder_3_pages_load_the_plugin_built_by_girder_build(observed):
    home = observed['home']
    assert home['histomicsUI']
    assert {'api', 'GuidedView', 'ProjectView', 'ReviewView', 'BulkView'} <= set(home['plugin'])
    built = '/static/built/plugins/histomics_label/'
    assert home['files'] == [f'{built}plugin.min.css', f'{built}plugin.min.js', f'{built}histomics-label.js']
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('home')


def test_the_item_page_opens_the_project_in_girder_3s_pages(observed, slides):
    project = slides['project']
    assert observed['slideItem'] == {'names': [project['name']], 'openedHash': f'#histomics_label/project/'
                                     f'{project["_id"]}', 'projectName': project['name']}
    assert not observed['consoleErrors'].get('slideItem')


def test_histomicsui_links_a_project_slide_to_its_project(observed, girder3, slides):
    seen = observed['histomicsUI']
    root = girder3.info().url.rstrip('/')
    assert seen['viewer'] >= 1 and seen['imageMenu'] == slides['slide']['name']
    assert seen['menus'] == 1 and seen['names'] == [slides['project']['name']]
    assert seen['projectLinks'] == [f'{root}/#histomics_label/project/{slides["project"]["_id"]}']
    assert set(seen['targets']) == {'girder'}
    assert not observed['consoleErrors'].get('histomicsUI')


def test_histomicsui_shows_nothing_of_ours_for_a_slide_in_no_project(observed, slides):
    assert observed['histomicsUIPlain'] == {'answer': [], 'menus': 0, 'imageMenu': slides['plainSlide']['name']}
    assert not observed['consoleErrors'].get('histomicsUIPlain')
