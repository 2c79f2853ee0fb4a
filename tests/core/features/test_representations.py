"""Representations on a real H&E slide: stored once, reused while current, streamed in bounded memory."""

import os
import shutil
import tracemalloc

import numpy as np
import pytest

from histomics_label.core.errors import ConfigurationError, FeaturesError
from histomics_label.core.features.extractors import FeatureExtractor, extract_features, extractors
from histomics_label.core.features.parts import assemble, compute_part, part_ranges
from histomics_label.core.features.patches import FILL_VALUE, iter_patches
from histomics_label.core.features.representations import (
    ImageRepresentation,
    VectorRepresentation,
    check_model_fits,
    model_fits,
    representations,
)
from histomics_label.core.io.slide import SlideReader
from histomics_label.core.io.store import SlideStore
from histomics_label.core.models import Model
from histomics_label.core.segments import segment_sources


class Pixels(FeatureExtractor):
    """A real, cheap extractor: the patch's pixels scaled to 0..1, one dimension per pixel and channel."""

    name = 'pixels'

    def __init__(self, size: int) -> None:
        self.dim = size * size * 3

    def extract(self, patches):
        return patches.reshape(len(patches), -1).astype(np.float32) / 255


class MeanColour(FeatureExtractor):
    """The mean RGB of the segment's own pixels (those not masked to the fill grey)."""

    name = 'mean_colour'
    dim = 3

    def extract(self, patches):
        inside = (patches != FILL_VALUE).any(axis=3, keepdims=True)
        return ((patches * inside).sum(axis=(1, 2)) / np.maximum(inside.sum(axis=(1, 2)), 1)).astype(np.float32)


class Miscounting(MeanColour):
    """Claims 3 dimensions but returns 4: a broken extractor, to check nothing half-written is kept."""

    def extract(self, patches):
        return np.zeros((len(patches), 4), np.float32)


@pytest.fixture(scope='module')
def slide(cmu_svs):
    return SlideReader(str(cmu_svs), scale=4)


def make_store(path, slide, radius):
    with SlideStore.create(path, slide.info, {'source': 'slic', 'radius': radius}) as writer:
        raster = writer.create_label_raster(slide.height, slide.width)
        table = segment_sources.create('slic', radius=radius, compactness=15, tile_size=1024).segment(slide, raster)
        writer.write_segments(table)
    return path


@pytest.fixture(scope='module')
def many(tmp_path_factory, slide):
    """A store of a few hundred small SLIC superpixels of the H&E slide."""
    return make_store(tmp_path_factory.mktemp('many') / 'slide.h5', slide, radius=8)


@pytest.fixture(scope='module')
def few(tmp_path_factory, slide):
    """A store of a few dozen large superpixels, for the (slow) real network."""
    return make_store(tmp_path_factory.mktemp('few') / 'slide.h5', slide, radius=30)


@pytest.fixture
def store_copy(tmp_path):
    def copy(source):
        target = tmp_path / 'copy.h5'
        shutil.copyfile(source, target)
        return str(target)
    return copy


def test_registered_by_name():
    assert representations.names() == ['image', 'vector']
    assert isinstance(representations.create('image', patch_size=16), ImageRepresentation)
    with pytest.raises(ConfigurationError, match='Unknown representation'):
        representations.get('pixels')
    with pytest.raises(ConfigurationError, match='Unknown feature extractor'):
        representations.create('vector', extractor='no_such_network')
    with pytest.raises(ConfigurationError, match='patch_size'):
        representations.create('image', patch_size=0)
    assert representations.create('vector').key == 'features/efficientnet_lite0'
    assert representations.create('image', patch_size=40).key == 'patches/40'


def test_image_stores_exactly_the_masked_patches(slide, many, store_copy):
    path = store_copy(many)
    image = ImageRepresentation(patch_size=24, batch_size=50)
    with SlideStore(path) as store:
        assert not image.is_current(store)
    reports = []
    assert image.ensure(slide, path, lambda done, total, message='': reports.append((done, total))) is False
    with SlideStore(path) as store:
        n = store.n_segments
        assert image.is_current(store)
        assert store.patch_sizes() == [24]
        assert store.patch_params(24) == {'patch_size': 24, 'fill': FILL_VALUE}
        stored = image.load(store)
        expected = np.zeros_like(stored)
        for ids, patches in iter_patches(slide, store.label_raster, store.segments(), 24, batch_size=64):
            expected[ids - 1] = patches
        assert stored.dtype == np.uint8 and stored.shape == (n, 24, 24, 3)
        assert np.array_equal(stored, expected)
        assert np.array_equal(image.load(store, rows=[7, 2]), expected[[7, 2]])
        assert (stored != FILL_VALUE).any() and (stored == FILL_VALUE).any()  # real tissue, masked surroundings
        assert not ImageRepresentation(patch_size=32).is_current(store)
    assert reports[0] == (0, n) and reports[-1] == (n, n)

    assert image.ensure(slide, path) is True  # reused: nothing recomputed
    ImageRepresentation(patch_size=32).compute(slide, path)
    with SlideStore(path) as store:
        assert store.patch_sizes() == [24, 32]  # sizes live side by side
        assert np.array_equal(store.patches(24), stored)
        assert image.is_current(store)


def test_vector_features_of_the_real_network_are_reused(slide, few, store_copy):
    path = store_copy(few)
    vector = VectorRepresentation(patch_size=32, batch_size=32)
    assert vector.ensure(slide, path) is False
    with SlideStore(path) as store:
        features = vector.load(store)
        assert vector.is_current(store)
        assert store.feature_params('efficientnet_lite0') == {**vector.extractor.params(), 'patch_size': 32}
        batches = iter_patches(slide, store.label_raster, store.segments(), 32, batch_size=32)
        expected = extract_features(extractors.create('efficientnet_lite0'), batches, store.n_segments)
        assert not VectorRepresentation(patch_size=40).is_current(store)
    assert features.shape == (len(expected), 1280) and features.dtype == np.float32
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)
    assert VectorRepresentation(patch_size=32).ensure(slide, path) is True


def test_vector_rows_land_on_their_segments_and_memory_stays_bounded(slide, many, store_copy):
    """Batches arrive in tile order, not id order; each row must still hold its own segment's features, and
    computing must never hold all N × D features: the peak grows with the batch, not with N."""
    path = store_copy(many)
    size = 48
    with SlideStore(path) as store:
        order = np.concatenate([ids for ids, _ in iter_patches(slide, store.label_raster, store.segments(), size,
                                                               batch_size=32, tile_size=256)])
    assert (np.diff(order) < 0).sum() >= 3  # several windows: ids really come out of order
    peaks = {}
    for extractor in (MeanColour(), Pixels(size)):
        tracemalloc.start()
        try:
            VectorRepresentation(patch_size=size, extractor=extractor, batch_size=32, tile_size=256).compute(slide,
                                                                                                             path)
            peaks[extractor.name] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    with SlideStore(path) as store:
        n = store.n_segments
        pixels = store.features('pixels')
        patches = np.zeros((n, size, size, 3), np.uint8)
        for ids, batch in iter_patches(slide, store.label_raster, store.segments(), size):
            patches[ids - 1] = batch
    assert np.array_equal(pixels, patches.reshape(n, -1).astype(np.float32) / 255)
    whole = n * size * size * 3 * 4
    assert whole > 8_000_000
    assert peaks['pixels'] - peaks['mean_colour'] < whole / 4


def test_stored_features_of_the_wrong_dimension_are_an_error(slide, few, store_copy):
    path = store_copy(few)
    vector = VectorRepresentation(patch_size=32)
    with SlideStore.update(path) as writer:  # what a damaged or hand-edited store could hold
        writer.write_features('efficientnet_lite0', np.ones((writer.n_segments, 16), np.float32), vector.params())
    with SlideStore(path) as store, pytest.raises(FeaturesError, match='16 dimensions .* gives 1280'):
        vector.is_current(store)


def test_a_failed_compute_leaves_the_store_as_it_was(slide, many, store_copy):
    path = store_copy(many)
    before = open(path, 'rb').read()
    with pytest.raises(FeaturesError, match=r'shape \(\d+, 4\)'):
        VectorRepresentation(patch_size=16, extractor=Miscounting()).compute(slide, path)
    assert open(path, 'rb').read() == before
    assert not any(name.endswith('.tmp') for name in os.listdir(os.path.dirname(path)))


@pytest.mark.parametrize('rep', [ImageRepresentation(patch_size=24, batch_size=40),
                                 VectorRepresentation(patch_size=16, extractor=MeanColour(), batch_size=40)],
                         ids=['image', 'vector'])
def test_parts_computed_apart_put_together_equal_the_whole(slide, many, tmp_path, rep):
    """Three parts of the rows, each computed on its own (as on three workers), make the store the whole computation
    makes; parts that miss or repeat rows, or belong to another store or representation, change nothing."""
    whole, split = str(tmp_path / 'whole.h5'), str(tmp_path / 'split.h5')
    shutil.copyfile(many, whole)
    shutil.copyfile(many, split)
    rep.compute(slide, whole)
    with SlideStore(split) as store:
        n = store.n_segments
    ranges = part_ranges(n, n // 3 + 1)
    assert len(ranges) == 3 and ranges[0][0] == 0 and ranges[-1][1] == n
    parts = [str(tmp_path / f'part-{start}.h5') for start, _ in ranges]
    for rows, part in zip(ranges, parts, strict=True):
        compute_part(rep, slide, split, rows, part)
    before = open(split, 'rb').read()
    with pytest.raises(FeaturesError, match='miss rows'):
        assemble(rep, split, parts[::2])
    compute_part(rep, slide, split, (ranges[1][0] - 2, ranges[1][1]), tmp_path / 'overlap.h5')
    with pytest.raises(FeaturesError, match='repeat rows'):
        assemble(rep, split, [*parts, tmp_path / 'overlap.h5'])
    with pytest.raises(FeaturesError, match='cover'):
        assemble(rep, split, parts[:2])
    other = make_store(tmp_path / 'other.h5', slide, radius=8)  # the same segments, made again: another store
    compute_part(rep, slide, other, ranges[2], tmp_path / 'foreign.h5')
    with pytest.raises(FeaturesError, match='another store'):
        assemble(rep, split, [*parts[:2], tmp_path / 'foreign.h5'])
    with pytest.raises(FeaturesError, match='another store or with other parameters'):
        assemble(ImageRepresentation(patch_size=20), split, parts)
    assert open(split, 'rb').read() == before
    assemble(rep, split, parts)
    with SlideStore(split) as done, SlideStore(whole) as reference:
        assert rep.is_current(done)
        assert np.array_equal(rep.load(done), rep.load(reference))


def test_a_part_is_a_range_of_the_stores_rows(slide, many, tmp_path):
    with SlideStore(many) as store:
        n = store.n_segments
    for bad in [(0, n + 1), (5, 5), (-1, 3)]:
        with pytest.raises(FeaturesError, match='not a range'):
            compute_part(ImageRepresentation(patch_size=8), slide, many, bad, tmp_path / 'part.h5')
    assert not list(tmp_path.iterdir())
    assert part_ranges(10, 4) == [(0, 3), (3, 7), (7, 10)]
    assert part_ranges(10, 10) == [(0, 10)] and part_ranges(0, 5) == [(0, 0)]


class PatchModel(Model):
    """Stands for a CNN: a model that declares it learns from the patches' pixels."""

    name = 'patch_model'
    representation = 'image'


def test_models_and_representations_must_fit():
    assert model_fits('linear', 'vector') and not model_fits('linear', 'image')
    check_model_fits('linear', 'vector')
    with pytest.raises(ConfigurationError, match="'linear' model learns from feature vectors.*use --feature vector"):
        check_model_fits('linear', 'image')
    check_model_fits(PatchModel, 'image')
    with pytest.raises(ConfigurationError, match='use --feature image'):
        check_model_fits(PatchModel(), 'vector')
    with pytest.raises(ConfigurationError, match='Unknown representation'):
        check_model_fits('linear', 'pixels')
