"""Segment sources: each turns a slide into the segment form every later step reads (a segment-id raster and a
table of per-segment properties). Tiled SLIC superpixels, polygons brought by the user, and label images are
registered here; a deployment adds its own through the ``histomics_label.segment_sources`` entry-point group."""

from .base import SegmentSource, SegmentTable, segment_sources
from .label_image import LabelImageSegments
from .polygons import PolygonSegments
from .slic import TiledSLIC

segment_sources.load_entry_points('histomics_label.segment_sources')

__all__ = ['LabelImageSegments', 'PolygonSegments', 'SegmentSource', 'SegmentTable', 'TiledSLIC', 'segment_sources']
