"""A new project from an empty folder to reviewed labels, all in the browser (Chromium, the live stack): a folder admin
who is not a site admin sets up a plain folder holding two slides and a text file as a project (categories,
magnification and radius typed in the set-up, the segments each slide is expected to get read off the page), creates
it, and waits for the segments on the project page; a pathologist labels suggestions by key, paints a stroke and
opens the review. Everything is checked against what the server stored; no step calls the API but the fixtures'
upload of the files, as a DSA's import would put them there."""

import io
import shutil

import pytest
from helpers.live_stack import add_user

pytestmark = [pytest.mark.live, pytest.mark.browser]

ADMIN = {'login': 'cohortadmin', 'password': 'password1'}
LABELER = {'login': 'pathologist', 'password': 'password1'}
CATEGORIES = ['tumor', 'stroma', 'background']
MAGNIFICATION, RADIUS = 5, 10


@pytest.fixture(scope='module')
def folder(stack, cmu_svs, tmp_path_factory):
    """A plain folder with two slides (the H&E sample under two names) and a text file; its admin and a labeler."""
    client = stack.client()
    me = client.get('user/me')
    private = next(client.listFolder(me['_id'], 'user', name='Private'))
    folder = client.createFolder(private['_id'], 'New cohort')
    copy = tmp_path_factory.mktemp('slides') / 'second_biopsy.svs'
    shutil.copyfile(cmu_svs, copy)
    items = []
    for path in (cmu_svs, copy):
        item = client.getItem(client.uploadFileToFolder(folder['_id'], str(path))['itemId'])
        if not item.get('largeImage'):
            client.post(f'item/{item["_id"]}/tiles', parameters={'fileId': next(client.listFile(item['_id']))['_id']})
        items.append(item)
    note = b'biopsies from the March clinic\n'
    client.uploadStreamToFolder(folder['_id'], io.BytesIO(note), 'notes.txt', len(note), mimeType='text/plain')
    add_user(client, folder['_id'], ADMIN, 2)
    add_user(client, folder['_id'], LABELER, 1)
    return {'folder': folder, 'items': items, 'base': f'histomics_label/project/{folder["_id"]}'}


@pytest.fixture(scope='module')
def observed(stack, folder, browser_driver) -> dict:
    request = {'admin': ADMIN, 'labeler': LABELER, 'folderId': folder['folder']['_id'], 'categories': CATEGORIES,
               'magnification': MAGNIFICATION, 'radius': RADIUS}
    return browser_driver.run('new_project.mjs', stack, request, timeout=900)


def test_the_set_up_shows_the_slides_and_what_they_will_get(observed, stack, folder):
    set_up = observed['setUp']
    assert set_up['hash'] == f'#{folder["base"]}/new'
    names = sorted(item['name'] for item in folder['items'])
    assert sorted(slide['name'] for slide in set_up['estimates']) == names
    assert all(slide['thumbnail'] > 0 for slide in set_up['estimates'])
    assert 'notes.txt' in set_up['others']
    # the estimate follows the settings typed: tissue area at the analysis magnification / (2 · radius)²
    defaults = stack.client().get('describe')['definitions']['HistomicsLabelConfig']['properties']
    magnification, radius = defaults['magnification']['default'], defaults['radius']['default']
    expected = (MAGNIFICATION / magnification) ** 2 * (radius / RADIUS) ** 2
    for before, after in zip(set_up['atDefaults'], set_up['estimates'], strict=True):
        assert before['segments'] > 0  # rounded to a whole number: within half a segment of the exact figure
        assert abs(after['segments'] - before['segments'] * expected) <= 0.5 * expected + 1


def test_the_project_is_what_was_typed_and_its_segments_are_made(observed, stack, folder):
    client = stack.client()
    config = client.get(folder['base'])['config']
    assert [c['name'] for c in config['categories']] == CATEGORIES
    assert config['magnification'] == MAGNIFICATION and config['radius'] == RADIUS
    assert observed['segments']['hash'] == f'#{folder["base"]}'
    assert observed['segments']['message'] == 'Segments are ready.'
    slides = {slide['_id']: slide for slide in client.get(f'{folder["base"]}/slides')}
    assert sorted(slides) == sorted(item['_id'] for item in folder['items'])
    shown = {row['item']: row['segments'] for row in observed['segments']['counts']}
    assert shown == {item: f'{slide["segments"]:,}' for item, slide in slides.items()}
    assert observed['segments']['notSlides'] == ['notes.txt']
    # the set-up's "up to" (what SLIC is asked for: thumbnail tissue share × area / (2r)²) bounds what it made, and
    # SLIC made at least half of it
    for estimate in observed['setUp']['estimates']:
        made = slides[estimate['item']]['segments']
        assert estimate['segments'] / 2 <= made <= estimate['segments'] * 1.1, (estimate, made)


def test_the_pathologist_labels_paints_and_reviews(observed, stack, folder):
    client = stack.client()
    keyed = {(entry['item'], entry['segment']): CATEGORIES[int(entry['key']) - 1] for entry in observed['labeled']}
    assert {(label['item'], label['segment']): label['category']
            for label in observed['storedAfterKeys'] if label['view'] == 'guided'} == keyed
    painted = observed['painted']['answer']['segments']
    assert len(painted) >= 3
    # the stroke's segments are bulk labels now, a keyed one among them included; the other keyed labels stay guided
    labels = client.get(f'{folder["base"]}/labels', parameters={'limit': 0})
    repainted = {(observed['painted']['item'], segment) for segment in painted}
    guided = {(label['item'], label['segment']): label['category'] for label in labels if label['view'] == 'guided'}
    assert guided == {key: category for key, category in keyed.items() if key not in repainted}
    bulk = {(label['item'], label['segment']) for label in labels if label['view'] == 'bulk'}
    assert bulk == repainted
    assert all(label['labelerLogin'] == LABELER['login'] for label in labels)
    assert observed['painted']['shown'] == ','.join(str(segment) for segment in painted)
    assert observed['review']['total'] == str(len(labels))
    assert observed['review']['cards'] == min(len(labels), 24)
    assert not observed['consoleErrors']
