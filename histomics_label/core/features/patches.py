"""Masked square patches around segments, read tile by tile.

Every segment is shown to a feature extractor as a ``patch_size`` × ``patch_size`` square of analysis pixels
centred on its centroid, in which only the segment's own pixels keep their colour. Pixels of other segments, of
the background (id 0) and beyond the slide's edge are set to ``FILL_VALUE`` so that two segments with the same
content get the same embedding whatever lies next to them.

Reading one slide region per segment would be far too slow on a whole slide, so segments are grouped by the tile
their centroid falls in: each tile's window of the slide and of the segment-id raster (widened by the patch
margin) is read once, and all of that tile's patches are cut from it. Memory is bounded by one window plus one
batch, whatever the size of the slide.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from ..errors import SegmentsError
from ..segments import SegmentTable

FILL_VALUE = 128
"""Grey level of masked pixels. Mid-grey becomes ~0 after the [-1, 1] normalisation ImageNet-style networks use,
the same value as their own zero padding, so masked pixels read as "nothing" rather than as a colour that means
something in a slide (white is glass in brightfield, black is background in fluorescence)."""

READ_MARGIN = 4
"""Extra pixels read around each slide window and then dropped (see ``read_window``)."""


class PixelSource(Protocol):
    """What patches need of a slide: its size and RGB regions in analysis pixels (``SlideReader``, ``ArraySlide``)."""

    width: int
    height: int

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray: ...


class ArraySlide:
    """An in-memory RGB image with ``SlideReader``'s reading interface (``width``, ``height``, ``region``).

    It lets numpy images (a microscope field, a test image) go through the same patch code as a slide.
    """

    def __init__(self, image: np.ndarray) -> None:
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] < 3 or image.dtype != np.uint8:
            raise ValueError(f'ArraySlide needs an (H, W, 3) uint8 image, not {image.shape} {image.dtype}')
        self.image = np.ascontiguousarray(image[:, :, :3])
        self.height, self.width = self.image.shape[:2]

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB pixels of ``[y0:y1, x0:x1]``, clipped to the image like ``SlideReader.region``."""
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(self.width, int(x1)), min(self.height, int(y1))
        return self.image[y0:max(y0, y1), x0:max(x0, x1)].copy()


def patch_origins(table: SegmentTable, ids: np.ndarray, patch_size: int) -> np.ndarray:
    """Top-left corner (x, y) of each segment's patch.

    The centroid is rounded to the nearest pixel, which lands at row and column ``patch_size // 2`` of the patch
    (the exact centre when ``patch_size`` is odd).
    """
    centre = np.floor(np.asarray(table.centroid, np.float64)[ids - 1] + 0.5).astype(np.int64)
    return centre - patch_size // 2


def iter_patches(slide: PixelSource, raster, table: SegmentTable, patch_size: int, ids: np.ndarray | None = None,
                 batch_size: int = 64, tile_size: int = 1024,
                 fill: int = FILL_VALUE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(ids, patches)`` batches: int64 segment ids and their masked patches, uint8 ``(B, P, P, 3)``.

    ``slide`` is a ``SlideReader`` (or anything with ``width``, ``height`` and ``region``); ``raster`` is the 2-D
    segment-id raster (an h5py dataset or a numpy array) of the same size, of which only windows are read.
    ``ids`` defaults to every segment. Batches come in tile order (row-major by the tile holding each centroid,
    ids ascending within a tile), not in the order of ``ids``: use the ids yielded with each batch.
    """
    if patch_size < 1 or batch_size < 1 or tile_size < 1:
        raise ValueError('patch_size, batch_size and tile_size must be positive')
    if not 0 <= fill <= 255:
        raise ValueError(f'The fill value must be a grey level in 0..255, not {fill}')
    if tuple(raster.shape) != (slide.height, slide.width):
        raise SegmentsError(f'The segment raster is {raster.shape[1]} × {raster.shape[0]} pixels but the slide is '
                            f'{slide.width} × {slide.height} at the analysis magnification')
    ids = table.ids if ids is None else np.asarray(ids, np.int64).ravel()
    if ids.size and (ids.min() < 1 or ids.max() > len(table)):
        raise ValueError(f'Segment ids must lie in 1..{len(table)}')
    if ids.size == 0:
        return
    origins = patch_origins(table, ids, patch_size)
    centre = origins + patch_size // 2
    tile_x, tile_y = centre[:, 0] // tile_size, centre[:, 1] // tile_size
    order = np.lexsort((ids, tile_x, tile_y))
    keys = np.stack([tile_y[order], tile_x[order]], axis=1)
    starts = np.flatnonzero(np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)])
    stops = np.r_[starts[1:], len(order)]

    out_ids = np.zeros(batch_size, np.int64)
    out = np.empty((batch_size, patch_size, patch_size, 3), np.uint8)
    filled = 0
    for start, stop in zip(starts, stops, strict=True):
        members = order[start:stop]
        corners = origins[members]
        wx0, wy0 = corners.min(axis=0)
        wx1, wy1 = corners.max(axis=0) + patch_size
        pixels, labels = read_window(slide, raster, int(wx0), int(wy0), int(wx1), int(wy1))
        for segment, (px, py) in zip(ids[members], corners - (wx0, wy0), strict=True):
            window = (slice(py, py + patch_size), slice(px, px + patch_size))
            out[filled] = np.where((labels[window] == segment)[:, :, None], pixels[window], np.uint8(fill))
            out_ids[filled] = segment
            filled += 1
            if filled == batch_size:
                yield out_ids.copy(), out.copy()
                filled = 0
    if filled:
        yield out_ids[:filled].copy(), out[:filled].copy()


def read_window(slide: PixelSource, raster, x0: int, y0: int, x1: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
    """Slide pixels and segment ids of ``[y0:y1, x0:x1]``, each read once; zero beyond the slide's edge.

    Id 0 beyond the edge means those pixels belong to no segment, so patches mask them like background. The slide
    is read ``READ_MARGIN`` pixels wider than asked (then cropped) because a downsampled large_image region
    differs by up to ~20 grey levels in its outermost pixels from the same pixels read inside a larger region;
    with the margin, a pixel has the same value whichever window it was read from.
    """
    pixels = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    labels = np.zeros((y1 - y0, x1 - x0), np.uint32)
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(slide.width, x1), min(slide.height, y1)
    if cx1 > cx0 and cy1 > cy0:
        inside = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
        rx0, ry0 = max(0, cx0 - READ_MARGIN), max(0, cy0 - READ_MARGIN)
        rx1, ry1 = min(slide.width, cx1 + READ_MARGIN), min(slide.height, cy1 + READ_MARGIN)
        wide = slide.region(rx0, ry0, rx1, ry1)
        pixels[inside] = wide[cy0 - ry0:cy1 - ry0, cx0 - rx0:cx1 - rx0]
        labels[inside] = raster[cy0:cy1, cx0:cx1]
    return pixels, labels
