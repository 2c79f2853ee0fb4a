"""Training rounds through the pipeline: warm starts, merging categories without retraining, CNNs on patches."""

import json

import numpy as np
import pytest

from histomics_label.core.acquisition import acquisition_functions
from histomics_label.core.acquisition.suggestions import DEFAULT_FUNCTION, SLIVER_SHARE, suggest, suggest_across
from histomics_label.core.io.labels import Category, LabelSet, labels_from_document
from histomics_label.core.io.store import SlideStore
from histomics_label.core.pipeline import PipelineConfig, model_options, representation, run_pipeline
from histomics_label.core.rounds import merge_categories, prediction_change, round_model, train_slides_round
from histomics_label.devtools.cli_demo import seed_labels

FAST = {'magnification': 5, 'radius': 10, 'patch_size': 48, 'workers': 1, 'tile_size': 256}


@pytest.fixture(scope='module')
def embedded(cmu_svs, embedded_cmu):
    return embedded_cmu, seed_labels(str(embedded_cmu), str(cmu_svs), 5)


def _copy(store, tmp_path):
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    return copy


def test_second_round_warm_starts_from_the_first(cmu_svs, embedded, tmp_path):
    store, document = embedded
    store = _copy(store, tmp_path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), **FAST)
    first = run_pipeline(config, labels_from_document(document))
    assert first.metrics['training']['warm_start'] is False
    more = dict(document, labels=dict(document['labels']))
    extra = [s['segment'] for s in first.suggestions[:4]]
    for segment in extra:
        more['labels'][str(segment)] = 'stroma'
    second = run_pipeline(config, labels_from_document(more))
    assert second.round == first.round + 1
    assert second.metrics['training']['warm_start'] is True
    assert second.metrics['labels_used'] == first.metrics['labels_used'] + 4
    assert not set(extra) & {s['segment'] for s in second.suggestions}


def test_a_round_standardises_on_the_slides_segments_not_on_its_labels(cmu_svs, embedded, tmp_path):
    """The linear model's feature statistics are those of the slide's segments (all of them here: fewer than its
    sample), the same in every round whatever is labeled, so a label moves the model only through the loss."""
    store, document = embedded
    store = _copy(store, tmp_path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), **FAST)
    first = run_pipeline(config, labels_from_document(document))
    more = dict(document, labels=dict(document['labels']))
    for suggestion in first.suggestions[:6]:
        more['labels'][str(suggestion['segment'])] = 'cellular'
    second = run_pipeline(config, labels_from_document(more))
    with SlideStore(store) as opened:
        features = representation(config).load(opened, np.arange(opened.n_segments)).astype(np.float64)
        states = [opened.round(record.round).model_state for record in (first, second)]
    assert len(features) < 2048 and second.metrics['labels_used'] == first.metrics['labels_used'] + 6
    deviation = features.std(axis=0)
    deviation[deviation < 1e-8] = 1.0  # a constant feature is left unscaled
    for state in states:
        np.testing.assert_allclose(state['mean'], features.mean(axis=0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(state['scale'], deviation, rtol=1e-6, atol=1e-9)


def test_a_round_measures_how_its_predictions_moved(cmu_svs, embedded, tmp_path):
    """The share of segments whose prediction changed is the stopping signal; no change of any probability after
    new labels is the mark of a round that did not learn, which the round reports."""
    store, document = embedded
    store = _copy(store, tmp_path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), **FAST)
    first = run_pipeline(config, labels_from_document(document))
    assert 'predictions_changed' not in first.metrics  # nothing to compare with
    same = run_pipeline(config, labels_from_document(document))
    assert same.metrics['model_unchanged'] is False  # the same labels: nothing was asked of it
    assert same.metrics['predictions_changed']['changed'] == 0  # ... and the same labels give the same model
    # new labels of an excluded category only (an artifact marked): nothing to learn, so no change and no alarm
    seeded = labels_from_document(document)
    marked = [s['segment'] for s in first.suggestions[:3]]
    artifacts = LabelSet(seeded.categories + [Category('not classifiable', '#7f7f7f', True)],
                         np.r_[seeded.segment_ids, marked], np.r_[seeded.category_index, [3] * len(marked)])
    order = np.argsort(artifacts.segment_ids)
    artifacts = LabelSet(artifacts.categories, artifacts.segment_ids[order], artifacts.category_index[order])
    excluded = run_pipeline(config, artifacts)
    assert excluded.metrics['predictions_changed']['max_shift'] == 0 and excluded.metrics['model_unchanged'] is False
    more = dict(document, labels=dict(document['labels']))
    for suggestion in first.suggestions[:6]:
        more['labels'][str(suggestion['segment'])] = 'stroma'
    third = run_pipeline(config, labels_from_document(more))
    with SlideStore(store) as opened:
        before, after, n_segments = opened.round(same.round), opened.round(third.round), opened.n_segments
    moved = (before.probabilities.argmax(axis=1) != after.probabilities.argmax(axis=1)).sum()
    change = third.metrics['predictions_changed']
    assert change['changed'] == moved and change['segments'] == n_segments
    assert change['share'] == pytest.approx(moved / n_segments)
    assert change['max_shift'] == pytest.approx(np.abs(before.probabilities - after.probabilities).max())
    assert change['max_shift'] > 0 and third.metrics['model_unchanged'] is False
    # a round whose probabilities equal the previous round's although its labels changed is flagged
    assert prediction_change(before, [Category(**c) for c in before.categories],
                             before.probabilities)['max_shift'] == 0


def test_slivers_are_never_suggested(cmu_svs, embedded, tmp_path):
    """Slivers (under a tenth of the median segment) are not worth an expert's look. Superpixels no longer make any
    (small pieces join a neighbour at segmentation); a user's own polygons can: asked to rank every segment of such a
    store, the cold start offers every segment but the slivers."""
    with SlideStore(embedded[0]) as opened:
        area = opened.segment_areas()
    assert not np.any(area < SLIVER_SHARE * np.median(area))  # SLIC at 5x: none
    square = lambda x, y, side: [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]  # noqa: E731
    outlines = [square(200 + 200 * (k % 5), 400 + 200 * (k // 5), 160) for k in range(20)]  # 40 x 40 at 5x
    outlines += [square(1400 + 40 * k, 400, 16) for k in range(3)]  # 4 x 4 at 5x: slivers
    geojson = tmp_path / 'outlines.geojson'
    geojson.write_text(json.dumps({'type': 'FeatureCollection', 'features': [
        {'type': 'Feature', 'properties': {}, 'geometry': {'type': 'Polygon', 'coordinates': [outline]}}
        for outline in outlines]}))
    store = tmp_path / 'polygons.h5'
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), segments='polygons', polygons=str(geojson),
                            **FAST)
    run_pipeline(config)
    with SlideStore(store) as opened:
        area = opened.segment_areas()
    slivers = set(np.flatnonzero(area < SLIVER_SHARE * np.median(area)) + 1)
    assert slivers == {21, 22, 23}
    cold = suggest(str(store), LabelSet([]), 'negative_entropy', len(area), embedding_key='efficientnet_lite0')
    assert {s['segment'] for s in cold} == set(range(1, 21))


def test_merge_relabels_without_retraining(cmu_svs, embedded, tmp_path):
    store, document = embedded
    store = _copy(store, tmp_path)
    labels = labels_from_document(document)
    result = run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(store), **FAST), labels)
    with SlideStore(store) as reader:
        before = reader.round(result.round)
        features = reader.features('efficientnet_lite0')
    record = merge_categories(str(store), 'lumen/fat', 'stroma')
    assert [c['name'] for c in record.categories] == ['cellular', 'stroma']
    np.testing.assert_array_equal(record.label_ids, before.label_ids)
    assert [record.categories[c]['name'] for c in record.label_categories] == \
        [{'lumen/fat': 'stroma'}.get(before.categories[c]['name'], before.categories[c]['name'])
         for c in before.label_categories]
    np.testing.assert_allclose(record.probabilities[:, 1], before.probabilities[:, 1] + before.probabilities[:, 2],
                               atol=1e-6)
    np.testing.assert_allclose(record.probabilities[:, 0], before.probabilities[:, 0], atol=1e-6)
    assert record.metrics['category_changes'] == [{'kind': 'merge', 'source': 'lumen/fat', 'target': 'stroma',
                                                   'from_round': result.round}]
    # the stored probabilities are exact sums (of calibrated probabilities); the remapped model, the next round's
    # warm start, approximates the sums of the model's own, uncalibrated ones (measured 0.86)
    raw = round_model(before).predict_proba(features)
    merged_raw = np.column_stack([raw[:, 0], raw[:, 1] + raw[:, 2]])
    agreement = (round_model(record).predict_proba(features).argmax(axis=1) == merged_raw.argmax(axis=1)).mean()
    assert agreement >= 0.8


def test_cnn_on_masked_patches_through_the_pipeline(cmu_svs, embedded, tmp_path):
    store, document = embedded
    store = _copy(store, tmp_path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), feature='image', model='cnn_torch', epochs=3,
                            patch_size=32, **{k: v for k, v in FAST.items() if k != 'patch_size'})
    result = run_pipeline(config, labels_from_document(document))
    with SlideStore(store) as reader:
        assert reader.patch_sizes() == [32]
        record = reader.latest_round()
    assert record.model_name == 'cnn_torch'
    assert record.model_params['representation'] == 'patches/32'
    assert record.probabilities.shape == (result.n_segments, 3)
    np.testing.assert_allclose(record.probabilities.sum(axis=1), 1, atol=1e-4)
    assert len(result.suggestions) == config.suggestions


def test_seeded_kmeans_learns_from_every_segment_through_the_pipeline(cmu_svs, embedded, tmp_path):
    store, document = embedded
    store = _copy(store, tmp_path)
    labels = labels_from_document(document)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), model='seeded_kmeans', **FAST)
    first = run_pipeline(config, labels)
    with SlideStore(store) as reader:
        record = reader.round(first.round)
        n_segments = reader.n_segments
    # every segment, labeled or not, joined a centre: the clusters were learnt from the whole slide
    assert record.model_state['centre_count'].sum() == n_segments
    predicted = record.probabilities.argmax(axis=1)
    labeled_rows = labels.segment_ids - 1
    trained = np.asarray(record.model_params['classes'])
    # clusters follow the whole slide, not only the 12 stain-seeded labels: 7 of 12 keep their label (measured; 4
    # by chance with three categories)
    assert (predicted[labeled_rows] == trained[labels.category_index]).mean() >= 0.5
    assert len(np.unique(predicted)) == len(trained)
    second = run_pipeline(config, labels)
    assert second.metrics['training']['warm_start'] is True


def test_cold_start_suggests_before_the_first_round(cmu_svs, embedded, tmp_path):
    store, _ = embedded
    store = _copy(store, tmp_path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), certainty='kmeans_cold_start', suggestions=5,
                            **FAST)
    result = run_pipeline(config)
    assert result.round is None
    assert len(result.suggestions) == 5
    assert all(s['predicted'] is None and s['probabilities'] == {} for s in result.suggestions)
    assert [s['score'] for s in result.suggestions] == sorted((s['score'] for s in result.suggestions), reverse=True)
    assert {s['strategy'] for s in result.suggestions} == {'kmeans_cold_start'}
    # a model-based function before the first round: the cold start ranks instead, the same picks as asking for it
    margin = suggest(str(store), LabelSet([]), 'margin', 5, embedding_key=config.extractor)
    assert [s['segment'] for s in margin] == [s['segment'] for s in result.suggestions]
    assert {s['strategy'] for s in margin} == {'kmeans_cold_start'}
    # without embeddings to group (image models before features are made): a seeded random sample, never an error
    drawn = suggest(str(store), LabelSet([]), 'margin', 5)
    assert {s['strategy'] for s in drawn} == {'random'} and len({s['segment'] for s in drawn}) == 5
    assert drawn == suggest(str(store), LabelSet([]), 'margin', 5)


def test_a_configured_cold_start_hands_over_to_the_default_once_a_model_exists(cmu_svs, embedded, tmp_path):
    """No setting to flip by hand: a project left on the cold start is ranked by the model after its first round,
    so retraining changes what it is asked next."""
    store, document = embedded
    store = _copy(store, tmp_path)
    config = PipelineConfig(slide=str(cmu_svs), store=str(store), certainty='kmeans_cold_start', suggestions=5,
                            **FAST)
    labels = labels_from_document(document)
    result = run_pipeline(config, labels)
    assert result.round is not None
    assert {s['strategy'] for s in result.suggestions} == {DEFAULT_FUNCTION}
    assert all(s['predicted'] is not None for s in result.suggestions)
    expected = suggest(str(store), labels, DEFAULT_FUNCTION, 5, rep=representation(config),
                       embedding_key=config.extractor)
    assert [s['segment'] for s in result.suggestions] == [s['segment'] for s in expected]


def test_one_model_over_several_slides(cmu_svs, embedded, tmp_path):
    store, document = embedded
    first, second = tmp_path / 'a.h5', tmp_path / 'b.h5'
    first.write_bytes(store.read_bytes())
    second.write_bytes(store.read_bytes())
    labels = labels_from_document(document)
    halves = [LabelSet(labels.categories, labels.segment_ids[part::2], labels.category_index[part::2])
              for part in (0, 1)]
    config = PipelineConfig(slide=str(cmu_svs), store=str(first), **FAST)
    records = train_slides_round([(str(first), halves[0]), (str(second), halves[1])], representation(config),
                                 'linear', model_options(config))
    assert [r.number for r in records] == [1, 1]
    assert records[0].metrics['labels_used'] == len(labels) and records[0].metrics['slides'] == 2
    for key, value in records[0].model_state.items():
        np.testing.assert_array_equal(value, records[1].model_state[key])
    np.testing.assert_array_equal(records[1].label_ids, halves[1].segment_ids)
    found = suggest_across([(str(first), halves[0]), (str(second), halves[1])], 'margin', 40)
    assert {s['slide'] for s in found} == {0, 1}
    for suggestion in found:
        assert suggestion['segment'] not in halves[suggestion['slide']].segment_ids
    # one ranking of both slides' unlabeled segments together, by the round's probabilities
    probabilities = np.concatenate([r.probabilities[:, r.model_params['classes']] for r in records])
    candidates = np.ones(len(probabilities), bool)
    n = len(records[0].probabilities)
    candidates[halves[0].segment_ids - 1] = False
    candidates[n + halves[1].segment_ids - 1] = False
    expected = acquisition_functions.create('margin').rank(probabilities, candidates, 40)
    assert [s['slide'] * n + s['segment'] - 1 for s in found] == expected.tolist()
