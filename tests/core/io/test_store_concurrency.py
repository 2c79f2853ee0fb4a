"""Slide store writes are isolated across processes: two updates at once both survive, readers keep reading."""

import multiprocessing
import os
import time

import numpy as np
import pytest
from skimage.data import immunohistochemistry
from skimage.measure import regionprops
from skimage.segmentation import slic

from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore, append_round, replace_store, rounds_folder
from histomics_label.core.segments import SegmentTable

CATEGORIES = [{'name': 'tumor', 'color': '#ff0000', 'excluded': False},
              {'name': 'stroma', 'color': '#00ff00', 'excluded': False}]
WAIT = 30
"""Seconds a process waits for the other's signal before the test fails (only reached when something hangs)."""


@pytest.fixture(scope='module')
def segmentation():
    """SLIC superpixels of skimage's real IHC tissue image, with each segment's mean colour and its square."""
    image = immunohistochemistry()
    labels = slic(image, n_segments=300, compactness=10, start_label=1).astype(np.uint32)
    props = regionprops(labels)
    table = SegmentTable(
        bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props], np.int64),
        centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
        area=np.array([p.area for p in props], np.int64))
    flat = labels.ravel()
    counts = np.bincount(flat)[1:, None]
    colour = (np.stack([np.bincount(flat, image[:, :, c].ravel())[1:] for c in range(3)], 1) / counts)
    return labels, table, colour.astype(np.float32)


def _create(path, segmentation, params):
    labels, table, colour = segmentation
    height, width = labels.shape
    info = SlideInfo('/data/ihc.tiff', width * 2, height * 2, 20.0, 10.0, 2.0, width, height)
    with SlideStore.create(path, info, params) as writer:
        writer.create_label_raster(height, width)[:] = labels
        writer.write_segments(table)
        writer.write_features('colour', colour, {'kind': 'mean rgb'})


@pytest.fixture
def store_path(tmp_path, segmentation):
    path = tmp_path / 'slide.h5'
    _create(path, segmentation, {'source': 'slic', 'radius': 15})
    return path


def _slow_update(path, values, inside, other_started):
    """Add the ``first`` features, then stay inside the update until the other writer has begun its own."""
    with SlideStore.update(path) as writer:
        writer.write_features('first', values, {'writer': 'first'})
        inside.set()
        if not other_started.wait(WAIT):
            raise SystemExit(2)
        time.sleep(0.5)  # long enough for the other update to finish, were it not kept waiting


def _second_update(path, values, first_inside, started):
    """Wait until the first writer is inside its update, then add the ``second`` features."""
    if not first_inside.wait(WAIT):
        raise SystemExit(2)
    started.set()
    with SlideStore.update(path) as writer:
        writer.write_features('second', values, {'writer': 'second'})


def test_two_concurrent_updates_both_survive(store_path, segmentation):
    _, _, colour = segmentation
    first_values, second_values = colour / 255, (colour / 255) ** 2
    context = multiprocessing.get_context('fork')
    inside, started = context.Event(), context.Event()
    first = context.Process(target=_slow_update, args=(store_path, first_values, inside, started))
    second = context.Process(target=_second_update, args=(store_path, second_values, inside, started))
    first.start()
    second.start()
    assert inside.wait(WAIT)
    with SlideStore(store_path) as store:  # a reader keeps working while a writer holds the store
        np.testing.assert_array_equal(store.features('colour'), colour)
    for process in (first, second):
        process.join(WAIT)
        assert process.exitcode == 0
    with SlideStore(store_path) as store:
        assert store.feature_names() == ['colour', 'first', 'second']
        np.testing.assert_array_equal(store.features('colour'), colour)
        np.testing.assert_array_equal(store.features('first'), first_values)
        np.testing.assert_array_equal(store.features('second'), second_values)
        assert store.feature_params('second') == {'writer': 'second'}


def _append(path, n, seed, numbers):
    rng = np.random.default_rng(seed)
    numbers.put(append_round(
        path, categories=CATEGORIES, label_ids=np.array([1, n]), label_categories=np.array([0, 1]),
        probabilities=rng.dirichlet(np.ones(2), n).astype(np.float32), model_name='linear',
        model_params={'seed': seed}, model_state={'weight': rng.normal(size=(3, 2))}, metrics={}))


def test_rounds_appended_by_processes_at_once_get_their_own_numbers(store_path, segmentation):
    _, table, _ = segmentation
    context = multiprocessing.get_context('fork')
    numbers = context.Queue()
    processes = [context.Process(target=_append, args=(store_path, len(table), seed, numbers)) for seed in (1, 2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(WAIT)
        assert process.exitcode == 0
    assert sorted(numbers.get(timeout=WAIT) for _ in processes) == [1, 2]
    with SlideStore(store_path) as store:
        assert store.rounds() == [1, 2]
        seeds = {store.round(number).model_params['seed'] for number in (1, 2)}
        assert seeds == {1, 2}
        for number in (1, 2):
            record = store.round(number)
            expected = np.random.default_rng(record.model_params['seed']).dirichlet(np.ones(2), len(table))
            np.testing.assert_array_equal(record.probabilities, expected.astype(np.float32))


def _update_then_signal(path, values, inside):
    with SlideStore.update(path) as writer:
        writer.write_features('late', values, {})
        inside.set()
        time.sleep(0.5)  # long enough for the replacement to land first, were it not kept waiting


def test_a_store_replaced_during_an_update_stays_replaced(store_path, segmentation, tmp_path):
    """A new segmentation moved over the store while a feature update of the old store runs: the update finishes
    first and the new store is what stays (not the old store brought back with the update's features)."""
    _, table, colour = segmentation
    _append(store_path, len(table), 1, multiprocessing.get_context('fork').SimpleQueue())
    pending = tmp_path / 'pending.h5'
    _create(pending, segmentation, {'source': 'slic', 'radius': 20})
    context = multiprocessing.get_context('fork')
    inside = context.Event()
    writer = context.Process(target=_update_then_signal, args=(store_path, colour * 2, inside))
    writer.start()
    assert inside.wait(WAIT)
    replace_store(pending, store_path)
    writer.join(WAIT)
    assert writer.exitcode == 0
    assert not pending.exists()
    with SlideStore(store_path) as store:
        assert store.segment_params == {'source': 'slic', 'radius': 20}
        assert store.feature_names() == ['colour']
        assert store.rounds() == []  # the old store's round is gone with it
    assert not [name for name in os.listdir(rounds_folder(store_path)) if name.endswith('.h5')]
