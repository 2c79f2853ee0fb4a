"""Rounds are compacted: a store keeps the files of its last few rounds, and opening it touches a bounded number
of files however many rounds it has had; the latest round stays complete, with its model state for warm start."""

import os
import shutil

import numpy as np
import pytest
from helpers.ihc_store import ihc_segmentation, write_ihc_store

from histomics_label.core.errors import StoreError
from histomics_label.core.io.store import ROUNDS_KEPT, SlideStore, append_round, pack_rounds, rounds_folder

CATEGORIES = [{'name': 'tumor', 'color': '#ff0000', 'excluded': False},
              {'name': 'stroma', 'color': '#00ff00', 'excluded': False},
              {'name': 'background', 'color': '#ffffff', 'excluded': True}]


@pytest.fixture(scope='module')
def segmentation():
    """SLIC superpixels of skimage's real IHC tissue image and its segment table."""
    return ihc_segmentation(300)



@pytest.fixture
def store_path(tmp_path, segmentation):
    path = tmp_path / 'slide.h5'
    write_ihc_store(path, segmentation)
    return path


def _round(n, seed):
    """The fields of a round whose content is known from its seed."""
    rng = np.random.default_rng(seed)
    return dict(categories=CATEGORIES, label_ids=np.array([1, 7, n]), label_categories=np.array([0, 1, 0]),
                probabilities=rng.dirichlet(np.ones(3), n).astype(np.float32), model_name='linear',
                model_params={'seed': seed, 'classes': [0, 1]},
                model_state={'weight': rng.normal(size=(3, 2)), 'classes': np.array(['tumor', 'stroma'])},
                metrics={'labels_used': 3})


def _open_files():
    return set(os.listdir('/proc/self/fd'))


def _assert_round(record, n, seed):
    written = _round(n, seed)
    np.testing.assert_array_equal(record.probabilities, written['probabilities'])
    np.testing.assert_array_equal(record.label_ids, written['label_ids'])
    assert record.model_params == written['model_params']
    assert sorted(record.model_state) == ['classes', 'weight']
    np.testing.assert_array_equal(record.model_state['weight'], written['model_state']['weight'])
    np.testing.assert_array_equal(record.model_state['classes'], written['model_state']['classes'])


def test_fifty_rounds_keep_the_last_few_and_open_few_files(store_path, segmentation):
    n = len(segmentation[1].area)
    assert ROUNDS_KEPT >= 2  # the previous round is what a new round's prediction change compares with
    assert [append_round(store_path, **_round(n, seed)) for seed in range(1, 51)] == list(range(1, 51))
    kept = list(range(51 - ROUNDS_KEPT, 51))
    on_disk = [name for name in os.listdir(rounds_folder(store_path)) if name.endswith('.h5')]
    assert len(on_disk) == ROUNDS_KEPT
    before = _open_files()
    with SlideStore(store_path) as store:
        assert store.rounds() == kept
        latest = store.latest_round()
        assert len(_open_files() - before) <= 2  # the store and its latest round file
        assert latest.number == 50
        _assert_round(latest, n, 50)  # complete, with the model state a warm start reads
        _assert_round(store.round(49), n, 49)
        assert store.round_categories(50) == CATEGORIES
        np.testing.assert_array_equal(store.round_probabilities(50, [4, 0, 4]),
                                      _round(n, 50)['probabilities'][[4, 0, 4]])
        for number in kept:
            store.round(number)
        assert len(_open_files() - before) <= 1 + ROUNDS_KEPT
        for old in (1, 50 - ROUNDS_KEPT):  # the first, and the last one dropped
            with pytest.raises(StoreError, match=f'no round {old}'):
                store.round_probabilities(old)
    assert _open_files() <= before
    assert append_round(store_path, **_round(n, 51)) == 51  # numbers go on after the dropped rounds


def test_rounds_inside_the_store_are_compacted_too(store_path, segmentation):
    n = len(segmentation[1].area)
    for seed in range(1, 6):
        with SlideStore.update(store_path) as writer:
            assert writer.add_round(**_round(n, seed)) == seed
    with SlideStore(store_path) as store:
        assert store.rounds() == list(range(6 - ROUNDS_KEPT, 6))
        assert sorted(int(k) for k in store._h5['rounds']) == store.rounds()  # the old ones are gone from the file
        _assert_round(store.latest_round(), n, 5)


def test_round_files_named_before_store_ids_are_read_and_compacted(store_path, segmentation):
    """Round files of older versions were named ``<k>.h5`` and held the store id inside."""
    n = len(segmentation[1].area)
    folder = rounds_folder(store_path)
    for seed in range(1, 6):
        append_round(store_path, **_round(n, seed))
        (written,) = [name for name in os.listdir(folder) if name.startswith(f'{seed}.')]
        os.rename(os.path.join(folder, written), os.path.join(folder, f'{seed}.h5'))
    other = store_path.with_name('other.h5')
    write_ihc_store(other, segmentation)
    append_round(other, **_round(n, 99))
    (foreign,) = [name for name in os.listdir(rounds_folder(other)) if name.endswith('.h5')]
    shutil.copy(os.path.join(rounds_folder(other), foreign), os.path.join(folder, '6.h5'))  # another store's
    with SlideStore(store_path) as store:
        assert store.rounds() == list(range(6 - ROUNDS_KEPT, 6))
        _assert_round(store.latest_round(), n, 5)
    assert append_round(store_path, **_round(n, 6)) == 6
    with SlideStore(store_path) as store:
        assert store.rounds() == list(range(7 - ROUNDS_KEPT, 7))
        _assert_round(store.latest_round(), n, 6)
        _assert_round(store.round(5), n, 5)
    assert len([name for name in os.listdir(folder) if name.endswith('.h5')]) == ROUNDS_KEPT


def test_a_new_store_drops_the_old_rounds(store_path, segmentation):
    n = len(segmentation[1].area)
    append_round(store_path, **_round(n, 1))
    write_ihc_store(store_path, segmentation)
    with SlideStore(store_path) as store:
        assert store.rounds() == []
    assert not [name for name in os.listdir(rounds_folder(store_path)) if name.endswith('.h5')]
    assert append_round(store_path, **_round(n, 2)) == 1


def test_packing_moves_the_round_files_into_the_store(store_path, segmentation, tmp_path):
    n = len(segmentation[1].area)
    for seed in range(1, ROUNDS_KEPT + 3):
        append_round(store_path, **_round(n, seed))
    with SlideStore(store_path) as store:
        kept = store.rounds()
    assert pack_rounds(store_path) == kept
    assert not [name for name in os.listdir(rounds_folder(store_path)) if name.endswith('.h5')]
    # the one file, alone elsewhere, carries every kept round, whole
    alone = tmp_path / 'uploaded' / 'slide.h5'
    alone.parent.mkdir()
    shutil.copy(store_path, alone)
    with SlideStore(alone) as store:
        assert store.rounds() == kept
        for number, seed in zip(kept, range(ROUNDS_KEPT + 3 - len(kept), ROUNDS_KEPT + 3), strict=True):
            _assert_round(store.round(number), n, seed)
    # rounds go on after the packed ones, and a second pack adds the new one
    assert append_round(store_path, **_round(n, 99)) == kept[-1] + 1
    assert pack_rounds(store_path) == [kept[-1] + 1]
    with SlideStore(store_path) as store:
        _assert_round(store.latest_round(), n, 99)
        assert len(store._h5['rounds']) == ROUNDS_KEPT  # the rounds no longer kept left the store
    assert pack_rounds(store_path) == []
