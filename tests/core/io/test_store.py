"""The slide store round-trips a real segmentation, reads in parts, writes atomically and rejects bad files."""

import os
import shutil

import h5py
import numpy as np
import pytest
from skimage.data import immunohistochemistry
from skimage.measure import regionprops
from skimage.segmentation import slic

from histomics_label.core.errors import FeaturesError, LabelsError, StoreError
from histomics_label.core.features.patches import FILL_VALUE, ArraySlide, iter_patches
from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import FORMAT_NAME, SCHEMA_VERSION, SlideStore
from histomics_label.core.segments import SegmentTable

CATEGORIES = [{'name': 'tumor', 'color': '#ff0000', 'excluded': False},
              {'name': 'stroma', 'color': '#00ff00', 'excluded': False},
              {'name': 'background', 'color': '#ffffff', 'excluded': True}]


@pytest.fixture(scope='module')
def segmentation():
    """SLIC superpixels of skimage's real IHC tissue image: raster, table and a simple colour feature."""
    image = immunohistochemistry()
    labels = slic(image, n_segments=300, compactness=10, start_label=1).astype(np.uint32)
    props = regionprops(labels)
    assert [p.label for p in props] == list(range(1, len(props) + 1))
    table = SegmentTable(
        bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props], np.int64),
        centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
        area=np.array([p.area for p in props], np.int64))
    flat = labels.ravel()
    counts = np.bincount(flat)[1:, None]
    colour = np.stack([np.bincount(flat, image[:, :, c].ravel())[1:] for c in range(3)], 1) / counts
    return image, labels, table, colour.astype(np.float32)


def slide_info(labels):
    height, width = labels.shape
    return SlideInfo('/data/ihc.tiff', width * 2, height * 2, 20.0, 10.0, 2.0, width, height)


def write_store(path, labels, table, colour):
    params = {'source': 'slic', 'radius': 15, 'compactness': 10.0, 'magnification': 10.0, 'scale': 2.0}
    with SlideStore.create(path, slide_info(labels), params) as writer:
        raster = writer.create_label_raster(*labels.shape)
        for y in range(0, labels.shape[0], 200):  # a source fills the raster tile by tile
            for x in range(0, labels.shape[1], 200):
                raster[y:y + 200, x:x + 200] = labels[y:y + 200, x:x + 200]
        writer.write_segments(table)
        writer.write_features('colour', colour, {'kind': 'mean rgb'})
    return params


@pytest.fixture
def store_path(tmp_path, segmentation):
    _, labels, table, colour = segmentation
    path = tmp_path / 'slide.h5'
    write_store(path, labels, table, colour)
    return path


def add_labeled_round(path, n, seed=0):
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(3), n).astype(np.float32)
    with SlideStore.update(path) as writer:
        return writer.add_round(
            CATEGORIES, label_ids=np.array([1, 5, n]), label_categories=np.array([0, 1, 0]),
            probabilities=probabilities, model_name='linear',
            model_params={'seed': seed, 'classes': [0, 1]},
            model_state={'weight': rng.normal(size=(3, 2)), 'bias': np.float64(0.5),
                         'classes': np.array(['tumor', 'stroma'])},
            metrics={'held_out_balanced_accuracy': np.float64(0.75), 'labels_used': np.int64(3)}), probabilities


def test_round_trip(store_path, segmentation):
    _, labels, table, colour = segmentation
    number, probabilities = add_labeled_round(store_path, len(table))
    assert number == 1
    with SlideStore(store_path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.slide_info == slide_info(labels)
        assert store.segment_params == {'source': 'slic', 'radius': 15, 'compactness': 10.0,
                                        'magnification': 10.0, 'scale': 2.0}
        assert store.n_segments == len(table)
        read = store.segments()
        np.testing.assert_array_equal(read.bbox, table.bbox)
        np.testing.assert_array_equal(read.centroid, table.centroid)
        np.testing.assert_array_equal(read.area, table.area)
        assert store.label_raster.dtype == np.uint32
        np.testing.assert_array_equal(store.label_raster[()], labels)
        assert store.label_raster.compression == 'gzip'
        assert store.feature_names() == ['colour']
        np.testing.assert_array_equal(store.features('colour'), colour)
        assert store.features('colour').dtype == np.float32
        assert store.feature_params('colour') == {'kind': 'mean rgb'}
        assert store.rounds() == [1]
        record = store.latest_round()
        assert record.number == 1 and record.model_name == 'linear'
        assert record.categories == CATEGORIES
        np.testing.assert_array_equal(record.label_ids, [1, 5, len(table)])
        np.testing.assert_array_equal(record.label_categories, [0, 1, 0])
        np.testing.assert_array_equal(record.probabilities, probabilities)
        assert record.model_params == {'seed': 0, 'classes': [0, 1]}
        assert record.model_state['weight'].shape == (3, 2)
        assert float(record.model_state['bias']) == 0.5
        assert record.model_state['classes'].tolist() == ['tumor', 'stroma']
        assert record.metrics == {'held_out_balanced_accuracy': 0.75, 'labels_used': 3}
        assert record.created.endswith('+00:00')
    with h5py.File(store_path, 'r') as h5:
        assert h5.attrs['format'] == FORMAT_NAME


def test_partial_reads(store_path, segmentation):
    _, labels, table, colour = segmentation
    _, probabilities = add_labeled_round(store_path, len(table))
    rows = np.array([7, 0, 7, len(table) - 1, 3])  # unsorted, repeated
    with SlideStore(store_path) as store:
        part = store.segments(rows)
        np.testing.assert_array_equal(part.bbox, table.bbox[rows])
        np.testing.assert_array_equal(part.area, table.area[rows])
        np.testing.assert_array_equal(store.segments(slice(10, 20)).centroid, table.centroid[10:20])
        np.testing.assert_array_equal(store.features('colour', rows), colour[rows])
        mask = table.area > np.median(table.area)
        np.testing.assert_array_equal(store.features('colour', mask), colour[mask])
        np.testing.assert_array_equal(store.round_probabilities(1, rows), probabilities[rows])
        assert store.features('colour', []).shape == (0, 3)
        np.testing.assert_array_equal(store.label_region(100, 50, 180, 90), labels[50:90, 100:180])
        assert store.label_region(-10, -10, 5, 5).shape == (5, 5)  # clipped to the raster
        np.testing.assert_array_equal(store.label_region(500, 500, 600, 600), labels[500:, 500:])
        with pytest.raises(IndexError):
            store.features('colour', [len(table)])


def test_update_adds_rounds_and_replaces_features(store_path, segmentation):
    _, _, table, colour = segmentation
    add_labeled_round(store_path, len(table), seed=0)
    number, probabilities = add_labeled_round(store_path, len(table), seed=1)
    assert number == 2
    with SlideStore.update(store_path) as writer:
        np.testing.assert_array_equal(writer.segments().area, table.area)  # a writer reads too
        dataset = writer.create_features('colour', len(table), 2, {'kind': 'red and green'})
        for start in range(0, len(table), 64):  # filled in batches
            dataset[start:start + 64] = colour[start:start + 64, :2]
    with SlideStore(store_path) as store:
        assert store.rounds() == [1, 2]
        np.testing.assert_array_equal(store.latest_round().probabilities, probabilities)
        assert store.round(1).model_params['seed'] == 0
        np.testing.assert_array_equal(store.features('colour'), colour[:, :2])
        assert store.feature_params('colour') == {'kind': 'red and green'}
        with pytest.raises(StoreError, match='no round 3'):
            store.round(3)
        with pytest.raises(FeaturesError, match="no 'deep' features"):
            store.features('deep')


def test_dropping_the_rounds_inside_a_store_keeps_its_segments_and_features(store_path, segmentation):
    _, labels, table, colour = segmentation
    add_labeled_round(store_path, len(table), seed=0)
    add_labeled_round(store_path, len(table), seed=1)
    with SlideStore.update(store_path) as writer:
        assert writer.drop_rounds() == 2
    with SlideStore(store_path) as store:
        assert store.rounds() == [] and store.latest_round() is None
        np.testing.assert_array_equal(store.label_raster[...], labels)
        np.testing.assert_array_equal(store.features('colour'), colour)
    with SlideStore.update(store_path) as writer:
        assert writer.drop_rounds() == 0


def test_replaced_features_do_not_grow_the_file(store_path, segmentation):
    _, _, table, colour = segmentation
    big = np.repeat(colour, 200, axis=1)
    with SlideStore.update(store_path) as writer:
        writer.write_features('wide', big, {})
    size = os.path.getsize(store_path)
    for _ in range(3):
        with SlideStore.update(store_path) as writer:
            writer.write_features('wide', big, {})
    assert os.path.getsize(store_path) <= size * 1.05


@pytest.mark.parametrize('operation', ['create', 'update'])
def test_failure_leaves_the_store_untouched(store_path, segmentation, operation):
    _, labels, table, colour = segmentation
    before = store_path.read_bytes()
    with pytest.raises(RuntimeError, match='extraction crashed'):
        if operation == 'create':
            with SlideStore.create(store_path, slide_info(labels), {'source': 'other'}) as writer:
                writer.create_label_raster(*labels.shape)[:] = 1
                raise RuntimeError('extraction crashed')
        else:
            with SlideStore.update(store_path) as writer:
                writer.write_features('colour', colour * 2, {})
                writer.write_features('other', colour, {})
                raise RuntimeError('extraction crashed')
    assert store_path.read_bytes() == before
    assert sorted(os.listdir(store_path.parent)) == ['slide.h5', 'slide.h5.lock']  # the lock file stays


def test_failed_first_create_leaves_nothing(tmp_path, segmentation):
    _, labels, table, colour = segmentation
    path = tmp_path / 'new.h5'
    with pytest.raises(StoreError, match='write the segments before features'):
        with SlideStore.create(path, slide_info(labels), {}) as writer:
            writer.write_features('colour', colour, {})
    with pytest.raises(TypeError, match='broadcast'):  # a batch of 3-D features into a 2-D feature set
        with SlideStore.create(path, slide_info(labels), {}) as writer:
            writer.create_label_raster(*labels.shape)[:] = labels
            writer.write_segments(table)
            writer.create_features('colour', len(table), 2, {})[:64] = colour[:64]
    assert os.listdir(tmp_path) == ['new.h5.lock']  # only the store's lock file


def test_validation(tmp_path, segmentation):
    _, labels, table, colour = segmentation
    path = tmp_path / 'slide.h5'
    write_store(path, labels, table, colour)
    with pytest.raises(FeaturesError, match='2-D'):
        with SlideStore.update(path) as writer:
            writer.write_features('colour', colour.ravel(), {})
    with SlideStore.update(path) as writer:
        with pytest.raises(FeaturesError, match=f'{len(table)} segments but {len(table) - 1} rows'):
            writer.write_features('colour', colour[1:], {})
        with pytest.raises(FeaturesError, match='NaN'):
            writer.write_features('colour', np.full_like(colour, np.nan), {})
        with pytest.raises(StoreError, match='already has segments'):
            writer.write_segments(table)
        good = {'categories': CATEGORIES, 'label_ids': [1, 2], 'label_categories': [0, 1],
                'probabilities': np.full((len(table), 3), 1 / 3), 'model_name': 'linear', 'model_params': {},
                'model_state': {}, 'metrics': {}}
        with pytest.raises(StoreError, match=r'Probabilities must be \(segments, categories\)'):
            writer.add_round(**{**good, 'probabilities': np.full((len(table), 2), 0.5)})
        with pytest.raises(LabelsError, match='do not exist'):
            writer.add_round(**{**good, 'label_ids': [0, len(table) + 1]})
        with pytest.raises(LabelsError, match='index the 3 categories'):
            writer.add_round(**{**good, 'label_categories': [0, 3]})
        with pytest.raises(StoreError, match='JSON'):
            writer.add_round(**{**good, 'metrics': {'model': object()}})
        with pytest.raises(StoreError, match='numbers or strings'):
            writer.add_round(**{**good, 'model_state': {'tree': np.array([{}])}})
    with SlideStore(path) as store:
        assert store.rounds() == []
    with pytest.raises(StoreError, match='beyond'):
        with SlideStore.create(tmp_path / 'other.h5', slide_info(labels), {}) as writer:
            writer.create_label_raster(100, 100)
            writer.write_segments(table)


def test_bad_files(tmp_path, store_path):
    with pytest.raises(StoreError, match='not found'):
        SlideStore(tmp_path / 'missing.h5')
    with pytest.raises(StoreError, match='not found'):
        with SlideStore.update(tmp_path / 'missing.h5'):
            pass
    data = store_path.read_bytes()
    truncated = tmp_path / 'truncated.h5'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(StoreError, match='damaged'):
        SlideStore(truncated)
    garbage = tmp_path / 'garbage.h5'
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(StoreError, match='not an HDF5 file'):
        SlideStore(garbage)
    text = tmp_path / 'labels.h5'
    text.write_text('{"labels": []}')
    with pytest.raises(StoreError, match='not an HDF5 file'):
        SlideStore(text)
    other = tmp_path / 'other.h5'
    with h5py.File(other, 'w') as h5:
        h5['x'] = np.arange(3)
    with pytest.raises(StoreError, match='not a histomics-label slide store'):
        SlideStore(other)


def test_newer_schema_is_refused(store_path):
    with h5py.File(store_path, 'r+') as h5:
        h5.attrs['schema_version'] = SCHEMA_VERSION + 1
    with pytest.raises(StoreError, match=f'newer histomics-label \\(schema version {SCHEMA_VERSION + 1}\\)'):
        SlideStore(store_path)
    before = store_path.read_bytes()
    with pytest.raises(StoreError, match='newer'):
        with SlideStore.update(store_path):
            pass
    assert store_path.read_bytes() == before


# -- masked patches ---------------------------------------------------------------------------------------------------

def real_patches(segmentation, size):
    """The masked patches of every superpixel of the IHC image, in row order (segment id − 1)."""
    image, labels, table, _ = segmentation
    patches = np.zeros((len(table), size, size, 3), np.uint8)
    for ids, batch in iter_patches(ArraySlide(image), labels, table, size, batch_size=50, tile_size=128):
        patches[ids - 1] = batch
    return patches


def test_patches_round_trip_compressed_and_in_several_sizes(store_path, segmentation):
    _, _, table, _ = segmentation
    small, large = real_patches(segmentation, 24), real_patches(segmentation, 40)
    with SlideStore.update(store_path) as writer:
        writer.write_patches(small)
        dataset = writer.create_patches(40)  # filled in batches, in any order, like a representation does
        order = np.random.default_rng(0).permutation(len(table))
        for start in range(0, len(table), 64):
            rows = np.sort(order[start:start + 64])
            for row in rows:
                dataset[row] = large[row]
    with SlideStore(store_path) as store:
        assert store.patch_sizes() == [24, 40]
        assert store.patch_params(24) == {'patch_size': 24, 'fill': FILL_VALUE}
        np.testing.assert_array_equal(store.patches(24), small)
        np.testing.assert_array_equal(store.patches(40), large)
        rows = np.array([9, 0, 9, len(table) - 1])
        np.testing.assert_array_equal(store.patches(40, rows), large[rows])
        assert store.patches(24, []).shape == (0, 24, 24, 3)
        assert store.feature_names() == ['colour']  # patches are not features
        with pytest.raises(FeaturesError, match='no 32 px patches .* 24, 40'):
            store.patches(32)
    with h5py.File(store_path, 'r') as h5:
        stored = h5['patches/40']
        assert stored.dtype == np.uint8 and stored.compression == 'gzip' and stored.chunks[1:] == (40, 40, 3)
        assert stored.id.get_storage_size() < large.nbytes / 1.5  # real patches with masked surroundings shrink


def test_replaced_patches_do_not_grow_the_file(store_path, segmentation):
    patches = real_patches(segmentation, 32)
    with SlideStore.update(store_path) as writer:
        writer.write_patches(patches, fill=0)
    size = os.path.getsize(store_path)
    for _ in range(2):
        with SlideStore.update(store_path) as writer:
            writer.write_patches(patches)
    assert os.path.getsize(store_path) <= size * 1.05
    with SlideStore(store_path) as store:
        assert store.patch_params(32)['fill'] == FILL_VALUE


def test_patch_validation_and_atomicity(tmp_path, store_path, segmentation):
    _, labels, table, _ = segmentation
    patches = real_patches(segmentation, 16)
    with SlideStore.update(store_path) as writer:
        with pytest.raises(FeaturesError, match=f'{len(table)} segments but {len(table) - 1} rows'):
            writer.write_patches(patches[1:])
        with pytest.raises(FeaturesError, match='uint8'):
            writer.write_patches(patches.astype(np.float32))
        with pytest.raises(FeaturesError, match='square RGB'):
            writer.write_patches(patches[:, :, :8])
        with pytest.raises(FeaturesError, match='positive whole number'):
            writer.create_patches(0)
        with pytest.raises(FeaturesError, match='positive whole number'):
            writer.create_patches(16.5)
        with pytest.raises(FeaturesError, match='grey level'):
            writer.create_patches(16, fill=256)
    before = store_path.read_bytes()
    with SlideStore(store_path) as store:
        assert store.patch_sizes() == []  # a rejected patch set leaves no empty group or dataset behind
    with pytest.raises(RuntimeError, match='cutting crashed'):
        with SlideStore.update(store_path) as writer:
            writer.create_patches(16)[:10] = patches[:10]
            raise RuntimeError('cutting crashed')
    assert store_path.read_bytes() == before
    with pytest.raises(StoreError, match='write the segments before patches'):
        with SlideStore.create(tmp_path / 'new.h5', slide_info(labels), {}) as writer:
            writer.create_patches(16)
    assert not (tmp_path / 'new.h5').exists()


def _round_fields(n, seed):
    rng = np.random.default_rng(seed)
    return dict(categories=CATEGORIES, label_ids=np.array([1, n]), label_categories=np.array([0, 1]),
                probabilities=rng.dirichlet(np.ones(3), n).astype(np.float32), model_name='linear',
                model_params={'seed': seed}, model_state={'weight': rng.normal(size=(3, 2))}, metrics={})


def test_appended_rounds_are_files_of_their_own(store_path, segmentation):
    import threading

    from histomics_label.core.io.store import ROUNDS_KEPT, append_round, rounds_folder

    _, labels, table, colour = segmentation
    first, _ = add_labeled_round(store_path, len(table))  # a round inside the store
    size = store_path.stat().st_size
    second = append_round(store_path, **_round_fields(len(table), 1))
    assert (first, second) == (1, 2)
    assert store_path.stat().st_size == size  # the store itself is not rewritten
    numbers = []
    threads = [threading.Thread(target=lambda k=k: numbers.append(append_round(
        store_path, **_round_fields(len(table), k)))) for k in range(2, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(numbers) == [3, 4, 5, 6]  # writers at once get distinct numbers
    kept = list(range(7 - ROUNDS_KEPT, 7))  # the older rounds are compacted away (see test_round_compaction)
    with SlideStore(store_path) as store:
        assert store.rounds() == kept
        record = store.round(kept[0])
        seed = record.model_params['seed']  # the threads' rounds got their numbers in any order
        np.testing.assert_array_equal(record.probabilities, _round_fields(len(table), seed)['probabilities'])
        assert store.latest_round().number == 6
        np.testing.assert_array_equal(store.round_probabilities(kept[0], [0, 3]), record.probabilities[[0, 3]])
    assert not [name for name in os.listdir(rounds_folder(store_path)) if name.endswith('.tmp')]
    with pytest.raises(StoreError, match='Probabilities must be'):
        append_round(store_path, **{**_round_fields(len(table), 9), 'probabilities': np.zeros((2, 3))})
    with SlideStore(store_path) as store:
        assert store.rounds() == kept
    # a store made again (say, re-segmented) starts without the old rounds, even if their files were left
    copy = store_path.with_name('copy.h5')
    write_store(copy, labels, table, colour)
    shutil.copytree(rounds_folder(store_path), rounds_folder(copy))
    with SlideStore(copy) as store:
        assert store.rounds() == []
    write_store(store_path, labels, table, colour)
    assert os.listdir(rounds_folder(store_path)) == ['.lock']  # no round file, only the rounds' lock file


def _same_round(a, b):
    assert (a.categories, a.model_name, a.model_params, a.metrics) == (b.categories, b.model_name, b.model_params,
                                                                       b.metrics)
    for field in ('label_ids', 'label_categories', 'probabilities'):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.model_state.keys() == b.model_state.keys()
    for key in a.model_state:
        np.testing.assert_array_equal(a.model_state[key], b.model_state[key])


def test_a_round_travels_to_a_copy_of_its_store_and_back(tmp_path, store_path, segmentation):
    """What a round on a worker does: the server's latest round goes into a copy of the store, the round trained
    there comes back as the store's next round, equal field for field; a round of another store is refused."""
    from histomics_label.core.io.store import adopt_round, append_round, export_latest_round

    _, labels, table, colour = segmentation
    assert export_latest_round(store_path, tmp_path / 'none.h5') is None and not (tmp_path / 'none.h5').exists()
    add_labeled_round(store_path, len(table))  # round 1 inside the store
    append_round(store_path, **_round_fields(len(table), 2))  # round 2, a file of its own
    assert export_latest_round(store_path, tmp_path / 'latest.h5') == 2
    worker = tmp_path / 'worker'
    worker.mkdir()
    shutil.copy(store_path, worker / 'copy.h5')  # the copy carries round 1 (inside), not round 2 (a file)
    assert adopt_round(worker / 'copy.h5', tmp_path / 'latest.h5') == 2
    with SlideStore(worker / 'copy.h5') as copy, SlideStore(store_path) as store:
        _same_round(copy.latest_round(), store.latest_round())
    trained = append_round(worker / 'copy.h5', **_round_fields(len(table), 3))
    assert export_latest_round(worker / 'copy.h5', tmp_path / 'trained.h5') == trained
    assert adopt_round(store_path, tmp_path / 'trained.h5') == 3
    with SlideStore(worker / 'copy.h5') as copy, SlideStore(store_path) as store:
        _same_round(store.latest_round(), copy.latest_round())
        assert store.round(2).model_params == {'seed': 2}

    other = tmp_path / 'other.h5'
    write_store(other, labels, table, colour)  # the same segments, made again: another store
    with pytest.raises(StoreError, match='belongs to another store'):
        adopt_round(other, tmp_path / 'trained.h5')
    with pytest.raises(StoreError, match='Not a round file'):
        adopt_round(store_path, tmp_path / 'missing.h5')
    with SlideStore(other) as store:
        assert store.rounds() == []
    with SlideStore(store_path) as store:
        assert store.rounds()[-1] == 3
