"""The ``imported`` extractor: embeddings a deployment computed elsewhere (with its own foundation model) and
imported per slide from a file (``features/imported.py``), instead of computing them here.

A project that selects it trains on whatever each slide's import holds; nothing here can compute them, so a slide
without an import fails with a ``FeaturesError`` saying how to import one, and never falls back to another network.
"""

from __future__ import annotations

import numpy as np

from ...errors import FeaturesError
from .base import FeatureExtractor, extractors

NOT_COMPUTED = ('The imported embeddings are computed outside Histomics Label and cannot be made here: import a file '
                'of them for each slide (POST /histomics_label/project/{id}/slide/{item}/embeddings, or '
                'histomics_label.core.features.imported.import_embeddings)')


@extractors.register('imported')
class ImportedEmbeddings(FeatureExtractor):
    """Stands for embeddings imported per slide: their parameters are the file's, recorded when it was imported."""

    computes = False

    def __init__(self, device: str = 'cpu', batch_size: int = 64) -> None:
        """Takes the options every extractor is created with; neither matters, since nothing is computed."""
        self.device = device
        self.batch_size = batch_size

    def params(self) -> dict:
        return {'name': self.name}

    def load(self) -> None:
        """Nothing can be loaded to compute imported embeddings: raises ``FeaturesError`` saying how to import."""
        raise FeaturesError(NOT_COMPUTED)

    def extract(self, patches: np.ndarray) -> np.ndarray:
        raise FeaturesError(NOT_COMPUTED)
