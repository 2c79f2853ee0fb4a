"""A category with the longest name allowed (100 characters) breaks no page, in Chromium on the live stack: on the
project page, guided labeling, painting and review nothing pushes the page wider than the window, every place that
shows the name ends inside the window, and where the layout cuts it short (with an ellipsis) hovering it gives the
whole name. The project is made, labeled and trained through the REST API on the real H&E sample."""

import pytest
from helpers.live_stack import seeded_project

pytestmark = [pytest.mark.live, pytest.mark.browser]

LONG = ('Invasive ductal carcinoma, high nuclear grade, with necrosis and a desmoplastic stromal reaction nearby')[:100]
CATEGORIES = [{'name': LONG, 'color': '#e6194b'}, {'name': 'stroma', 'color': '#3cb44b'},
              {'name': 'background', 'color': '#888888', 'excluded': True}]
CONFIG = {'categories': CATEGORIES, 'magnification': 5, 'radius': 10, 'patchSize': 48, 'retrainEvery': 0,
          'batchSize': 6, 'auditEvery': 0}
SEED_NAMES = {'cellular': LONG, 'stroma': 'stroma', 'lumen/fat': 'background'}
VIEWS = ('project', 'guided', 'paint', 'review')


@pytest.fixture(scope='module')
def observed(stack, cmu_svs, browser_driver) -> dict:
    """What the driver script saw in Chromium (see long_names.mjs)."""
    project = seeded_project(stack.client(), cmu_svs, 'Long names project', CONFIG, SEED_NAMES)
    request = {'projectId': project['folder']['_id'], 'itemId': project['item']['_id'], 'longName': LONG}
    return browser_driver.run('long_names.mjs', stack, request, timeout=600)


def test_the_name_is_the_longest_allowed():
    assert len(LONG) == 100


@pytest.mark.parametrize('view', VIEWS)
def test_no_page_is_pushed_wider_than_the_window(observed, view):
    assert not observed.get('failure'), observed.get('failure')
    assert observed['pages'][view]['overflow'] <= 0, observed['pages'][view]


@pytest.mark.parametrize('view', VIEWS)
def test_every_place_showing_the_name_fits_and_gives_it_whole_where_cut_short(observed, view):
    shown = observed['pages'][view]['shown']
    assert shown, f'the {view} page shows the long name nowhere'
    for element in shown:
        assert element['right'] <= observed['window'], (view, element)
        assert element['hover'] or not element['clipped'], (view, element)


def test_no_console_errors(observed):
    errors = dict(observed['consoleErrors'])
    refusals = errors.pop('refused', [])
    assert len(refusals) == 2 and all('status of 400' in error for error in refusals), refusals
    assert not any(errors.values()), errors


def test_a_name_over_the_limit_or_differing_only_in_case_is_refused_saying_why(observed):
    refused = observed['refused']
    assert '1–100 characters' in refused['tooLong']['said'] and refused['tooLong']['kept']
    assert "'STROMA' is repeated (as 'stroma')" in refused['caseOnly']['said'] and refused['caseOnly']['kept']
    assert refused['tooLong']['overflow'] <= 0 and refused['caseOnly']['overflow'] <= 0
