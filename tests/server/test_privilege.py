"""Nothing a labeler or a reader can write makes the server read, republish or attribute something for them.

Two paths (issue 15, item 10): the imported-segmentation record in a slide's metadata (any labeler, WRITE, can set
item metadata) names the image that "Make segments" reads and republishes into the project; and the migration of
the published Histomics Label reads "Superpixel" annotations, which any reader of a slide can create.
"""

import json

import pytest
import test_migration
from test_migration import (
    SLIDE_A_CATEGORIES,
    TUMOR,
    _expected,
    _labels,
    _pixelmap_annotation,
    _superpixel_image,
    _upload,
)

pytestmark = pytest.mark.plugin('histomics_label')
published = test_migration.published
"""The published tool's project (test_migration's fixture): slides a, b, c labeled by ``user``, labeler2 and more."""

PARAMS = {'superpixelSize': 100, 'magnification': 5, 'boundaries': True}


def _segment_image(embedded_cmu, path, parent, owner):
    """A real superpixel image (the session store's segments in HistomicsTK's encoding), uploaded to ``parent``."""
    from histomics_label.core.io.store import SlideStore

    with SlideStore(embedded_cmu) as store:
        raster = store.label_raster[()]
    _superpixel_image(raster, path, PARAMS)
    return _upload(path, parent, owner, path.name)


def _plant(server, labeler, slide, record):
    """Plant the slide's imported-segmentation metadata: a labeler's PUT /item/{id}/metadata is refused
    (``projects/metadata_guard``), so the record is written into the database as a labeler could before that guard
    (or as any other path to the item's metadata would): what the segment job reads must be safe whoever wrote it."""
    from girder.models.item import Item

    from histomics_label.projects.folders import IMPORTED_SEGMENTATION_KEY

    response = server.request(f'/item/{slide["_id"]}/metadata', method='PUT', user=labeler,
                              body=json.dumps({IMPORTED_SEGMENTATION_KEY: record}), type='application/json')
    assert response.status == '403 Forbidden', response.json
    Item().collection.update_one({'_id': slide['_id']}, {'$set': {f'meta.{IMPORTED_SEGMENTATION_KEY}': record}})


def _make_segments(server, folder, user):
    """Start "Make segments" as ``user`` and wait; returns the slide's job with its log."""
    from girder_jobs.models.job import Job

    from histomics_label.jobs import segments as segment_jobs

    started = server.request(f'/histomics_label/project/{folder["_id"]}/segments', method='POST', user=user)
    assert started.status == '200 OK', started.json
    assert [entry['status'] for entry in started.json] == ['started']
    segment_jobs.wait_for_segment_jobs()
    return Job().load(started.json[0]['job'], force=True, includeLog=True)


def _nothing_made(folder, slide):
    """No store, no segment image published in the project, no segment image named on the slide."""
    from girder.models.folder import Folder
    from girder.models.item import Item

    from histomics_label.projects import folders
    from histomics_label.projects.segment_images import SEGMENT_IMAGE_KEY, SEGMENTS_FOLDER

    assert not folders.store_path(folder, slide).exists()
    published_to = Folder().findOne({'parentId': folder['_id'], 'name': SEGMENTS_FOLDER})
    assert published_to is None or Item().find({'folderId': published_to['_id']}).count() == 0
    assert SEGMENT_IMAGE_KEY not in (Item().load(slide['_id'], force=True).get('meta') or {})


def test_a_labelers_metadata_cannot_make_segments_read_an_image_outside_the_project(
        server, bare_project, admin, user, embedded_cmu, tmp_path):
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.item import Item
    from girder_jobs.constants import JobStatus

    folder, slide = bare_project['folder'], bare_project['item']
    folder = Folder().setUserAccess(folder, user, AccessType.WRITE, save=True)
    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    study = Folder().createFolder(home, 'Another study', creator=admin)
    secret = _segment_image(embedded_cmu, tmp_path / 'secret.tiff', study, admin)
    assert not Item().hasAccess(secret, user, AccessType.READ)

    _plant(server, user, slide, {'source': 'wsi-superpixel-guided-labeling', 'image': str(secret['_id']),
                                 'boundaries': True, 'segmentOffset': 1})
    job = _make_segments(server, folder, admin)

    assert job['status'] == JobStatus.ERROR, job['log']
    assert f'names {secret["_id"]}, which is no large image in this project' in ''.join(job['log'])
    _nothing_made(folder, slide)


def test_the_image_is_read_with_the_access_of_the_admin_who_starts_segments(
        server, bare_project, admin, user, embedded_cmu, tmp_path):
    """An image inside the project but in a subfolder the project's admin may not read is not theirs to publish."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.user import User
    from girder_jobs.constants import JobStatus

    folder, slide = bare_project['folder'], bare_project['item']
    manager = User().createUser('manager', 'password', 'Project', 'Manager', 'manager@example.com')
    assert not manager['admin']
    folder = Folder().setUserAccess(folder, manager, AccessType.ADMIN, save=True)
    folder = Folder().setUserAccess(folder, user, AccessType.WRITE, save=True)
    restricted = Folder().createFolder(folder, 'Restricted', creator=admin)
    restricted = Folder().setAccessList(restricted, {'users': [{'id': admin['_id'], 'level': AccessType.ADMIN}],
                                                     'groups': []}, save=True)
    hidden = _segment_image(embedded_cmu, tmp_path / 'hidden.tiff', restricted, admin)

    _plant(server, user, slide, {'image': str(hidden['_id'])})
    job = _make_segments(server, folder, manager)

    assert job['status'] == JobStatus.ERROR, job['log']
    assert f'names {hidden["_id"]}, which manager who asked for this work may not read' in ''.join(job['log'])
    _nothing_made(folder, slide)


def test_malformed_records_are_a_clear_error(server, bare_project, admin):
    from bson.objectid import ObjectId
    from girder.exceptions import ValidationException
    from girder.models.item import Item

    from histomics_label.projects import folders
    from histomics_label.projects.folders import IMPORTED_SEGMENTATION_KEY

    folder, slide = bare_project['folder'], bare_project['item']
    config = folders.config_of(folder)
    inside = str(slide['_id'])  # a large image of the project, so only the named field is wrong
    cases = [
        ('a string', 'must be an object, not str'),
        ({'image': 'not an id'}, "names no image id (image='not an id')"),
        ({'image': 12}, 'names no image id (image=12)'),
        ({'image': str(ObjectId())}, 'which is no large image in this project'),
        ({'image': inside, 'boundaries': 'yes'}, "boundaries must be true or false, not 'yes'"),
        ({'image': inside, 'segmentOffset': 0}, 'segmentOffset must be a whole number of at least 1, not 0'),
        ({'image': inside, 'segmentOffset': True}, 'segmentOffset must be a whole number of at least 1, not True'),
        ({'image': inside, 'segments': -3}, 'segments must be a positive whole number, not -3'),
    ]
    for record, message in cases:
        Item().setMetadata(slide, {IMPORTED_SEGMENTATION_KEY: record})
        item = Item().load(slide['_id'], force=True)
        with pytest.raises(ValidationException, match=f'Slide {slide["name"]}: its metadata') as raised:
            folders.pipeline_config(folder, item, config, user=admin)
        assert message in str(raised.value), (record, str(raised.value))


def test_an_image_inside_the_project_is_the_slides_segmentation(server, bare_project, admin, embedded_cmu, tmp_path):
    """The checks pass what the migration records: a superpixel image in a subfolder of the project."""
    from girder.models.folder import Folder
    from girder.models.item import Item

    from histomics_label.projects import folders
    from histomics_label.projects.folders import IMPORTED_SEGMENTATION_KEY

    folder, slide = bare_project['folder'], bare_project['item']
    annotations = Folder().createFolder(folder, 'Annotations', creator=admin)
    image = _segment_image(embedded_cmu, tmp_path / 'theirs.tiff', annotations, admin)
    Item().setMetadata(slide, {IMPORTED_SEGMENTATION_KEY: {'image': str(image['_id']), 'boundaries': False,
                                                          'segmentOffset': 1, 'segments': 40}})

    pipeline = folders.pipeline_config(folder, Item().load(slide['_id'], force=True), folders.config_of(folder),
                                       user=admin)

    assert pipeline.segments == 'label_image'
    assert pipeline.label_image == folders.slide_file_path(image)
    assert (pipeline.label_image_boundaries, pipeline.label_image_offset, pipeline.label_image_count) == (False, 1,
                                                                                                          40)


def test_a_readers_planted_annotation_imports_nothing(server, published, admin, user, embedded_cmu, tmp_path):
    """A reader's newer "Superpixel" annotation naming another pathologist and a foreign image is passed over for
    the labeler-made one, and reported. The reader has READ and large_image's "Create annotations" flag, which a
    DSA grants to readers who annotate (with it, large_image asks no WRITE to create an annotation)."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.item import Item
    from girder.models.user import User
    from girder_large_image_annotation.constants import ANNOTATION_ACCESS_FLAG

    from histomics_label.projects.migration import SEGMENTATION_KEY, import_histomicsui_project

    folder, slide, second = published['folder'], published['slides']['a'], published['second']
    reader = User().createUser('reader', 'password', 'Only', 'Reader', 'reader@example.com')
    folder = Folder().setUserAccess(folder, reader, AccessType.READ, flags=[ANNOTATION_ACCESS_FLAG], save=True)
    home = Folder().createFolder(reader, 'Private', parentType='user', reuseExisting=True)
    theirs = _segment_image(embedded_cmu, tmp_path / 'theirs.tiff', home, reader)
    forged = list(range(40))
    values = [TUMOR if index in forged else 0 for index in range(published['count'])]
    metadata = {str(index): {'labeler': str(second['_id']), 'labelValue': TUMOR, 'labelEpoch': 2}
                for index in forged}
    document = _pixelmap_annotation('Superpixel Epoch 2', theirs, 1.0, None, values, SLIDE_A_CATEGORIES,
                                    {'params': PARAMS, 'metadata': metadata})
    response = server.request('/annotation', method='POST', user=reader, params={'itemId': str(slide['_id'])},
                              body=json.dumps(document), type='application/json')
    assert response.status == '200 OK', response.json

    summary = import_histomicsui_project(folder, admin)

    labels = _labels(folder)
    assert {key: doc['category'] for key, doc in labels.items()} == _expected(published, admin, user)
    assert not any(key[2] == reader['_id'] for key in labels)
    meta = Item().load(slide['_id'], force=True)['meta'][SEGMENTATION_KEY]
    assert meta['image'] == str(published['images']['a']['_id'])
    assert meta['annotation'] == str(published['annotation']['_id'])
    assert summary['rejected'] == [{'item': str(slide['_id']), 'name': slide['name'],
                                    'annotation': response.json['_id'], 'annotationName': 'Superpixel Epoch 2',
                                    'reason': 'made by reader, who has no WRITE access on the slide', 'labels': 40}]


def test_labels_go_only_to_users_who_may_label_the_slide(server, published, admin, user):
    """Labels and reviews an accepted annotation puts in the name of a user who has only READ are kept as the
    importing user's, and counted by that user's id."""
    from girder.constants import AccessType
    from girder.models.folder import Folder

    from histomics_label.projects.migration import import_histomicsui_project

    folder, second = published['folder'], published['second']
    folder = Folder().setUserAccess(folder, second, AccessType.READ, save=True)

    summary = import_histomicsui_project(folder, admin)

    labels = _labels(folder)
    expected = {(item, segment, admin['_id'] if labeler == second['_id'] else labeler): category
                for (item, segment, labeler), category in _expected(published, admin, user).items()}
    assert {key: doc['category'] for key, doc in labels.items()} == expected
    a = published['slides']['a']['_id']
    assert labels[(a, 13, user['_id'])]['review']['reviewer'] == admin['_id']  # second's approval
    assert summary['unauthorizedUsers'] == {str(second['_id']): 4}  # three labels and one review
    assert {entry['login'] for entry in summary['labelers']} == {'user', 'admin'}
    assert summary['rejected'] == []


def test_an_accepted_annotation_naming_an_image_outside_the_project_imports_no_slide(
        server, published, admin, user, embedded_cmu, tmp_path):
    from girder.models.folder import Folder
    from girder.models.item import Item
    from girder_large_image_annotation.models.annotation import Annotation

    from histomics_label.projects.migration import SEGMENTATION_KEY, import_histomicsui_project

    folder, slide = published['folder'], published['slides']['b']
    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    study = Folder().createFolder(home, 'Another study', creator=admin)
    outside = _segment_image(embedded_cmu, tmp_path / 'outside.tiff', study, admin)
    values = [0] * published['count']
    values[3] = TUMOR
    Annotation().createAnnotation(slide, user, _pixelmap_annotation(
        'Superpixel Epoch 2', outside, 1.0, None, values, SLIDE_A_CATEGORIES, {'params': PARAMS}))

    summary = import_histomicsui_project(folder, admin)

    assert not any(key[0] == slide['_id'] for key in _labels(folder))
    assert SEGMENTATION_KEY not in (Item().load(slide['_id'], force=True).get('meta') or {})
    reasons = {(entry['name'], entry['reason']): entry['count'] for entry in summary['skipped']}
    assert reasons[(slide['name'], f"its superpixel image {str(outside['_id'])!r} is no large image inside this "
                                   "project that the annotation's creator and the importing user may read, so its "
                                   'superpixel ids name no segments')] == 1
    assert summary['rejected'] == []
