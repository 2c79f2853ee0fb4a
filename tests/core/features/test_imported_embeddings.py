"""Embeddings computed elsewhere, imported per slide from a file into the real H&E sample's store: kept in segment
order, used by the ``imported`` extractor's vector representation, and refused, store untouched, when wrong."""

import io
import shutil

import numpy as np
import pytest

from histomics_label.core.errors import FeaturesError
from histomics_label.core.features.extractors.imported import NOT_COMPUTED
from histomics_label.core.features.imported import IMPORTED, import_embeddings, imported_dim
from histomics_label.core.features.patches import ArraySlide
from histomics_label.core.features.representations import VectorRepresentation
from histomics_label.core.io.store import SlideStore


@pytest.fixture
def store(embedded_cmu, tmp_path):
    """A copy of the segmented, embedded H&E sample's store, and its number of segments."""
    path = tmp_path / 'cmu.h5'
    shutil.copyfile(embedded_cmu, path)
    with SlideStore(path) as opened:
        return path, opened.n_segments


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_a_npy_file_in_segment_order_becomes_the_imported_features(store):
    path, n = store
    embeddings = np.random.default_rng(0).normal(size=(n, 12))  # float64: stored as float32
    summary = import_embeddings(path, npy(embeddings), 'slide.npy')
    assert summary['segments'] == n and summary['dim'] == 12 and summary['file'] == 'slide.npy'
    representation = VectorRepresentation(patch_size=48, extractor=IMPORTED)
    with SlideStore(path) as opened:
        assert opened.feature_params(IMPORTED)['sha256'] == summary['sha256']
        assert representation.is_current(opened)
        np.testing.assert_array_equal(representation.load(opened), embeddings.astype(np.float32))
        assert 'efficientnet_lite0' in opened.feature_names()  # the computed features stay beside them
    assert imported_dim(path) == 12
    assert representation.ensure(ArraySlide(np.zeros((4, 4, 3), np.uint8)), str(path)) is True  # nothing computed


def test_a_npz_file_gives_each_row_its_segment_id(store):
    path, n = store
    embeddings = np.arange(n * 3, dtype=np.float32).reshape(n, 3)  # row i is segment i + 1
    order = np.random.default_rng(1).permutation(n)
    import_embeddings(path, npz(segment_ids=order + 1, embeddings=embeddings[order]), 'slide.NPZ')
    with SlideStore(path) as opened:
        np.testing.assert_array_equal(opened.features(IMPORTED), embeddings)


def test_a_slide_without_an_import_says_how_to_import(store):
    path, _ = store
    representation = VectorRepresentation(patch_size=48, extractor=IMPORTED)
    with SlideStore(path) as opened:
        assert not representation.is_current(opened)
    before = path.read_bytes()
    with pytest.raises(FeaturesError, match='import a file of them for each slide'):
        representation.ensure(ArraySlide(np.zeros((4, 4, 3), np.uint8)), str(path))
    assert path.read_bytes() == before and NOT_COMPUTED.startswith('The imported embeddings')


@pytest.mark.parametrize('make, message', [
    (lambda n: npy(np.ones((n - 1, 8))), r'embeddings of \d+ segments but the slide has \d+'),
    (lambda n: npy(np.ones((n, 5))), '5 dimensions but the project\'s other slides\' have 8'),
    (lambda n: npy(np.where(np.arange(n)[:, None] == 7, np.nan, np.ones((n, 8)))), r'1 segments are NaN.*rows 7\)'),
    (lambda n: npy(np.full((n, 8), 1e300)), 'too large for float32'),
    (lambda n: npy(np.full((n, 8), 'a')), 'must be real numbers, not text'),
    (lambda n: npy(np.ones((n, 8), bool)), 'must be real numbers, not booleans'),
    (lambda n: npy(np.ones(n)), r'2-D array \(segments × dimensions\)'),
    (lambda n: npy(np.array([{'a': 1}] * n, dtype=object)), 'not a readable .npy file'),
    (lambda n: b'segment,x\n1,0.5\n', 'not a readable .npy file'),
    (lambda n: npz(embeddings=np.ones((n, 8))), 'lacks the array.* segment_ids'),
    (lambda n: npz(embeddings=np.ones((n, 8)), segment_ids=np.r_[1, 1:n]), 'name a segment twice'),
    (lambda n: npz(embeddings=np.ones((n, 8)), segment_ids=np.arange(n)), r'must lie in 1\.\.\d+.* e\.g\. 0'),
    (lambda n: npz(embeddings=np.ones((n, 8)), segment_ids=np.arange(1, n + 1) + 0.5), 'whole numbers'),
])
def test_wrong_embeddings_are_refused_and_the_store_is_untouched(store, make, message):
    path, n = store
    before = path.read_bytes()
    data = make(n)
    name = 'slide.npz' if data[:2] == b'PK' else 'slide.npy'
    with pytest.raises(FeaturesError, match=message):
        import_embeddings(path, data, name, dim=8)
    assert path.read_bytes() == before


def test_only_numpy_files_are_read(store):
    path, n = store
    with pytest.raises(FeaturesError, match=r'from a \.npy file .* or a \.npz file .* not a \.csv file'):
        import_embeddings(path, npy(np.ones((n, 8))), 'slide.csv')
    with pytest.raises(FeaturesError, match='holds a single array, not a .npz archive; name it .npy'):
        import_embeddings(path, npy(np.ones((n, 8))), 'slide.npz')
