"""The bulk labeling (paint) view in Chromium, on the live stack: a project made through the REST API on the real H&E
sample (segments and an embedding map made by the segment job), the slide drawn by geojs over large_image's tiles
(WebGL through SwiftShader) with the segments as a pixelmap layer, one brush stroke across the middle of the slide
painted with a category chosen by key, undone, painted and erased; then a round trained (the open page learns of it
through Girder's notification stream and offers the model's overlays) and the model's overlays and the segment
borders switched on. What the page shows is checked against what the server stored, and the
overlays by what the map draws."""


import pytest
from helpers.live_stack import add_user, make_segments, slide_project

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b', 'hotkey': 't'},
              {'name': 'stroma', 'color': '#3cb44b', 'hotkey': 's'},
              {'name': 'background', 'color': '#888888', 'excluded': True, 'hotkey': 'b'}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0,
          'batchSize': 8, 'embeddingMap': True}
KEY, CATEGORY = '2', 'stroma'
OTHER_KEY = '1'


@pytest.fixture(scope='module')
def stack(either_girder):
    """The live stack, on Girder 5 and on Girder 3: the same views paint there."""
    return either_girder


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A segmented project without labels, made through the REST API, and a user who may only read it."""
    client = stack.client()
    folder, item, base = slide_project(client, cmu_svs, 'Bulk project', CONFIG)
    make_segments(client, base)
    reader = {'login': 'reader', 'password': 'password1'}
    add_user(client, folder['_id'], reader, 0)
    return {'folder': folder, 'item': item, 'base': base, 'reader': reader}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see bulk_labeling.mjs), and the server's labels after the stroke."""
    request = {'projectId': project['folder']['_id'], 'itemId': project['item']['_id'], 'key': KEY,
               'otherKey': OTHER_KEY, 'reader': project['reader']}
    return browser_driver.run('bulk_labeling.mjs', stack, request, timeout=600)


def test_slide_is_drawn(observed, project):
    page = observed['open']
    assert page['hash'] == f'#histomics_label/project/{project["folder"]["_id"]}/paint/{project["item"]["_id"]}'
    assert page['title'] == f'Paint: {project["item"]["name"]}'
    assert page['categories'] == [category['name'] for category in CATEGORIES]
    assert page['mode'] == 'brush'
    assert page['mapCanvases'] >= 1
    # real H&E tiles: many distinct colours, not a blank (white or black) canvas
    assert page['map']['distinct'] > 200, page['map']
    assert page['map']['whiteShare'] < 0.9, page['map']
    assert page['labeled'] == 0
    # no round yet: the model's overlays are off and say why; the embedding map was made with the segments
    fills = {fill['fill']: fill for fill in page['fills']}
    assert fills['predictions']['disabled'] and 'train a first round' in fills['predictions']['title']
    assert fills['certainty']['disabled'] and not fills['embedding']['disabled']
    assert page['bordersDisabled'] is False
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('open')


def test_stroke_labels_segments_as_bulk(observed, stack, project):
    assert observed['chosen'] == CATEGORY
    sent = observed['request']
    assert sent['item'] == project['item']['_id'] and sent['category'] == CATEGORY and 'erase' not in sent
    assert len(sent['points']) >= 3 and sent['radius'] > 0
    xs = [point[0] for point in sent['points']]
    ys = [point[1] for point in sent['points']]
    tiles = stack.client().get(f'item/{project["item"]["_id"]}/tiles')
    width, height = tiles['sizeX'], tiles['sizeY']
    # a horizontal stroke across the middle of the slide, in base pixels
    assert min(xs) < width / 2 < max(xs) and abs(sum(ys) / len(ys) - height / 2) < height * 0.2
    segments = observed['paint']['segments']
    assert len(segments) >= 3 and observed['paint']['batch']
    painted = observed['painted']
    # the server's labels of the slide right after the stroke (asked by the driver: the undo comes later)
    stored = painted['stored']
    bulk = {label['segment']: label['category'] for label in stored if label['view'] == 'bulk'}
    assert bulk == dict.fromkeys(segments, CATEGORY)
    assert painted['count'] == str(len(segments))
    assert f'Labeled {len(segments)} segments as {CATEGORY}' in painted['status']
    assert painted['messages'] == []
    # the painted segments are drawn in the category's colour (green) under the stroke
    assert painted['labeled'] == len(stored)
    assert painted['greenAfter'] > painted['greenBefore'] + 15, painted
    assert not observed['consoleErrors'].get('paint')


def test_undo_removes_the_stroke(observed):
    undo = observed['undo']
    assert undo['status'].startswith('Undid') and undo['labeled'] == 0
    assert abs(undo['green'] - observed['painted']['greenBefore']) < 5
    assert undo['undoDisabled']
    # the server's labels of the slide right after the undo, asked by the driver (later phases paint again)
    assert undo['stored'] == []
    assert not observed['consoleErrors'].get('undo')


def test_eraser_removes_painted_labels(observed):
    erase = observed['erase']
    assert len(erase['repainted']['segments']) >= 3
    assert erase['mode'] == 'eraser'
    assert erase['request']['erase'] is True and 'category' not in erase['request']
    assert set(erase['repainted']['segments']) <= set(erase['answer']['segments'])
    assert erase['answer']['deleted'] == len(erase['repainted']['segments'])
    assert erase['status'].startswith('Erased the labels of')
    assert erase['stored'] == [] and erase['messages'] == []
    assert not observed['consoleErrors'].get('erase')


def test_model_overlays_and_borders_are_drawn(observed, stack, project):
    overlays = observed['overlays']
    assert min(overlays['painted']) >= 3 and overlays['trained']['status'] == 200
    # the open page learnt of the round from the notification stream, before any reload
    [trained] = stack.client().get(f'{project["base"]}/rounds')['rounds']
    assert overlays['trained']['round'] == trained['number']
    assert overlays['live']['status'].startswith(f'Round {trained["number"]} trained on {trained["labelsUsed"]} labels')
    assert overlays['live']['predictionsDisabled'] is False
    assert overlays['fillsDisabled'] == [False, False, False]
    # each switch changes what a good part of the map shows (tissue covers about half of it)
    assert overlays['labelsOff'] > 0.002, overlays
    for name in ('predictions', 'certainty', 'embedding'):
        assert overlays[name] > 0.1, (name, overlays)
    assert overlays['borders'] > 0.02 and overlays['bordersOnly'] > 0.02, overlays
    assert overlays['messages'] == []
    # number keys still choose the category right after a click on the Borders checkbox or the opacity slider
    other = CATEGORIES[int(OTHER_KEY) - 1]['name']
    assert overlays['shortcuts'] == {'focusedBox': 'hl-show-borders', 'afterBox': CATEGORY,
                                     'focusedSlider': 'hl-opacity', 'afterSlider': other}
    assert not observed['consoleErrors'].get('overlays')


def test_reader_sees_the_slide_read_only(observed):
    reader = observed['reader']
    assert any('painting needs write access' in message for message in reader['messages'])
    assert reader['mode'] == 'pan' and all(reader['modesDisabled'])
    # the labels painted by the admin show; a drag pans instead of painting
    assert reader['labeled'] == reader['labeledAfterDrag'] > 0 and reader['paintRequests'] == 0
    assert reader['map']['distinct'] > 200
    assert not observed['consoleErrors'].get('reader')
