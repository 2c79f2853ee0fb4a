"""The review view in Chromium, on the live stack: a project made through the REST API on the real H&E sample
(segments by the segment job, seed labels, three rounds with a batch of suggestions labeled before each later one,
and a second labeler who labels some of the seed segments, some differently). In the browser, as the admin: the grid
sorted by the model's certainty, filtered by disagreement and by labeler, grouped by category, one label approved,
one overridden and one relabeled; the agreement table, the learning curve (cross-validated and audit accuracies,
against labels and against labeling minutes) and the reliability figure checked against the server's rounds; a
failed review shown on the page; and a reader's view without actions."""

import math

import girder_client
import pytest
from helpers.live_stack import add_user, seeded_project

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b', 'hotkey': 't'},
              {'name': 'stroma', 'color': '#3cb44b', 'hotkey': 's'},
              {'name': 'background', 'color': '#888888', 'excluded': True, 'hotkey': 'b'}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0,
          'batchSize': 8}
SEED_NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
OTHER = {'tumor': 'stroma', 'stroma': 'tumor', 'background': 'tumor'}
SECOND = {'login': 'second', 'password': 'password2'}
READER = {'login': 'reviewreader', 'password': 'password1'}
SHARED_SAME, SHARED_DIFFERENT = 6, 4


def _rgb(hex_colour: str) -> str:
    """A ``#rrggbb`` colour as the browser's computed style writes it."""
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f'rgb({red}, {green}, {blue})'


def whole(value: float) -> int:
    """A fraction as a whole percentage, rounded as the client's Math.round does (half up)."""
    return math.floor(value * 100 + 0.5)


def first_page(client, base: str, **params) -> list[dict]:
    """The server's first page of 24 labels (the view's page size) with these parameters."""
    return client.get(f'{base}/labels', parameters={'limit': 24, **params})


@pytest.fixture(scope='module')
def stack(either_girder):
    """The live stack, on Girder 5 and on Girder 3: the same views review there."""
    return either_girder


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A segmented project with seed labels, two rounds and a second labeler, all through the REST API."""
    client = stack.client()
    me = client.get('user/me')
    made = seeded_project(client, cmu_svs, 'Review project', CONFIG, SEED_NAMES)  # round 1 has no audited label
    folder, item, base, seeds = made['folder'], made['item'], made['base'], made['seeds']
    # two batches of suggestions labeled between the rounds, each with its audit cards (segments drawn at random):
    # the prediction for most, the other category for two
    between = []
    for limit in (6, 8):
        suggestions = client.get(f'{base}/suggestions', parameters={'limit': limit})
        batch = [{'item': s['item'], 'segment': s['segment'],
                  'category': OTHER[s['predicted']] if i < 2 else s['predicted']} for i, s in enumerate(suggestions)]
        client.put(f'{base}/labels', json={'labels': batch, 'view': 'api'})
        client.post(f'{base}/train', parameters={'wait': 'true'})
        between += batch
    second = add_user(client, folder['_id'], SECOND, 1)
    add_user(client, folder['_id'], READER, 0)
    other = girder_client.GirderClient(apiUrl=stack.info().api_url)
    other.authenticate(SECOND['login'], SECOND['password'])
    shared = sorted(seeds)[:SHARED_SAME + SHARED_DIFFERENT]
    second_labels = {s: seeds[s] if i < SHARED_SAME else OTHER[seeds[s]] for i, s in enumerate(shared)}
    other.put(f'{base}/labels', json={'labels': [{'item': item['_id'], 'segment': s, 'category': c}
                                                 for s, c in second_labels.items()], 'view': 'api'})
    # what the disagreement filter should show, read before the browser changes any label
    response = client.sendRestRequest('GET', f'{base}/labels', parameters={'limit': 24, 'disagree': 'true'},
                                      jsonResp=False)
    disagree = {'ids': [label['_id'] for label in response.json()], 'total': response.headers['Girder-Total-Count']}
    certainty = {name: first_page(client, base, sort='certainty', sortdir=sortdir)
                 for name, sortdir in (('least', 1), ('most', -1))}
    return {'folder': folder, 'item': item, 'base': base, 'me': me, 'second': second, 'seeds': seeds,
            'secondLabels': second_labels, 'between': between, 'disagree': disagree, 'certainty': certainty}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see review.mjs)."""
    same = [s for s, c in project['secondLabels'].items() if c == project['seeds'][s]]  # both labelers agree
    request = {'reader': READER, 'projectId': project['folder']['_id'], 'secondId': project['second']['_id'],
               'sameSegments': same}
    return browser_driver.run('review.mjs', stack, request, timeout=600)


def labels(stack, project, **filters) -> tuple[list[dict], int]:
    """The server's labels with these filters (every one), and the total it reports."""
    client = stack.client()
    response = client.sendRestRequest('GET', f'{project["base"]}/labels', parameters={'limit': 0, **filters},
                                      jsonResp=False)
    return response.json(), int(response.headers['Girder-Total-Count'])


def test_grid_shows_labels_with_thumbnails(observed, project):
    page = observed['open']
    assert page['hash'] == f'#histomics_label/project/{project["folder"]["_id"]}/review'
    assert page['title'] == 'Review: Review project'
    total = len(project['seeds']) + len(project['between']) + len(project['secondLabels'])
    assert page['total'] == str(total)
    assert len(page['cards']) == min(total, 24)
    # newest change first: the second labeler's labels lead
    assert {card['labeler'] for card in page['cards'][:len(project['secondLabels'])]} == {SECOND['login']}
    assert all(card['predicted'] in ('tumor', 'stroma') for card in page['cards'])
    # "Model: ■ stroma 89 %" on one line (the figures' column layout once stacked them 18 px apart, on 4 lines)
    assert all(card['modelSpread'] <= 2 for card in page['cards']), [card['modelSpread'] for card in page['cards']]
    assert all(card['state'] == 'Not reviewed' for card in page['cards'])
    assert all(card['flagged'] == (card['predicted'] != card['category']) for card in page['cards'])
    assert page['images'] and all(image['naturalWidth'] == 128 for image in page['images'])
    assert all('api/v1/item/' in image['src'] and 'tiles/region' in image['src'] for image in page['images'])
    assert page['actions'] == len(page['cards'])
    assert not observed['consoleErrors'].get('login') and not observed['consoleErrors'].get('open')


def test_thumbnails_outline_their_segment_and_open_it_on_the_slide(observed, stack, project):
    base = f'histomics_label/project/{project["folder"]["_id"]}'
    listed = {(label['item'], label['segment']): label
              for label in stack.client().get(f'{base}/labels', parameters={'limit': 0})}
    for card in observed['outlines']:
        label = listed[(card['item'], card['segment'])]
        x0, y0, x1, y1 = label['thumbnailRegion']
        assert card['viewBox'] == f'0 0 {x1 - x0} {y1 - y0}'
        # the card draws the server's outline, moved into the thumbnail's frame
        drawn = [float(v) for point in card['points'].split() for v in point.split(',')]
        assert drawn == pytest.approx([v for x, y in label['outline'] for v in (x - x0, y - y0)], abs=0.051)
    jump = observed['jump']
    assert jump['hash'] == f'#{base}/paint/{jump["item"]}?segment={jump["segment"]}&from=review'
    rx0, ry0, rx1, ry1 = listed[(jump['item'], jump['segment'])]['region']
    left, top, right, bottom = jump['view']
    assert left <= rx0 and rx1 <= right and top <= ry0 and ry1 <= bottom  # the segment in view
    assert f'segment {jump["segment"]}' in jump['legend']
    assert jump['backHash'] == f'#{base}/review'
    assert not observed['consoleErrors'].get('jump')


@pytest.mark.parametrize('order', ['least', 'most'])
def test_sorts_by_certainty(observed, project, order):
    page = observed['certainty'][order]
    server = project['certainty'][order]
    assert page['total'] == observed['open']['total']
    assert [card['labelId'] for card in page['cards']] == [label['_id'] for label in server]
    shown = [float(card['certainty']) for card in page['cards']]
    assert shown == [label['certainty'] for label in server]
    assert shown == sorted(shown, reverse=order == 'most') and 0 < min(shown) and max(shown) <= 1
    assert [card['certaintyText'] for card in page['cards']] == [f'{int(c * 100 + 0.5)} %' for c in shown]
    assert not observed['consoleErrors'].get('certainty')


def test_filters_by_disagreement_and_labeler(observed, project):
    disagree = observed['disagree']
    assert disagree['total'] == project['disagree']['total'] != '0'
    assert [card['labelId'] for card in disagree['cards']] == project['disagree']['ids']
    assert all(card['flagged'] and card['predicted'] != card['category'] for card in disagree['cards'])
    by_second = observed['labeler']
    assert by_second['total'] == str(len(project['secondLabels']))
    assert {card['labeler'] for card in by_second['cards']} == {SECOND['login']}
    assert {card['segment']: card['category'] for card in by_second['cards']} == project['secondLabels']
    assert not observed['consoleErrors'].get('disagree') and not observed['consoleErrors'].get('labeler')


def test_groups_by_category(observed, project):
    groups = observed['grouped']
    assert [group['name'] for group in groups] == sorted({c for c in project['secondLabels'].values()})
    for group in groups:
        assert group['categories'] and set(group['categories']) == {group['name']}
        assert group['count'] == f'({len(group["categories"])})'
    assert sum(len(group['categories']) for group in groups) == len(project['secondLabels'])


def test_approve_override_relabel(observed, stack, project):
    actions = observed['actions']
    stored = {label['_id']: label for label in labels(stack, project)[0]}
    approved = stored[actions['approve']['labelId']]
    assert approved['review']['status'] == 'approved' and approved['review']['category'] == approved['category']
    assert approved['review']['reviewerLogin'] == project['me']['login']
    assert actions['approve']['state'] == f'Approved by {project["me"]["login"]}'
    override = actions['override']
    overridden = stored[override['labelId']]
    assert overridden['review']['status'] == 'overridden'
    assert overridden['review']['category'] == override['category'] != overridden['category']
    assert overridden['category'] == project['secondLabels'][overridden['segment']]  # the original is kept
    assert override['state'] == f'Overridden → {override["category"]} by {project["me"]["login"]}'
    # the card leads with the reviewer's category, in its colour, and still shows the labeler's
    colour = next(c['color'] for c in CATEGORIES if c['name'] == override['category'])
    assert (override['lead'], override['leadColour']) == (override['category'], _rgb(colour))
    assert override['original'] == overridden['category']
    relabel = actions['relabel']
    mine = [label for label in stored.values() if label['segment'] == relabel['segment']
            and label['labeler'] == project['me']['_id']]
    assert len(mine) == 1 and mine[0]['category'] == relabel['category'] and mine[0]['view'] == 'review'
    assert relabel['category'] != project['secondLabels'][relabel['segment']]
    assert 'now labeled' in relabel['message']
    # the page was filtered to another labeler: the new label is not one of its cards, and no card moved
    assert relabel['orderAfter'] == relabel['orderBefore']
    # unfiltered, newest first: the new label's card comes right after the card relabeled, and no card moved
    # (my label of that segment changed category: shown where it was, or added right after the card relabeled)
    in_place = actions['inPlace']
    after = [card['labelId'] for card in in_place['cardsAfter']]
    added = [label_id for label_id in after if label_id not in in_place['orderBefore']]
    assert [label_id for label_id in after if label_id not in added] == in_place['orderBefore']
    [mine] = [card for card in in_place['cardsAfter']
              if (card['segment'], card['labeler']) == (in_place['segment'], project['me']['login'])]
    assert mine['category'] == in_place['category'] != project['seeds'][in_place['segment']]
    assert added in ([], [mine['labelId']])
    if added:
        assert after[after.index(mine['labelId']) - 1] == in_place['labelId']
    reviewed = [label for label in stored.values() if label['review']]
    assert len(reviewed) == 2
    assert not observed['consoleErrors'].get('actions')


def test_agreement_table_matches_server(observed, stack, project):
    server = stack.client().get(f'{project["base"]}/agreement')
    table = observed['agreement']
    assert len(server['labelers']) == 1
    pair = server['labelers'][0]
    assert sorted(pair['logins']) == sorted([project['me']['login'], SECOND['login']])
    assert table['pairs'] == [{'logins': ','.join(pair['logins']), 'count': str(pair['count']),
                               'agreement': f'{pair["agreement"] * 100:.1f} %', 'kappa': f'{pair["kappa"]:.3f}'}]
    assert pair['count'] == len(project['secondLabels'])
    assert [row['login'] for row in table['vsModel']] == [row['login'] for row in server['labelersVsModel']]
    assert [row['kappa'] for row in table['vsModel']] == [
        'n/a' if row['kappa'] is None else f'{row["kappa"]:.3f}' for row in server['labelersVsModel']]
    overall = server['labelsVsModel']
    assert table['overall']['count'] == str(overall['count'])
    assert table['overall']['kappa'] == f'{overall["kappa"]:.3f}'
    assert table['overall']['matrix'] == [[str(v) for v in row] for row in overall['confusion']]
    assert not observed['consoleErrors'].get('agreement')


def drawn_series(points: list[dict], rounds: list[dict], field: str, x: str) -> None:
    """A series of the learning curve as drawn is the rounds' ``field`` (value, interval, labels) at their ``x``."""
    assert [point['round'] for point in points] == [str(r['number']) for r in rounds]
    assert [float(point['x']) for point in points] == pytest.approx([r[x] for r in rounds])
    assert [int(point['labels']) for point in points] == [r[field]['labels'] for r in rounds]
    for key, name in (('accuracy', 'balancedAccuracy'), ('low', 'low'), ('high', 'high')):
        assert [float(point[key]) for point in points] == pytest.approx([r[field][name] for r in rounds]), key


def test_learning_curve_has_a_point_per_round(observed, stack, project):
    rounds = stack.client().get(f'{project["base"]}/rounds')['rounds']
    curve = observed['open']['curve']
    assert len(rounds) == 3
    assert curve['axis'] == curve['pressed'] == 'labels'
    # each circle is the round's cross-validated balanced accuracy, with its 95 % interval as a bar
    assert all(r['accuracy'] is not None for r in rounds), rounds
    drawn_series(curve['points'], rounds, 'accuracy', 'labelsUsed')
    assert curve['intervals'] == [str(r['number']) for r in rounds]
    # each diamond is a round's accuracy on the audit sample: the rounds after audit cards were labeled, no other
    audited = [r for r in rounds if r['auditAccuracy'] is not None]
    assert [r['number'] for r in audited] == [2, 3], [r['auditAccuracy'] for r in rounds]
    drawn_series(curve['audit'], audited, 'auditAccuracy', 'labelsUsed')
    assert curve['auditIntervals'] == [str(r['number']) for r in audited]
    assert curve['legend'] == ['cross-validated (all labels)', 'audit sample (random segments)']
    assert curve['axisLabels'] == ['Labels used', 'Balanced accuracy']
    assert curve['note'] == '3 rounds cross-validated, 2 with audit labels; the bars are 95 % intervals.'


def test_learning_curve_against_labeling_minutes(observed, stack, project):
    rounds = stack.client().get(f'{project["base"]}/rounds')['rounds']
    curve = observed['minutes']
    assert curve['axis'] == curve['pressed'] == 'minutes'
    # every round of this server records the labelers' active minutes; the first one, before any gap between two
    # writes, none
    assert all(isinstance(r['labelingMinutes'], (int, float)) for r in rounds), rounds
    assert rounds[0]['labelingMinutes'] == 0 < rounds[1]['labelingMinutes'] <= rounds[2]['labelingMinutes']
    drawn_series(curve['points'], rounds, 'accuracy', 'labelingMinutes')
    drawn_series(curve['audit'], [r for r in rounds if r['auditAccuracy']], 'auditAccuracy', 'labelingMinutes')
    assert curve['axisLabels'] == ['Labeling minutes (active)', 'Balanced accuracy']
    assert curve['note'] == '3 rounds cross-validated, 2 with audit labels; the bars are 95 % intervals.'


def test_reliability_figure_is_the_servers_calibration(observed, stack, project):
    latest = stack.client().get(f'{project["base"]}/rounds')['rounds'][-1]
    calibration = latest['calibration']
    assert calibration is not None and calibration['labels'] == latest['labelsUsed'], latest
    figure = observed['open']['reliability']
    assert figure['round'] == str(latest['number']) and figure['diagonal']
    counts = [b['count'] for kind in ('raw', 'calibrated') for b in calibration[kind]['bins']]
    for kind in ('raw', 'calibrated'):
        bins = calibration[kind]['bins']
        drawn = figure[kind]
        assert [int(b['count']) for b in drawn] == [b['count'] for b in bins]
        assert sum(b['count'] for b in bins) == calibration['labels']
        for key in ('confidence', 'accuracy', 'low', 'high'):
            assert [float(b[key]) for b in drawn] == pytest.approx([b[key] for b in bins]), (kind, key)
        # a point stands where its bin is: x its mean shown probability, y how often it was right, on the axes
        # whose corners the diagonal joins; its area is in proportion to its labels (the smallest kept visible)
        (x0, y0), (x1, y1) = figure['diagonalEnds']
        for point, bin_ in zip(drawn, bins, strict=True):
            assert point['cx'] == pytest.approx(x0 + bin_['confidence'] * (x1 - x0), abs=0.06)
            assert point['cy'] == pytest.approx(y0 + bin_['accuracy'] * (y1 - y0), abs=0.06)
            assert point['r'] == pytest.approx(max(2.5, 11 * (bin_['count'] / max(counts)) ** 0.5), abs=0.06)
    assert float(figure['eceRaw']) == pytest.approx(calibration['raw']['ece'])
    assert float(figure['eceCalibrated']) == pytest.approx(calibration['calibrated']['ece'])
    assert (f'{whole(calibration["raw"]["ece"])} % before scaling → {whole(calibration["calibrated"]["ece"])} % '
            'as shown') in figure['eceText']
    assert f'{calibration["labels"]} labels' in figure['eceText']
    assert float(figure['temperature']) == pytest.approx(calibration['temperature'])
    assert f'a temperature of {calibration["temperature"]:.2f}' in figure['temperatureText']


def test_failed_review_is_shown(observed, stack, project):
    failed = observed['failedReview']
    assert 'Could not approve the label' in failed['message']
    assert 'PUT ' in failed['message'] and 'failed (400): Injected failure' in failed['message']
    assert failed['state'] == 'Not reviewed'
    stored = {label['_id']: label for label in labels(stack, project)[0]}
    assert stored[failed['labelId']]['review'] is None
    assert any('400' in error for error in observed['consoleErrors'].get('failedReview', []))


def test_reader_sees_no_actions(observed):
    reader = observed['reader']
    assert reader['cards'] > 0 and reader['actions'] == 0
    assert 'Read only' in reader['access']
    assert not observed['consoleErrors'].get('reader')
