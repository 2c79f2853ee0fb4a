"""The project page as its set-up view, in Chromium on the live stack: a project made through the REST API on the real
H&E sample, set up in the browser by its admin (categories added, recoloured, renamed, hotkeyed, excluded, merged
after a confirmation; the radius changed; segments made from the button with the jobs' progress shown), with two
requests the server refuses shown on the page; then a user with read access sees the same page without any edit
control. What the page shows is checked against what the server stored."""


import io

import pytest
from helpers.live_stack import add_user, slide_project

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0}
NEW_RADIUS = 12
READER = {'login': 'setupreader', 'password': 'password1'}


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A project folder with the sample slide (not segmented), and a user with read access on it."""
    client = stack.client()
    folder, item, base = slide_project(client, cmu_svs, 'Setup project', CONFIG)
    add_user(client, folder['_id'], READER, 0)
    # files that are not slides, as an admin may drop them into the folder
    for name, data, mime in (('notes.txt', b'tumour in the upper left\n', 'text/plain'),
                             ('fake.tiff', b'not an image at all', 'image/tiff')):
        client.uploadStreamToFolder(folder['_id'], io.BytesIO(data), name, len(data), mimeType=mime)
    return {'folder': folder, 'item': item, 'base': base}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see project_setup.mjs)."""
    request = {'reader': READER, 'projectId': project['folder']['_id'], 'radius': NEW_RADIUS}
    return browser_driver.run('project_setup.mjs', stack, request, timeout=900)


def test_colours_that_look_alike_to_colour_blind_eyes_are_flagged_and_mended(observed):
    seen = observed['colourBlind']
    # the red (#e6194b) and green (#3cb44b) of the project: 8.9 apart (CIELAB) as a deuteranope sees them
    assert seen['before'] == [{'first': 'tumor', 'second': 'stroma',
                               'text': 'tumor and stroma look alike with red-green colour blindness (deuteranopia).'}]
    assert seen['message'] == 'The categories have colour-blind safe colours now.'
    assert seen['after'] == []
    assert seen['swatches'] == ['rgb(0, 114, 178)', 'rgb(230, 159, 0)']  # Okabe and Ito's blue and orange


def test_the_keyboards_place_is_ringed(observed):
    ring = observed['focusRing']
    assert 'hl-new-color' in ring['element']
    assert ring['style'] == 'solid' and ring['width'] == '2px'


def test_categories_are_edited_in_the_page(observed):
    assert observed['added']['names'] == ['tumor', 'stroma', 'necrosis', 'debris']
    assert observed['added']['swatch'] == 'rgb(67, 99, 216)'
    assert observed['added']['hotkey'] == 'n'
    assert observed['recoloured'] == 'rgb(255, 128, 0)'
    assert observed['hotkeyed'] == 't'
    assert observed['renamed']['names'] == ['tumor', 'connective', 'necrosis', 'debris']
    assert 'stroma renamed to connective' in observed['renamed']['message']
    assert observed['excluded']['names'] == ['necrosis']
    # the merge asks first; "Cancel" merges nothing, "Merge" does
    assert 'Merge debris into tumor?' in ' '.join(observed['merge']['question'].split())
    assert observed['merge']['afterCancel'] == ['tumor', 'connective', 'necrosis', 'debris']
    assert observed['merge']['names'] == ['tumor', 'connective', 'necrosis']
    assert 'debris merged into tumor' in observed['merge']['message']


def test_server_refusal_is_shown(observed):
    refused = observed['badHotkey']
    assert 'Could not set the hotkey of connective' in refused['message']
    assert 'a hotkey is one letter or 0' in refused['message'] and '(400)' in refused['message']
    assert refused['names'] == ['tumor', 'connective', 'necrosis']  # nothing changed, page still usable
    assert any('400' in error for error in observed['consoleErrors'].get('badHotkey', []))


def test_settings_form_saves_changed_fields(observed):
    bad = observed['badRadius']
    assert 'Could not save the settings' in bad['message'] and 'radius must be between 2 and 10000' in bad['message']
    assert bad['value'] == '1'  # what was typed stays, to be corrected
    assert any('400' in error for error in observed['consoleErrors'].get('badRadius', []))
    assert observed['settings']['message'] == 'Saved: radius.'
    assert observed['settings']['radius'] == str(NEW_RADIUS)


def test_files_that_are_not_slides_are_listed_with_why(observed, stack, project):
    listed = stack.client().get(project['base'])['notSlides']
    assert [entry['name'] for entry in listed] == ['fake.tiff', 'notes.txt']
    assert observed['notSlides'] == [{'item': e['_id'], 'name': e['name'], 'reason': e['reason']} for e in listed]
    assert 'No image reader of large_image can read fake.tiff' in observed['notSlides'][0]['reason']
    # segment generation leaves them out and says so
    assert observed['segments']['started'] == ('Making segments for 1 slide(s)… 2 item(s) of the folder are not '
                                               'slides and were left out: see why below the slides.')


def test_segments_made_from_the_button(observed, stack, project):
    segments = observed['segments']
    assert segments['jobSeen'], 'no job progress was shown'
    # the row shows the job from the start (queued or running, with its progress) until it is done
    assert segments['states'][0].startswith(('queued', 'running'))
    assert segments['finalJob'] == 'done 100 %'
    assert segments['message'] == 'Segments are ready.'
    client = stack.client()
    slides = client.get(f'{project["base"]}/slides')
    assert [s['_id'] for s in slides] == [project['item']['_id']]
    assert slides[0]['segments'] > 0
    assert segments['count'] == f'{slides[0]["segments"]:,}'


def test_server_has_the_setup(observed, stack, project):
    config = stack.client().get(project['base'])['config']
    assert config['radius'] == NEW_RADIUS
    assert config['magnification'] == 5 and config['patchSize'] == 48 and config['retrainEvery'] == 0
    assert [(c['name'], c['color'], c['excluded'], c['hotkey']) for c in config['categories']] == [
        ('tumor', '#ff8000', False, 't'), ('connective', '#e69f00', False, None),
        ('necrosis', '#4363d8', True, 'n')]


def test_admin_phases_have_no_console_errors(observed):
    for phase in ('login', 'open', 'colourBlind', 'add', 'colour', 'hotkey', 'rename', 'exclude', 'merge', 'settings',
                  'segments'):
        assert not observed['consoleErrors'].get(phase), (phase, observed['consoleErrors'][phase])


def test_reader_sees_no_edit_controls(observed):
    reader = observed['reader']
    assert reader['categories'] == ['tumor', 'connective', 'necrosis']
    assert reader['excluded'] == ['necrosis']
    assert reader['hotkeys'] == ['t', 'n']
    assert reader['controls'] == 0
    assert reader['radius'] == str(NEW_RADIUS)
    assert reader['segments'] != 'not segmented yet'
    assert not observed['consoleErrors'].get('reader')
