"""More like this across slide stores, through the core function and the SimilarSegments Slicer CLI."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from histomics_label.core.errors import ConfigurationError, FeaturesError
from histomics_label.core.io.store import SlideStore
from histomics_label.core.retrieval.similar import similar_segments

CLI_DIR = Path(__file__).resolve().parents[2] / 'slicer_cli'
spec = importlib.util.spec_from_file_location('SimilarSegments', CLI_DIR / 'SimilarSegments' / 'SimilarSegments.py')
cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cli)


@pytest.fixture(scope='module')
def two_slides(embedded_cmu, tmp_path_factory):
    """The embedded H&E store and a second slide's store holding the same segments: every segment of slide one
    has an exact twin, with the same id, on slide two."""
    folder = tmp_path_factory.mktemp('similar')
    first = folder / 'first.h5'
    first.write_bytes(embedded_cmu.read_bytes())
    second = folder / 'second.h5'
    second.write_bytes(embedded_cmu.read_bytes())
    with SlideStore(first) as store:
        features = store.features('efficientnet_lite0')
    return first, second, features


def _cosine_order(features, query_rows):
    """Rows by cosine distance to the query: the mean of the query rows' unit vectors (the index's prototype)."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    prototype = unit[query_rows].mean(axis=0)
    return np.argsort(1 - unit @ (prototype / np.linalg.norm(prototype)), kind='stable')


def test_nearest_segments_across_slides(two_slides):
    first, second, features = two_slides
    found = similar_segments([str(first), str(second)], [40], count=5)
    # the query's twin on the other slide is nearest, at distance 0; the query itself never comes back
    assert (found[0]['store'], found[0]['segment'], found[0]['distance']) == (str(second), 40, 0.0)
    assert all((f['store'], f['segment']) != (str(first), 40) for f in found)
    assert [f['distance'] for f in found] == sorted(f['distance'] for f in found)
    # the rest are the query's nearest neighbours by cosine distance, each found on both slides in turn
    nearest = [int(r) + 1 for r in _cosine_order(features, [39]) if r != 39][:2]
    assert [f['segment'] for f in found[1:5]] == [nearest[0], nearest[0], nearest[1], nearest[1]]
    assert all(f['kind'] == 'unlabeled' and len(f['bbox']) == 4 for f in found)


def test_exclusions_and_several_examples(two_slides):
    first, _, features = two_slides
    found = similar_segments([str(first)], [10, 11, 12], count=6, exclude=[5])
    expected = [int(r) + 1 for r in _cosine_order(features, [9, 10, 11]) if r + 1 not in (5, 10, 11, 12)][:6]
    assert [f['segment'] for f in found] == expected


def test_cnfp_mix_shows_counter_examples_and_atypical_examples(two_slides):
    first, _, _ = two_slides
    found = similar_segments([str(first)], [10, 11, 12], count=6, negatives=[100, 101])
    kinds = [f['kind'] for f in found]
    assert kinds[:3] == ['unlabeled', 'negative', 'positive']
    assert {f['segment'] for f in found if f['kind'] == 'negative'} == {100, 101}
    assert not {f['segment'] for f in found if f['kind'] == 'unlabeled'} & {10, 11, 12, 100, 101}


def test_bad_queries_fail_clearly(two_slides, tmp_path):
    first, _, _ = two_slides
    with pytest.raises(ConfigurationError, match='segment ids run 1'):
        similar_segments([str(first)], [100_000])
    with pytest.raises(ConfigurationError, match='at least one query'):
        similar_segments([str(first)], [])
    with pytest.raises(FeaturesError, match='no uni feature vectors'):
        similar_segments([str(first)], [1], extractor='uni')
    with pytest.raises(ConfigurationError, match='more than once'):
        similar_segments([str(first), str(first)], [1])


def test_cli_writes_the_similar_segments(two_slides, tmp_path, capsys):
    first, second, _ = two_slides
    output = tmp_path / 'similar.json'
    assert cli.main([str(first), '--query', '40', '--alsosearch', str(second), '--count', '3', '--output',
                     str(output)]) == 0
    document = json.loads(output.read_text())
    assert document['query']['segments'] == [40]
    assert document['similar'] == similar_segments([str(first), str(second)], [40], count=3)
    assert cli.main([str(first), '--query', '0', '--output', str(tmp_path / 'bad.json')]) == 2
    assert 'Error: Segment 0 is not in' in capsys.readouterr().err
    assert not (tmp_path / 'bad.json').exists()


def test_cli_spec_through_the_dsa_entry_point():
    result = subprocess.run([sys.executable, '-m', 'slicer_cli_web.cli_list_entrypoint', 'SimilarSegments', '--xml'],
                            cwd=CLI_DIR, capture_output=True, text=True, check=True)
    assert '<title>Similar Segments</title>' in result.stdout
