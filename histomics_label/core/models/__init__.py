"""Models: classifiers trained on the labeled segments and applied to every segment, one small class per model.

The linear head on embeddings, the patch CNN in torch and in keras, and the seeded k-means cold-start model are
registered here (``models``, selected by a project's ``model``); a deployment adds its own through the
``histomics_label.models`` entry-point group. ``training`` holds what every model shares (balanced loss, held-out
split, early stopping, MC-dropout sampling).
"""

from .base import Model, check_feature_width, models, one_torch_thread
from .clustering import SeededKMeans
from .cnn_keras import KerasCNN
from .cnn_torch import TorchCNN
from .linear import LinearModel
from .training import check_training_set, class_weights

models.load_entry_points('histomics_label.models')

__all__ = ['KerasCNN', 'LinearModel', 'Model', 'SeededKMeans', 'TorchCNN', 'check_feature_width',
           'check_training_set', 'class_weights', 'models', 'one_torch_thread']
