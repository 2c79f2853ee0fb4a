"""Generated whole slides of any size for the benchmarks: the sample slide's real tissue, mosaicked.

How one is made (``generated_slide(megapixels, magnification)``):

* The *unit* is the project's sample slide (``histomics_label.devtools.sample_data.sample_slide``: the real H&E region
  mirrored into 8,880 × 8,901 px at 20×) read once, whole, at the requested magnification through large_image (at
  10×: 4,440 × 4,450 px, 59 MB; the only image held in memory).
* The slide is a square of ``round(sqrt(megapixels × 10⁶))`` px a side, filled with copies of the unit in a grid
  whose odd columns are flipped left–right and odd rows top–bottom (``sample_data.mirror_index``), cropped at the
  right and bottom. Tissue continues across every seam, and the tissue fraction stays close to the sample's: only
  the last, cropped row and column of copies can shift it (the metadata beside the file gives the fraction).
* Its *base* level is the requested magnification: the TIFF says ``AppMag = M|MPP = m`` in its ImageDescription
  (as Aperio files do; large_image's tiff source reads both) and the same pixel size in its resolution tags, with
  m = the sample's 0.499 µm/px × 20 / M. Analysing it at M reads its base level, as analysing a scanner's 40× file
  at M reads the pyramid level made for M: no resampling on the way, for our pipeline and HistomicsTK's alike.
* It is written *streaming*, tile by tile (256 px, JPEG quality 90 without chroma subsampling, like the sample),
  with tifffile from an iterator: no level is ever whole in memory, so a 400 MP slide (1.2 GB of RGB) takes the
  unit, one tile and tifffile's buffers. Level k (1/2^k, down to one tile) takes each pixel from the unit halved k
  times (``sample_data.halve``) at the position its block's centre maps to, which is what a 2^k area average of
  the mosaic gives away from the mirror seams (there, within a pixel of it).

Slides are cached as ``bench-output/generated-slides/slide-<side>px-<M>x-s<sample version>-v<version>.tiff`` with
a ``.json`` beside it (sizes, magnification, tissue fraction, seconds to make); a finished file is never rewritten
(files are written under a temporary name and renamed).

``python bench/generated_slide.py --megapixels 100 --magnification 10`` makes one and prints its path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from measure import stopwatch

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / 'bench-output' / 'generated-slides'
TILE = 256
JPEG_QUALITY = 90
VERSION = 1


def generated_slide(megapixels: float, magnification: float, cache: Path = CACHE) -> Path:
    """Path of a square generated slide of about ``megapixels`` MP at ``magnification`` (its base), made once."""
    from histomics_label.devtools.sample_data import SLIDE_VERSION

    side = max(TILE, round(math.sqrt(megapixels * 1e6)))
    path = cache / f'slide-{side}px-{magnification:g}x-s{SLIDE_VERSION}-v{VERSION}.tiff'
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        elapsed = stopwatch()
        unit = sample_unit(magnification)
        write_mosaic(unit, side, side, magnification, path)
        info = dict(width=side, height=side, megapixels=side * side / 1e6, magnification=magnification,
                    microns_per_pixel=microns_per_pixel(magnification), unit_width=unit.shape[1],
                    unit_height=unit.shape[0], tissue_fraction=mosaic_tissue_fraction(unit, side, side),
                    seconds_to_make=elapsed())
        path.with_suffix('.json').write_text(json.dumps(info, indent=1))
    return path


def slide_info(path: Path) -> dict:
    """What ``generated_slide`` recorded about the slide at ``path`` (sizes, tissue fraction, seconds to make)."""
    return json.loads(Path(path).with_suffix('.json').read_text())


def microns_per_pixel(magnification: float) -> float:
    """Pixel size of a slide at ``magnification``, scaled from the sample slide's (0.499 µm/px at 20×)."""
    from histomics_label.devtools.sample_data import MAGNIFICATION, MICRONS_PER_PIXEL

    return MICRONS_PER_PIXEL * MAGNIFICATION / magnification


def sample_unit(magnification: float) -> np.ndarray:
    """The whole sample slide as RGB at ``magnification`` (the mosaic's unit), read through our SlideReader."""
    from histomics_label.core.io.slide import SlideReader
    from histomics_label.devtools.sample_data import sample_slide

    reader = SlideReader(str(sample_slide()), magnification)
    return reader.region(0, 0, reader.width, reader.height)


def source_index(length: int, unit: int, level: int) -> np.ndarray:
    """For each pixel along one axis of pyramid level ``level`` (``length`` pixels), the index into the unit halved
    ``level`` times: the base pixel at its block's centre, mirrored into the unit, scaled down."""
    from histomics_label.devtools.sample_data import mirror_index

    factor = 2 ** level
    base_length = length * factor
    centre = np.minimum(np.arange(length) * factor + factor // 2, base_length - 1)
    unit_index = mirror_index(unit, -(-base_length // unit))[centre]
    return np.minimum(unit_index // factor, -(-unit // factor) - 1)


def level_tiles(unit: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> Iterator[np.ndarray]:
    """The level's tiles in row-major order, each a full ``TILE`` square (edge tiles repeat their last pixel)."""
    height, width = len(rows), len(columns)
    for y in range(0, height, TILE):
        tile_rows = rows[np.minimum(np.arange(y, y + TILE), height - 1)]
        for x in range(0, width, TILE):
            tile_columns = columns[np.minimum(np.arange(x, x + TILE), width - 1)]
            yield unit[tile_rows[:, None], tile_columns[None, :]]


def write_mosaic(unit: np.ndarray, width: int, height: int, magnification: float, path: Path) -> None:
    """Write the mirrored mosaic of ``unit`` as a pyramidal tiled JPEG TIFF, tile by tile (see the module doc)."""
    import tifffile

    from histomics_label.devtools.sample_data import halve

    pixels_per_cm = 1e4 / microns_per_pixel(magnification)
    temp = path.with_name(f'.{path.name}.{os.getpid()}.part')
    try:
        with tifffile.TiffWriter(temp, bigtiff=width * height * 3 > 2 ** 31) as tiff:
            level, level_unit = 0, unit
            while True:
                factor = 2 ** level
                level_width, level_height = -(-width // factor), -(-height // factor)
                rows = source_index(level_height, unit.shape[0], level)
                columns = source_index(level_width, unit.shape[1], level)
                tiff.write(level_tiles(level_unit, rows, columns), shape=(level_height, level_width, 3),
                           dtype=np.uint8, tile=(TILE, TILE), photometric='rgb', compression='jpeg',
                           subsampling=(1, 1), compressionargs={'level': JPEG_QUALITY},
                           subfiletype=0 if level == 0 else 1,
                           resolution=(pixels_per_cm / factor, pixels_per_cm / factor), resolutionunit='CENTIMETER',
                           description=_description(width, height, magnification, factor), metadata=None)
                if max(level_width, level_height) <= TILE:
                    break
                level, level_unit = level + 1, halve(level_unit)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def _description(width: int, height: int, magnification: float, factor: int) -> str:
    """The ImageDescription large_image's tiff source reads magnification and pixel size from (Aperio style)."""
    return (f'histomics-label generated slide {width}x{height} (level 1/{factor})'
            f'|AppMag = {magnification:g}|MPP = {microns_per_pixel(magnification):.6g}')


def mosaic_tissue_fraction(unit: np.ndarray, width: int, height: int) -> float:
    """Tissue fraction of the mosaic by our tissue detector (one threshold from the unit), computed on the unit:
    each unit pixel weighs as many times as the mosaic repeats it, so the mosaic itself is never made."""
    from histomics_label.core.segments.tissue import tissue_mask, tissue_threshold

    mask = tissue_mask(unit, tissue_threshold(unit)).astype(np.float64)
    row_weights = np.bincount(source_index(height, unit.shape[0], 0), minlength=unit.shape[0])
    column_weights = np.bincount(source_index(width, unit.shape[1], 0), minlength=unit.shape[1])
    return float(row_weights @ mask @ column_weights / (width * height))


def main(argv: list[str] | None = None) -> None:
    """Make (or find) one generated slide and print its path and what is known of it."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--megapixels', type=float, required=True, help='slide size in MP (at its magnification)')
    parser.add_argument('--magnification', type=float, default=10.0, help='its base magnification (objective power)')
    args = parser.parse_args(argv)
    path = generated_slide(args.megapixels, args.magnification)
    print(path)
    print(json.dumps(slide_info(path), indent=1))


if __name__ == '__main__':
    main()
