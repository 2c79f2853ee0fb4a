"""Histomics Label: label as few regions as possible to train a whole-slide image classifier.

The Girder plugin lives in ``histomics_label.plugin`` and the engine in ``histomics_label.core``; importing this
package imports neither, so the engine can run where girder is not installed.
"""

__version__ = '0.1.0'
