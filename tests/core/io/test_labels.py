"""Reading label files: our JSON, pixelmap annotations and CSV; bad label files give clear errors."""

import json

import numpy as np
import pytest

from histomics_label.core.errors import LabelsError
from histomics_label.core.io.labels import Category, LabelSet, read_labels


def test_json_labels_keep_category_order_and_flags(tmp_path):
    path = tmp_path / 'labels.json'
    path.write_text(json.dumps({
        'categories': [{'name': 'tumor', 'color': '#ff0000'}, {'name': 'stroma', 'color': '#00ff00'},
                       {'name': 'pen', 'color': '#0000ff', 'excluded': True}],
        'labels': {'3': 'stroma', '1': 'tumor', '7': 'pen', '9': 'tumor'}}))
    labels = read_labels(path)
    assert [c.name for c in labels.categories] == ['tumor', 'stroma', 'pen']
    assert labels.categories[2].excluded
    ids, targets, classes = labels.training_set()
    assert classes == [0, 1]
    assert 7 not in ids.tolist()
    assert dict(zip(ids.tolist(), targets.tolist(), strict=True)) == {3: 1, 1: 0, 9: 0}


def test_csv_and_category_names(tmp_path):
    path = tmp_path / 'labels.csv'
    path.write_text('segment,category\n5,b\n6,a\n')
    labels = read_labels(path, ['a', 'b', 'c'])
    assert [c.name for c in labels.categories] == ['a', 'b', 'c']
    assert labels.category_index.tolist() == [1, 0]


def test_pixelmap_annotation_round_trip(tmp_path):
    document = {'name': 'labels', 'elements': [{
        'type': 'pixelmap', 'girderId': '0' * 24, 'boundaries': False, 'values': [0, 2, 0, 1, 3],
        'categories': [{'label': 'unlabeled', 'fillColor': 'rgba(0,0,0,0)'},
                       {'label': 'tumor', 'fillColor': 'rgba(255, 0, 0, 0.5)'},
                       {'label': 'stroma', 'fillColor': 'rgb(0,128,0)'},
                       {'label': 'fat', 'fillColor': '#ffff00'}]}]}
    path = tmp_path / 'labels.anot'
    path.write_text(json.dumps({'annotation': document}))
    labels = read_labels(path)
    assert [c.name for c in labels.categories] == ['tumor', 'stroma', 'fat']
    assert labels.categories[0].color == '#ff0000'
    assert labels.segment_ids.tolist() == [1, 3, 4]
    assert labels.category_index.tolist() == [1, 0, 2]


@pytest.mark.parametrize('content, message', [
    ('not json at all', 'not valid JSON'),
    ('{"labels": {"1": "a"}, "categories": ["b"]}', 'Unknown category'),
    ('{"labels": {"x": "a"}}', 'not an integer'),
    ('{"something": 1}', 'not a label file'),
])
def test_bad_label_files(tmp_path, content, message):
    path = tmp_path / 'labels.json'
    path.write_text(content)
    with pytest.raises(LabelsError, match=message):
        read_labels(path)


def test_zero_labels_one_class_and_excluded_only():
    categories = [Category('a', '#000000'), Category('b', '#ffffff')]
    with pytest.raises(LabelsError, match='no labels'):
        LabelSet(categories).training_set()
    with pytest.raises(LabelsError, match='at least two categories'):
        LabelSet(categories, np.array([1, 2]), np.array([0, 0])).training_set()
    excluded = LabelSet(categories, np.array([1, 2]), np.array([0, 1])).exclude(['b'])
    with pytest.raises(LabelsError, match='at least two categories'):
        excluded.training_set()


def test_labels_for_missing_segments():
    labels = LabelSet([Category('a', '#000000'), Category('b', '#ffffff')], np.array([1, 50]), np.array([0, 1]))
    with pytest.raises(LabelsError, match='do not exist'):
        labels.check_segments(10)


def test_merge_keeps_every_label_and_renumbers():
    categories = [Category('a', '#000000'), Category('b', '#111111'), Category('c', '#222222')]
    labels = LabelSet(categories, np.array([1, 2, 3, 4]), np.array([0, 1, 2, 1]))
    merged = labels.merge('b', 'c')
    assert [c.name for c in merged.categories] == ['a', 'c']
    assert merged.segment_ids.tolist() == [1, 2, 3, 4]
    assert merged.category_index.tolist() == [0, 1, 1, 1]
    merged = labels.merge('a', 'c')
    assert [c.name for c in merged.categories] == ['b', 'c']
    assert merged.category_index.tolist() == [1, 0, 1, 0]
    with pytest.raises(LabelsError, match='into itself'):
        labels.merge('a', 'a')
    with pytest.raises(LabelsError, match='Unknown category'):
        labels.merge('zebra', 'a')
