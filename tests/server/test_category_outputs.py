"""Renaming or merging a category carries into the trained model's outputs at once, on the real H&E slide: with
no new round, agreement with the model, the predictions overlay and annotation, suggestions and the recorded rounds
all name the project's categories as they are now."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')

SEED_NAMES = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'lumen'}
"""The demo's stain-based seed categories as this project's: three that train."""


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


@pytest.fixture
def trained(server, project, admin, embedded_cmu, cmu_svs):
    """The project with a trained category ``lumen`` added, the demo's seed labels (5 per category) and one round,
    its segment image and annotations published."""
    from histomics_label.devtools.cli_demo import seed_labels
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.jobs.rankings import wait_for_rankings
    from histomics_label.projects import folders, publishing

    config = folders.config_of(project['folder'])
    folders.save_config(project['folder'], {'categories': [*config['categories'],
                                                           {'name': 'lumen', 'color': '#4cc9f0'}]})
    segment_jobs.publish_segment_image(project['folder'], project['item'])
    document = seed_labels(str(embedded_cmu), str(cmu_svs), 5)
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': int(s), 'category': SEED_NAMES[c]}
                       for s, c in document['labels'].items()], 'view': 'guided'}
    assertStatusOk(server.request(_path(project, '/labels'), method='PUT', user=admin, type='application/json',
                                  body=json.dumps(body)))
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    wait_for_rankings(project['folder']['_id'])  # and the functions ranked after the round
    publishing.wait_for_publishing(project['folder']['_id'])
    return project


def _outputs(server, project, user):
    """What the client shows of the model: agreement figures, the labels it agrees with, the predictions
    overlay, suggestions and the learning curve's rounds."""
    agreement = server.request(_path(project, '/agreement'), user=user)
    agreeing = server.request(_path(project, '/labels'), user=user, params={'disagree': 'false', 'limit': 0})
    overlay = server.request(_path(project, '/overlay'), user=user, isJson=False,
                             params={'item': str(project['item']['_id']), 'kind': 'predictions'})
    suggestions = server.request(_path(project, '/suggestions'), user=user, params={'limit': 20})
    rounds = server.request(_path(project, '/rounds'), user=user)
    for response in (agreement, agreeing, overlay, suggestions, rounds):
        assertStatusOk(response)
    return {'agreement': agreement.json['labelsVsModel'],
            'agreeing': {(label['segment'], label['category']) for label in agreeing.json},
            'overlay': np.frombuffer(b''.join(overlay.body), np.uint8),
            'suggestions': suggestions.json, 'rounds': rounds.json['rounds']}


def _latest_round(project):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects.folders import store_path

    with SlideStore(store_path(project['folder'], project['item'])) as store:
        return store.latest_round()


def _published_predictions(project):
    """The category names of the slide's published predictions annotation, once publishing is done."""
    from girder_large_image_annotation.models.annotation import Annotation

    from histomics_label.projects import publishing

    publishing.wait_for_publishing(project['folder']['_id'])
    found = publishing.published_annotation(project['item'], 'predictions')
    annotation = Annotation().load(found['_id'], force=True)
    return [c['label'] for c in annotation['annotation']['elements'][0]['categories']]


def _suggested_names(suggestions):
    return {s['predicted'] for s in suggestions} | {name for s in suggestions for name in s['probabilities']}


def _stored_rankings(project) -> dict[str, list[int]]:
    """The rankings stored for the project's stores as they are now: function -> ranked segment rows."""
    from histomics_label.core.acquisition import ranking_store
    from histomics_label.projects.round_categories import _ranking_key

    directory, key = _ranking_key(project['folder'])
    found = {}
    for certainty in ('confidence', 'margin', 'negative_entropy', 'batchbald', 'coreset'):
        ranking = ranking_store.load(directory, key, certainty)
        if ranking is not None:
            found[certainty] = ranking.rows.tolist()
    return found


def test_a_rename_leaves_every_view_of_the_model_as_it_was(server, trained, admin, user):
    rankings = _stored_rankings(trained)
    assert {'confidence', 'batchbald'} <= set(rankings)  # the round stored them
    before = _outputs(server, trained, user)
    assert before['agreement']['agreement'] > 0.5 and any(c == 'stroma' for _, c in before['agreeing'])
    assert 'stroma' in _published_predictions(trained)
    renamed = server.request(_path(trained, '/categories/rename'), method='POST', user=admin,
                             params={'old': 'stroma', 'new': 'connective tissue'})
    assertStatusOk(renamed)
    assert renamed.json['rounds'] == 1
    # the stored rankings hold for the changed stores: no request ranks again (BatchBALD's CNN samples in the server)
    assert _stored_rankings(trained) == rankings
    after = _outputs(server, trained, user)
    assert [(s['item'], s['segment']) for s in after['suggestions']] == [(s['item'], s['segment'])
                                                                        for s in before['suggestions']]
    # agreement with the model and kappa, as before: the renamed labels agree where they did
    assert after['agreement'] == before['agreement']
    assert after['agreeing'] == {(s, 'connective tissue' if c == 'stroma' else c) for s, c in before['agreeing']}
    # the predictions overlay, pixel for pixel (it indexes the project's categories, whose order the rename keeps)
    np.testing.assert_array_equal(after['overlay'], before['overlay'])
    # suggestions name only categories the project has
    names = {c['name'] for c in renamed.json['config']['categories']}
    assert _suggested_names(after['suggestions']) <= names and 'connective tissue' in _suggested_names(
        after['suggestions'])
    # the round's own record, the published annotation and the learning curve say the new name
    assert [c['name'] for c in _latest_round(trained).categories] == ['tumor', 'connective tissue', 'background',
                                                                      'lumen']
    assert 'connective tissue' in _published_predictions(trained) and 'stroma' not in _published_predictions(trained)
    per_class = before['rounds'][-1]['perClass']
    per_class['connective tissue'] = per_class.pop('stroma')
    assert len(after['rounds']) == 1 and after['rounds'][-1]['perClass'] == per_class
    assert after['rounds'][-1]['slides'] == {str(trained['item']['_id']): _latest_round(trained).number}


def test_a_merge_sums_the_probabilities_and_keeps_every_agreement(server, trained, admin, user):
    stored = _latest_round(trained)
    names = [c['name'] for c in stored.categories]
    before = _outputs(server, trained, user)
    merged = server.request(_path(trained, '/categories/merge'), method='POST', user=admin,
                            params={'source': 'lumen', 'target': 'stroma'})
    assertStatusOk(merged)
    record = _latest_round(trained)
    assert [c['name'] for c in record.categories] == ['tumor', 'stroma', 'background']
    np.testing.assert_allclose(record.probabilities[:, 1], stored.probabilities[:, names.index('stroma')]
                               + stored.probabilities[:, names.index('lumen')], atol=1e-6)
    np.testing.assert_array_equal(record.probabilities[:, 0], stored.probabilities[:, names.index('tumor')])
    after = _outputs(server, trained, user)
    # every label the model agreed with still agrees: a lumen call is now a stroma call, as are lumen's labels
    moved = {(s, 'stroma' if c == 'lumen' else c) for s, c in before['agreeing']}
    assert moved <= after['agreeing'] and any(c == 'lumen' for _, c in before['agreeing'])
    assert after['agreement']['agreement'] >= before['agreement']['agreement']
    # the overlay shows the merged model's call of every segment, in the project's categories as they are now
    project_index = {c['name']: k + 1 for k, c in enumerate(merged.json['config']['categories'])}
    trained_classes = record.model_params['classes']
    calls = np.asarray(trained_classes)[record.probabilities[:, trained_classes].argmax(axis=1)]
    assert after['overlay'][1:].tolist() == [project_index[record.categories[c]['name']] for c in calls]
    assert _suggested_names(after['suggestions']) <= {'tumor', 'stroma'}
    assert 'lumen' not in _published_predictions(trained)
    assert after['rounds'][-1]['perClass'] == {
        'tumor': before['rounds'][-1]['perClass']['tumor'],
        'stroma': before['rounds'][-1]['perClass']['stroma'] + before['rounds'][-1]['perClass']['lumen']}


def test_a_rename_while_a_round_trains_asks_for_one_more_round(server, trained, admin):
    from histomics_label.models.training_state import TrainingState

    folder_id = trained['folder']['_id']
    assert TrainingState().acquire(folder_id)  # a round runs: it read the labels under the old name
    assertStatusOk(server.request(_path(trained, '/categories/rename'), method='POST', user=admin,
                                  params={'old': 'tumor', 'new': 'carcinoma'}))
    assert TrainingState().state(folder_id) == {'running': True, 'pending': True, 'labelsSince': 0}
    assert TrainingState().next_or_release(folder_id) is True  # the worker trains again, under the new name
