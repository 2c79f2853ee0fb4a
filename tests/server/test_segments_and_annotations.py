"""Segment generation as jobs on a real slide, and labels and predictions published as pixelmap annotations."""

import json

import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def test_segment_jobs_make_segments_features_and_the_segment_image(server, bare_project, admin, user):
    from girder.models.item import Item
    from girder_jobs.models.job import Job

    from histomics_label.jobs import segments as segment_jobs

    project = bare_project
    assert server.request(_path(project, '/slides'), user=admin).json[0]['segments'] is None
    assertStatus(server.request(_path(project, '/segments'), method='POST', user=user), 403)
    started = server.request(_path(project, '/segments'), method='POST', user=admin)
    assertStatusOk(started)
    assert [s['status'] for s in started.json] == ['started']
    segment_jobs.wait_for_segment_jobs()
    job = Job().load(started.json[0]['job'], force=True, includeLog=True)
    assert job['status'] == 3, job['log']
    assert job['progress']['current'] == 1000 and 'segments with features' in job['log'][-1]
    count = server.request(_path(project, '/slides'), user=admin).json[0]['segments']
    assert count > 100
    item = Item().load(project['item']['_id'], force=True)
    image = Item().load(item['meta'][segment_jobs.SEGMENT_IMAGE_KEY], force=True)
    assert image['largeImage'] and image['name'] == f'{item["_id"]}.segments.tiff'
    again = server.request(_path(project, '/segments'), method='POST', user=admin)
    assert [s['status'] for s in again.json] == ['current']


def test_a_failing_segment_job_says_why(server, bare_project, admin):
    from girder_jobs.models.job import Job

    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects import folders

    folders.save_config(bare_project['folder'], {'radius': 5000})
    started = server.request(_path(bare_project, '/segments'), method='POST', user=admin).json
    segment_jobs.wait_for_segment_jobs()
    job = Job().load(started[0]['job'], force=True, includeLog=True)
    assert job['status'] == 4 and 'superpixel' in job['log'][-1]
    assert not folders.store_path(bare_project['folder'], bare_project['item']).exists()


def test_labels_and_predictions_become_pixelmap_annotations(server, project, admin, embedded_cmu, cmu_svs):
    from histomics_label.devtools.cli_demo import seed_labels
    from histomics_label.jobs import segments as segment_jobs

    segment_jobs.publish_segment_image(project['folder'], project['item'])
    names = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
    seeds = seed_labels(str(embedded_cmu), str(cmu_svs), 5)['labels']
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': int(s), 'category': names[c]} for s, c in seeds.items()]}
    server.request(_path(project, '/labels'), method='PUT', user=admin, type='application/json',
                   body=json.dumps(body))
    published = server.request(_path(project, '/annotations'), method='POST', user=admin)
    assertStatusOk(published)
    assert [p['kind'] for p in published.json] == ['labels']  # no round yet: no predictions
    server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    from histomics_label.projects.publishing import wait_for_publishing

    wait_for_publishing(project['folder']['_id'])  # rounds publish in the background
    listed = server.request('/annotation', user=admin, params={'itemId': item})
    assertStatusOk(listed)
    by_name = {a['annotation']['name']: a for a in listed.json}
    assert set(by_name) == {'Histomics Label labels', 'Histomics Label predictions'}  # updated, not duplicated
    labels = server.request(f'/annotation/{by_name["Histomics Label labels"]["_id"]}', user=admin).json
    element = labels['annotation']['elements'][0]
    assert element['type'] == 'pixelmap'
    assert [c['label'] for c in element['categories']] == ['unlabeled', 'tumor', 'stroma', 'background']
    for segment, category in seeds.items():
        assert element['categories'][element['values'][int(segment)]]['label'] == names[category]
    assert sum(v > 0 for v in element['values']) == len(seeds)
    predictions = server.request(f'/annotation/{by_name["Histomics Label predictions"]["_id"]}', user=admin).json
    values = predictions['annotation']['elements'][0]['values']
    categories = [c['label'] for c in predictions['annotation']['elements'][0]['categories']]
    assert {categories[v] for v in values[1:]} <= {'tumor', 'stroma'}  # excluded 'background' is never predicted
