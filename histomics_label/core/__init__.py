"""The Histomics Label engine: segments, representations, models and acquisition functions.

Nothing in this package imports girder, so the same code runs inside the Girder plugin, in the Slicer CLI
image, and from plain Python.
"""
