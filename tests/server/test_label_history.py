"""Labels keep their history: a relabel with the same category keeps the review, undo puts back exactly what was
there (delete, review, relabel), the effective label follows the review made last, and a request of 1,000+ labels
of one slide works on any database (large ``$in`` queries are chunked)."""

import json

import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _put(server, project, user, labels, view='guided'):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels], 'view': view}
    response = server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                              body=json.dumps(body))
    assertStatusOk(response)
    return response.json


def _delete(server, project, user, segments):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s} for s in segments]}
    response = server.request(_path(project, '/labels'), method='DELETE', user=user, type='application/json',
                              body=json.dumps(body))
    assertStatusOk(response)
    return response.json


def _review(server, project, reviewer, label_id, category=None):
    response = server.request(_path(project, f'/labels/{label_id}/review'), method='PUT', user=reviewer,
                              params={} if category is None else {'category': category})
    assertStatusOk(response)
    return response.json


def _undo(server, project, user, batch):
    response = server.request(_path(project, '/labels/undo'), method='POST', user=user, params={'batch': batch})
    assertStatusOk(response)
    return response.json


def _stored(project):
    """Every label document of the project, whole, by (labeler, segment)."""
    from histomics_label.models.label import Label

    return {(d['labeler'], d['segment']): d for d in Label().find({'project': project['folder']['_id']})}


@pytest.fixture
def labeler(project, user):
    """``user`` with WRITE access on the project."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    Folder().setUserAccess(project['folder'], user, AccessType.WRITE, save=True)
    return user


def _by_segment(listed):
    return {label['segment']: label for label in listed}


def test_relabeling_with_the_same_category_keeps_the_review(server, project, labeler, admin):
    _put(server, project, labeler, [(1, 'tumor'), (2, 'stroma')])
    labels = _by_segment(server.request(_path(project, '/labels'), user=admin).json)
    overridden = _review(server, project, admin, labels[1]['_id'], 'stroma')
    approved = _review(server, project, admin, labels[2]['_id'])
    assert (overridden['review']['status'], approved['review']['status']) == ('overridden', 'approved')
    reviewed = _stored(project)

    again = _put(server, project, labeler, [(1, 'tumor'), (2, 'tumor')], view='bulk')
    assert again['changed'] == 1
    now = _stored(project)
    one, two = now[(labeler['_id'], 1)], now[(labeler['_id'], 2)]
    assert one['review'] == reviewed[(labeler['_id'], 1)]['review']  # same category: the override stays
    assert (one['category'], one['view']) == ('tumor', 'bulk') and one['updated'] > reviewed[(labeler['_id'], 1)][
        'updated']
    assert 'review' not in two and two['category'] == 'tumor'  # a new category: the approval no longer holds
    listed = _by_segment(server.request(_path(project, '/labels'), user=admin).json)
    assert (listed[1]['category'], listed[1]['review']['category']) == ('tumor', 'stroma')  # both stay visible

    undone = _undo(server, project, labeler, again['batch'])
    assert (undone['reverted'], undone['skipped']) == (2, 0)
    assert _stored(project) == reviewed  # each label exactly as it was: times, view, review


def test_undo_of_a_delete_restores_the_label_exactly(server, project, labeler, admin):
    _put(server, project, labeler, [(3, 'tumor'), (4, 'stroma')], view='guided')
    label = _by_segment(server.request(_path(project, '/labels'), user=admin).json)[3]
    _review(server, project, admin, label['_id'], 'stroma')
    before = _stored(project)
    deleted = _delete(server, project, labeler, [3, 4, 5])
    assert deleted['deleted'] == 2 and _stored(project) == {}
    undone = _undo(server, project, labeler, deleted['batch'])
    assert (undone['reverted'], undone['skipped']) == (2, 0)
    assert _stored(project) == before  # same ids, created and updated times, view, review
    listed = _by_segment(server.request(_path(project, '/labels'), user=admin).json)
    assert listed[3]['_id'] == label['_id'] and listed[3]['view'] == 'guided'
    assert listed[3]['review']['category'] == 'stroma'
    # the undo is a batch of its own: undoing it deletes the labels again, exactly
    again = _undo(server, project, labeler, undone['undoBatch'])
    assert again['reverted'] == 2 and _stored(project) == {}


def test_undo_of_a_delete_skips_a_label_made_again_since(server, project, labeler):
    _put(server, project, labeler, [(6, 'tumor'), (7, 'tumor')])
    deleted = _delete(server, project, labeler, [6, 7])
    _put(server, project, labeler, [(6, 'stroma')])
    kept = _stored(project)
    undone = _undo(server, project, labeler, deleted['batch'])
    assert (undone['reverted'], undone['skipped']) == (1, 1)
    now = _stored(project)
    assert now[(labeler['_id'], 6)] == kept[(labeler['_id'], 6)]  # the newer label wins
    assert now[(labeler['_id'], 7)]['category'] == 'tumor'


def test_undo_of_a_review_restores_the_previous_review(server, project, labeler, admin):
    _put(server, project, labeler, [(8, 'tumor')])
    label_id = server.request(_path(project, '/labels'), user=admin).json[0]['_id']
    unreviewed = _stored(project)
    approval = _review(server, project, admin, label_id)
    approved = _stored(project)
    override = _review(server, project, admin, label_id, 'stroma')
    assert _stored(project)[(labeler['_id'], 8)]['review']['category'] == 'stroma'
    assertStatus(server.request(_path(project, '/labels/undo'), method='POST', user=labeler,
                                params={'batch': override['batch']}), 400)  # the reviewer's batch, not the labeler's
    assert _undo(server, project, admin, override['batch'])['reverted'] == 1
    assert _stored(project) == approved  # the approval, exactly as it was
    assert _undo(server, project, admin, approval['batch'])['reverted'] == 1
    assert _stored(project) == unreviewed


def test_undo_skips_a_label_changed_since(server, project, labeler, admin):
    first = _put(server, project, labeler, [(9, 'tumor')])
    label_id = server.request(_path(project, '/labels'), user=admin).json[0]['_id']
    _review(server, project, admin, label_id)
    undone = _undo(server, project, labeler, first['batch'])
    assert (undone['reverted'], undone['skipped']) == (0, 1)  # reviewed since: the label stays
    assert _stored(project)[(labeler['_id'], 9)]['review']['status'] == 'approved'


def test_the_effective_label_follows_the_review_made_last(server, project, labeler, admin):
    """Two labelers disagree; the reviewer overrides the newer label first, then the older one: the override made
    last decides, whichever label is newer."""
    from histomics_label.models.label import Label

    _put(server, project, admin, [(10, 'tumor')])
    _put(server, project, labeler, [(10, 'stroma')])  # the most recent label
    labels = {label['labelerLogin']: label for label in server.request(_path(project, '/labels'), user=admin).json}
    _review(server, project, admin, labels['user']['_id'], 'tumor')
    _review(server, project, admin, labels['admin']['_id'], 'stroma')
    assert Label().effective(project['folder']['_id'])[(project['item']['_id'], 10)] == 'stroma'
    _review(server, project, admin, labels['user']['_id'], 'background')
    assert Label().effective(project['folder']['_id'])[(project['item']['_id'], 10)] == 'background'


@pytest.fixture
def fine_project(bare_project, user):
    """``bare_project`` with a store of its slide cut into more than 1,000 segments (SLIC, radius 5 at 5x, made
    inline), so that one request can label over 500 segments of one slide; ``user`` may label it."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.pipeline import PipelineConfig
    from histomics_label.core.progress import no_progress
    from histomics_label.core.segments import segment_sources
    from histomics_label.projects import folders

    path = folders.store_path(bare_project['folder'], bare_project['item'])
    path.parent.mkdir(parents=True, exist_ok=True)
    config = PipelineConfig(slide=str(_slide_file(bare_project['item'])), store=str(path), magnification=5,
                            radius=5)
    slide = config.slide_reader()
    with SlideStore.create(path, slide.info, config.segment_params(slide)) as writer:
        raster = writer.create_label_raster(slide.height, slide.width)
        source = segment_sources.create('slic', radius=5, compactness=15.0, tile_size=1024)
        writer.write_segments(source.segment(slide, raster, no_progress))
    Folder().setUserAccess(bare_project['folder'], user, AccessType.WRITE, save=True)
    return bare_project


def _slide_file(item):
    from girder.models.file import File
    from girder.models.item import Item

    return File().getLocalFilePath(next(Item().childFiles(item)))


def test_a_request_of_over_a_thousand_labels_of_one_slide(server, fine_project, user):
    """Reading the labels a request replaces names its segments in ``$in`` queries; the embedded database of the
    local stack fails on one of more than about 500 values ("Expression tree is too large"). One request is enough
    (mongomock, the test database, takes seconds per thousand upserts)."""
    from histomics_label.projects import folders

    count = folders.segment_count(fine_project['folder'], fine_project['item'])
    assert count > 1000
    wanted = {s: 'tumor' if s % 3 else 'stroma' for s in range(1, count + 1)}
    answer = _put(server, fine_project, user, list(wanted.items()))
    assert (answer['labeled'], answer['changed']) == (count, count)
    assert {key[1]: d['category'] for key, d in _stored(fine_project).items()} == wanted
