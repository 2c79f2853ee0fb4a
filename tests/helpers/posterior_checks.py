"""An assertion shared by the model tests: MC posterior samples that are sound for BatchBALD."""

import numpy as np


def assert_sound_posterior_samples(model, inputs, n_samples: int, seed: int, min_median_spread: float,
                                   max_mean_gap: float) -> np.ndarray:
    """Shape, normalisation, seeding, real variation, and a sample mean close to ``predict_proba``; returns the
    samples checked."""
    samples = model.predict_samples(inputs, n_samples, seed=seed)
    n_classes = model.predict_proba(inputs[:1]).shape[1]
    assert samples.shape == (n_samples, len(inputs), n_classes) and samples.dtype == np.float32
    np.testing.assert_allclose(samples.sum(axis=2), 1, atol=1e-5)
    np.testing.assert_array_equal(samples, model.predict_samples(inputs, n_samples, seed=seed))
    assert not np.array_equal(samples, model.predict_samples(inputs, n_samples, seed=seed + 1))
    spread = samples.std(axis=0).max(axis=1)
    assert spread.max() > 0.05 and np.median(spread) > min_median_spread  # the samples really differ
    assert np.abs(samples.mean(axis=0) - model.predict_proba(inputs)).mean() < max_mean_gap
    return samples
