"""Deleting a project's folder in Girder removes what the project kept outside it (``projects/removal.py``): its
labels and their history, detached labels, rounds, training flags, queued work and data folder; another project's
labels and data, and a plain folder's deletion, are left alone."""

import json
import shutil

import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _put_labels(server, folder, item, user, labels):
    body = {'labels': [{'item': str(item['_id']), 'segment': s, 'category': c} for s, c in labels], 'view': 'guided'}
    assertStatusOk(server.request(f'/histomics_label/project/{folder["_id"]}/labels', method='PUT', user=user,
                                  type='application/json', body=json.dumps(body)))


def _left(project_id) -> dict:
    from histomics_label.models.detached_label import DetachedLabel
    from histomics_label.models.label import Label, LabelEvent
    from histomics_label.models.round import Round
    from histomics_label.models.training_state import TrainingState
    from histomics_label.models.work_queue import HeavyWork

    return {model.name: model.collection.count_documents({'project': project_id})
            for model in (Label(), LabelEvent(), DetachedLabel(), Round(), TrainingState(), HeavyWork())}


def test_deleting_a_project_folder_removes_its_labels_rounds_and_stores(server, project, admin, embedded_cmu):
    from bson.objectid import ObjectId
    from girder.models.folder import Folder

    from histomics_label.models.detached_label import DetachedLabel
    from histomics_label.models.label import Label
    from histomics_label.projects import folders
    from histomics_label.projects.segmented import rankings_folder

    folder, item = project['folder'], project['item']
    _put_labels(server, folder, item, admin, [(s, 'tumor') for s in range(1, 6)] + [(s, 'stroma')
                                                                                   for s in range(6, 11)])
    assertStatusOk(server.request(f'/histomics_label/project/{folder["_id"]}/train', method='POST', user=admin,
                                  params={'wait': 'true'}))
    DetachedLabel().keep([{'_id': ObjectId(), 'project': folder['_id'], 'item': item['_id'], 'segment': 3,
                           'category': 'tumor', 'labeler': admin['_id'], 'detached': {'fate': 'gone'}}])
    # what another project keeps: a label and its data folder
    other = ObjectId()
    Label().collection.insert_one({'project': other, 'item': item['_id'], 'segment': 1, 'labeler': admin['_id'],
                                   'category': 'tumor'})
    other_store = folders.store_path(other, item)
    shutil.copyfile(embedded_cmu, other_store)
    before = _left(folder['_id'])
    assert before['histomics_label_label'] == 10 and before['histomics_label_round'] == 1
    assert before['histomics_label_detached_label'] == 1
    data = folders.store_path(folder, item).parent
    assert (data / f'{item["_id"]}.h5').exists() and any(rankings_folder(folder).iterdir())
    plain = Folder().createFolder(Folder().load(folder['parentId'], force=True), 'Not a project', creator=admin)

    Folder().remove(plain)  # what Girder's DELETE /folder/{id} runs (in a local worker the test server lacks)
    assert _left(folder['_id']) == before and data.exists()
    Folder().remove(Folder().load(folder['_id'], force=True))

    assert set(_left(folder['_id']).values()) == {0}
    assert not data.exists()
    assert _left(other)['histomics_label_label'] == 1 and other_store.exists()
