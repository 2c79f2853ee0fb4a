"""Suggestions served from the ranking a round stored: the same answer as ranking on request, what changed since
taken into account without a new round, and a request's memory bounded by the segments, not by their embeddings or
posterior samples."""

import tracemalloc

import numpy as np
import pytest

from histomics_label.core.acquisition import acquisition_functions, ranking_store, served, suggestions
from histomics_label.core.acquisition.suggestions import MC_SAMPLES, suggest_across
from histomics_label.core.io.labels import Category, LabelSet, labels_from_document
from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore, append_round
from histomics_label.core.models import models
from histomics_label.core.pipeline import PipelineConfig, model_options, representation
from histomics_label.core.rounds import train_slides_round
from histomics_label.core.segments import SegmentTable
from histomics_label.devtools.cli_demo import seed_labels

FAST = {'magnification': 5, 'radius': 10, 'patch_size': 48, 'workers': 1, 'tile_size': 256}
KEY = 'efficientnet_lite0'


@pytest.fixture(scope='module')
def project(cmu_svs, embedded_cmu, tmp_path_factory):
    """Two copies of the embedded H&E sample, the demo's seed labels split between them, one linear round, and the
    rankings that round stores."""
    folder = tmp_path_factory.mktemp('ranked')
    first, second = folder / 'a.h5', folder / 'b.h5'
    first.write_bytes(embedded_cmu.read_bytes())
    second.write_bytes(embedded_cmu.read_bytes())
    labels = labels_from_document(seed_labels(str(embedded_cmu), str(cmu_svs), 5))
    halves = [LabelSet(labels.categories, labels.segment_ids[part::2], labels.category_index[part::2])
              for part in (0, 1)]
    config = PipelineConfig(slide=str(cmu_svs), store=str(first), **FAST)
    rep = representation(config)
    slides = [(str(first), halves[0]), (str(second), halves[1])]
    train_slides_round(slides, rep, 'linear', model_options(config))
    directory = folder / 'rankings'
    failed = ranking_store.store_rankings(directory, slides, 0, rep, KEY, MC_SAMPLES, batch=8)
    return {'slides': slides, 'rep': rep, 'directory': directory, 'failed': failed}


def _served(project, certainty, count, slides=None):
    return served.served_suggestions(project['directory'], slides or project['slides'], certainty, count,
                                     rep=project['rep'], embedding_key=KEY, batch=8)


def _segments(found):
    return [(s['slide'], s['segment']) for s in found]


def test_every_function_serves_what_ranking_on_request_gives(project):
    assert project['failed'] == {}
    for certainty in acquisition_functions.names():
        expected = suggest_across(project['slides'], certainty, 8, rep=project['rep'], embedding_key=KEY)
        assert _served(project, certainty, 8) == expected, certainty


def test_a_served_request_draws_no_samples_and_reads_no_embeddings(project, monkeypatch):
    expected = {certainty: _served(project, certainty, 8) for certainty in ('batchbald', 'coreset', 'entropy_diverse')}

    def forbidden(*args, **kwargs):
        raise AssertionError('a served request ranked by itself')

    monkeypatch.setattr(suggestions, 'sample_all', forbidden)
    monkeypatch.setattr(suggestions, '_stored_embeddings', forbidden)
    monkeypatch.setattr(suggestions, 'function_context', forbidden)
    for certainty, found in expected.items():
        assert _served(project, certainty, 8) == found


def test_batchbald_without_a_stored_ranking_waits_for_the_round_at_random(project, tmp_path, monkeypatch):
    """No stored ranking for the stores as they are now (a slide re-segmented, a project of before stored rankings):
    a request never draws BatchBALD's posterior samples itself; its batch is drawn at random, saying why, from the
    unlabeled segments; functions that score segments alone still rank from the round's probabilities."""
    def forbidden(*args, **kwargs):
        raise AssertionError('a request drew posterior samples')

    monkeypatch.setattr(suggestions, 'sample_all', forbidden)
    empty = tmp_path / 'no-rankings'
    found = served.served_suggestions(empty, project['slides'], 'batchbald', 8, rep=project['rep'],
                                      embedding_key=KEY, batch=8)
    assert len(found) == 8
    ranked = [s for s in found if s['strategy'] != 'audit']
    assert ranked and {s['strategy'] for s in ranked} == {suggestions.AWAITING_ROUND}
    assert all(s['reason'] == suggestions.REASONS[suggestions.AWAITING_ROUND] for s in ranked)
    labeled = {(k, int(s)) for k, (_, labels) in enumerate(project['slides']) for s in labels.segment_ids}
    assert not labeled & set(_segments(found))
    assert not list(empty.glob('*.npz'))  # nothing stored: the next round ranks
    margin = served.served_suggestions(empty, project['slides'], 'margin', 8, rep=project['rep'], embedding_key=KEY,
                                       batch=8)
    assert {s['strategy'] for s in margin} <= {'margin', 'audit'}


def test_batchbald_batches_follow_the_greedy_order_over_the_round(project):
    """Labeling a batch and asking again (no new round) gives the next picks of the round's greedy BatchBALD run,
    which were chosen given the first batch's labels: the same as one batch of 16 ranked on request."""
    first = _served(project, 'batchbald', 8)
    whole = suggest_across(project['slides'], 'batchbald', 16, rep=project['rep'], embedding_key=KEY)
    assert _segments(first) == _segments(whole)[:8]
    slides = _labeled(project['slides'], _segments(first))
    second = _served(project, 'batchbald', 8, slides)
    assert _segments(second) == _segments(whole)[8:]
    assert all(s['strategy'] == 'batchbald' for s in second)


def _labeled(slides, picks, category=0):
    """``slides`` with the picked ``(slide, segment)`` labeled with category index ``category``."""
    result = []
    for position, (path, labels) in enumerate(slides):
        extra = [segment for slide, segment in picks if slide == position]
        ids = np.concatenate([labels.segment_ids, extra]).astype(np.int64)
        categories = np.concatenate([labels.category_index, np.full(len(extra), category)]).astype(np.int64)
        result.append((path, LabelSet(labels.categories, ids, categories)))
    return result


def test_labeling_a_suggestion_takes_it_out_of_the_next_request_without_a_round(project):
    for certainty in ('margin', 'coreset', 'batchbald'):
        before = _served(project, certainty, 8)
        after = _served(project, certainty, 8, _labeled(project['slides'], _segments(before)[:1]))
        assert _segments(after)[:7] == _segments(before)[1:], certainty
        assert _segments(before)[0] not in _segments(after)


def test_a_ranking_that_runs_out_is_completed_by_the_function(project):
    """Past the stored depth, a function that scores segments alone goes on from the round's probabilities: the
    whole answer is the ranking of every candidate, as on request."""
    everything = suggest_across(project['slides'], 'margin', 1000, rep=project['rep'], embedding_key=KEY)
    assert len(everything) > ranking_store.DEPTH
    assert _served(project, 'margin', 1000) == everything


def test_an_excluded_label_since_the_round_takes_its_near_duplicates_out(project):
    slides = project['slides']
    before = set(_segments(_served(project, 'margin', 1000)))
    marked = sorted(before)[len(before) // 3]
    artifact = Category('artifact', '#000000', excluded=True)
    changed = []
    for position, (path, labels) in enumerate(slides):
        ids, indexes = list(labels.segment_ids), list(labels.category_index)
        if position == marked[0]:
            ids.append(marked[1])
            indexes.append(len(labels.categories))
        changed.append((path, LabelSet(list(labels.categories) + [artifact], ids, indexes)))
    after = set(_segments(_served(project, 'margin', 1000, changed)))
    # ground truth: the marked segment's nearest segments by cosine over both slides' stored embeddings
    vectors = []
    for path, _ in slides:
        with SlideStore(path) as store:
            vectors.append(store.features(KEY).astype(np.float64))
    counts = [len(v) for v in vectors]
    vectors = np.concatenate(vectors)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    offset = sum(counts[:marked[0]])
    count = int(min(suggestions.MAX_NEAR_DUPLICATES, max(1, round(suggestions.NEAR_DUPLICATE_SHARE * len(vectors)))))
    nearest = np.argsort(-(vectors @ vectors[offset + marked[1] - 1]), kind='stable')[:count + 1]
    truth = {(int(np.searchsorted(np.cumsum(counts), row, side='right')),
              int(row - np.concatenate([[0], np.cumsum(counts)])[np.searchsorted(np.cumsum(counts), row,
                                                                                 side='right')]) + 1)
             for row in nearest}
    assert marked in truth and len(truth) == count + 1
    assert before - after == truth & before and after <= before


# -- memory on a project of many segments ---------------------------------------------------------------------------

SEGMENTS, DIM = 20_000, 256
"""Per slide, two slides: 40,000 segments whose embeddings (41 MB as float32) are more than twice what a served
request may hold."""
FUNCTIONS = ('batchbald', 'entropy_diverse', 'margin')


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    """Two stores of ``SEGMENTS`` synthetic segments in two clusters of embeddings, a linear round on 40 labels, and
    the stored rankings of a function that reads embeddings, one that draws posterior samples and one that scores
    segments alone (Coreset, whose round costs a pass per pick, is left to the tests on the real slide)."""
    folder = tmp_path_factory.mktemp('many')
    rng = np.random.default_rng(3)
    categories = [Category('tumor', '#ff0000'), Category('stroma', '#00ff00')]
    model = models.create('linear', seed=0)
    slides, features = [], []
    for name in ('a', 'b'):
        classes = rng.integers(0, 2, SEGMENTS)
        vectors = (rng.normal(size=(SEGMENTS, DIM)) + 2.0 * classes[:, None]).astype(np.float32)
        path = folder / f'{name}.h5'
        info = SlideInfo(path=name, base_width=4000, base_height=4000, base_magnification=20.0, magnification=5.0,
                         scale=4.0, width=1000, height=1000)
        corners = rng.integers(0, 990, (SEGMENTS, 2))
        with SlideStore.create(path, info, {'source': 'synthetic'}) as writer:
            writer.write_segments(SegmentTable(bbox=np.concatenate([corners, corners + 10], axis=1),
                                               centroid=corners + 5.0, area=np.full(SEGMENTS, 100)))
            writer.write_features(KEY, vectors, {'name': KEY, 'dim': DIM})
        labeled = np.concatenate([np.flatnonzero(classes == c)[:10] for c in (0, 1)])
        slides.append((str(path), LabelSet(categories, labeled + 1, classes[labeled])))
        features.append((vectors[labeled], classes[labeled]))
    model.fit(np.concatenate([f for f, _ in features]), np.concatenate([c for _, c in features]), 2)
    params = {**model.params(), 'representation': f'features/{KEY}', 'classes': [0, 1]}
    for (path, labels) in slides:
        with SlideStore(path) as store:
            probabilities = model.predict_proba(store.features(KEY))
        append_round(path, categories=[c.as_dict() for c in categories], label_ids=labels.segment_ids,
                     label_categories=labels.category_index, probabilities=probabilities, model_name='linear',
                     model_params=params, model_state=model.state(), metrics={})
    rep = representation(PipelineConfig(slide='synthetic', store=slides[0][0]))
    directory = folder / 'rankings'
    for certainty in FUNCTIONS:
        ranking_store.ranking_for(directory, slides, certainty, 0, rep, KEY, 4, batch=8)
    return {'slides': slides, 'rep': rep, 'directory': directory}


def _peak(call) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_served_request_on_many_segments_stays_under_the_documented_bound(synthetic):
    total = 2 * SEGMENTS
    bound = served.BYTES_PER_SEGMENT * total + served.FIXED_BYTES
    embeddings = total * DIM * 4
    assert bound < embeddings / 2  # the bound would catch a request that concatenated the embeddings
    for certainty in FUNCTIONS:
        found, peak = _peak(lambda c=certainty: served.served_suggestions(
            synthetic['directory'], synthetic['slides'], c, 20, rep=synthetic['rep'], embedding_key=KEY,
            mc_samples=4, audit_keys=['a', 'b'], batch=8))
        assert len(found) == 20 and found[-1]['strategy'] == 'audit'
        assert peak < bound, f'{certainty}: {peak / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB'


def test_an_excluded_label_since_the_round_costs_one_chunked_search(synthetic):
    slides = synthetic['slides']
    path, labels = slides[0]
    artifact = Category('artifact', '#000000', excluded=True)
    marked = int(np.setdiff1d(np.arange(1, 200), labels.segment_ids)[0])
    changed = [(path, LabelSet(list(labels.categories) + [artifact], np.append(labels.segment_ids, marked),
                               np.append(labels.category_index, 2))), slides[1]]
    found, peak = _peak(lambda: served.served_suggestions(synthetic['directory'], changed, 'margin', 20,
                                                          embedding_key=KEY, mc_samples=4, batch=8))
    assert len(found) == 20 and (0, marked) not in _segments(found)
    assert peak < served.BYTES_PER_SEGMENT * 2 * SEGMENTS + served.FIXED_BYTES


def test_readers_arriving_together_compute_a_missing_ranking_once(project, tmp_path, monkeypatch):
    """Before the first round (or after a change of the slides) the first request computes the ranking; requests
    arriving meanwhile wait for it and read it instead of each holding the embeddings or samples."""
    import threading

    computed = []
    real = ranking_store.compute

    def counted(*args, **kwargs):
        computed.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(ranking_store, 'compute', counted)
    answers = []

    def request():
        answers.append(served.served_suggestions(tmp_path / 'fresh', project['slides'], 'coreset', 8,
                                                 rep=project['rep'], embedding_key=KEY, batch=8))

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert computed == ['coreset'] and len(answers) == 4
    assert all(answer == answers[0] for answer in answers)
    assert answers[0] == suggest_across(project['slides'], 'coreset', 8, rep=project['rep'], embedding_key=KEY)
