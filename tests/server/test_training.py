"""Suggestions and training rounds over REST: the round loop on the real H&E slide, queued rounds, failures."""

import json

import numpy as np
import pytest
from pytest_girder.assertions import assertStatus, assertStatusOk

from histomics_label.core.acquisition.suggestions import DEFAULT_FUNCTION

pytestmark = pytest.mark.plugin('histomics_label')


def _path(project, suffix=''):
    return f'/histomics_label/project/{project["folder"]["_id"]}{suffix}'


def _label(server, project, user, labels):
    item = str(project['item']['_id'])
    body = {'labels': [{'item': item, 'segment': s, 'category': c} for s, c in labels], 'view': 'guided'}
    response = server.request(_path(project, '/labels'), method='PUT', user=user, type='application/json',
                              body=json.dumps(body))
    assertStatusOk(response)
    return response.json


@pytest.fixture
def seeded(project, admin, embedded_cmu, cmu_svs):
    """The project with the demo's stain-based seed labels (5 per category) written by admin."""
    from histomics_label.devtools.cli_demo import seed_labels

    document = seed_labels(str(embedded_cmu), str(cmu_svs), 5)
    names = {'cellular': 'tumor', 'stroma': 'stroma', 'lumen/fat': 'background'}
    return [(int(segment), names[category]) for segment, category in document['labels'].items()]


def _audited(project, seeded) -> list[tuple[int, str]]:
    """The labels ``seeded`` that are the audit sample's labeled prefix: the sample is drawn per project and slide
    id, which differ from run to run, so a seed label or a suggestion of the function may be one of them."""
    from histomics_label.core.acquisition.suggestions import audited_labels
    from histomics_label.core.io.labels import Category, LabelSet
    from histomics_label.jobs.rounds import audit_keys
    from histomics_label.projects import folders

    names = sorted({category for _, category in seeded})
    ordered = sorted(seeded)
    labels = LabelSet([Category(name, '#000000') for name in names], [s for s, _ in ordered],
                      [names.index(c) for _, c in ordered])
    store = str(folders.store_path(project['folder'], project['item']))
    [audited] = audited_labels([(store, labels)], audit_keys(project['folder'], [project['item']]))
    return [(s, c) for s, c in ordered if s in set(audited.tolist())]


def _unlabeled_members(project, labeled: set[int]) -> int:
    """How many segments of the audit sample are not ``labeled``: on a slide of 240 segments the sample (one in
    20) is sometimes only 2 or 3 segments, fewer than a batch's share of audit suggestions."""
    from histomics_label.core.acquisition import audit
    from histomics_label.core.acquisition.suggestions import slide_parts
    from histomics_label.core.io.labels import LabelSet
    from histomics_label.jobs.rounds import audit_keys
    from histomics_label.projects import folders

    store = str(folders.store_path(project['folder'], project['item']))
    [part] = slide_parts([(store, LabelSet([], [], []))])
    [key] = audit_keys(project['folder'], [project['item']])
    members = audit.queue([audit.AuditSlide(key, part.labeled, ~part.slivers)])
    return sum(int(row) + 1 not in labeled for _, row in members)


def test_label_train_suggest_loop(server, project, admin, seeded):
    # before any model the project's function (an uncertainty measure) cannot rank: the cold start does, by itself
    cold = server.request(_path(project, '/suggestions'), user=admin)
    assertStatusOk(cold)
    # ... and the last card is the audit sample's (one label in auditEvery = 10: ceil(8 / 10) = 1)
    assert len(cold.json) == 8 and [s['strategy'] for s in cold.json] == ['kmeans_cold_start'] * 7 + ['audit']
    assert all(s['predicted'] is None and s['reason'].startswith('typical of a group') for s in cold.json[:7])
    assert cold.json[7]['reason'].startswith('drawn at random to check the model')
    assert len({s['segment'] for s in cold.json}) == 8
    _label(server, project, admin, seeded)
    trained = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    assertStatusOk(trained)
    assert trained.json['status'] == 'started'
    first = trained.json['round']
    assert first['number'] == 1 and first['labelsUsed'] == 8  # the 4 'background' labels are excluded
    assert set(first['perClass']) == {'tumor', 'stroma'}
    from girder_jobs.models.job import Job

    job = Job().load(trained.json['job'], force=True, includeLog=True)
    assert job['status'] == 3 and 'Round 1' in job['log'][-1] and 'cross-validated balanced accuracy' in job['log'][-1]
    accuracy = first['accuracy']  # cross-validation over the 8 labels (4 folds: 4 per class), with its interval
    assert accuracy['labels'] == 8 and accuracy['folds'] == 4
    assert 0 <= accuracy['low'] < accuracy['high'] <= 1 and 0 <= accuracy['balancedAccuracy'] <= 1
    suggestions = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 10})
    assertStatusOk(suggestions)
    picked = suggestions.json
    assert len(picked) == 10 and {s['predicted'] for s in picked} <= {'tumor', 'stroma'}
    audits = [s for s in picked if s['strategy'] == 'audit']  # 18 labels + 10 = 28: ceil(28 / 10) = 3 audited
    audited_before = _audited(project, seeded)  # usually none: then all 3 are suggested now, if the sample has 3
    expected = min(3 - len(audited_before), _unlabeled_members(project, {s for s, _ in seeded}))
    assert len(audits) == expected and picked[len(picked) - len(audits):] == audits
    assert all(s['reason'].startswith('drawn at random') and s['predicted'] for s in audits)
    for suggestion in picked[:len(picked) - len(audits)]:  # ranked by the project's function now, with its reason
        top, second = sorted(suggestion['probabilities'].values(), reverse=True)[:2]
        assert suggestion['strategy'] == DEFAULT_FUNCTION
        # in words that match the numbers: torn, or (BatchBALD, the default) the model's versions disagree
        assert suggestion['reason'].startswith('the model is torn between' if second >= 0.25 else
                                               'versions of the model that fit the labels equally well disagree')
        assert f'{suggestion["predicted"]}' in suggestion['reason'] and f'{round(top * 100)} %' in suggestion['reason']
    labeled = {s for s, _ in seeded}
    assert not {s['segment'] for s in picked} & labeled
    assert all(s['item'] == str(project['item']['_id']) and len(s['region']) == 4 for s in picked)
    # label the suggestions, retrain: the next suggestions are new segments, the curve has two points
    _label(server, project, admin, [(s['segment'], s['predicted']) for s in picked])
    server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    rounds = server.request(_path(project, '/rounds'), user=admin).json
    assert [r['labelsUsed'] for r in rounds['rounds']] == [8, 18]
    assert rounds['rounds'][1]['warmStart'] is True and rounds['state']['running'] is False
    trained_before = [s for s, c in audited_before if c != 'background']  # 'background' is excluded
    if not trained_before:
        assert rounds['rounds'][0]['auditAccuracy'] is None  # nothing of the audit sample was labeled yet
    assert rounds['rounds'][1]['labelingMinutes'] >= rounds['rounds'][0]['labelingMinutes'] >= 0
    audit = rounds['rounds'][1]['auditAccuracy']  # the 3 audit suggestions, labeled: out-of-fold, with an interval
    everything = seeded + [(s['segment'], s['predicted']) for s in picked]
    audited_now = [s for s, c in _audited(project, everything) if c != 'background']
    assert {s['segment'] for s in audits} <= set(audited_now)  # the audit suggestions, labeled, are in the sample
    assert audit['labels'] == len(audited_now) and 0 <= audit['low'] < audit['high'] <= 1
    assert 0 <= audit['balancedAccuracy'] <= 1
    calibration = rounds['rounds'][1]['calibration']
    assert calibration['temperature'] > 0 and calibration['labels'] == 18
    assert sum(b['count'] for b in calibration['calibrated']['bins']) == 18
    again = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 10}).json
    assert not {s['segment'] for s in again} & ({s['segment'] for s in picked} | labeled)


def test_labels_retrain_automatically_every_k(server, project, admin, seeded):
    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.models.round import Round
    from histomics_label.projects import folders

    folders.save_config(project['folder'], {'retrainEvery': 5})
    response = _label(server, project, admin, seeded)
    assert response['training']['status'] == 'started'
    round_jobs.wait_for_rounds(project['folder']['_id'])
    assert Round().collection.count_documents({'project': project['folder']['_id']}) == 1
    assert _label(server, project, admin, [(200, 'tumor')])['training'] is None  # 1 < 5 new labels


def test_a_round_asked_for_while_one_runs_is_queued_not_doubled(server, project, admin, seeded):
    from histomics_label.models.training_state import TrainingState

    _label(server, project, admin, seeded)
    assert TrainingState().acquire(project['folder']['_id'])  # as if a round were running
    queued = server.request(_path(project, '/train'), method='POST', user=admin)
    assert queued.json['status'] == 'queued' and queued.json['state']['pending'] is True
    assert TrainingState().next_or_release(project['folder']['_id']) is True  # the worker runs one more
    assert TrainingState().next_or_release(project['folder']['_id']) is False
    assert TrainingState().state(project['folder']['_id'])['running'] is False


def test_a_failed_round_leaves_the_previous_one(server, project, admin, seeded):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    _label(server, project, admin, seeded)
    server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    server.request(_path(project, '/labels'), method='DELETE', user=admin, type='application/json',
                   body=json.dumps({'labels': [{'item': str(project['item']['_id']), 'segment': s}
                                               for s, c in seeded if c == 'stroma']}))
    failed = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
    assert failed.json['round']['number'] == 1  # one trainable category left: no new round
    from girder_jobs.models.job import Job

    job = Job().load(failed.json['job'], force=True, includeLog=True)
    assert job['status'] == 4 and 'at least two categories' in job['log'][-1]
    with SlideStore(folders.store_path(project['folder'], project['item'])) as store:
        assert store.rounds() == [1]
    assertStatusOk(server.request(_path(project, '/suggestions'), user=admin))


def test_read_access_sees_but_cannot_train(server, project, user):
    assertStatus(server.request(_path(project, '/train'), method='POST', user=user), 403)
    assertStatusOk(server.request(_path(project, '/rounds'), user=user))
    assertStatus(server.request(_path(project, '/suggestions'), user=user, params={'limit': 0}), 400)


def test_a_cnn_round_trains_in_a_child_process(server, project, admin, seeded, cmu_svs):
    from histomics_label.core.io.store import SlideStore
    from histomics_label.core.pipeline import PipelineConfig, run_pipeline
    from histomics_label.projects import folders

    store = folders.store_path(project['folder'], project['item'])
    run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(store), magnification=5, radius=10, tile_size=256,
                                workers=1, feature='image', model='cnn_torch', patch_size=48))  # the patches
    folders.save_config(project['folder'], {'feature': 'image', 'model': 'cnn_torch', 'epochs': 2})
    _label(server, project, admin, seeded)
    trained = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}).json
    assert trained['round']['model'] == 'cnn_torch' and trained['round']['labelsUsed'] == 8
    with SlideStore(store) as reader:
        record = reader.latest_round()
    assert record.model_name == 'cnn_torch' and record.model_params['representation'] == 'patches/48'
    suggestions = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 5}).json
    assert len(suggestions) == 5 and {s['predicted'] for s in suggestions} <= {'tumor', 'stroma'}


def test_every_round_learns_from_its_new_labels(server, project, admin, seeded):
    """The labeler's loop through REST: each time, the ten suggested segments are labeled with the category the
    model thought least likely (an oracle that contradicts it), then a round is trained. Every round must move the
    model: its predictions differ from the previous round's, and it predicts most of the labels it was just given.
    (Warm-started rounds once kept the previous model whole when it scored best on a tiny held-out split.)"""
    from girder_jobs.models.job import Job

    from histomics_label.core.io.store import SlideStore
    from histomics_label.projects import folders

    _label(server, project, admin, seeded)
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    path = folders.store_path(project['folder'], project['item'])
    for number in (2, 3, 4):
        picked = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 10}).json
        contradicted = [(s['segment'], 'stroma' if s['predicted'] == 'tumor' else 'tumor') for s in picked]
        _label(server, project, admin, contradicted)
        trained = server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'})
        assertStatusOk(trained)
        assert trained.json['round']['number'] == number and trained.json['round']['modelUnchanged'] is False
        with SlideStore(path) as store:
            before, after = store.round(number - 1), store.round(number)
        names = [c['name'] for c in after.categories]
        changed = (before.probabilities.argmax(axis=1) != after.probabilities.argmax(axis=1)).sum()
        assert not np.allclose(before.probabilities, after.probabilities, atol=1e-4), f'round {number} ignored them'
        moved = trained.json['round']['predictionsChanged']
        assert moved['changed'] == changed > 0 and moved['maxShift'] > 0
        assert trained.json['round']['slideChanges'] == {str(project['item']['_id']): moved}  # the one slide: all
        log = Job().load(trained.json['job'], force=True, includeLog=True)['log'][-1]
        assert f'predictions changed on {changed} of ' in log and 'WARNING' not in log
        rows = np.array([segment for segment, _ in contradicted]) - 1
        agreed = sum(names[k] == category for k, (_, category) in zip(after.probabilities[rows].argmax(axis=1),
                                                                        contradicted, strict=True))
        assert agreed >= 7, f'round {number} predicts {agreed} of its 10 new labels'


def test_labels_written_while_segments_are_made_start_their_round_when_the_segments_are_done(
        server, project, admin, seeded, cmu_svs):
    """A second slide is being segmented: labels that reach ``retrainEvery`` meanwhile are told the round waits
    (it would find slides without features), and the segment job's end starts it."""
    from girder.models.upload import Upload
    from girder_jobs.models.job import Job

    from histomics_label.jobs import rounds as round_jobs
    from histomics_label.jobs import segments as segment_jobs
    from histomics_label.models.round import Round
    from histomics_label.projects import folders

    folders.save_config(project['folder'], {'retrainEvery': 5})
    with open(cmu_svs, 'rb') as handle:
        Upload().uploadFromFile(handle, cmu_svs.stat().st_size, f'second-{cmu_svs.name}', parentType='folder',
                                parent=project['folder'], user=admin)
    started = server.request(_path(project, '/segments'), method='POST', user=admin)
    assertStatusOk(started)
    [job] = [entry['job'] for entry in started.json if 'job' in entry]
    answer = _label(server, project, admin, seeded)  # the job's child is still starting: no slide is done
    assert answer['training'] == {'status': 'waiting',
                                  'message': 'A round starts once the project\'s segments are made.'}
    assert Round().collection.count_documents({'project': project['folder']['_id']}) == 0
    segment_jobs.wait_for_segment_jobs()
    log = ''.join(Job().load(job, force=True, includeLog=True)['log'])
    assert 'a round was started for the labels written meanwhile' in log
    round_jobs.wait_for_rounds(project['folder']['_id'])
    [trained] = Round().find({'project': project['folder']['_id']})
    assert trained['labelsUsed'] == len([s for s, c in seeded if c != 'background'])


def test_a_pending_card_is_ranked_as_labeled_so_the_early_row_is_the_later_one(server, project, admin, seeded):
    """The guided view asks for its next row while the labeler answers the row's last card, naming that card as
    pending: the row equals the server's answer once the card is labeled. The card here is the hard case, an audit
    member after the first unlabeled one, whose label moves the audit picks (asked for without ``pending``, one
    more suggestion and that card left out, the row would miss an audit pick or show another)."""
    _label(server, project, admin, seeded)
    assertStatusOk(server.request(_path(project, '/train'), method='POST', user=admin, params={'wait': 'true'}))
    ahead = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 60}).json
    audits = [s for s in ahead if s['strategy'] == 'audit']
    assert len(audits) >= 2, ahead
    card = audits[1]
    pending = json.dumps([{'item': card['item'], 'segment': card['segment']}])
    early = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 8, 'pending': pending})
    assertStatusOk(early)
    _label(server, project, admin, [(card['segment'], 'stroma')])
    later = server.request(_path(project, '/suggestions'), user=admin, params={'limit': 8})
    assertStatusOk(later)
    assert [(s['segment'], s['strategy']) for s in early.json] == [(s['segment'], s['strategy']) for s in later.json]
    assert card['segment'] not in {s['segment'] for s in early.json}
    assert 'audit' in {s['strategy'] for s in later.json}

    malformed = [[{'item': 'nope', 'segment': 3}], [{'item': card['item'], 'segment': 0}], {'a': 1}]
    for bad in map(json.dumps, malformed):
        assertStatus(server.request(_path(project, '/suggestions'), user=admin, params={'pending': bad}), 400)
