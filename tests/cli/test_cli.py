"""The SuperpixelClassification Slicer CLI, end to end on the real H&E sample, and its handling of bad input."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from histomics_label.core.acquisition import acquisition_functions
from histomics_label.core.acquisition.suggestions import DEFAULT_FUNCTION, SLIVER_SHARE
from histomics_label.core.io.store import SlideStore
from histomics_label.devtools.cli_demo import seed_labels

ROOT = Path(__file__).resolve().parents[2]
CLI_DIR = ROOT / 'slicer_cli'
CLI_PATH = CLI_DIR / 'SuperpixelClassification' / 'SuperpixelClassification.py'
FAST = ['--magnification', '5', '--radius', '10', '--patchsize', '48', '--workers', '1', '--tilesize', '256']


def _load_cli():
    spec = importlib.util.spec_from_file_location('SuperpixelClassification', CLI_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = _load_cli()


@pytest.fixture(scope='module')
def segmented(cmu_svs, embedded_cmu, tmp_path_factory):
    """The cmu svs segmented and embedded (no labels yet), shared by the tests of this module; the CLI run on a
    copy of the session's store reuses its segments and features."""
    folder = tmp_path_factory.mktemp('cli')
    store = folder / 'slide.h5'
    store.write_bytes(embedded_cmu.read_bytes())
    assert cli.main([str(cmu_svs), '--store', str(store), *FAST]) == 0
    labels = seed_labels(str(store), str(cmu_svs), 5)
    return folder, store, labels


def _outputs(folder):
    return {'annotation': folder / 'pred.anot', 'suggestions': folder / 'sugg.json',
            'segmentimage': folder / 'seg.tiff'}


def _run(cmu_svs, store, label_file, outputs, *extra):
    args = [str(cmu_svs), '--store', str(store), '--labelfile', str(label_file), *FAST, *extra]
    if '--segmentimageid' not in extra:
        args += ['--segmentimageid', 'c' * 24]
    for flag, path in outputs.items():
        args += [f'--{flag}', str(path)]
    return cli.main(args)


def test_xml_spec_through_the_dsa_entry_point():
    listed = json.loads((CLI_DIR / 'slicer_cli_list.json').read_text())
    assert listed == {'SuperpixelClassification': {'type': 'python'}, 'SimilarSegments': {'type': 'python'}}
    result = subprocess.run([sys.executable, '-m', 'slicer_cli_web.cli_list_entrypoint', 'SuperpixelClassification',
                             '--xml'], cwd=CLI_DIR, capture_output=True, text=True, check=True)
    assert '<title>Superpixel Classification</title>' in result.stdout
    for flag in ('radius', 'magnification', 'patchsize', 'certainty', 'feature', 'labels', 'exclude', 'epochs',
                 'split', 'batchsize', 'heatmaps', 'scheduler'):
        assert f'<longflag>{flag}</longflag>' in result.stdout


def test_full_run_writes_every_output(cmu_svs, segmented):
    folder, store, labels = segmented
    label_file = folder / 'labels.json'
    label_file.write_text(json.dumps(labels))
    outputs = _outputs(folder)
    assert _run(cmu_svs, store, label_file, outputs, '--heatmaps', 'true', '--segmentimageid', 'a' * 24) == 0

    with SlideStore(store) as reader:
        n = reader.n_segments
        record = reader.latest_round()
    assert n > 150
    assert record.probabilities.shape == (n, 3)
    # the store file alone carries the round (the DSA uploads that one file)
    alone = folder / 'uploaded' / store.name
    alone.parent.mkdir()
    shutil.copy(store, alone)
    with SlideStore(alone) as uploaded:
        np.testing.assert_array_equal(uploaded.latest_round().probabilities, record.probabilities)
    np.testing.assert_allclose(record.probabilities.sum(axis=1), 1, atol=1e-4)

    annotations = json.loads(outputs['annotation'].read_text())
    assert [a['attributes']['histomics_label']['kind'] for a in annotations] == ['predictions', 'certainty']
    element = annotations[0]['elements'][0]
    assert element['type'] == 'pixelmap' and element['girderId'] == 'a' * 24
    assert len(element['values']) == n + 1 and element['values'][0] == 0
    assert set(element['values'][1:]) <= {1, 2, 3}
    import jsonschema
    from girder_large_image_annotation.models.annotation import AnnotationSchema

    for annotation in annotations:
        jsonschema.validate(annotation, AnnotationSchema.annotationSchema)

    # the labeled segments are mostly predicted as labeled (the model fits its own training data)
    values = np.array(element['values'])
    names = [c['name'] for c in labels['categories']]
    agree = [values[int(s)] - 1 == names.index(c) for s, c in labels['labels'].items()]
    assert np.mean(agree) >= 0.9

    suggestions = json.loads(outputs['suggestions'].read_text())['suggestions']
    assert len(suggestions) == 32
    assert [s['rank'] for s in suggestions] == list(range(1, 33))
    assert not {s['segment'] for s in suggestions} & {int(k) for k in labels['labels']}
    scores = [s['score'] for s in suggestions]
    assert scores == sorted(scores, reverse=True)

    import large_image

    assert large_image.open(str(outputs['segmentimage'])).getMetadata()['sizeX'] > 500


def test_rerun_reuses_segments_and_features(cmu_svs, segmented):
    folder, store, labels = segmented
    args = cli.parse_args([str(cmu_svs), '--store', str(store), *FAST])
    summary = cli.run(args)
    assert summary['reused'] == {'segments': True, 'features': True}


def test_excluded_category_never_trains_nor_is_suggested(cmu_svs, segmented, tmp_path):
    _, store, labels = segmented
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps(labels))
    outputs = {'suggestions': tmp_path / 's.json', 'annotation': tmp_path / 'a.anot'}
    assert _run(cmu_svs, store, label_file, outputs, '--exclude', 'lumen/fat', '--segmentimageid', 'b' * 24) == 0
    with SlideStore(store) as reader:
        record = reader.latest_round()
    assert np.all(record.probabilities[:, 2] == 0)
    suggestions = json.loads(outputs['suggestions'].read_text())['suggestions']
    assert all(s['predicted'] != 'lumen/fat' for s in suggestions)
    assert all(set(s['probabilities']) == {'cellular', 'stroma'} for s in suggestions)
    excluded = {int(k) for k, v in labels['labels'].items() if v == 'lumen/fat'}
    assert not excluded & {s['segment'] for s in suggestions}


def _assert_failed_cleanly(code, capsys, message, *paths):
    assert code == 2
    assert message in capsys.readouterr().err
    for path in paths:
        assert not Path(path).exists()


def test_non_image_file(tmp_path, capsys):
    bogus = tmp_path / 'notes.svs'
    bogus.write_text('this is not a slide')
    outputs = _outputs(tmp_path)
    code = cli.main([str(bogus), '--store', str(tmp_path / 's.h5'), *FAST, '--segmentimageid', 'c' * 24,
                     *[x for k, v in outputs.items() for x in (f'--{k}', str(v))]])
    _assert_failed_cleanly(code, capsys, 'not a slide', tmp_path / 's.h5', *outputs.values())


@pytest.mark.parametrize('labels, message', [
    ({'labels': {}}, 'no labels'),
    ({'labels': {'1': 'a', '2': 'a'}}, 'at least two categories'),
    ({'categories': ['a', 'b'], 'labels': {'1': 'a', '2': 'zebra'}}, 'Unknown category'),
    ({'categories': ['a', 'b'], 'labels': {'1': 'a', '999999': 'b'}}, 'do not exist'),
])
def test_bad_labels(cmu_svs, segmented, tmp_path, capsys, labels, message):
    _, store, _ = segmented
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps(labels))
    outputs = _outputs(tmp_path)
    code = _run(cmu_svs, store, label_file, outputs)
    _assert_failed_cleanly(code, capsys, message, *outputs.values())


def test_without_the_segment_image_id_the_annotations_are_left_out_and_said_so(cmu_svs, segmented, tmp_path,
                                                                              capsys):
    """The DSA job panel names every output file by default, the annotations included, and has no segment image id
    on a first run: the run writes everything else."""
    _, store, labels = segmented
    copy, label_file = tmp_path / 's.h5', tmp_path / 'labels.json'
    copy.write_bytes(store.read_bytes())
    label_file.write_text(json.dumps(labels))
    outputs = {**_outputs(tmp_path), 'embeddingmap': tmp_path / 'map.anot'}
    args = [str(cmu_svs), '--store', str(copy), '--labelfile', str(label_file), *FAST]
    for flag, path in outputs.items():
        args += [f'--{flag}', str(path)]
    assert cli.main(args) == 0
    assert 'No --segmentimageid' in capsys.readouterr().err
    assert not outputs['annotation'].exists() and not outputs['embeddingmap'].exists()
    assert outputs['suggestions'].exists() and outputs['segmentimage'].exists()
    with SlideStore(copy) as reader:
        assert reader.latest_round() is not None and reader.embedding_map_names() != []


def test_corrupt_store(cmu_svs, tmp_path, capsys):
    store = tmp_path / 'broken.h5'
    store.write_bytes(b'\x89HDF\r\n\x1a\n' + os.urandom(4096))
    code = cli.main([str(cmu_svs), '--store', str(store), *FAST])
    assert code == 2
    assert 'store' in capsys.readouterr().err.lower()


def test_mismatched_feature_dimension(cmu_svs, segmented, tmp_path, capsys):
    _, store, labels = segmented
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    with SlideStore.update(str(copy)) as writer:
        params = writer.feature_params('efficientnet_lite0')
        writer.write_features('efficientnet_lite0', np.zeros((writer.n_segments, 7), np.float32), params)
    code = cli.main([str(cmu_svs), '--store', str(copy), *FAST])
    assert code == 2
    assert 'dimensions' in capsys.readouterr().err


def test_missing_weights(cmu_svs, segmented, tmp_path, capsys):
    _, store, _ = segmented
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    code = cli.main([str(cmu_svs), '--store', str(copy), *FAST, '--weights', str(tmp_path / 'absent.pth')])
    assert code == 2
    assert 'absent.pth' in capsys.readouterr().err


def test_unreachable_scheduler(cmu_svs, tmp_path, capsys):
    store = tmp_path / 's.h5'
    code = cli.main([str(cmu_svs), '--store', str(store), *FAST, '--scheduler', 'tcp://127.0.0.1:9'])
    _assert_failed_cleanly(code, capsys, 'scheduler', store)


def test_store_is_hdf5_with_schema(segmented):
    _, store, _ = segmented
    with h5py.File(store, 'r') as f:
        assert int(f.attrs['schema_version']) == 1


def test_every_parameter_is_documented():
    import xml.etree.ElementTree as ET

    flags = [p.text for path in (CLI_PATH.with_suffix('.xml'), CLI_DIR / 'SimilarSegments' / 'SimilarSegments.xml')
             for p in ET.parse(path).getroot().iter('longflag')]
    documented = (ROOT / 'docs' / 'cli.md').read_text()
    assert len(flags) > 30 and {'alsosearch', 'cnfp', 'query'} <= set(flags)
    assert [f for f in flags if f'`--{f}`' not in documented] == []


def test_slide_smaller_than_one_superpixel(cmu_svs, tmp_path, capsys):
    import large_image
    import tifffile

    source = large_image.open(str(cmu_svs))
    crop, _ = source.getRegion(region=dict(left=1000, top=1000, width=24, height=24),
                               format=large_image.constants.TILE_FORMAT_NUMPY)
    tiny = tmp_path / 'tiny.tiff'
    tifffile.imwrite(tiny, np.ascontiguousarray(crop[:, :, :3]), tile=(16, 16), photometric='rgb')
    store = tmp_path / 's.h5'
    code = cli.main([str(tiny), '--store', str(store), '--radius', '16', '--workers', '1'])
    _assert_failed_cleanly(code, capsys, 'smaller than one superpixel', store)


def test_model_and_representation_must_fit(cmu_svs, tmp_path, capsys):
    store = tmp_path / 's.h5'
    code = cli.main([str(cmu_svs), '--store', str(store), *FAST, '--feature', 'image', '--model', 'linear'])
    _assert_failed_cleanly(code, capsys, 'feature vectors', store)


def test_foundation_model_without_weights_fails_clearly(cmu_svs, segmented, tmp_path, capsys):
    _, store, _ = segmented
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    before = copy.read_bytes()
    code = cli.main([str(cmu_svs), '--store', str(copy), *FAST, '--extractor', 'uni'])
    assert code == 2
    err = capsys.readouterr().err
    assert 'Error:' in err and ('timm' in err or 'weights' in err)
    assert copy.read_bytes() == before


@pytest.mark.parametrize('certainty', ['batchbald', 'coreset', 'entropy_diverse', 'kmeans_cold_start', 'confidence',
                                       'margin', 'random'])
def test_batch_acquisition_functions(cmu_svs, segmented, tmp_path, certainty):
    _, store, labels = segmented
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps(labels))
    outputs = {'suggestions': tmp_path / 's.json'}
    assert _run(cmu_svs, store, label_file, outputs, '--certainty', certainty, '--suggestioncount', '8') == 0
    suggestions = json.loads(outputs['suggestions'].read_text())['suggestions']
    picked = [s['segment'] for s in suggestions]
    assert len(picked) == len(set(picked)) == 8
    assert not set(picked) & {int(k) for k in labels['labels']}


@pytest.mark.parametrize('certainty', ['kmeans_cold_start', 'coreset'])
def test_first_batch_before_any_label(cmu_svs, embedded_cmu, tmp_path, certainty):
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(embedded_cmu.read_bytes())
    output = tmp_path / 's.json'
    args = [str(cmu_svs), '--store', str(copy), *FAST, '--certainty', certainty, '--suggestioncount', '6',
            '--suggestions', str(output)]
    assert cli.main(args) == 0
    document = json.loads(output.read_text())
    assert document['round'] is None
    picked = document['suggestions']
    assert len({s['segment'] for s in picked}) == 6
    with SlideStore(copy) as reader:
        features = reader.features('efficientnet_lite0')
        area = reader.segment_areas()
    assert all(s['predicted'] is None and s['strategy'] == certainty for s in picked)
    # the run's batch is the function's own choice on the stored embeddings, nothing labeled, among the segments
    # that are not slivers
    candidates = area >= SLIVER_SHARE * np.median(area)
    expected = acquisition_functions.create(certainty).select(
        None, candidates, 6, seed=0, embeddings=features, labeled=np.zeros(len(features), bool))
    assert [s['segment'] - 1 for s in picked] == expected.rows.tolist()
    # coreset's first pick has no centre to be far from: an infinite distance, written as null
    scores = [np.inf if s['score'] is None else s['score'] for s in picked]
    np.testing.assert_allclose(scores, expected.scores, rtol=1e-6)


def test_a_first_batch_asked_of_a_trained_store_comes_from_its_model(cmu_svs, segmented, tmp_path):
    _, store, labels = segmented
    trained, copy = tmp_path / 'trained.h5', tmp_path / 'copy.h5'
    trained.write_bytes(store.read_bytes())
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps(labels))
    assert cli.main([str(cmu_svs), '--store', str(trained), '--labelfile', str(label_file), *FAST]) == 0
    copy.write_bytes(trained.read_bytes())  # the file alone: the CLI's store carries its rounds
    output = tmp_path / 's.json'
    args = [str(cmu_svs), '--store', str(copy), *FAST, '--certainty', 'kmeans_cold_start', '--suggestioncount', '6',
            '--suggestions', str(output)]
    assert cli.main(args) == 0
    with SlideStore(copy) as reader:
        record = reader.latest_round()
    document = json.loads(output.read_text())
    assert document['round'] is None  # no round of its own
    names = [c['name'] for c in record.categories]
    for suggestion in document['suggestions']:
        assert suggestion['strategy'] == DEFAULT_FUNCTION
        assert suggestion['predicted'] == names[record.probabilities[suggestion['segment'] - 1].argmax()]


def test_model_certainty_without_labels_writes_no_suggestions(cmu_svs, segmented, tmp_path, capsys):
    _, store, _ = segmented
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    output = tmp_path / 's.json'
    assert cli.main([str(cmu_svs), '--store', str(copy), *FAST, '--suggestions', str(output)]) == 0
    assert not output.exists()
    assert 'kmeans_cold_start or coreset' in capsys.readouterr().err


def test_embedding_map_is_stored_and_published(cmu_svs, segmented, tmp_path):
    _, store, _ = segmented
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    output = tmp_path / 'map.anot'
    args = [str(cmu_svs), '--store', str(copy), *FAST, '--embeddingmap', str(output), '--segmentimageid', 'c' * 24]
    assert cli.main(args) == 0
    with SlideStore(copy) as reader:
        colours = reader.embedding_map('efficientnet_lite0').astype(np.float64)
        features = reader.features('efficientnet_lite0')
        assert reader.embedding_map_params('efficientnet_lite0')['method'] == 'umap'
    assert colours.shape == (len(features), 3)
    # segments that are nearest neighbours in feature space get closer colours than random pairs of segments
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    neighbour_gap = np.linalg.norm(colours - colours[nearest], axis=1).mean()
    shuffled = np.random.default_rng(0).permutation(len(colours))
    random_gap = np.linalg.norm(colours - colours[shuffled], axis=1).mean()
    assert neighbour_gap < 0.6 * random_gap
    element = json.loads(output.read_text())['elements'][0]
    assert element['type'] == 'pixelmap' and element['girderId'] == 'c' * 24
    assert len(element['values']) == len(features) + 1 and len(element['categories']) <= 217
    before = copy.read_bytes()
    assert cli.main(args) == 0  # the second run reuses the stored map
    assert copy.read_bytes() == before


@pytest.mark.parametrize('model', ['cnn_torch', pytest.param('cnn_keras', marks=pytest.mark.skipif(
    importlib.util.find_spec('tensorflow') is None, reason='the tensorflow extra is not installed'))])
def test_cnn_models_on_masked_patches(cmu_svs, segmented, tmp_path, model):
    _, store, labels = segmented
    copy = tmp_path / 'copy.h5'
    copy.write_bytes(store.read_bytes())
    label_file = tmp_path / 'labels.json'
    label_file.write_text(json.dumps(labels))
    outputs = {'suggestions': tmp_path / 's.json'}
    assert _run(cmu_svs, copy, label_file, outputs, '--feature', 'image', '--model', model, '--epochs', '2') == 0
    with SlideStore(copy) as reader:
        record = reader.latest_round()
        assert reader.patch_sizes() == [48]
    assert record.model_name == model and record.model_params['representation'] == 'patches/48'
    np.testing.assert_allclose(record.probabilities.sum(axis=1), 1, atol=1e-4)
    assert len(json.loads(outputs['suggestions'].read_text())['suggestions']) == 32
