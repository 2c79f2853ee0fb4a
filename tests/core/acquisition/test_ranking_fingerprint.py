"""The key of a round's stored rankings (``ranking_store.fingerprint``): the same while nothing they were computed from
changes, a new one for every appended round (round files named ``<k>.<store id>.h5``, compacted as they go) and for
a store made again at the same path, even when its round has the same number as before."""

import numpy as np
import pytest
from helpers.ihc_store import ihc_segmentation, write_ihc_store

from histomics_label.core.acquisition.ranking_store import fingerprint
from histomics_label.core.io.store import ROUNDS_KEPT, SlideStore, append_round

CATEGORIES = [{'name': 'tumor', 'color': '#ff0000', 'excluded': False},
              {'name': 'stroma', 'color': '#00ff00', 'excluded': False}]


@pytest.fixture(scope='module')
def segmentation():
    """SLIC superpixels of skimage's real IHC tissue image and their segment table."""
    return ihc_segmentation(200)


def _create(path, segmentation):
    write_ihc_store(path, segmentation)
    with SlideStore(path) as store:
        return store.n_segments


def _append(path, n, seed):
    rng = np.random.default_rng(seed)
    return append_round(path, categories=CATEGORIES, label_ids=np.array([1, n]), label_categories=np.array([0, 1]),
                        probabilities=rng.dirichlet(np.ones(2), n).astype(np.float32), model_name='linear',
                        model_params={'seed': seed}, model_state={'weight': rng.normal(size=(3, 2))},
                        metrics={'labels_used': 2})


def _key(path):
    return fingerprint([str(path)], 0, 'efficientnet_lite0', 20, 8)


def test_every_appended_round_gives_a_new_key_and_reading_changes_none(tmp_path, segmentation):
    path = tmp_path / 'slide.h5'
    n = _create(path, segmentation)
    keys = [_key(path)]
    for seed in range(1, ROUNDS_KEPT + 3):  # past compaction, which deletes the oldest round files
        assert _append(path, n, seed) == seed
        key = _key(path)
        with SlideStore(path) as store:
            store.round(store.rounds()[-1])  # a reader opens the round's file
        assert _key(path) == key
        keys.append(key)
    assert len(set(keys)) == len(keys)


def test_a_store_made_again_at_the_same_path_gets_a_new_key_for_the_same_round_number(tmp_path, segmentation):
    path = tmp_path / 'slide.h5'
    n = _create(path, segmentation)
    assert _append(path, n, 1) == 1
    before = _key(path)
    assert _create(path, segmentation) == n  # the same segments, a new store (its rounds are gone)
    assert _key(path) != before
    assert _append(path, n, 1) == 1  # the same number, and the same round content, of another store
    assert _key(path) != before


def test_the_key_names_what_the_ranking_depends_on(tmp_path, segmentation):
    path = tmp_path / 'slide.h5'
    n = _create(path, segmentation)
    _append(path, n, 1)
    key = _key(path)
    assert {fingerprint([str(path)], 1, 'efficientnet_lite0', 20, 8),
            fingerprint([str(path)], 0, None, 20, 8),
            fingerprint([str(path)], 0, 'efficientnet_lite0', 10, 8),
            fingerprint([str(path)], 0, 'efficientnet_lite0', 20, 16)}.isdisjoint({key})
