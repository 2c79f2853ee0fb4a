"""GET routes a reader can call are served from what the round stored: suggestions from its ranking, /similar from
the retrieval index; nothing per request draws posterior samples, concatenates embeddings or builds an index."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatusOk

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, labels):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels], 'view': 'guided'}
    response = server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                              body=json.dumps(body))
    assertStatusOk(response)


@pytest.fixture
def trained(server, project, admin, embedded_cmu, cmu_svs):
    """The project with the demo's seed labels and one round (BatchBALD, no audit picks, so the stored order is the
    whole answer)."""
    from histomics_label.devtools.cli_demo import seed_labels
    from histomics_label.jobs.rankings import wait_for_rankings
    from histomics_label.projects import folders

    folders.save_config(project['folder'], {'auditEvery': 0, 'certainty': 'batchbald'})
    document = seed_labels(str(embedded_cmu), str(cmu_svs), 5)
    names = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
    seeds = [(int(segment), names[category]) for segment, category in document['labels'].items()]
    _label(server, project, admin, seeds)
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    wait_for_rankings(project['folder']['_id'])  # and the functions ranked after the round
    return seeds


def _stored(project, certainty):
    """The ranking the round stored for ``certainty``, as (segment, strategy) pairs (the project has one slide)."""
    from girder.models.folder import Folder

    from histomics_label.core.acquisition import ranking_store
    from histomics_label.core.acquisition.suggestions import MC_SAMPLES
    from histomics_label.projects import folders
    from histomics_label.projects.segmented import rankings_folder

    folder = Folder().load(project['folder']['_id'], force=True)
    config = folders.config_of(folder)
    path = str(folders.store_path(folder, project['item']))
    key = ranking_store.fingerprint([path], config['seed'], config['extractor'], MC_SAMPLES, config['batchSize'])
    ranking = ranking_store.load(rankings_folder(folder), key, certainty)
    assert ranking is not None, f'the round stored no {certainty} ranking'
    return [(int(row) + 1, ranking.function) for row in ranking.rows]


def _forbid_ranking_on_request(monkeypatch):
    from histomics_label.core.acquisition import suggestions

    def forbidden(*args, **kwargs):
        raise AssertionError('a GET ranked by itself')

    for name in ('sample_all', '_stored_embeddings', 'function_context', 'near_excluded'):
        monkeypatch.setattr(suggestions, name, forbidden)


def test_suggestions_after_a_round_are_the_stored_ranking(server, project, admin, user, trained, monkeypatch):
    stored = {certainty: _stored(project, certainty) for certainty in ('batchbald', 'coreset', 'margin')}
    assert len(stored['batchbald']) >= 10 and len(stored['margin']) > 64
    _forbid_ranking_on_request(monkeypatch)
    for certainty, ranking in stored.items():
        from histomics_label.projects import folders

        folders.save_config(project['folder'], {'certainty': certainty})
        response = server.request(_path(project, '/suggestions'), user=user, params={'limit': 10})
        assertStatusOk(response)
        assert [(s['segment'], s['strategy']) for s in response.json] == ranking[:10], certainty


def test_labeling_a_suggestion_takes_it_out_of_the_next_get_without_a_round(server, project, admin, user, trained,
                                                                             monkeypatch):
    from histomics_label.models.round import Round

    stored = [segment for segment, _ in _stored(project, 'batchbald')]
    _forbid_ranking_on_request(monkeypatch)
    first = server.request(_path(project, '/suggestions'), user=user, params={'limit': 8}).json
    assert [s['segment'] for s in first] == stored[:8]
    item = str(project['item']['_id'])
    for suggestion in first:  # each card carries its segment's outline, as the segment route traces it
        place = server.request(_path(project, f'/slide/{item}/segment/{suggestion["segment"]}'), user=user).json
        for key in ('region', 'outline', 'thumbnailRegion', 'thumbnail'):
            assert suggestion[key] == place[key], key
    _label(server, project, admin, [(first[0]['segment'], first[0]['predicted']),
                                    (first[3]['segment'], first[3]['predicted'])])
    again = server.request(_path(project, '/suggestions'), user=user, params={'limit': 8}).json
    assert [s['segment'] for s in again] == [s for s in stored if s not in (stored[0], stored[3])][:8]
    assert Round().collection.count_documents({'project': project['folder']['_id']}) == 1


def test_similar_answers_from_the_stored_index_as_an_exact_search(server, project, user, trained, monkeypatch):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    path = folders.store_path(project['folder'], project['item'])
    assert any(p.name.endswith('.npy') for p in (path.parent / f'{path.name}.index').iterdir())  # the round built it
    with SlideStore(path) as store:
        vectors = store.features('efficientnet_lite0').astype(np.float64)
    labeled = {segment for segment, _ in trained}
    example = trained[0][0]

    def forbidden(*args, **kwargs):
        raise AssertionError('a GET read every feature vector')

    monkeypatch.setattr(SlideStore, 'features', forbidden)  # nor could it build an index
    response = server.request(_path(project, '/similar'), user=user,
                              params={'item': str(project['item']['_id']), 'segments': json.dumps([example]),
                                      'limit': 15})
    assertStatusOk(response)
    # ground truth: cosine distances over the stored vectors, the labeled segments left out
    normalised = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    distances = 1 - normalised @ normalised[example - 1]
    order = [row + 1 for row in np.lexsort((np.arange(len(distances)), np.round(distances, 6)))
             if row + 1 not in labeled]
    assert [f['segment'] for f in response.json] == order[:15]
    np.testing.assert_allclose([f['distance'] for f in response.json], distances[np.array(order[:15]) - 1],
                               atol=1e-5)


def test_a_round_ranks_the_projects_function_and_queues_the_joint_ones_as_a_job(server, project, admin,
                                                                                  embedded_cmu, cmu_svs):
    """A round ranks the project's function (here Coreset) and the functions that score segments alone; the other
    joint ones are a job of their own after it, and what it stores is what ranking them directly gives."""
    from girder.models.folder import Folder
    from girder_jobs.constants import JobStatus
    from girder_jobs.models.job import Job

    from histomics_label.core.acquisition import ranking_store
    from histomics_label.core.acquisition.base import JointAcquisition, acquisition_functions
    from histomics_label.core.acquisition.suggestions import MC_SAMPLES
    from histomics_label.devtools.cli_demo import seed_labels
    from histomics_label.jobs.rankings import JOB_TYPE, wait_for_rankings
    from histomics_label.projects import folders
    from histomics_label.projects.segmented import segmented_slides

    folders.save_config(project['folder'], {'auditEvery': 0, 'certainty': 'coreset'})
    document = seed_labels(str(embedded_cmu), str(cmu_svs), 5)
    names = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
    _label(server, project, admin, [(int(s), names[c]) for s, c in document['labels'].items()])
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    in_round = ranking_store.ranked_in_round('coreset')
    after = ranking_store.ranked_after_round('coreset')
    joint = {name for name in acquisition_functions.names()
             if issubclass(acquisition_functions.get(name), JointAcquisition)}
    assert in_round[0] == 'coreset' and set(in_round) - {'coreset'} == set(acquisition_functions.names()) - joint
    assert sorted(in_round + after) == sorted(acquisition_functions.names()) and after[0] == 'batchbald'
    for certainty in in_round:  # stored when the round was recorded
        assert _stored(project, certainty)
    jobs = [Job().load(job['_id'], force=True) for job in Job().find({'type': JOB_TYPE})]  # loading parses kwargs
    assert len(jobs) == 1 and jobs[0]['kwargs']['functions'] == after
    wait_for_rankings(project['folder']['_id'])
    assert Job().load(jobs[0]['_id'], force=True)['status'] == JobStatus.SUCCESS

    folder = Folder().load(project['folder']['_id'], force=True)
    config = folders.config_of(folder)
    slides, _, rep = segmented_slides(folder, config)
    stores = [(str(path), labels) for _, path, labels in slides]
    for certainty in after:  # the job's ranking is the one computed here from the same round
        expected = ranking_store.compute(stores, certainty, config['seed'], rep, config['extractor'], MC_SAMPLES,
                                         config['batchSize'])
        assert _stored(project, certainty) == [(int(row) + 1, expected.function) for row in expected.rows], certainty
