"""The paint route's default brush: a radius-0 dab labels the segment under the pointer, a radius-0 line those it
passes through (pointers report integer base pixels, which at the analysis scale fall on pixel corners)."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _paint(server, project, user, body):
    response = server.request(f'/histomics_label/project/{project["folder"]["_id"]}/labels/paint', method='POST',
                              user=user, type='application/json',
                              body=json.dumps({'item': str(project['item']['_id']), 'category': 'tumor', **body}))
    assertStatusOk(response)
    return response.json


def test_a_default_dab_labels_the_segment_under_the_pointer(server, project, admin):
    import h5py

    from histomics_label.projects import folders

    with h5py.File(folders.store_path(project['folder'], project['item']), 'r', locking=False) as h5:  # as the server
        raster = h5['segments/label_raster'][()]
        scale = json.loads(h5.attrs['slide_info'])['scale']
    rng = np.random.default_rng(2)
    rows, cols = np.nonzero(raster)
    picks = rng.choice(len(rows), 5, replace=False)
    for row, col in zip(rows[picks], cols[picks], strict=True):
        x, y = int(col * scale), int(row * scale)  # the corner of the pixel: a tie the rule gives to this pixel
        painted = _paint(server, project, admin, {'points': [[x, y]]})
        assert painted['segments'] == [int(raster[row, col])] and painted['labeled'] == 1
    start, end = (int(cols[picks[0]] * scale), int(rows[picks[0]] * scale)), (int(cols[picks[1]] * scale),
                                                                              int(rows[picks[1]] * scale))
    line = _paint(server, project, admin, {'points': [start, end]})['segments']
    t = np.linspace(0, 1, 20001)[:, None]
    samples = (np.array(start) + t * (np.array(end) - np.array(start))) / scale
    assert set(line) == {int(raster[int(y), int(x)]) for x, y in samples} - {0}
