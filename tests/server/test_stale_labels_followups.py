"""Stale labels (a segment id beyond the slide store's segments, as left by a re-segmentation before segmentations
were versioned) never stop the project: a round leaves them out and says how many, the label listing gives them no
region while every other label keeps its segment's."""

import datetime
import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, pairs):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': int(s), 'category': c} for s, c in pairs], 'view': 'guided'}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                                  body=json.dumps(body)))


def _plant_stale(project, admin, segments):
    """Labels on ids the slide's store does not have, written to the database as an old re-segmentation left them
    (the label routes refuse such ids)."""
    from histomics_label.models.label import Label

    now = datetime.datetime.now(datetime.UTC)
    for segment in segments:
        Label().collection.insert_one({'project': project['folder']['_id'], 'item': project['item']['_id'],
                                       'segment': segment, 'labeler': admin['_id'], 'category': 'stroma',
                                       'created': now, 'updated': now, 'view': 'guided'})


def test_a_round_leaves_stale_labels_out_and_says_how_many(server, project, admin):
    from girder_jobs.models.job import Job

    from histomics_label.projects import folders

    n = folders.segment_count(project['folder'], project['item'])
    labeled = list(range(1, 30)) + [n]  # the last segment is not stale
    _label(server, project, admin, [(s, 'tumor' if s % 2 else 'stroma') for s in labeled])
    _plant_stale(project, admin, [n + 1, n + 50, 0])
    trained = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    assertStatusOk(trained)
    round_ = trained.json['round']
    assert (round_['labelsUsed'], round_['staleLabels']) == (len(labeled), 3)
    curve = server.request(_path(project, '/rounds'), user=admin)
    assert [r['staleLabels'] for r in curve.json['rounds']] == [3]
    log = ''.join(Job().load(trained.json['job'], force=True, includeLog=True)['log'])
    assert '3 labeled segments left out' in log and 'stale_labels' in log
    suggestions = server.request(_path(project, '/suggestions'), user=admin)
    assertStatusOk(suggestions)
    assert suggestions.json and all(1 <= s['segment'] <= n and s['segment'] not in labeled for s in suggestions.json)


def test_a_round_without_stale_labels_says_none(server, project, admin):
    from girder_jobs.models.job import Job

    _label(server, project, admin, [(s, 'tumor' if s % 2 else 'stroma') for s in range(1, 21)])
    trained = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    assertStatusOk(trained)
    assert trained.json['round']['staleLabels'] == 0
    assert 'left out' not in ''.join(Job().load(trained.json['job'], force=True, includeLog=True)['log'])


def test_the_label_listing_gives_a_stale_label_no_region_and_the_others_their_segment(server, project, admin):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    n = folders.segment_count(project['folder'], project['item'])
    _label(server, project, admin, [(s, 'tumor') for s in (1, 17, n)])
    _plant_stale(project, admin, [n + 3])
    listed = server.request(_path(project, '/labels'), user=admin, params={'limit': 0})
    assertStatusOk(listed)
    by_segment = {label['segment']: label for label in listed.json}
    assert sorted(by_segment) == [1, 17, n, n + 3]
    assert by_segment[n + 3]['region'] is None and by_segment[n + 3]['thumbnail'] is None
    with SlideStore(folders.store_path(project['folder'], project['item'])) as store:
        scale = store.slide_info.scale
        for segment in (1, 17, n):
            x0, y0, x1, y1 = by_segment[segment]['region']
            assert x0 < x1 and y0 < y1
            # the region, back in analysis pixels, holds the segment on the label raster
            ids = store.label_region(int(np.floor(x0 / scale)), int(np.floor(y0 / scale)),
                                     int(np.ceil(x1 / scale)), int(np.ceil(y1 / scale)))
            assert segment in ids
            # the thumbnail shows the region with its surroundings
            t0, u0, t1, u1 = by_segment[segment]['thumbnailRegion']
            assert t0 <= x0 and u0 <= y0 and x1 <= t1 and y1 <= u1
            assert by_segment[segment]['thumbnail'].startswith(f'item/{project["item"]["_id"]}/tiles/region?'
                                                               f'left={t0}&top={u0}&right={t1}&bottom={u1}')
