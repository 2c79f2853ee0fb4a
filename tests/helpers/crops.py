"""Small real slides for the live tests: crops of the H&E sample written as pyramidal TIFFs, so a job takes seconds."""

from pathlib import Path

import numpy as np
import tifffile

from histomics_label.devtools import sample_data

CROP = 1024
"""Side of each slide in pixels at 20x: tens of segments at 5x."""


def write_crop(source: np.ndarray, top: int, left: int, path: Path) -> Path:
    """A ``CROP``-pixel square of ``source`` as a tiled pyramidal JPEG TIFF (one IFD per level) at 20x."""
    pixels_per_cm = 1e4 / sample_data.MICRONS_PER_PIXEL
    level, factor = source[top:top + CROP, left:left + CROP], 1
    with tifffile.TiffWriter(path) as tiff:
        while True:
            tiff.write(level, tile=(256, 256), photometric='rgb', compression='jpeg', subfiletype=int(factor > 1),
                       resolution=(pixels_per_cm / factor, pixels_per_cm / factor), resolutionunit='CENTIMETER',
                       description=f'crop|AppMag = {sample_data.MAGNIFICATION}|MPP = {sample_data.MICRONS_PER_PIXEL}',
                       metadata=None)
            if max(level.shape[:2]) <= 256:
                return path
            level, factor = sample_data.halve(level), factor * 2
