"""Carry-over by pixel overlap on the real DSB2018 nuclei: the old segmentation is the real instance mask, the new one
is made from it so that each nucleus's fate is known by construction (kept under another id, erased, swallowed by a
larger segment, cut into stripes), and each fate is also computed again by brute force on whole-raster masks."""

import numpy as np
import pytest
from helpers import carry_over_oracle
from scipy import ndimage

from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import SegmentTable
from histomics_label.core.segments.carry_over import Overlap, overlap, store_id


def write_store(path, raster, scale):
    """A store of ``raster`` (segment ids 1..N, contiguous) as the segmentation of a 512 × 512 base-pixel slide."""
    height, width = raster.shape
    n = int(raster.max())
    objects = ndimage.find_objects(raster)
    bbox = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in objects], np.int64)
    area = np.bincount(raster.ravel(), minlength=n + 1)[1:]
    ys, xs = np.indices(raster.shape)
    centroid = np.stack([np.bincount(raster.ravel(), xs.ravel(), n + 1)[1:] / area,
                         np.bincount(raster.ravel(), ys.ravel(), n + 1)[1:] / area], axis=1)
    info = SlideInfo('/slides/dsb.tiff', 512, 512, 40.0, 40.0 / scale, float(scale), width, height)
    with SlideStore.create(path, info, {'source': 'label_image', 'scale': scale}) as writer:
        writer.create_label_raster(height, width)[:] = raster
        writer.write_segments(SegmentTable(bbox, centroid, area))
    return path


def contiguous(raster):
    """``raster`` with its non-zero values renumbered 1..N (in order of value)."""
    values, inverse = np.unique(raster, return_inverse=True)
    out = inverse.reshape(raster.shape).astype(np.uint32)
    return out if values[0] == 0 else out + 1


@pytest.fixture(scope='module')
def nuclei(dsb2018):
    """The real mask (segments 1..125) and a new segmentation with each nucleus's fate known by construction."""
    _, mask = dsb2018
    old = contiguous(mask)
    n = int(old.max())
    rng = np.random.default_rng(7)
    kinds = np.array(['kept'] * n, dtype=object)
    chosen = rng.permutation(np.arange(1, n + 1))
    erased, swallowed, striped = chosen[:10], chosen[10:20], chosen[20:30]
    kinds[erased - 1], kinds[swallowed - 1], kinds[striped - 1] = 'erased', 'swallowed', 'striped'
    new = np.zeros_like(old, np.int64)
    permuted = rng.permutation(n) + 1  # kept nucleus k becomes new segment permuted[k - 1] (before renumbering)
    new[old > 0] = permuted[old[old > 0] - 1]
    new[np.isin(old, erased)] = 0
    rows = np.indices(old.shape)[0]
    for k in striped:  # three interleaved row stripes: no part holds more than about a third
        cut = old == k
        new[cut] = 1000 + 3 * k + rows[cut] % 3
    for k in swallowed:  # the nucleus plus a margin of background: the nucleus is under half of the new segment
        ys, xs = np.nonzero(old == k)
        box = (slice(max(0, ys.min() - 12), ys.max() + 13), slice(max(0, xs.min() - 12), xs.max() + 13))
        region = new[box]
        region[(old[box] == k) | ((region == 0) & (old[box] == 0))] = 5000 + k
    values = np.unique(new)
    renumber = {int(v): i for i, v in enumerate(values)}
    expected_target = {int(k): renumber[int(permuted[k - 1])] for k in np.flatnonzero(kinds == 'kept') + 1}
    return old, contiguous(new), kinds, expected_target


def test_each_nucleus_gets_the_fate_its_construction_gives(nuclei, tmp_path):
    old, new, kinds, expected_target = nuclei
    table = overlap(write_store(tmp_path / 'old.h5', old, 1.0), write_store(tmp_path / 'new.h5', new, 1.0))
    fates = {k: table.fate(k) for k in range(1, int(old.max()) + 1)}
    for k, fate in fates.items():
        kind = kinds[k - 1]
        if kind == 'kept':
            assert (fate.fate, fate.target, fate.share, fate.coverage) == ('moved', expected_target[k], 1.0, 1.0)
        elif kind == 'erased':
            assert fate.fate == 'dropped' and fate.target is None
        else:
            assert fate.fate == 'ambiguous' and fate.target is None, (k, kind, fate)
    assert {k: (f.fate, f.target) for k, f in fates.items()} == carry_over_oracle.fates(old, new)
    assert table.fate(0).fate == table.fate(len(table.old_area) + 1).fate == 'dropped'  # no segment of the old


def test_segmentations_at_two_magnifications_compare_on_the_finer_grid(nuclei, tmp_path):
    old, new, kinds, expected_target = nuclei
    coarse = new[::2, ::2]  # the new segmentation at half the magnification: 2 base pixels per pixel
    coarse_ids = contiguous(coarse)
    old_path = write_store(tmp_path / 'old.h5', old, 1.0)
    new_path = write_store(tmp_path / 'new.h5', coarse_ids, 2.0)
    table = overlap(old_path, new_path)
    on_fine_grid = np.repeat(np.repeat(coarse_ids, 2, axis=0), 2, axis=1)  # each coarse pixel covers 2 × 2 fine
    expected = carry_over_oracle.fates(old, on_fine_grid)
    assert {k: (table.fate(k).fate, table.fate(k).target) for k in expected} == expected
    # the same with the stores the other way round (old coarse, new fine) and with tiles that cut every nucleus
    assert sum(fate == 'moved' for fate, _ in expected.values()) > 0.8 * (kinds == 'kept').sum()
    swapped = overlap(new_path, old_path, tile=64)
    assert {k: (swapped.fate(k).fate, swapped.fate(k).target) for k in range(1, int(coarse_ids.max()) + 1)} == \
        carry_over_oracle.fates(coarse_ids.repeat(2, 0).repeat(2, 1), old)


def test_tiles_do_not_change_the_table_and_it_survives_a_round_trip(nuclei, tmp_path):
    old, new, _, _ = nuclei
    old_path, new_path = write_store(tmp_path / 'old.h5', old, 1.0), write_store(tmp_path / 'new.h5', new, 1.0)
    whole, tiled = overlap(old_path, new_path), overlap(old_path, new_path, tile=37)
    for name in ('old_area', 'best', 'overlap', 'best_area'):
        np.testing.assert_array_equal(getattr(whole, name), getattr(tiled, name))
    np.testing.assert_array_equal(whole.old_area, np.bincount(old.ravel())[1:])
    whole.save(tmp_path / 'table.h5')
    loaded = Overlap.load(tmp_path / 'table.h5')
    assert loaded.n_new == whole.n_new == int(new.max())
    assert (loaded.old_id, loaded.new_id) == (store_id(old_path), store_id(new_path)) and store_id(old_path) != \
        store_id(new_path)
    np.testing.assert_array_equal(loaded.best, whole.best)
