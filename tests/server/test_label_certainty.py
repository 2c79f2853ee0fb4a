"""The model's certainty in the labels listing: GET .../labels gives each label the latest round's predicted category
and its probability, read from the slide's store, and ``sort=certainty`` orders every match before paging."""

import json
import shutil

import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, item, labels):
    body = {'labels': [{'item': str(item['_id']), 'segment': s, 'category': c} for s, c in labels]}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                                  body=json.dumps(body)))


def _list(server, project, user, **params):
    """The labels listed with these parameters, and the total the server reports."""
    response = server.request(_path(project, '/labels'), user=user, params={'limit': 0, **params})
    assertStatusOk(response)
    return response.json, int(response.headers['Girder-Total-Count'])


def _add_slide(folder, admin, cmu_svs, embedded_cmu):
    """A second slide in the project, segmented and embedded (a copy of the session's store) but in no round."""
    from girder.models.item import Item
    from girder.models.upload import Upload
    from girder_large_image.models.image_item import ImageItem

    from histomics_label.projects import folders

    with open(cmu_svs, 'rb') as handle:
        file = Upload().uploadFromFile(handle, cmu_svs.stat().st_size, 'second.svs', parentType='folder',
                                       parent=folder, user=admin)
    item = Item().load(file['itemId'], force=True)
    if not item.get('largeImage'):
        ImageItem().createImageItem(item, file, user=admin, createJob=False)
        item = Item().load(file['itemId'], force=True)
    shutil.copyfile(embedded_cmu, folders.store_path(folder, item))
    return item


@pytest.fixture
def trained(server, project, admin, embedded_cmu, cmu_svs):
    """The seed segments of the first slide labeled and a round trained on them; then a second slide, in no round,
    with three labels. Returns the second slide and its labeled segments."""
    from histomics_label.devtools.cli_demo import seed_labels

    names = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
    seeds = {int(s): names[c] for s, c in seed_labels(str(embedded_cmu), str(cmu_svs), 5)['labels'].items()}
    _label(server, project, admin, project['item'], list(seeds.items()))
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    second = _add_slide(project['folder'], admin, cmu_svs, embedded_cmu)
    unpredicted = [(3, 'tumor'), (1, 'stroma'), (2, 'tumor')]
    _label(server, project, admin, second, unpredicted)
    return second, [s for s, _ in unpredicted]


def _latest_round(project):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    with SlideStore(folders.store_path(project['folder'], project['item'])) as store:
        return store.latest_round()


def test_each_label_carries_the_stores_certainty(server, project, admin, trained):
    second, _ = trained
    record = _latest_round(project)
    names = [c['name'] for c in record.categories]
    classes = record.model_params['classes']
    labels, total = _list(server, project, admin)
    predicted = [label for label in labels if label['item'] == str(project['item']['_id'])]
    assert total == len(labels) and len(predicted) == len(labels) - 3
    for label in predicted:
        row = record.probabilities[label['segment'] - 1]
        assert label['certainty'] == float(row[names.index(label['predicted'])])  # that category's probability
        assert label['certainty'] == float(row[classes].max())  # the most probable of the trained categories
        assert 0 < label['certainty'] <= 1
    assert len({label['certainty'] for label in predicted}) > 1
    unpredicted = [label for label in labels if label['item'] == str(second['_id'])]
    assert [(label['predicted'], label['certainty']) for label in unpredicted] == [(None, None)] * 3


@pytest.mark.parametrize('sortdir', [1, -1])
def test_certainty_sort_orders_every_match_then_pages(server, project, admin, trained, sortdir):
    second, _ = trained
    labels, total = _list(server, project, admin, sort='certainty', sortdir=sortdir)
    certainties = [label['certainty'] for label in labels if label['certainty'] is not None]
    assert certainties == sorted(certainties, reverse=sortdir == -1)
    # labels without a prediction come last either way, in label-id order
    tail = labels[len(certainties):]
    assert [label['item'] for label in tail] == [str(second['_id'])] * 3
    assert [label['_id'] for label in tail] == sorted(label['_id'] for label in tail)
    pages = []
    for offset in range(0, total, 7):
        page, page_total = _list(server, project, admin, sort='certainty', sortdir=sortdir, limit=7, offset=offset)
        assert page_total == total and len(page) == min(7, total - offset)
        pages.extend(page)
    assert [label['_id'] for label in pages] == [label['_id'] for label in labels]


def test_certainty_sort_with_the_disagreement_filter(server, project, admin, trained):
    every, _ = _list(server, project, admin, disagree='true')
    labels, total = _list(server, project, admin, disagree='true', sort='certainty', sortdir=1)
    assert total == len(every) > 0 and {label['_id'] for label in labels} == {label['_id'] for label in every}
    assert all(label['predicted'] != label['category'] for label in labels)
    certainties = [label['certainty'] for label in labels]
    assert certainties == sorted(certainties)
    first, _ = _list(server, project, admin, disagree='true', sort='certainty', sortdir=1, limit=1)
    assert first[0]['_id'] == labels[0]['_id']


def test_no_round_means_no_certainty(server, project, admin):
    _label(server, project, admin, project['item'], [(5, 'tumor'), (2, 'stroma'), (9, 'tumor')])
    labels, total = _list(server, project, admin, sort='certainty', sortdir=1)
    assert total == 3 and all(label['predicted'] is None and label['certainty'] is None for label in labels)
    assert [label['_id'] for label in labels] == sorted(label['_id'] for label in labels)
    page, page_total = _list(server, project, admin, sort='certainty', sortdir=1, limit=2, offset=2)
    assert page_total == 3 and [label['_id'] for label in page] == [labels[2]['_id']]


def test_unknown_sort_is_refused(server, project, admin):
    response = server.request(_path(project, '/labels'), user=admin, params={'sort': 'probability'})
    assertStatus(response, 400)
    assert 'certainty' in response.json['message']
