"""Acquisition functions: which unlabeled segments a person should label next, one small class per function.

The per-segment uncertainty measures and the random baseline (``uncertainty``), BatchBALD (``batchbald``), the
batches spread over embedding space (``diversity``: coreset, entropy-diverse, k-means cold start) are registered
here; a deployment adds its own through the ``histomics_label.acquisition_functions`` entry-point group.
``suggestions`` turns a round's predictions into the ranked list a labeler sees.
"""

from .base import (
           AcquisitionFunction,
           JointAcquisition,
           Selection,
           acquisition_functions,
           candidate_rows,
           check_probabilities,
)
from .batchbald import BatchBALD, batchbald
from .diversity import Coreset, EntropyDiverse, KMeansColdStart
from .uncertainty import LeastConfidence, MaximumEntropy, RandomAcquisition, SmallestMargin

acquisition_functions.load_entry_points('histomics_label.acquisition_functions')

__all__ = ['AcquisitionFunction', 'BatchBALD', 'Coreset', 'EntropyDiverse', 'JointAcquisition', 'KMeansColdStart',
           'LeastConfidence', 'MaximumEntropy', 'RandomAcquisition', 'Selection', 'SmallestMargin',
           'acquisition_functions', 'batchbald', 'candidate_rows', 'check_probabilities']
