"""Segmentations are versioned: re-segmenting a labeled slide never moves a label silently, the carry-over report
is what the two segmentations say, applying it puts each moved label on the new segment over its old pixels;
stale labels are listed and deleted; the slide is its Girder file; segment images are named by the slide's id."""

import fcntl
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, pairs):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': int(s), 'category': c} for s, c in pairs], 'view': 'guided'}
    response = server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                              body=json.dumps(body))
    assertStatusOk(response)
    return response.json


def _configure(server, project, admin, **changes):
    assertStatusOk(server.request(_path(project), method='PUT', user=admin, type='application/json',
                                  body=json.dumps(changes)))


def _make_segments(server, project, admin, **params):
    from girder_jobs.models.job import Job

    from histomics_label.jobs import segments as segment_jobs

    started = server.request(_path(project, '/segments'), method='POST', user=admin, params=params)
    assertStatusOk(started)
    segment_jobs.wait_for_segment_jobs()
    jobs = [Job().load(entry['job'], force=True, includeLog=True) for entry in started.json if 'job' in entry]
    for job in jobs:
        assert job['status'] == 3, job['log']
    return started.json, [''.join(job['log']) for job in jobs]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _labels(project):
    from histomics_label.models.label import Label

    return {doc['_id']: doc for doc in Label().find({'project': project['folder']['_id']})}


def test_a_labeled_slide_segmented_again_keeps_its_labels_until_the_report_is_applied(server, project, admin,
                                                                                       user):
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from helpers.carry_over_oracle import fates, store_raster

    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import rounds
    from histomics_label.models.effective_labels import effective_labels
    from histomics_label.models.label import Label
    from histomics_label.projects import folders, resegmentation

    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    store = folders.store_path(project['folder'], project['item'])
    with SlideStore(store) as old:
        n_old = old.n_segments
    labeled = list(range(1, n_old + 1, 4))
    _label(server, project, admin, [(s, 'tumor' if s % 3 else 'stroma') for s in labeled])
    _label(server, project, user, [(s, 'background') for s in labeled[::5]])
    reviewed = next(iter(_labels(project).values()))
    Label().review(project['folder'], admin, reviewed['_id'], 'stroma')
    before, digest = _labels(project), _digest(store)
    kept_before = effective_labels(project['folder']['_id'])  # what suggestion requests keep from now on

    _configure(server, project, admin, radius=14)
    started, logs = _make_segments(server, project, admin)
    assert [s['status'] for s in started] == ['started'] and 'waiting to be applied' in logs[0]
    assert _digest(store) == digest and _labels(project) == before  # nothing moved, nothing rewritten
    pending = resegmentation.pending_path(project['folder'], project['item'])
    again, _ = _make_segments(server, project, admin)
    assert [s['status'] for s in again] == ['waiting']

    assertStatus(server.request(_path(project, '/resegmentation'), user=user), 403)
    reports = server.request(_path(project, '/resegmentation'), user=admin)
    assertStatusOk(reports)
    [report] = reports.json
    expected = fates(store_raster(store), store_raster(pending))
    with SlideStore(pending) as new:
        assert report['segments'] == {'old': n_old, 'new': new.n_segments}
    assert len(report['labels']) == len(before)
    for entry in report['labels']:
        assert (entry['fate'], entry['target']) == expected[entry['segment']], entry
    counts = report['counts']
    assert counts['moved'] > 0 and counts['ambiguous'] > 0 and sum(counts.values()) == len(before)

    applied = server.request(_path(project, f'/slide/{project["item"]["_id"]}/resegmentation'), method='POST',
                             user=admin, params={'unmatched': 'keep'})
    assertStatusOk(applied)
    assert (applied.json['moved'], applied.json['detached']) == (counts['moved'], len(before) - counts['moved'])
    assert not pending.exists()
    # the labels train: a round was started to predict the new segments, and it did
    assert applied.json['training']['status'] in ('started', 'queued'), applied.json
    rounds.wait_for_rounds(project['folder']['_id'], 600)
    with SlideStore(store) as current:
        assert current.n_segments == report['segments']['new']
        latest = current.latest_round()
        assert latest is not None and latest.probabilities.shape[0] == current.n_segments
    after = _labels(project)
    fate_of = {entry['label']: entry for entry in report['labels']}
    for label_id, old in before.items():
        entry = fate_of[str(label_id)]
        if entry['fate'] != 'moved':
            assert label_id not in after
            continue
        new = after[label_id]
        assert new['segment'] == expected[old['segment']][1]  # the new segment over most of its old pixels
        for key in ('labeler', 'category', 'created', 'updated', 'view', 'review'):
            assert new.get(key) == old.get(key)
    assert effective_labels(project['folder']['_id']) == Label().effective(project['folder']['_id']) != kept_before

    stale = server.request(_path(project, '/stale_labels'), user=user)
    assertStatusOk(stale)
    assert sorted(s['_id'] for s in stale.json) == sorted(str(i) for i in before if i not in after)
    by_id = {str(i): doc for i, doc in before.items()}
    assert all(s['detached'] and s['segment'] == by_id[s['_id']]['segment'] for s in stale.json)
    assertStatus(server.request(_path(project, '/stale_labels'), method='DELETE', user=user), 403)
    deleted = server.request(_path(project, '/stale_labels'), method='DELETE', user=admin)
    assertStatusOk(deleted)
    assert deleted.json['deleted'] == len(stale.json)
    assert server.request(_path(project, '/stale_labels'), user=admin).json == []
    assert _labels(project) == after


@pytest.fixture(scope='module')
def wider_segments(cmu_svs, tmp_path_factory):
    """A store of the H&E sample with the project's settings but radius 14: what a job makes after that change."""
    from histomics_label.core.pipeline import PipelineConfig, run_pipeline

    store = tmp_path_factory.mktemp('wider') / 'cmu.h5'
    run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(store), magnification=5, radius=14, patch_size=48,
                                workers=1, tile_size=256))
    return store


def test_unmatched_labels_are_deleted_only_when_the_admin_says_so_and_undo_follows_the_moves(
        server, project, admin, wider_segments):
    from histomics_label.core.segments.carry_over import overlap
    from histomics_label.jobs import rounds
    from histomics_label.projects import folders, resegmentation

    store = folders.store_path(project['folder'], project['item'])
    pending = resegmentation.pending_path(project['folder'], project['item'])
    shutil.copyfile(wider_segments, pending)
    table = overlap(store, pending)
    fates = {k: table.fate(k) for k in range(1, len(table.old_area) + 1)}
    moving = [k for k, fate in fates.items() if fate.fate == 'moved'][:10]
    unmatched = [k for k, fate in fates.items() if fate.fate != 'moved'][:4]
    first = _label(server, project, admin, [(k, 'tumor') for k in moving[:6]])
    mixed = _label(server, project, admin, [(k, 'tumor') for k in moving[6:] + unmatched])
    relabel = _label(server, project, admin, [(moving[0], 'stroma')])
    before = _labels(project)
    resegmentation.prepare(project['folder'], project['item'])
    report = server.request(_path(project, '/resegmentation'), user=admin).json[0]
    assert report['counts'] == {'moved': 10, 'ambiguous': sum(fates[k].fate == 'ambiguous' for k in unmatched),
                                'dropped': sum(fates[k].fate == 'dropped' for k in unmatched)}
    route = _path(project, f'/slide/{project["item"]["_id"]}/resegmentation')
    assertStatus(server.request(route, method='POST', user=admin), 400)  # the choice is not optional
    with open(store.with_name(f'{project["item"]["_id"]}.apply.lock'), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another server process applying it now
        busy = server.request(route, method='POST', user=admin, params={'unmatched': 'delete'})
        fcntl.flock(lock, fcntl.LOCK_UN)
    assertStatus(busy, 400)
    assert 'being applied' in busy.json['message'] and pending.exists() and len(_labels(project)) == len(before)
    applied = server.request(route, method='POST', user=admin, params={'unmatched': 'delete'})
    assertStatusOk(applied)
    assert (applied.json['moved'], applied.json['deleted']) == (10, 4)
    assert {str(i) for i in _labels(project)} == {str(i) for i, doc in before.items() if doc['segment'] in moving}
    assert server.request(_path(project, '/stale_labels'), user=admin).json == []
    assertStatus(server.request(route, method='POST', user=admin, params={'unmatched': 'keep'}), 400)

    def undo(batch):
        return server.request(_path(project, '/labels/undo'), method='POST', user=admin, params={'batch': batch})

    assertStatusOk(undo(relabel['batch']))  # back to tumor, on the new segment
    relabeled = next(i for i, doc in before.items() if doc['segment'] == moving[0])
    assert (_labels(project)[relabeled]['segment'], _labels(project)[relabeled]['category']) == (
        fates[moving[0]].target, 'tumor')
    assertStatusOk(undo(first['batch']))  # its labels were made there: undo deletes them, on their new segments
    assert sorted((doc['segment'], doc['category']) for doc in _labels(project).values()) == sorted(
        (fates[k].target, 'tumor') for k in moving[6:])
    assertStatus(undo(mixed['batch']), 400)  # some of its labels are gone with their segments
    assert len(_labels(project)) == 4
    assert applied.json['training'] is not None  # tumor and stroma were labeled: a round predicts the new segments
    rounds.wait_for_rounds(project['folder']['_id'], 600)


def test_a_slide_without_labels_is_segmented_again_at_once(server, project, admin):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders, resegmentation

    store = folders.store_path(project['folder'], project['item'])
    with SlideStore(store) as first:
        n_first = first.n_segments
    _configure(server, project, admin, radius=14)
    _, logs = _make_segments(server, project, admin)
    assert 'segment image item' in logs[0]
    assert not resegmentation.pending_path(project['folder'], project['item']).exists()
    with SlideStore(store) as second:
        assert second.n_segments < n_first and second.segment_params['radius'] == 14
        assert second.segment_params['slide']['file'] == str(project['item']['largeImage']['fileId'])


def test_the_slide_is_its_girder_file_not_its_path(server, project, admin, fsAssetstore):
    from girder.models.file import File

    from histomics_label.projects import folders

    store = folders.store_path(project['folder'], project['item'])
    digest = _digest(store)
    # the store was made from the slide's file elsewhere on disk (its path and time are those of the sample)
    started, _ = _make_segments(server, project, admin)
    assert [s['status'] for s in started] == ['current']
    file = File().load(project['item']['largeImage']['fileId'], force=True)
    old = File().getLocalFilePath(file)
    moved = fsAssetstore['root'] + '/moved/' + file['path'].replace('/', '_')  # the assetstore's files moved
    Path(moved).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(old, moved)
    file['path'] = moved[len(fsAssetstore['root']) + 1:]
    File().save(file)
    started, _ = _make_segments(server, project, admin)
    assert [s['status'] for s in started] == ['current'] and _digest(store) == digest


def test_stale_labels_are_listed_and_deleted(server, project, admin, user):
    from histomics_label.models.effective_labels import effective_labels
    from histomics_label.models.label import Label
    from histomics_label.projects import folders

    n = folders.segment_count(project['folder'], project['item'])
    _label(server, project, admin, [(1, 'tumor'), (2, 'stroma')])
    stale = {'project': project['folder']['_id'], 'item': project['item']['_id'], 'segment': n + 7,
             'labeler': admin['_id'], 'category': 'tumor'}
    Label().collection.insert_one(stale)  # as a re-segmentation before versions left them
    assert (project['item']['_id'], n + 7) in effective_labels(project['folder']['_id'])
    listed = server.request(_path(project, '/stale_labels'), user=user)
    assertStatusOk(listed)
    assert [(s['segment'], s['detached']) for s in listed.json] == [(n + 7, False)]
    assert str(n) in listed.json[0]['reason']
    assertStatusOk(server.request(_path(project, '/stale_labels'), method='DELETE', user=admin,
                                  params={'ids': json.dumps([listed.json[0]['_id']])}))
    assert sorted(doc['segment'] for doc in _labels(project).values()) == [1, 2]
    assert effective_labels(project['folder']['_id']) == Label().effective(project['folder']['_id'])


def test_a_stale_label_does_not_stop_training_or_suggestions(server, project, admin):
    from histomics_label.models.label import Label
    from histomics_label.projects import folders

    n = folders.segment_count(project['folder'], project['item'])
    _label(server, project, admin, [(s, 'tumor' if s % 2 else 'stroma') for s in range(1, 40)])
    Label().collection.insert_one({'project': project['folder']['_id'], 'item': project['item']['_id'],
                                   'segment': n + 7, 'labeler': admin['_id'], 'category': 'tumor'})
    trained = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    assertStatusOk(trained)
    assert trained.json['round'] and trained.json['round']['labelsUsed'] == 39
    suggestions = server.request(_path(project, '/suggestions'), user=admin)
    assertStatusOk(suggestions)
    assert suggestions.json and all(1 <= s['segment'] <= n for s in suggestions.json)


def test_slides_of_one_stem_keep_their_own_segment_images(server, project, admin, cmu_svs, embedded_cmu,
                                                          monkeypatch):
    from girder.models.item import Item
    from girder.models.upload import Upload
    from girder_large_image.models.image_item import ImageItem

    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects import folders

    slides = []
    for name in ('a.svs', 'a.ndpi'):
        with open(cmu_svs, 'rb') as handle:
            file = Upload().uploadFromFile(handle, cmu_svs.stat().st_size, name, parentType='folder',
                                           parent=project['folder'], user=admin)
        item = Item().load(file['itemId'], force=True)
        if not item.get('largeImage'):
            ImageItem().createImageItem(item, file, user=admin, createJob=False)
        item = Item().load(file['itemId'], force=True)
        shutil.copyfile(embedded_cmu, folders.store_path(project['folder'], item))
        slides.append(item)
    images = [segment_jobs.publish_segment_image(project['folder'], item) for item in slides]
    again = segment_jobs.publish_segment_image(project['folder'], Item().load(slides[0]['_id'], force=True))
    for item, image in zip(slides, (again, images[1]), strict=True):
        meta = Item().load(item['_id'], force=True)['meta']
        assert meta[segment_jobs.SEGMENT_IMAGE_KEY] == str(image['_id'])
        assert Item().load(image['_id'], force=True)['name'] == f'{item["_id"]}.segments.tiff'
    assert Item().load(images[0]['_id'], force=True) is None  # replaced by its successor, and only then

    def failing_upload(*args, **kwargs):
        raise OSError('the assetstore is full')

    monkeypatch.setattr(Upload, 'uploadFromFile', failing_upload)
    with pytest.raises(OSError):
        segment_jobs.publish_segment_image(project['folder'], Item().load(slides[1]['_id'], force=True))
    assert Item().load(images[1]['_id'], force=True) is not None  # a failed upload leaves the old image
    assert Item().load(slides[1]['_id'], force=True)['meta'][segment_jobs.SEGMENT_IMAGE_KEY] == \
        str(images[1]['_id'])
