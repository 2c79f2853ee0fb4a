"""The guided view's stats bar follows rounds trained outside it, in Chromium on the live stack: a project on the
real H&E sample with seed labels and a first round (all through the REST API); while the view is open a second
round is trained (as automatic retraining or another labeler's Retrain would). Girder's notification stream tells
the open view at once: the stats bar names the round and says what it trained on, as the server's rounds say, while
the row of cards stays; once the labeler finishes the row, the next row comes from that round."""

import pytest
from helpers.live_stack import seeded_project
from test_guided_labeling import accuracy_words, whole

pytestmark = [pytest.mark.live, pytest.mark.browser]

CATEGORIES = [{'name': 'tumor', 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'background', 'color': '#888888', 'excluded': True}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0,
          'batchSize': 4, 'auditEvery': 0}
SEED_NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A segmented project with seed labels and a first round, through the REST API."""
    return seeded_project(stack.client(), cmu_svs, 'Rounds project', CONFIG, SEED_NAMES)


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see guided_rounds.mjs)."""
    return browser_driver.run('guided_rounds.mjs', stack, {'projectId': project['folder']['_id']}, timeout=600)


def test_the_next_row_names_the_round_trained_meanwhile(observed, project, stack):
    first = project['first']['number']
    assert observed['before']['round'] == str(first)
    assert observed['trained'] == first + 1
    rounds = stack.client().get(f'{project["base"]}/rounds')['rounds']
    latest = rounds[-1]
    assert latest['number'] == first + 1  # the labels accepted in the view started no round (retrainEvery 0)
    meanwhile = observed['meanwhile']
    assert meanwhile['round'] == str(latest['number']) and meanwhile['row'] == observed['before']['row']
    changed = latest['predictionsChanged']['changed']
    assert meanwhile['status'] == (f'Round {latest["number"]} trained on {latest["labelsUsed"]} labels; '
                                   f'{changed:,} prediction{"" if changed == 1 else "s"} changed.')
    assert meanwhile['accuracy'] == accuracy_words(latest['accuracy'])
    after = observed['after']
    assert after['round'] == str(latest['number'])
    assert after['accuracy'] == accuracy_words(latest['accuracy'])
    share = latest['predictionsChanged']['share']
    assert after['changed'] == f'{"< 1" if 0 < share < 0.01 else whole(share)} % of predictions'
    assert len(after['row']) == CONFIG['batchSize'] and not set(after['row']) & set(observed['before']['row'])


def test_no_console_errors(observed):
    assert not any(observed['consoleErrors'].values()), observed['consoleErrors']
