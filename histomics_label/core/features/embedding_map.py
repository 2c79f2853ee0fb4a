"""A colour per segment from its embedding, so a labeler sees on the slide which regions look alike to the model.

UMAP (umap-learn) maps the ``(N, D)`` embeddings to 3-D; each axis is scaled to 0–255 and the three become the
segment's RGB colour, so segments near each other in embedding space get similar colours. UMAP is fitted on at
most ``max_fit`` segments (a seeded sample) and the rest are placed with ``transform``, which bounds memory and
time on slides of a million segments. With a fixed ``random_state`` umap-learn runs single-threaded and gives the
same colours every time.

UMAP needs a neighbourhood to learn from; with fewer than ``MIN_UMAP`` segments the map falls back to PCA (and
says so in ``method`` and ``note``), and a single segment (or identical ones) is mid-grey.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError, FeaturesError

MIN_UMAP = 16
LOW_PERCENTILE, HIGH_PERCENTILE = 1.0, 99.0


@dataclass(frozen=True)
class EmbeddingMap:
    """``colours`` ``(N, 3)`` uint8, the 3-D ``coordinates`` they come from, the ``method`` used
    (``'umap'``, ``'pca'`` or ``'constant'``) and a ``note`` saying why when it is not UMAP."""

    colours: np.ndarray
    coordinates: np.ndarray
    method: str
    note: str = ''


def embedding_colours(embeddings: np.ndarray, seed: int = 0, max_fit: int = 20_000, n_neighbors: int = 15,
                      min_dist: float = 0.1) -> EmbeddingMap:
    """RGB colours ``(N, 3)`` uint8 of segments from their embeddings ``(N, D)``, via a seeded 3-D UMAP.

    Each axis is scaled so its 1st–99th percentile of the fitted segments spans 0–255 (values beyond are clipped),
    so a few outliers do not wash out the colours of the rest.
    """
    embeddings = np.asarray(embeddings, np.float32)
    if embeddings.ndim != 2:
        raise FeaturesError(f'Embeddings must be an (N, D) array, not shape {embeddings.shape}')
    if not np.all(np.isfinite(embeddings)):
        raise FeaturesError('Some embeddings are not finite numbers')
    if max_fit < MIN_UMAP or n_neighbors < 2:
        raise ConfigurationError(f'max_fit must be at least {MIN_UMAP} and n_neighbors at least 2')
    count = len(embeddings)
    distinct = len(np.unique(embeddings, axis=0)) if count < MIN_UMAP else MIN_UMAP
    if distinct <= 1:
        coordinates = np.zeros((count, 3), np.float32)
        return EmbeddingMap(np.full((count, 3), 128, np.uint8), coordinates, 'constant',
                            'Fewer than two distinct segments: there is nothing to tell apart, so all are grey.')
    if count < MIN_UMAP:
        coordinates = _pca(embeddings, 3)
        return EmbeddingMap(_to_colours(coordinates, coordinates), coordinates, 'pca',
                            f'Only {count} segments: UMAP needs at least {MIN_UMAP} to learn neighbourhoods, so '
                            'the colours come from the first three principal components.')
    rng = np.random.default_rng(seed)
    fit_rows = np.arange(count) if count <= max_fit else np.sort(rng.choice(count, max_fit, replace=False))
    coordinates = _umap(embeddings, fit_rows, seed, min(n_neighbors, len(fit_rows) - 1), min_dist)
    return EmbeddingMap(_to_colours(coordinates, coordinates[fit_rows]), coordinates, 'umap')


def _umap(embeddings: np.ndarray, fit_rows: np.ndarray, seed: int, n_neighbors: int,
          min_dist: float) -> np.ndarray:
    """3-D UMAP coordinates of every row, fitted on ``fit_rows`` and transforming the others in blocks."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # umap-learn warns that a random_state disables parallelism
        from umap import UMAP

        reducer = UMAP(n_components=3, n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed,
                       transform_seed=seed, n_jobs=1)
        fitted = reducer.fit_transform(embeddings[fit_rows])
        coordinates = np.empty((len(embeddings), 3), np.float32)
        coordinates[fit_rows] = fitted
        rest = np.setdiff1d(np.arange(len(embeddings)), fit_rows)
        for start in range(0, len(rest), 65536):
            block = rest[start:start + 65536]
            coordinates[block] = reducer.transform(embeddings[block])
    return coordinates


def _pca(embeddings: np.ndarray, components: int) -> np.ndarray:
    """The first ``components`` principal-component scores (zero-padded when there are fewer), signs fixed."""
    centred = embeddings.astype(np.float64) - embeddings.mean(axis=0, dtype=np.float64)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])  # deterministic orientation
    scores = (u * s) * signs
    result = np.zeros((len(embeddings), components), np.float32)
    result[:, :min(components, scores.shape[1])] = scores[:, :components]
    return result


def _to_colours(coordinates: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Each axis scaled so the reference's 1st–99th percentiles map to 0–255, clipped, as uint8."""
    low = np.percentile(reference, LOW_PERCENTILE, axis=0)
    high = np.percentile(reference, HIGH_PERCENTILE, axis=0)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    scaled = (coordinates - low) / span * 255.0
    scaled[:, high - low <= 1e-12] = 127.5
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
