"""A small real slide store for store-level tests: SLIC superpixels of skimage's immunohistochemistry image (real
tissue), their segment table, and a store holding both as a 2×-downsampled analysis level of a made-up 20× slide."""

from pathlib import Path

import numpy as np
from skimage.data import immunohistochemistry
from skimage.measure import regionprops
from skimage.segmentation import slic

from histomics_label.core.io.slide import SlideInfo
from histomics_label.core.io.store import SlideStore
from histomics_label.core.segments import SegmentTable


def ihc_segmentation(n_segments: int) -> tuple[np.ndarray, SegmentTable]:
    """SLIC superpixels (about ``n_segments``) of the IHC image and their segment table."""
    labels = slic(immunohistochemistry(), n_segments=n_segments, compactness=10, start_label=1).astype(np.uint32)
    props = regionprops(labels)
    table = SegmentTable(
        bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props], np.int64),
        centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props]),
        area=np.array([p.area for p in props], np.int64))
    return labels, table


def write_ihc_store(path: Path, segmentation: tuple[np.ndarray, SegmentTable]) -> None:
    """A new store at ``path`` with ``ihc_segmentation``'s raster and segments."""
    labels, table = segmentation
    height, width = labels.shape
    info = SlideInfo('/data/ihc.tiff', width * 2, height * 2, 20.0, 10.0, 2.0, width, height)
    with SlideStore.create(path, info, {'source': 'slic', 'radius': 15}) as writer:
        writer.create_label_raster(height, width)[:] = labels
        writer.write_segments(table)
