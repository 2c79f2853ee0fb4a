"""Embedding colours on real handwritten digits (scikit-learn's UCI digits): alike segments get alike colours."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import spearmanr
from sklearn.datasets import load_digits

from histomics_label.core.errors import FeaturesError
from histomics_label.core.features.embedding_map import embedding_colours


@pytest.fixture(scope='module')
def digits():
    features, classes = load_digits(return_X_y=True)
    return features.astype(np.float32)[:900], classes[:900]


@pytest.fixture(scope='module')
def mapped(digits):
    return embedding_colours(digits[0], seed=0)


def colour_agreement(features: np.ndarray, colours: np.ndarray) -> tuple[float, float]:
    """Rank correlation of pairwise embedding and colour distances, and how much closer in colour a segment's
    nearest embedding neighbour is than a random segment."""
    colours = colours.astype(np.float64)
    rho = spearmanr(pdist(features), pdist(colours)).statistic
    distances = np.linalg.norm(features[:, None] - features[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    shuffled = np.random.default_rng(0).permutation(len(features))
    near = np.linalg.norm(colours - colours[nearest], axis=1).mean()
    random = np.linalg.norm(colours - colours[shuffled], axis=1).mean()
    return rho, near / random


def test_close_embeddings_get_close_colours(digits, mapped):
    features, classes = digits
    assert mapped.method == 'umap' and mapped.note == ''
    assert mapped.colours.shape == (900, 3) and mapped.colours.dtype == np.uint8
    assert all(mapped.colours[:, axis].min() == 0 and mapped.colours[:, axis].max() == 255 for axis in range(3))
    rho, ratio = colour_agreement(features, mapped.colours)
    assert rho > 0.3 and ratio < 0.1


def test_deterministic_per_seed(digits, mapped):
    again = embedding_colours(digits[0], seed=0)
    np.testing.assert_array_equal(again.colours, mapped.colours)


def test_fitting_a_sample_then_transforming_the_rest(digits):
    features, _ = digits
    sampled = embedding_colours(features, seed=0, max_fit=300)
    assert sampled.colours.shape == (900, 3) and sampled.method == 'umap'
    rho, ratio = colour_agreement(features, sampled.colours)
    assert rho > 0.3 and ratio < 0.2


def test_few_segments_fall_back_to_pca_and_say_so(digits):
    features, _ = digits
    few = embedding_colours(features[:8])
    assert few.method == 'pca' and 'UMAP needs' in few.note and few.colours.shape == (8, 3)
    rho, _ = colour_agreement(features[:8], few.colours)
    assert rho > 0.5
    same = embedding_colours(np.ones((4, 5)))
    assert same.method == 'constant' and np.all(same.colours == 128)
    with pytest.raises(FeaturesError, match='finite'):
        embedding_colours(np.full((20, 3), np.nan))
