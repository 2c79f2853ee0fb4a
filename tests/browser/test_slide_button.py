"""Slides seen from Girder and HistomicsUI, in Chromium on the live stack: the item page's "Histomics Label" action
lists the projects of a slide and nothing for a slide in none; the HistomicsUI adapter is silent on Girder's pages
without HistomicsUI and, with a test-only stand-in of HistomicsUI's interface (slide_button.mjs), links the open
image to its project whether HistomicsUI's script loads before or after the plugin's."""


import pytest
from helpers.live_stack import project_and_plain_slide

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}]


@pytest.fixture(scope='module')
def slides(stack, cmu_svs):
    """The sample slide in a project, and the same slide in a plain folder (in no project)."""
    return project_and_plain_slide(stack.client(), cmu_svs, 'Slide button project', {'categories': CATEGORIES})


@pytest.fixture(scope='module')
def observed(stack, slides, browser_driver) -> dict:
    """What the driver script saw in Chromium (see slide_button.mjs)."""
    request = {'projectId': slides['project']['_id'], 'slideId': slides['slide']['_id'],
               'plainSlideId': slides['plainSlide']['_id']}
    return browser_driver.run('slide_button.mjs', stack, request, timeout=300)


def test_slide_item_page_links_its_project(observed, slides):
    project, item = slides['project']['_id'], slides['slide']['_id']
    action = observed['slideItem']
    assert action['button'] == 'Histomics Label'
    assert action['names'] == ['Slide button project']
    assert action['projectLinks'] == [f'#histomics_label/project/{project}']
    assert action['paintLinks'] == [f'#histomics_label/project/{project}/paint/{item}']
    assert action['paintTexts'] == ['Paint labels on this slide']  # the admin may write
    assert action['openedHash'] == f'#histomics_label/project/{project}'
    assert not observed['consoleErrors'].get('slideItem')


def test_item_in_no_project_has_no_action(observed):
    assert observed['plainItem'] == {'answer': [], 'actions': 0, 'header': 1}
    assert not observed['consoleErrors'].get('plainItem')


def test_adapter_is_silent_without_histomicsui(observed):
    assert observed['home'] == {'plugin': True, 'histomicsUI': False, 'adapterMenus': 0}
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('home')


@pytest.mark.parametrize('order', ['after', 'before'])
def test_adapter_links_the_open_image_with_a_histomicsui_stand_in(observed, stack, slides, order):
    seen = observed[f'standIn_{order}']
    ours, stand_in = (1, 0) if order == 'before' else (0, 1)
    assert 'stand-in' in seen['scriptOrder'][stand_in] and 'histomics-label' in seen['scriptOrder'][ours]
    root = stack.info().url.rstrip('/')
    project, item = slides['project']['_id'], slides['slide']['_id']
    assert seen['slide'] == {
        'menus': 1, 'nextToImageMenu': True, 'imageMenu': slides['slide']['name'],
        'names': ['Slide button project'],
        'projectLinks': [f'{root}/#histomics_label/project/{project}'],
        'paintLinks': [f'{root}/#histomics_label/project/{project}/paint/{item}'],
        'targets': ['girder', 'girder'],
    }
    assert seen['plainMenus'] == 0 and seen['closedMenus'] == 0
    assert not observed['consoleErrors'].get(f'standIn_{order}')
