"""Import of a project made with the published Histomics Label (wsi-superpixel-guided-labeling on HistomicsUI).

The fixture builds such a project the way that tool leaves it in Girder: a folder marked by its
``.histomicsui_config.yaml`` (written as its client writes it), the real H&E sample as slides, per slide a
superpixel image in the ``Annotations`` subfolder (HistomicsTK's encoding: superpixel ``k`` is ``2k`` inside and
``2k + 1`` on its outline, counted from 0) and "Superpixel Epoch N" pixelmap annotations with per-superpixel
labeler and review metadata.
"""

import datetime

import numpy as np
import pytest
import yaml
from bson.objectid import ObjectId

pytestmark = pytest.mark.plugin('histomics_label')

HUI_CONFIG = {
    'activeLearning': True,
    'annotationGroups': {
        'replaceGroups': True,
        'defaultGroup': 'default',
        'groups': [
            {'id': 'default', 'fillColor': 'rgba(0, 0, 0, 0)', 'lineColor': 'rgba(0, 0, 0, 1)', 'hotKey': '0'},
            {'id': 'Tumor', 'fillColor': 'rgba(78, 121, 167, 0.5)', 'lineColor': 'rgba(0, 0, 0, 1)', 'hotKey': '1'},
            {'id': 'Stroma', 'fillColor': 'rgba(242, 142, 44, 0.5)', 'lineColor': 'rgba(0,0,0,1)', 'hotKey': 's'},
            {'id': 'Marker', 'fillColor': '#e15759', 'lineColor': 'rgba(0, 0, 0, 1)', 'hotKey': '7'},
        ],
        'exclusions': ['Marker'],
    },
    'guidedLabelingUI': {'borderOpacity': 1.0},
}
"""The folder config as their client writes it (``updateHistomicsYamlConfig``): the default group first."""
DEFAULT = {'label': 'default', 'fillColor': 'rgba(0, 0, 0, 0)', 'strokeColor': 'rgba(0, 0, 0, 1)'}
SLIDE_A_CATEGORIES = [DEFAULT,
                      {'label': 'Stroma', 'fillColor': 'rgba(242, 142, 44, 0.5)', 'strokeColor': 'rgba(0, 0, 0, 1)'},
                      {'label': 'Tumor', 'fillColor': 'rgba(78, 121, 167, 0.5)', 'strokeColor': 'rgba(0, 0, 0, 1)'},
                      {'label': 'Marker', 'fillColor': '#e15759', 'strokeColor': 'rgba(0, 0, 0, 1)'},
                      {'label': 'Necrosis', 'fillColor': 'rgba(118, 183, 178, 0.25)',
                       'strokeColor': 'rgba(0, 0, 0, 1)'}]
"""Slide A's label categories: another order than the config's, and one category only found here."""
STROMA, TUMOR, MARKER, NECROSIS = 1, 2, 3, 4
GONE = str(ObjectId())
"""A labeler whose Girder account no longer exists."""


def _upload(path, parent, user, name):
    from girder.models.item import Item
    from girder.models.upload import Upload
    from girder_large_image.models.image_item import ImageItem

    with open(path, 'rb') as handle:
        file = Upload().uploadFromFile(handle, path.stat().st_size, name, parentType='folder', parent=parent,
                                       user=user)
    item = Item().load(file['itemId'], force=True)
    if not item.get('largeImage'):
        ImageItem().createImageItem(item, file, user=user, createJob=False)
        item = Item().load(file['itemId'], force=True)
    return item


def _metadata(entries):
    """``attributes.metadata`` as their ``updateMetadata`` writes it, keyed by superpixel index."""
    meta = {}
    for index, labeler, value, epoch, review in entries:
        meta[str(index)] = {'labeler': labeler, 'labelDate': 'Mon Jun 01 2026', 'labelValue': value,
                            'labelEpoch': epoch}
        if review:
            reviewer, review_value, review_epoch = review
            meta[str(index)].update({'reviewer': reviewer, 'reviewDate': 'Tue Jun 02 2026',
                                     'reviewValue': review_value, 'reviewEpoch': review_epoch})
    return meta


def _superpixel_image(raster, path, params):
    """Their superpixel image of ``raster`` (superpixel k = id k), with the ImageDescription HistomicsTK writes:
    its parameters and ``indexCount``, the number of pixel values (two per superpixel with boundaries)."""
    import json

    import tifftools

    from histomics_label.core.io.label_tiff import write_segment_tiff

    write_segment_tiff(raster, path, boundaries=True)
    info = tifftools.read_tiff(str(path))
    description = json.dumps({**params, 'indexCount': 2 * (int(raster.max()) + 1)})
    info['ifds'][0]['tags'][tifftools.Tag.ImageDescription.value] = {'data': description,
                                                                      'datatype': tifftools.Datatype.ASCII}
    tifftools.write_tiff(info, str(path), allowExisting=True)


def _pixelmap_annotation(name, image, scale, bbox, values, categories, attributes, **user):
    """A label or predictions annotation as SuperpixelClassification uploads it (one pixelmap element); without
    ``bbox`` as older HistomicsTK wrote it."""
    return {'name': name, 'attributes': attributes, 'elements': [{
        'type': 'pixelmap', 'girderId': str(image['_id']), 'boundaries': True, 'values': values,
        'categories': categories, 'user': {**({'bbox': bbox} if bbox else {}), **user},
        'transform': {'xoffset': 0, 'yoffset': 0, 'matrix': [[scale, 0], [0, scale]]}}]}


def _create(item, creator, document, created):
    from girder_large_image_annotation.models.annotation import Annotation

    annotation = Annotation().createAnnotation(item, creator, document)
    Annotation().collection.update_one({'_id': annotation['_id']}, {'$set': {'created': created}})
    return annotation


@pytest.fixture
def published(server, admin, user, fsAssetstore, data_dir, cmu_svs, embedded_cmu, tmp_path):
    """A project of the published tool: slides A (labeled by three users, one gone, with reviews), B (made by an
    older HistomicsTK: two values per superpixel, no bounding boxes, no metadata) and C (no superpixels yet)."""
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder.models.user import User
    from girder_large_image import yamlConfigFileWrite

    from histomics_label.core.io.store import SlideStore

    second = User().createUser('labeler2', 'password', 'Second', 'Labeler', 'labeler2@example.com')
    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    folder = Folder().createFolder(home, 'Published project', creator=admin)
    for labeler in (user, second):  # they labeled there: labeling needs WRITE in both tools
        folder = Folder().setUserAccess(folder, labeler, AccessType.WRITE, save=True)
    annotations_folder = Folder().createFolder(folder, 'Annotations', creator=admin)
    for name in ('Models', 'Features'):
        Folder().createFolder(folder, name, creator=admin)
    yamlConfigFileWrite(folder, '.histomicsui_config.yaml', admin, yaml.safe_dump(HUI_CONFIG), False)
    slides = {name: _upload(cmu_svs, folder, admin, f'slide-{name}.svs') for name in 'abc'}

    # Their superpixel image from our segmentation: superpixel k is our segment k (superpixel 0 is the glass),
    # written in the doubled encoding, 2k inside and 2k + 1 on the outline.
    with SlideStore(embedded_cmu) as store:
        raster = store.label_raster[()]
        scale = float(store.slide_info.scale)
        boxes = store.segments().bbox * scale
    count = int(raster.max()) + 1
    bbox = [0.0, 0.0, raster.shape[1] * scale, raster.shape[0] * scale, *boxes.ravel().tolist()]
    params = {'superpixelSize': 100, 'magnification': 5, 'boundaries': True, 'slic_zero': True, 'compactness': 0.1}
    images = {}
    for name in 'ab':
        path = tmp_path / f'slide-{name}.svs.pixelmap.tiff'
        _superpixel_image(raster, path, params)
        images[name] = _upload(path, annotations_folder, admin, path.name)

    a, b = slides['a'], slides['b']
    uid, sid = str(user['_id']), str(second['_id'])
    labels_a = {0: (TUMOR, uid), 5: (STROMA, uid), 6: (TUMOR, sid), 7: (MARKER, sid), 8: (NECROSIS, None),
                9: (TUMOR, GONE), count - 1: (STROMA, uid), 10: (17, uid), 11: (STROMA, uid), 12: (TUMOR, uid),
                13: (STROMA, sid)}
    values = [0] * (count + 1)  # one more value than the image has superpixels
    for index, (value, _) in labels_a.items():
        values[index] = value
    values[count] = TUMOR
    metadata = _metadata(
        [(index, labeler, value, 0, None) for index, (value, labeler) in labels_a.items() if labeler] +
        [(20, uid, 0, 0, None),  # labeled, then unlabeled: no label
         (count + 3, uid, 0, 0, (str(admin['_id']), TUMOR, 1))])  # a review past the image's superpixels
    metadata['11'].update(reviewer=str(admin['_id']), reviewValue=TUMOR, reviewEpoch=1)  # overridden
    metadata['12'].update(reviewer=sid, reviewValue=TUMOR, reviewEpoch=1)  # approved
    metadata['13'].update(labelEpoch=1, reviewer=str(admin['_id']), reviewValue=TUMOR, reviewEpoch=0)  # stale
    now = datetime.datetime.now(datetime.UTC)
    old_values = [0] * count
    old_values[30] = STROMA
    _create(a, admin, _pixelmap_annotation('Superpixel Epoch 0', images['a'], scale, bbox, old_values,
                                           SLIDE_A_CATEGORIES, {'params': params, 'metadata': {}}),
            now - datetime.timedelta(hours=2))
    _create(a, admin, _pixelmap_annotation(
        'Superpixel Epoch 0 Predictions', images['a'], scale, bbox, [0] * count, SLIDE_A_CATEGORIES[1:],
        {'params': params}, certainty=[0.5] * count, confidence=[0.5] * count,
        certainty_info={'type': 'margin', 'percentiles': {}, 'cdf': {}}), now - datetime.timedelta(hours=1))
    epoch1 = _create(a, admin, _pixelmap_annotation('Superpixel Epoch 1', images['a'], scale, bbox, values,
                                                    SLIDE_A_CATEGORIES, {'params': params, 'metadata': metadata}),
                     now)

    b_categories = [DEFAULT, SLIDE_A_CATEGORIES[TUMOR], SLIDE_A_CATEGORIES[STROMA]]
    doubled = [0] * (2 * count)
    doubled[6:8] = [1, 1]  # superpixel 3: Tumor
    doubled[8:10] = [2, 2]  # superpixel 4: Stroma
    _create(b, admin, _pixelmap_annotation('Superpixel Epoch 1', images['b'], scale, None, doubled,
                                           b_categories, {'params': params}), now)
    return {'folder': Folder().load(folder['_id'], force=True), 'slides': slides, 'images': images,
            'count': count, 'second': second, 'annotation': epoch1}


def _labels(folder):
    from histomics_label.models.label import Label

    return {(doc['item'], doc['segment'], doc['labeler']): doc
            for doc in Label().find({'project': folder['_id']})}


def _expected(published, admin, user):
    """(item, segment, labeler) → category: their superpixel k is our segment k + 1."""
    a, b = published['slides']['a']['_id'], published['slides']['b']['_id']
    second = published['second']['_id']
    count = published['count']
    return {(a, 1, user['_id']): 'Tumor', (a, 6, user['_id']): 'Stroma', (a, 7, second): 'Tumor',
            (a, 8, second): 'Marker', (a, 9, admin['_id']): 'Necrosis', (a, 10, admin['_id']): 'Tumor',
            (a, count, user['_id']): 'Stroma', (a, 12, user['_id']): 'Stroma', (a, 13, user['_id']): 'Tumor',
            (a, 14, second): 'Stroma', (b, 4, admin['_id']): 'Tumor', (b, 5, admin['_id']): 'Stroma'}


def test_import_brings_categories_settings_segmentation_and_labels(published, admin, user):
    from girder.models.folder import Folder
    from girder.models.item import Item

    from histomics_label.jobs.segments import SEGMENT_IMAGE_KEY
    from histomics_label.projects.config import META_KEY
    from histomics_label.projects.migration import SEGMENTATION_KEY, import_histomicsui_project

    summary = import_histomicsui_project(published['folder'], admin)

    config = Folder().load(published['folder']['_id'], force=True)['meta'][META_KEY]
    assert [(c['name'], c['color'], c['excluded'], c['hotkey']) for c in config['categories']] == [
        ('Tumor', '#4e79a7', False, None), ('Stroma', '#f28e2c', False, 's'), ('Marker', '#e15759', True, None),
        ('Necrosis', 'rgba(118, 183, 178, 0.25)', False, None)]
    assert summary['categories'] == summary['added'] == ['Tumor', 'Stroma', 'Marker', 'Necrosis']
    assert summary['excluded'] == ['Marker']
    assert (config['radius'], config['magnification'], config['certainty']) == (50, 5.0, 'margin')
    assert summary['settings'] == {'radius': 50, 'magnification': 5.0, 'certainty': 'margin'}

    labels = _labels(published['folder'])
    expected = _expected(published, admin, user)
    assert {key: doc['category'] for key, doc in labels.items()} == expected
    assert {doc['view'] for doc in labels.values()} == {'import'}
    a = published['slides']['a']['_id']
    overridden = labels[(a, 12, user['_id'])]['review']
    assert (overridden['status'], overridden['category'], overridden['reviewer']) == ('overridden', 'Tumor',
                                                                                      admin['_id'])
    approved = labels[(a, 13, user['_id'])]['review']
    assert (approved['status'], approved['reviewer']) == ('approved', published['second']['_id'])
    assert 'review' not in labels[(a, 14, published['second']['_id'])]  # relabeled after the review

    slides = {slide['name']: slide for slide in summary['slides']}
    assert (slides['slide-a.svs']['labels'], slides['slide-a.svs']['reviews']) == (10, 2)
    assert slides['slide-a.svs']['annotation'] == str(published['annotation']['_id'])
    assert (slides['slide-b.svs']['labels'], slides['slide-b.svs']['superpixels']) == (2, published['count'])
    assert {entry['login']: entry['labels'] for entry in summary['labelers']} == {'user': 5, 'labeler2': 3,
                                                                                 'admin': 4}
    assert summary['unknownUsers'] == {GONE: 1}
    reasons = {(entry['name'], entry['reason']): entry['count'] for entry in summary['skipped']}
    assert reasons[('slide-a.svs', 'labels with category index 17, which names no imported category')] == 1
    assert reasons[('slide-a.svs', f'labels of superpixels past the {published["count"]} of the superpixel '
                                   'image')] == 1
    assert reasons[('slide-a.svs', 'reviews of superpixels the superpixel image does not have')] == 1
    assert reasons[('slide-c.svs', 'no label annotation: the published tool made no superpixels for this slide')] == 0
    assert any("hotkey '7'" in reason for _, reason in reasons)

    for name in 'ab':
        meta = Item().load(published['slides'][name]['_id'], force=True)['meta']
        assert meta[SEGMENT_IMAGE_KEY] == str(published['images'][name]['_id'])
        assert meta[SEGMENTATION_KEY]['segmentOffset'] == 1 and meta[SEGMENTATION_KEY]['boundaries'] is True
        assert meta[SEGMENTATION_KEY]['segments'] == published['count']


def test_segment_ids_name_the_superpixels_of_their_image(published, admin, user, embedded_cmu):
    """Decoding their image at a labeled superpixel and adding the recorded offset gives the label's segment."""
    from girder.models.file import File
    from girder.models.item import Item

    from histomics_label.core.io.label_tiff import read_segment_ids
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects.migration import SEGMENTATION_KEY, import_histomicsui_project

    import_histomicsui_project(published['folder'], admin)
    item = Item().load(published['slides']['a']['_id'], force=True)
    offset = item['meta'][SEGMENTATION_KEY]['segmentOffset']
    image = published['images']['a']
    path = File().getLocalFilePath(File().load(image['largeImage']['fileId'], force=True))
    with SlideStore(embedded_cmu) as store:
        x0, y0, x1, y1 = (int(v) for v in store.segments([4]).bbox[0])  # superpixel 5, labeled Stroma
    decoded = read_segment_ids(path, x0, y0, x1, y1, boundaries=True)
    superpixel = int(np.bincount(decoded.ravel()).argmax())
    assert superpixel == 5
    labels = _labels(published['folder'])
    assert labels[(item['_id'], superpixel + offset, user['_id'])]['category'] == 'Stroma'


def test_importing_again_changes_nothing_and_keeps_work_done_here(published, admin, user):
    from histomics_label.models.label import Label, LabelEvent
    from histomics_label.projects.migration import import_histomicsui_project

    import_histomicsui_project(published['folder'], admin)
    before = _labels(published['folder'])
    events = LabelEvent().find({'project': published['folder']['_id']}).count()
    a = published['slides']['a']['_id']
    Label().upsert(published['folder'], user, [{'item': a, 'segment': 6, 'category': 'Tumor'}], view='guided')

    again = import_histomicsui_project(published['folder'], admin)

    after = _labels(published['folder'])
    assert after.keys() == before.keys()
    assert after[(a, 6, user['_id'])]['category'] == 'Tumor'  # relabeled here: kept over the import
    for key, doc in before.items():
        if key != (a, 6, user['_id']):
            assert after[key] == doc  # untouched: same id, category, times and review
    assert LabelEvent().find({'project': published['folder']['_id']}).count() == events + 1
    slide = next(slide for slide in again['slides'] if slide['name'] == 'slide-a.svs')
    assert (slide['written'], slide['unchanged'], slide['keptNewer'], slide['reviews']) == (0, 9, 1, 0)
    assert again['added'] == []


def test_existing_project_keeps_its_categories_and_settings(published, admin, user):
    from histomics_label.projects import folders
    from histomics_label.projects.migration import import_histomicsui_project

    folders.save_config(published['folder'], {'categories': [{'name': 'Tumor', 'color': '#000000',
                                                                'hotkey': 's'}], 'radius': 12})

    summary = import_histomicsui_project(published['folder'], admin)

    config = folders.config_of(published['folder'])
    assert [(c['name'], c['color'], c['hotkey']) for c in config['categories']] == [
        ('Tumor', '#000000', 's'), ('Stroma', '#f28e2c', None), ('Marker', '#e15759', None),
        ('Necrosis', 'rgba(118, 183, 178, 0.25)', None)]
    assert config['radius'] == 12 and summary['settings'] == {}
    assert summary['added'] == ['Stroma', 'Marker', 'Necrosis']
    assert len(_labels(published['folder'])) == len(_expected(published, admin, user))


def test_a_folder_without_anything_to_import_is_a_400(server, admin, fsAssetstore, data_dir, cmu_svs):
    from girder.exceptions import ValidationException
    from girder.models.folder import Folder
    from girder_large_image import yamlConfigFileWrite

    from histomics_label.models.label import Label
    from histomics_label.projects.config import META_KEY
    from histomics_label.projects.migration import import_histomicsui_project

    home = Folder().createFolder(admin, 'Private', parentType='user', reuseExisting=True)
    plain = Folder().createFolder(home, 'Plain slides', creator=admin)
    _upload(cmu_svs, plain, admin, 'slide.svs')
    with pytest.raises(ValidationException, match='holds no project of the published Histomics Label'):
        import_histomicsui_project(plain, admin)

    marked = Folder().createFolder(home, 'Marked, never used', creator=admin)
    yamlConfigFileWrite(marked, '.histomicsui_config.yaml', admin, yaml.safe_dump({'activeLearning': True}), False)
    with pytest.raises(ValidationException, match='nothing to import yet'):
        import_histomicsui_project(marked, admin)
    for folder in (plain, marked):
        assert META_KEY not in (Folder().load(folder['_id'], force=True).get('meta') or {})
        assert Label().find({'project': folder['_id']}).count() == 0


def test_imported_slides_train_on_their_own_superpixels(server, admin, user, published, embedded_cmu):
    from girder.constants import AccessType
    from girder.models.folder import Folder
    from girder_jobs.models.job import Job

    from histomics_label.core.io.store import SlideStore
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.projects import folders

    folder = published['folder']
    Folder().setUserAccess(folder, user, AccessType.WRITE, save=True)
    path = f'/histomics_label/project/{folder["_id"]}'
    assert server.request(f'{path}/import', method='POST', user=user).status == '403 Forbidden'
    response = server.request(f'{path}/import', method='POST', user=admin)
    assert response.status == '200 OK', response.json
    started = server.request(f'{path}/segments', method='POST', user=admin).json
    assert {entry['status'] for entry in started} == {'started'}
    segment_jobs.wait_for_segment_jobs()
    for entry in started:
        job = Job().load(entry['job'], force=True, includeLog=True)
        assert job['status'] == 3, job['log']
    # slide a keeps their superpixels: superpixel k (their image) is segment k + 1 (our store)
    with SlideStore(embedded_cmu) as store:
        theirs = store.label_raster[()].astype('int64')
    slide_a = published['slides']['a']
    with SlideStore(folders.store_path(folder, slide_a)) as store:
        ours = store.label_raster[()]
        assert store.n_segments == published['count']
    assert (ours == theirs + 1).all()
    trained = server.request(f'{path}/train', method='POST', user=admin, params={'wait': 'true'}).json
    assert trained['round'] is not None and trained['round']['labelsUsed'] >= 8, trained
    again = server.request(f'{path}/segments', method='POST', user=admin).json
    assert {entry['status'] for entry in again} == {'current'}
