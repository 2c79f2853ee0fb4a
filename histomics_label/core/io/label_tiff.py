"""Segment-id rasters as pixelmap TIFFs, the image format a DSA pixelmap annotation colours in the browser.

geojs' pixelmap feature reads each pixel's RGB as the index ``R + 256·G + 65536·B`` (alpha ignored) and colours
it with ``values[index]``, so the file stores segment ids in that encoding, losslessly. Every pyramid level is
its own IFD, downsampled by nearest neighbour, because an averaged index would name a different segment.

With ``boundaries=True`` the file uses the doubled encoding of large_image's pixelmap schema: segment ``i`` is
``2·i`` inside and ``2·i + 1`` on its outline, so the viewer can give outlines their own colour. Background stays
0 (fill of index 0, never outlined).

Writing streams one row of tiles at a time from the raster (an h5py dataset in practice), so memory is bounded
by a row of tiles however large the slide.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np

from ..errors import ConfigurationError

MAX_PIXEL_VALUE = 2**24 - 1  # largest index three 8-bit channels can hold


def encode_rgb(values: np.ndarray) -> np.ndarray:
    """RGB uint8 pixels holding ``values`` (a 2-D array of integers 0..2²⁴−1) as ``R + 256·G + 65536·B``."""
    values = np.asarray(values, dtype=np.uint32)
    rgb = np.empty(values.shape + (3,), np.uint8)
    for channel in range(3):
        rgb[..., channel] = (values >> (8 * channel)) & 0xFF
    return rgb


def decode_rgb(rgb: np.ndarray) -> np.ndarray:
    """The uint32 indices held by RGB uint8 pixels (inverse of ``encode_rgb``)."""
    rgb = np.asarray(rgb)
    return (rgb[..., 0].astype(np.uint32) | (rgb[..., 1].astype(np.uint32) << 8)
            | (rgb[..., 2].astype(np.uint32) << 16))


def outline_mask(ids: np.ndarray) -> np.ndarray:
    """Pixels of a segment (id ≠ 0) with a 4-neighbour of another id: the inner outline of every segment.

    The array's own edges do not count as outline (a segment cut by a tile or slide edge is not outlined there).
    """
    ids = np.asarray(ids)
    mask = np.zeros(ids.shape, bool)
    vertical = ids[1:] != ids[:-1]
    mask[1:] |= vertical
    mask[:-1] |= vertical
    horizontal = ids[:, 1:] != ids[:, :-1]
    mask[:, 1:] |= horizontal
    mask[:, :-1] |= horizontal
    return mask & (ids != 0)


def level_shapes(height: int, width: int, tile_size: int) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level: halved (rounded up) until the level fits in one tile."""
    shapes = [(height, width)]
    while max(shapes[-1]) > tile_size:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def write_segment_tiff(raster, path: str | os.PathLike, *, tile_size: int = 256, boundaries: bool = False) -> None:
    """Write a 2-D segment-id raster as a tiled, lossless (deflate), multi-resolution pixelmap TIFF.

    ``raster`` is anything with ``.shape`` and 2-D step slicing (numpy array, h5py dataset). Level ``k`` holds
    every ``2**k``-th pixel of the raster; with ``boundaries`` each level's outlines are found at that level, so
    they stay one pixel wide at every zoom. The file appears at ``path`` only once complete.

    Raises ``ConfigurationError`` when an id does not fit the 24-bit encoding (ids up to 16,777,215, or
    8,388,607 with ``boundaries``).
    """
    import tifffile

    if len(raster.shape) != 2:
        raise ConfigurationError(f'A segment raster must be 2-D, not of shape {tuple(raster.shape)}')
    if tile_size <= 0 or tile_size % 16:
        raise ConfigurationError(f'The tile size must be a positive multiple of 16, not {tile_size}')
    height, width = (int(n) for n in raster.shape)
    shapes = level_shapes(height, width, tile_size)
    path = os.fspath(path)
    temp = os.path.join(os.path.dirname(os.path.abspath(path)), f'.{os.path.basename(path)}.{os.getpid()}.part')
    try:
        with tifffile.TiffWriter(temp, bigtiff=height * width * 3 > 2**31) as tiff:
            for level, shape in enumerate(shapes):
                tiff.write(
                    _tiles(raster, 2**level, shape, tile_size, boundaries), shape=shape + (3,), dtype=np.uint8,
                    tile=(tile_size, tile_size), photometric='rgb', compression='zlib', predictor=True,
                    subfiletype=1 if level else 0, metadata=None)
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def _tiles(raster, step: int, shape: tuple[int, int], tile_size: int, boundaries: bool) -> Iterator[np.ndarray]:
    """RGB tiles of one level, row by row, reading one row of tiles (plus a halo row for outlines) at a time."""
    height, width = shape
    for y0 in range(0, height, tile_size):
        y1 = min(y0 + tile_size, height)
        if boundaries:
            top, bottom = max(0, y0 - 1), min(height, y1 + 1)
            ids = _read_rows(raster, top, bottom, step, MAX_PIXEL_VALUE // 2)
            values = ids * 2 + outline_mask(ids)
            values = values[y0 - top:y0 - top + (y1 - y0)]
        else:
            values = _read_rows(raster, y0, y1, step, MAX_PIXEL_VALUE)
        rgb = encode_rgb(values)
        for x0 in range(0, width, tile_size):
            yield rgb[:, x0:x0 + tile_size]


def _read_rows(raster, y0: int, y1: int, step: int, limit: int) -> np.ndarray:
    """Rows ``y0:y1`` of the level that keeps every ``step``-th raster pixel, as uint32 ids checked to be ≤ limit."""
    block = np.asarray(raster[y0 * step:(y1 - 1) * step + 1:step, ::step] if step > 1 else raster[y0:y1, :])
    if not np.issubdtype(block.dtype, np.integer):
        raise ConfigurationError(f'A segment raster must hold integer ids, not {block.dtype}')
    if block.size and (block.min() < 0 or block.max() > limit):
        raise ConfigurationError(
            f'Segment ids must be between 0 and {limit:,} to be shown as a pixelmap'
            f'{" with boundaries" if limit < MAX_PIXEL_VALUE else ""}; this segmentation has ids from '
            f'{int(block.min()):,} to {int(block.max()):,}. Use larger segments or a lower magnification'
            f'{", or turn boundaries off" if limit < MAX_PIXEL_VALUE else ""}.')
    return block.astype(np.uint32, copy=False)


def segment_image_shape(path: str | os.PathLike, level: int = 0) -> tuple[int, int]:
    """``(height, width)`` of one level of a pixelmap TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            return tuple(int(v) for v in tif.pages[level].shape[:2])
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as exc:
        raise ConfigurationError(f'{path} is not a readable segment-id TIFF: {exc}') from None


def read_segment_ids(path: str | os.PathLike, x0: int, y0: int, x1: int, y1: int, level: int = 0, *,
                     boundaries: bool = False) -> np.ndarray:
    """The decoded pixel values of ``[y0:y1, x0:x1]`` of one level (0 = full resolution) of a pixelmap TIFF.

    Only the tiles that overlap the region are read. With ``boundaries`` (a file written with outlines) the
    segment ids are returned, i.e. the pixel values halved.
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[level]
        height, width = page.shape[:2]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
        out = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint32)
        if out.size == 0:
            return out
        if not page.is_tiled:  # a striped TIFF (some tools write one): decode the page, keep the region
            out[:] = decode_rgb(page.asarray()[y0:y1, x0:x1])
            return out >> 1 if boundaries else out
        tile_h, tile_w = page.tilelength, page.tilewidth
        across = math.ceil(width / tile_w)
        fh = tif.filehandle
        for row in range(y0 // tile_h, (y1 - 1) // tile_h + 1):
            for col in range(x0 // tile_w, (x1 - 1) // tile_w + 1):
                index = row * across + col
                fh.seek(page.dataoffsets[index])
                tile, _, _ = page.decode(fh.read(page.databytecounts[index]), index)
                tile = decode_rgb(tile.reshape(tile_h, tile_w, -1))
                ty, tx = row * tile_h, col * tile_w
                sy0, sy1 = max(y0, ty), min(y1, ty + tile_h)
                sx0, sx1 = max(x0, tx), min(x1, tx + tile_w)
                out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = tile[sy0 - ty:sy1 - ty, sx0 - tx:sx1 - tx]
    return out >> 1 if boundaries else out
