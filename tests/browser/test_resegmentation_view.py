"""The project page's carry-over report, in Chromium on the live stack: a project on the real H&E sample is
segmented and labeled through the REST API, then segmented again with a slightly wider radius, so the new segments
wait to be applied. The admin's page must show every label's fate exactly as the brute-force oracle computes it from
the two segment rasters (``helpers/carry_over_oracle.py``), ask before applying, and after "Apply, keep unmatched
labels detached" the server must hold each moved label on the oracle's new segment, list the others as stale (the
page says how many, and the slides table the new segments) and delete them from the page's button. A reader is
shown no report."""

import re

import pytest
from helpers.carry_over_oracle import fates, store_raster
from helpers.live_stack import add_user, make_segments, slide_project, store_path

from histomics_label.core.io.store import SlideStore

pytestmark = [pytest.mark.live, pytest.mark.browser]

CONFIG = {'categories': [{'name': 'tumor'}, {'name': 'stroma'}], 'magnification': 5, 'radius': 10, 'patchSize': 48}
WIDER = 11
"""The new radius: near enough to the old that many labels move (at 14 almost none did), far enough that others
cannot."""
EVERY = 11
"""One labeled segment in this many: dozens of labels, spread over the slide."""
READER = {'login': 'carryreader', 'password': 'password1'}


def labels_of(client, base: str) -> dict[str, dict]:
    """The project's labels as the server lists them, by id."""
    return {label['_id']: label for label in client.get(f'{base}/labels', parameters={'limit': 0})}


@pytest.fixture(scope='module')
def project(stack, cmu_svs):
    """A labeled project whose slide's new segments (radius ``WIDER``) wait to be applied, and the oracle's fates."""
    client = stack.client()
    folder, item, base = slide_project(client, cmu_svs, 'Carry-over project', CONFIG)
    make_segments(client, base)
    store = store_path(client, folder, item)
    with SlideStore(store) as opened:
        segments = range(1, opened.n_segments + 1, EVERY)
    client.put(f'{base}/labels', json={'labels': [
        {'item': item['_id'], 'segment': s, 'category': 'tumor' if k % 2 else 'stroma'}
        for k, s in enumerate(segments)], 'view': 'api'})
    before = labels_of(client, base)
    client.put(base, json={'radius': WIDER})
    make_segments(client, base)
    pending = store.with_name(f'{item["_id"]}.pending.h5')
    assert pending.exists(), 'the labeled slide\'s new segments were applied without the admin'
    oracle = fates(store_raster(store), store_raster(pending))
    with SlideStore(store) as old, SlideStore(pending) as new:
        counts = {'old': old.n_segments, 'new': new.n_segments}
    expected = {label_id: oracle[label['segment']] for label_id, label in before.items()}
    tally = {fate: sum(found == fate for found, _ in expected.values()) for fate in ('moved', 'ambiguous', 'dropped')}
    assert tally['ambiguous'] + tally['dropped'], tally  # both outcomes on the page, and the moved labels train
    assert {before[i]['category'] for i, (fate, _) in expected.items() if fate == 'moved'} == {'tumor', 'stroma'}
    add_user(client, folder['_id'], READER, 0)
    return {'folder': folder, 'item': item, 'base': base, 'before': before, 'expected': expected, 'tally': tally,
            'segments': counts}


@pytest.fixture(scope='module')
def observed(stack, project, browser_driver) -> dict:
    """What the driver script saw in Chromium (see resegmentation.mjs)."""
    request = {'projectId': project['folder']['_id'], 'reader': READER}
    return browser_driver.run('resegmentation.mjs', stack, request, timeout=600)


def test_report_shows_each_labels_fate_as_the_oracle(observed, project):
    report = observed['report']
    assert report['item'] == project['item']['_id']
    assert report['title'] == f'New segments of {project["item"]["name"]} wait to be applied'
    assert report['counts'] == project['tally']
    assert sorted(row['label'] for row in report['rows']) == sorted(project['before'])
    for row in report['rows']:
        label = project['before'][row['label']]
        fate, target = project['expected'][row['label']]
        assert (row['segment'], row['category']) == (str(label['segment']), label['category'])
        assert (row['fate'], row['fateText']) == (fate, fate)
        assert row['target'] == (str(target) if fate == 'moved' else '—'), row
        # a moved label's old segment lies mostly in its new one, and that one mostly in it
        share, coverage = (int(re.fullmatch(r'(\d+) %', row[key]).group(1)) for key in ('share', 'coverage'))
        assert fate != 'moved' or (share >= 50 and coverage >= 50), row
    assert observed['actions'] == ['Apply, keep unmatched labels detached', 'Apply, delete unmatched labels',
                                   'Discard']


def test_apply_is_confirmed_and_cancel_changes_nothing(observed, project):
    unmatched = project['tally']['ambiguous'] + project['tally']['dropped']
    assert observed['question'] == (f'Apply and keep the {unmatched} ambiguous and dropped label(s) detached '
                                    '(listed below as stale labels)?')
    assert observed['afterCancel'] == {'boxes': 0, 'report': observed['report']}


def test_applied_labels_sit_on_the_oracles_segments_and_the_rest_are_stale(observed, project, stack):
    tally = project['tally']
    unmatched = tally['ambiguous'] + tally['dropped']
    applied = observed['applied']
    assert applied['kind'] == 'success' and applied['reports'] == 0
    assert applied['message'] == (f'Applied: {tally["moved"]} label(s) moved, {unmatched} kept detached, 0 deleted. '
                                  'A training round was started to predict the new segments.')
    assert applied['stale'].startswith(f'{unmatched} stale label(s) name no segment')
    # the slides table counts the slide's new segments
    assert (applied['segmentsBefore'], applied['segments']) == (f'{project["segments"]["old"]:,}',
                                                                f'{project["segments"]["new"]:,}')
    # what the server holds now: the moved labels on their new segments (same category), and nothing else
    after = labels_of(stack.client(), project['base'])
    moved = {label_id: target for label_id, (fate, target) in project['expected'].items() if fate == 'moved'}
    assert {label_id: label['segment'] for label_id, label in after.items()} == moved
    assert all(label['category'] == project['before'][label_id]['category'] for label_id, label in after.items())


def test_stale_labels_are_deleted_from_the_page(observed, project, stack):
    unmatched = project['tally']['ambiguous'] + project['tally']['dropped']
    assert observed['deleted'] == {'message': f'{unmatched} stale label(s) deleted.', 'stale': 0}
    client = stack.client()
    assert client.get(f'{project["base"]}/stale_labels') == []
    assert len(labels_of(client, project['base'])) == project['tally']['moved']


def test_reader_is_shown_no_report(observed):
    assert observed['reader'] == {'sections': 0, 'reports': 0}


def test_no_console_errors(observed):
    for phase in ('login', 'open', 'ask', 'apply', 'deleteStale', 'reader'):
        assert not observed['consoleErrors'].get(phase), (phase, observed['consoleErrors'][phase])
