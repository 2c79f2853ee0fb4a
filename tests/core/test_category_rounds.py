"""Renaming and merging categories in the latest round of a real trained store, without retraining: the same
predictions under the new names, merged probabilities that are exact sums, and a next round that carries on."""

import shutil

import numpy as np
import pytest

from histomics_label.core.io.labels import labels_from_document
from histomics_label.core.io.store import SlideStore
from histomics_label.core.pipeline import PipelineConfig, run_pipeline
from histomics_label.core.rounds import merge_categories, rename_category, round_model
from histomics_label.devtools.cli_demo import seed_labels

FAST = {'magnification': 5, 'radius': 10, 'patch_size': 48, 'workers': 1, 'tile_size': 256}


@pytest.fixture(scope='module')
def trained(cmu_svs, embedded_cmu, tmp_path_factory):
    """A store of the H&E sample with one round on the demo's seed labels (cellular, stroma, lumen/fat)."""
    document = seed_labels(str(embedded_cmu), str(cmu_svs), 5)
    store = tmp_path_factory.mktemp('trained') / 'cmu.h5'
    shutil.copyfile(embedded_cmu, store)
    run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(store), **FAST), labels_from_document(document))
    return store, document


@pytest.fixture
def store(trained, tmp_path):
    """A private copy of the trained store, with its round files."""
    source, _ = trained
    copy = tmp_path / 'cmu.h5'
    shutil.copyfile(source, copy)
    shutil.copytree(f'{source}.rounds', f'{copy}.rounds')
    return copy


def _latest(path):
    with SlideStore(path) as reader:
        return reader.latest_round(), reader.features('efficientnet_lite0')


def test_a_rename_keeps_the_round_as_it_was_under_the_new_name(store):
    before, features = _latest(store)
    assert [c['name'] for c in before.categories] == ['cellular', 'stroma', 'lumen/fat']
    record = rename_category(str(store), 'stroma', 'connective tissue')
    assert record.number == before.number + 1
    assert [c['name'] for c in record.categories] == ['cellular', 'connective tissue', 'lumen/fat']
    assert [c['color'] for c in record.categories] == [c['color'] for c in before.categories]
    np.testing.assert_array_equal(record.probabilities, before.probabilities)
    np.testing.assert_array_equal(record.label_ids, before.label_ids)
    np.testing.assert_array_equal(record.label_categories, before.label_categories)
    assert record.model_params == before.model_params
    np.testing.assert_array_equal(round_model(record).predict_proba(features),
                                  round_model(before).predict_proba(features))
    per_class = dict(before.metrics['per_class'])
    per_class['connective tissue'] = per_class.pop('stroma')
    assert record.metrics['per_class'] == per_class
    assert record.metrics['trained_round'] == before.number
    assert record.metrics['category_changes'] == [{'kind': 'rename', 'old': 'stroma', 'new': 'connective tissue',
                                                   'from_round': before.number}]
    assert _latest(store)[0].number == record.number  # what every view reads now


def test_a_merge_into_a_later_category_sums_its_probability(store):
    before, features = _latest(store)
    record = merge_categories(str(store), 'cellular', 'lumen/fat')  # the source comes first in the list
    assert [c['name'] for c in record.categories] == ['stroma', 'lumen/fat']
    assert record.categories[1] == before.categories[2]  # the target keeps its colour and flags
    np.testing.assert_allclose(record.probabilities[:, 1], before.probabilities[:, 0] + before.probabilities[:, 2],
                               atol=1e-6)
    np.testing.assert_array_equal(record.probabilities[:, 0], before.probabilities[:, 1])
    names = {'cellular': 'lumen/fat'}
    assert [record.categories[c]['name'] for c in record.label_categories] == \
        [names.get(before.categories[c]['name'], before.categories[c]['name']) for c in before.label_categories]
    assert record.model_params['classes'] == [0, 1]
    assert sum(record.metrics['per_class'].values()) == sum(before.metrics['per_class'].values())
    # the remapped model predicts two classes in the new order: its argmax follows the summed raw probabilities
    raw = round_model(before).predict_proba(features)
    merged_raw = np.column_stack([raw[:, 1], raw[:, 0] + raw[:, 2]])
    assert (round_model(record).predict_proba(features).argmax(axis=1) == merged_raw.argmax(axis=1)).mean() >= 0.8


def test_a_merge_into_a_category_the_round_never_knew_is_a_rename(store):
    before, _ = _latest(store)
    record = merge_categories(str(store), 'stroma', 'fibrous')
    assert [c['name'] for c in record.categories] == ['cellular', 'fibrous', 'lumen/fat']
    np.testing.assert_array_equal(record.probabilities, before.probabilities)


def test_a_category_the_round_does_not_know_changes_nothing(store, embedded_cmu, tmp_path):
    before, _ = _latest(store)
    assert rename_category(str(store), 'necrosis', 'dead') is None
    assert merge_categories(str(store), 'necrosis', 'stroma') is None
    assert _latest(store)[0].number == before.number
    untrained = tmp_path / 'untrained.h5'
    shutil.copyfile(embedded_cmu, untrained)
    assert merge_categories(str(untrained), 'stroma', 'cellular') is None
    with SlideStore(untrained) as reader:
        assert reader.rounds() == []


def test_the_next_round_after_a_rename_carries_on_from_it(store, trained, cmu_svs):
    _, document = trained
    before, _ = _latest(store)
    rename_category(str(store), 'stroma', 'connective tissue')
    renamed = dict(document, categories=[{**c, 'name': 'connective tissue'} if c['name'] == 'stroma' else c
                                         for c in document['categories']],
                   labels={k: 'connective tissue' if v == 'stroma' else v for k, v in document['labels'].items()})
    result = run_pipeline(PipelineConfig(slide=str(cmu_svs), store=str(store), **FAST),
                          labels_from_document(renamed))
    # the same labels under the new name: a warm start from the renamed model, and nothing moved
    assert result.metrics['training']['warm_start'] is True
    assert result.metrics['predictions_changed']['changed'] == 0
    assert result.metrics['model_unchanged'] is False
    with SlideStore(store) as reader:
        assert reader.latest_round().metrics['per_class']['connective tissue'] == \
            before.metrics['per_class']['stroma']
