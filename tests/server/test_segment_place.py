"""Where a segment lies, for the viewers: ``GET .../slide/{item}/segment/{segment}`` answers the segment's box and
outline as the slide store's raster has them, the review listing carries the same outline for each label, and
unknown slides or segments get a 400 that says what is wrong."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk
from skimage.draw import polygon2mask

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _segment(server, project, user, segment, item=None):
    item = item or project['item']['_id']
    return server.request(_path(project, f'/slide/{item}/segment/{segment}'), user=user)


def _pixels_inside(ring, store, box):
    """The analysis pixels of ``box`` whose centres the base-pixel ring encloses."""
    x0, y0, x1, y1 = box
    points = np.asarray(ring) / store.slide_info.scale
    return polygon2mask((y1 - y0, x1 - x0), np.stack([points[:, 1] - y0 - 0.5, points[:, 0] - x0 - 0.5], axis=1))


def test_a_segments_place_is_its_box_and_outline_in_the_store(server, project, user):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    with SlideStore(folders.store_path(project['folder'], project['item'])) as store:
        scale = store.slide_info.scale
        table = store.segments()
        for segment in (1, 57, store.n_segments):
            response = _segment(server, project, user, segment)
            assertStatusOk(response)
            place = response.json
            box = [int(v) for v in table.bbox[segment - 1]]
            assert place['item'] == str(project['item']['_id']) and place['segment'] == segment
            assert place['region'] == [int(round(v * scale)) for v in box]
            # the thumbnail shows the segment with half its size around it, within the slide
            x0, y0, x1, y1 = place['region']
            t0, u0, t1, u1 = place['thumbnailRegion']
            info = store.slide_info
            dx, dy = max(16, (x1 - x0) // 2), max(16, (y1 - y0) // 2)
            assert t0 == max(0, x0 - dx) and t1 == min(info.base_width, x1 + dx)
            assert u0 == max(0, y0 - dy) and u1 == min(info.base_height, y1 + dy)
            assert place['thumbnail'] == (f'item/{place["item"]}/tiles/region?left={t0}&top={u0}&right={t1}'
                                          f'&bottom={u1}&width=128&encoding=PNG')
            inside = _pixels_inside(place['outline'], store, box)
            mask = store.label_region(*box) == segment
            # the simplified outline (within half an analysis pixel) keeps nearly every pixel on its side
            assert (inside == mask).mean() > 0.97, (segment, (inside != mask).sum())
            assert inside[mask].mean() > 0.95


def test_unknown_slides_and_segments_are_refused_with_a_reason(server, project, user, admin):
    from histomics_label.projects import folders

    count = folders.segment_count(project['folder'], project['item'])
    for segment in (0, count + 1):
        response = _segment(server, project, user, segment)
        assertStatus(response, 400)
        assert f'has segments 1 to {count}, not {segment}' in response.json['message']
    response = _segment(server, project, user, 1, item='a' * 24)
    assertStatus(response, 400)
    assert 'is not a slide of this project' in response.json['message']


def test_the_review_listing_outlines_each_labeled_segment(server, project, admin):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': 'tumor'} for s in (5, 40, 90)]}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=admin, type='application/json',
                                  body=json.dumps(body)))
    listed = server.request(_path(project, '/labels'), user=admin, params={'limit': 10})
    assertStatusOk(listed)
    labels = listed.json['labels'] if isinstance(listed.json, dict) else listed.json
    assert sorted(label['segment'] for label in labels) == [5, 40, 90]
    for label in labels:
        place = _segment(server, project, admin, label['segment']).json
        assert {key: label[key] for key in ('region', 'outline', 'thumbnailRegion', 'thumbnail')} == {
            key: place[key] for key in ('region', 'outline', 'thumbnailRegion', 'thumbnail')}
