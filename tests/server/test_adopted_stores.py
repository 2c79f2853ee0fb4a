"""A store made outside the project (the DSA job panel's SuperpixelClassification uploads one) adopted as a slide's
segments and features through ``POST .../slide/{item}/store``: the store made here from the same slide file with the
project's settings (``embedded_cmu``, what the CLI makes) becomes the slide's, byte for byte; a store of another
slide, of other settings, or no store at all is refused and leaves the slide as it was; on a labeled slide a store
with other segments waits for the carry-over report instead of moving the labels."""

import json
import shutil

import h5py
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _upload(path, name, admin) -> dict:
    """``path`` uploaded to the admin's Public folder as ``name``; the file document."""
    from girder.models.folder import Folder
    from girder.models.upload import Upload

    public = Folder().createFolder(admin, 'Public', parentType='user', reuseExisting=True, public=True)
    with open(path, 'rb') as handle:
        return Upload().uploadFromFile(handle, path.stat().st_size, name, parentType='folder', parent=public,
                                       user=admin)


def _adopt(server, project, file, user):
    return server.request(_path(project, f'/slide/{project["item"]["_id"]}/store'), method='POST', user=user,
                          params={'fileId': str(file['_id'])})


def test_a_store_of_the_slide_made_elsewhere_becomes_the_slides(server, bare_project, admin, user, embedded_cmu):
    from girder.models.item import Item

    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects import folders

    file = _upload(embedded_cmu, 'cmu.h5', admin)
    assertStatus(_adopt(server, bare_project, file, user), 403)  # READ on the project is not enough
    adopted = _adopt(server, bare_project, file, admin)
    assertStatusOk(adopted)
    assert adopted.json['status'] == 'applied' and adopted.json['training'] is None
    store = folders.store_path(bare_project['folder'], bare_project['item'])
    assert store.read_bytes() == embedded_cmu.read_bytes()
    slides = server.request(_path(bare_project, '/slides'), user=admin).json
    assert slides[0]['segments'] == adopted.json['segments'] > 100
    item = Item().load(bare_project['item']['_id'], force=True)
    assert item['meta'][segment_jobs.SEGMENT_IMAGE_KEY] == adopted.json['segmentImage']
    # current: "Make segments" leaves it alone
    again = server.request(_path(bare_project, '/segments'), method='POST', user=admin).json
    assert [s['status'] for s in again] == ['current']
    assert server.request(_path(bare_project, '/suggestions'), user=admin, params={'limit': 4}).json


def test_what_cannot_be_the_slides_store_is_refused_and_changes_nothing(server, bare_project, admin, embedded_cmu,
                                                                        tmp_path):
    from histomics_label.projects import folders

    other_slide = tmp_path / 'other-slide.h5'
    shutil.copyfile(embedded_cmu, other_slide)
    with h5py.File(other_slide, 'r+') as h5:
        params = json.loads(h5.attrs['segment_params'])
        params['slide']['size'] += 1
        h5.attrs['segment_params'] = json.dumps(params)
    other_settings = tmp_path / 'other-settings.h5'
    shutil.copyfile(embedded_cmu, other_settings)
    with h5py.File(other_settings, 'r+') as h5:
        params = json.loads(h5.attrs['segment_params'])
        params['radius'] = 12
        h5.attrs['segment_params'] = json.dumps(params)
    not_a_store = tmp_path / 'notes.h5'
    not_a_store.write_text('not HDF5')
    for path, reason in ((other_slide, 'made from another slide'), (other_settings, 'radius 12'),
                         (not_a_store, 'is not a slide store')):
        answer = _adopt(server, bare_project, _upload(path, path.name, admin), admin)
        assertStatus(answer, 400)
        assert reason in answer.json['message'], answer.json
    store = folders.store_path(bare_project['folder'], bare_project['item'])
    assert not store.exists() and not any(store.parent.glob('.adopting-*'))


def test_on_a_labeled_slide_other_segments_wait_for_the_carry_over_report(server, project, admin, embedded_cmu,
                                                                         tmp_path):
    from histomics_label.projects import folders

    item = str(project['item']['_id'])
    labels = {'labels': [{'item': item, 'segment': 1, 'category': 'tumor'},
                         {'item': item, 'segment': 2, 'category': 'stroma'}]}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=admin, type='application/json',
                                  body=json.dumps(labels)))
    store = folders.store_path(project['folder'], project['item'])
    before = store.read_bytes()

    same = _adopt(server, project, _upload(embedded_cmu, 'same.h5', admin), admin)  # the very same segments
    assertStatusOk(same)
    assert same.json['status'] == 'applied'

    shifted = tmp_path / 'shifted.h5'  # same settings, segments 1 and 2 swapped on the raster
    shutil.copyfile(embedded_cmu, shifted)
    with h5py.File(shifted, 'r+') as h5:
        raster = h5['segments/label_raster'][...]
        swapped = raster.copy()
        swapped[raster == 1], swapped[raster == 2] = 2, 1
        h5['segments/label_raster'][...] = swapped
    waiting = _adopt(server, project, _upload(shifted, 'shifted.h5', admin), admin)
    assertStatusOk(waiting)
    assert waiting.json['status'] == 'waiting' and waiting.json['moved'] == 2, waiting.json
    assert store.read_bytes() == before  # the labeled slide keeps its segments until the admin applies the report
    reports = server.request(_path(project, '/resegmentation'), user=admin).json
    fates = {label['segment']: label for label in reports[0]['labels']}
    assert fates[1]['target'] == 2 and fates[2]['target'] == 1, fates
