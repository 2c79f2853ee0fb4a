"""The guided labeling view in Chromium, on the live stack: a project made through the REST API on the real H&E
sample (segments made by the segment job, seed labels and a first round through the API), then labeled in the
browser by keyboard (one segment marked "not classifiable" with its key), one label undone, retrained from the
button, and one save (a click on a category button) made to fail; what the page shows is checked against what the
server stored or sent (the rounds' cross-validated and audit accuracies, on the project page and in the stats bar;
the "random check" badge on exactly the suggestions of the audit sample)."""

import math
import re

import pytest
from helpers.live_stack import add_user, seeded_project

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b', 'hotkey': 't'},
              {'name': 'stroma', 'color': '#3cb44b', 'hotkey': 's'},
              {'name': 'background', 'color': '#888888', 'excluded': True, 'hotkey': 'b'}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0,
          'batchSize': 8}
SEED_NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
# eleven labels: number keys (the excluded category's included), hotkeys, Enter (accept the prediction) and x (not
# classifiable: the server's excluded category of that name, which the project does not have yet)
KEYS = ['1', 'Enter', '2', 'x', 's', 'Enter', '3', 't', 'Enter', '1', '2']
UNCLASSIFIABLE = 'not classifiable'
BY_KEY = {'1': 'tumor', '2': 'stroma', '3': 'background', 't': 'tumor', 's': 'stroma', 'b': 'background',
          'x': UNCLASSIFIABLE}


@pytest.fixture(scope='module')
def stack(either_girder):
    """The live stack, on Girder 5 and on Girder 3: the same views label there."""
    return either_girder


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A segmented project with seed labels (view "api") and a first round, all through the REST API."""
    client = stack.client()
    # no seed from the audit sample: the first batch then holds the audit cards its labels call for
    made = seeded_project(client, cmu_svs, 'Guided project', CONFIG, SEED_NAMES)
    folder, item, base, first = made['folder'], made['item'], made['base'], made['first']
    reader = {'login': 'reader', 'password': 'password1'}
    add_user(client, folder['_id'], reader, 0)
    return {'folder': folder, 'item': item, 'base': base, 'seeds': len(made['seeds']), 'first': first, 'reader': reader}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see guided_labeling.mjs)."""
    request = {'reader': project['reader'], 'projectId': project['folder']['_id'], 'keys': KEYS}
    return browser_driver.run('guided_labeling.mjs', stack, request, timeout=600)


def whole(value: float) -> int:
    """A fraction as a whole percentage, rounded as the client's Math.round does (half up)."""
    return math.floor(value * 100 + 0.5)


def focus_scale(region: list[int], focus: dict) -> float:
    """The viewer's magnification (screen pixels per slide pixel) for a card: its region with four times its size
    around it (at least 16 px a side) fitted in the viewer, and never past 1."""
    x0, y0, x1, y1 = region
    side = max(x1 - x0, y1 - y0, 16) * 4
    return min(1.0, focus['width'] / side, focus['height'] / side)


def accuracy_words(accuracy: dict) -> str:
    """A round's cross-validated ``accuracy`` (REST) as the client writes it: "78 % (62–90 %, 18 labels)"."""
    return (f'{whole(accuracy["balancedAccuracy"])} % ({whole(accuracy["low"])}–{whole(accuracy["high"])} %, '
            f'{accuracy["labels"]} label{"" if accuracy["labels"] == 1 else "s"})')


def accuracy_tooltip(accuracy: dict) -> str:
    labels = f'{accuracy["labels"]} label{"" if accuracy["labels"] == 1 else "s"}'
    return (f"Balanced accuracy (the mean of the categories' recalls) by {accuracy['folds']}-fold cross-validation "
            f'over the {labels}; 95 % interval {whole(accuracy["low"])}–{whole(accuracy["high"])} %. It measures the '
            'model on the labels, and the segments the model picked for labeling are harder than the slide at large, '
            'so it errs low; the accuracy on random checks is the unbiased estimate.')


def audit_words(round_: dict) -> str:
    """A round's ``auditAccuracy`` (REST) as the client writes it: "72 % (55–86 %, 14 random segments)", or that
    there is none yet."""
    audit = round_['auditAccuracy']
    if audit is None:
        return 'no audit labels yet'
    return (f'{whole(audit["balancedAccuracy"])} % ({whole(audit["low"])}–{whole(audit["high"])} %, '
            f'{audit["labels"]} random segment{"" if audit["labels"] == 1 else "s"})')


def minutes_words(minutes: float) -> str:
    """A round's ``labelingMinutes`` as the client writes it."""
    if minutes < 1:
        return '< 1 min' if minutes > 0 else '0 min'
    rounded = math.floor(minutes + 0.5)
    return f'{rounded} min' if rounded < 60 else f'{rounded // 60} h {rounded % 60} min'


def expected_category(step: dict) -> str:
    return step['predicted'] if step['key'] == 'Enter' else BY_KEY[step['key']]


def loaded(images: list[dict]) -> bool:
    return bool(images) and all(image['naturalWidth'] > 0 for image in images)


def test_opens_from_project_page_with_suggestions(observed, project):
    page = observed['open']
    assert page['hash'] == f'#histomics_label/project/{project["folder"]["_id"]}/label'
    assert page['title'] == 'Label: Guided project'
    assert page['choices'] == ['tumor', 'stroma', 'background']
    assert page['count'] == str(project['seeds'])
    assert page['round'] == str(project['first']['number'])
    accuracy = project['first']['accuracy']
    assert accuracy is not None and accuracy['labels'] == project['first']['labelsUsed'], project['first']
    assert 0 <= accuracy['low'] < accuracy['high'] <= 1  # the estimate itself may be 100 %, above a Jeffreys bound
    assert page['accuracy'] == accuracy_words(accuracy)
    assert page['changed'] == 'first round'  # nothing to compare the first round with
    assert page['accuracyTitle'] == accuracy_tooltip(accuracy)
    # the audit accuracy beside it: the first round trained on seed labels, none of them an audit card's
    assert project['first']['auditAccuracy'] is None
    assert page['audit'] == audit_words(project['first']) == 'no audit labels yet'
    assert 'random' in page['auditTitle'] and 'None of the audit sample is labeled yet' in page['auditTitle']
    # the project page, where the view was opened from, shows the same round and accuracies, and the labeling time
    assert observed['projectPage'] == {'round': str(project['first']['number']), 'accuracy': accuracy_words(accuracy),
                                       'accuracyTitle': accuracy_tooltip(accuracy),
                                       'audit': audit_words(project['first']), 'auditTitle': page['auditTitle'],
                                       'labelingTime': minutes_words(project['first']['labelingMinutes']),
                                       'rows': observed['projectPage']['rows']}
    # each value on its term's line, even where a term wraps ("Accuracy on the labels (cross-validated)" did, and
    # every value below it showed one line up, beside the term before its own)
    rows = {row['term']: row for row in observed['projectPage']['rows']}
    assert list(rows) == ['Round', 'Accuracy on random checks', 'Accuracy on the labels (cross-validated)',
                          'Labels used', 'Labeling time', 'Predictions changed']
    assert all(row['below'] == 0 for row in rows.values()), observed['projectPage']['rows']
    assert rows['Labels used']['value'] == str(project['first']['labelsUsed'])
    assert rows['Labeling time']['value'] == minutes_words(project['first']['labelingMinutes'])
    assert len(page['row']) == CONFIG['batchSize']
    assert {card['predicted'] for card in page['row']} <= {'tumor', 'stroma'}  # never the excluded category
    # each card reads the prediction's probability in words ("stroma, 87 %"), not an entropy
    assert all(re.fullmatch(r'\d{1,3} %', card['score']) for card in page['row']), page['row']
    assert all(card['label'] is None for card in page['row'])
    # the row is the suggestions the server sent, in order; exactly the audit sample's carry the "random check"
    # badge (the last cards of a batch), each with the server's reason
    served = page['served']
    assert [(card['item'], card['segment']) for card in page['row']] == [(s['item'], s['segment']) for s in served]
    assert [card['badge'] for card in page['row']] == ['random check' if s['strategy'] == 'audit' else None
                                                       for s in served]
    assert [card['reason'] for card in page['row']] == [s['reason'] for s in served]
    audits = [s for s in served if s['strategy'] == 'audit']
    assert audits and served[-len(audits):] == audits, [s['strategy'] for s in served]
    assert all('drawn at random' in s['reason'] for s in audits)
    assert page['unclassifiable'] == {'text': 'Not classifiable', 'key': 'x'}
    # thumbnails (128 px) really loaded, through the login cookie
    assert loaded(page['images'])
    assert sorted({image['naturalWidth'] for image in page['images']}) == [128]
    # the slide viewer shows the first card's segment, outlined in yellow, over real H&E tiles
    first = page['row'][0]
    assert page['focus']['segment'] == first['segment'] and page['focus']['item'] == first['item']
    assert page['focus']['distinct'] > 200 and page['focus']['yellow'] > 30, page['focus']
    # the segment with four times its size around it, but at most at the slide's own resolution: a small segment
    # gets more context, never blurred upsampled tissue
    assert page['focus']['scale'] == pytest.approx(focus_scale(page['served'][0]['region'], page['focus']), rel=0.03)
    assert page['focus']['beside'] and observed['focusAfterFirst']['beside']  # long reasons wrap beside the viewer
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('open')


def test_keyboard_labels_are_stored_as_guided(observed, stack, project):
    steps = observed['labeled']
    assert [step['key'] for step in steps] == KEYS
    # the first row (8 cards) was labeled in order, then the next row came without a reload
    assert [step['segment'] for step in steps[:8]] == [card['segment'] for card in observed['open']['row']]
    assert len(observed['rows']) == 2 and not set(observed['rows'][0]) & set(observed['rows'][1])
    # the next row, asked for while the first row's last card was answered, is what the server suggests once it is
    assert observed['rows'][1] == observed['serverRow']
    assert [step['segment'] for step in steps[8:]] == observed['rows'][1][:len(KEYS) - 8]
    for step in steps[:7] + steps[8:]:  # a card shows its chosen category while its row is on the page
        assert step['shown'] == expected_category(step)
    assert observed['afterLabels']['count'] == str(project['seeds'] + len(KEYS))
    # the focus panel shows the badge while an audit card is the current one, and only then
    assert [step['focusBadge'] for step in steps] == [int(step['strategy'] == 'audit') for step in steps]
    # after the first label the viewer moved on to the next card's segment
    moved = observed['focusAfterFirst']
    assert moved['segment'] == observed['open']['row'][1]['segment'] == moved['current'], moved
    assert moved['yellow'] > 30, moved
    assert moved['scale'] == pytest.approx(focus_scale(observed['open']['served'][1]['region'], moved), rel=0.03)
    assert loaded(observed['afterLabels']['images'])
    # Backspace undid the newest label: its card is current again, unlabeled
    undone = steps[-1]
    assert observed['undo']['current']['segment'] == undone['segment']
    assert observed['undo']['currentLabel'] == 0 and observed['undo']['focusLabel'] == 'Not labeled yet'
    assert observed['undo']['count'] == str(project['seeds'] + len(KEYS) - 1)
    client = stack.client()
    stored = client.get(f'{project["base"]}/labels', parameters={'limit': 0})
    guided = {(label['item'], label['segment']): label['category'] for label in stored if label['view'] == 'guided'}
    assert guided == {(step['item'], step['segment']): expected_category(step) for step in steps[:-1]}
    assert len(stored) == project['seeds'] + len(KEYS) - 1
    # "x" made the server hold the segment as its excluded category "not classifiable", which it added
    marked = [step for step in steps if step['key'] == 'x']
    assert [guided[(step['item'], step['segment'])] for step in marked] == [UNCLASSIFIABLE]
    categories = client.get(project['base'])['config']['categories']
    assert [(c['name'], c['excluded']) for c in categories if c['name'] == UNCLASSIFIABLE] == [(UNCLASSIFIABLE, True)]
    assert observed['afterLabels']['choices'][-1] == UNCLASSIFIABLE  # the view took up the new category
    assert not any(observed['consoleErrors'].get(name) for name in ('label', 'undo'))


def test_the_next_card_is_drawn_from_tiles_fetched_ahead(observed):
    steps = observed['labeled']
    # before each key the viewer had fetched the tiles around the card that came next, the next row's first card
    # included (asked for with the row while its last card was answered) ...
    assert [step['prefetched'] for step in steps] == [step['next'] for step in steps]
    # ... so that showing it asked the server for no tile of the slide or of its segment image
    asked = [step['tileRequests'] for step in steps]
    assert [len(tiles) for tiles in asked] == [0] * len(steps), asked


def test_retrain_button_shows_new_round_and_row(observed, stack, project):
    retrain = observed['retrain']
    rounds = stack.client().get(f'{project["base"]}/rounds')['rounds']
    latest = rounds[-1]
    assert retrain['before']['round'] == str(project['first']['number'])
    assert retrain['round'] == str(latest['number']) == str(project['first']['number'] + 1)
    assert latest['labelsUsed'] > project['first']['labelsUsed']
    assert latest['accuracy'] is not None and latest['accuracy']['labels'] == latest['labelsUsed'], latest
    assert retrain['accuracy'] == accuracy_words(latest['accuracy'])
    # the stopping signal: the share of predictions the retrained round changed, as the REST round says
    assert latest['predictionsChanged']['changed'] > 0
    share = latest['predictionsChanged']['share']
    assert retrain['changed'] == f'{"< 1" if 0 < share < 0.01 else whole(share)} % of predictions'
    assert retrain['accuracyTitle'] == accuracy_tooltip(latest['accuracy'])
    # the audit cards labeled in the browser (the last of the first row was, with a trained category) gave the
    # round its audit accuracy
    assert latest['auditAccuracy'] is not None and latest['auditAccuracy']['labels'] >= 1, latest
    assert retrain['audit'] == audit_words(latest)
    assert 'drawn at random' in retrain['auditTitle'] and '95 % interval' in retrain['auditTitle']
    # the poll and the project's training event (which may arrive after it) say the same sentence
    changed = latest['predictionsChanged']['changed']
    assert retrain['status'] == (f'Round {latest["number"]} trained on {latest["labelsUsed"]} labels; '
                                 f'{changed:,} prediction{"" if changed == 1 else "s"} changed.')
    assert retrain['messages'] == []
    labeled = {step['segment'] for step in observed['labeled'][:-1]}
    new_row = [card['segment'] for card in retrain['row']]
    assert len(new_row) == CONFIG['batchSize'] and not set(new_row) & labeled
    assert new_row != retrain['before']['row']
    assert loaded(retrain['images'])
    assert not observed['consoleErrors'].get('retrain')


def test_failed_save_is_shown_and_taken_back(observed, stack, project):
    failed = observed['failedSave']
    assert 'Could not save the label "tumor"' in failed['message']
    assert 'PUT ' in failed['message'] and 'failed (400): Injected failure' in failed['message']
    assert failed['label'] is None
    stored = stack.client().get(f'{project["base"]}/labels', parameters={'limit': 0})
    assert len(stored) == project['seeds'] + len(KEYS) - 1
    # the browser reports the 400 as a console error: the other phases' empty lists were really listened for
    assert any('400' in error for error in observed['consoleErrors'].get('failedSave', []))


def test_show_on_slide_opens_the_segment_and_back_returns(observed, stack, project):
    jump = observed['jump']
    card = jump['card']
    route = f'#histomics_label/project/{project["folder"]["_id"]}'
    assert jump['hash'] == f'{route}/paint/{card["item"]}?segment={card["segment"]}&from=label'
    place = stack.client().get(f'{project["base"]}/slide/{card["item"]}/segment/{card["segment"]}')
    x0, y0, x1, y1 = place['region']
    left, top, right, bottom = jump['view']
    assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom
    assert jump['backHash'] == f'{route}/label'
    assert not observed['consoleErrors'].get('jump')


def test_reader_gets_no_label_button(observed):
    reader = observed['reader']
    assert reader['labelButtons'] == 0 and reader['cards'] == 0
    assert 'labeling needs write access' in reader['message']
    assert not observed['consoleErrors'].get('reader')
