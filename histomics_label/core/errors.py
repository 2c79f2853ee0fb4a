"""Errors a user can act on. Each carries a message written for the person who ran the task."""


class HistomicsLabelError(Exception):
    """Base class: the task stops, says why, and leaves no partial output."""


class ConfigurationError(HistomicsLabelError):
    """A parameter or a combination of parameters cannot be used."""


class SlideError(HistomicsLabelError):
    """The slide cannot be opened or is unsuitable (not an image, too small, no tissue)."""


class SegmentsError(HistomicsLabelError):
    """User-supplied segments (polygons) cannot be turned into a segment image."""


class LabelsError(HistomicsLabelError):
    """The labels cannot train a model (none, one class, unknown category or segment)."""


class FeaturesError(HistomicsLabelError):
    """Features are missing, have the wrong shape, or their weights cannot be loaded."""


class StoreError(HistomicsLabelError):
    """The slide store file is missing, corrupt or of an unknown schema version."""


class SchedulerError(HistomicsLabelError):
    """The dask scheduler cannot be reached."""
