"""Reading a slide through large_image at the analysis magnification.

Every step of the engine works in *analysis pixels*: the slide's pixels scaled to the chosen magnification.
``SlideReader`` hides the conversion to and from the slide's base pixels, and reads only the regions asked for,
so a slide of any size is never loaded whole.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import SlideError


@dataclass(frozen=True)
class SlideInfo:
    """What the store records about the slide a segmentation was made from."""

    path: str
    base_width: int
    base_height: int
    base_magnification: float | None
    magnification: float | None
    scale: float
    width: int
    height: int


class SlideReader:
    """A large_image tile source viewed at one magnification.

    ``magnification`` is the objective power to analyse at (e.g. 5 for 5×). Slides without magnification
    metadata are analysed at ``1 / scale`` of their base resolution instead, where ``scale`` defaults to 1.
    """

    def __init__(self, path: str, magnification: float | None = None, scale: float | None = None) -> None:
        import large_image

        if not os.path.exists(path):
            raise SlideError(f'Slide file not found: {path}')
        try:
            self.source = large_image.open(path)
        except Exception as exc:
            raise SlideError(f'{path} is not a slide that large_image can read ({exc})') from None
        self.path = os.path.abspath(path)
        meta = self.source.getMetadata()
        self.base_width = int(meta['sizeX'])
        self.base_height = int(meta['sizeY'])
        native = self.source.getNativeMagnification().get('magnification')
        self.base_magnification = float(native) if native else None
        self.magnification = magnification
        if scale is None:
            if magnification is None or self.base_magnification is None:
                scale = 1.0
            else:
                if magnification <= 0:
                    raise SlideError(f'Magnification must be positive, not {magnification}')
                scale = max(1.0, self.base_magnification / magnification)
        if scale < 1:
            raise SlideError('Analysis above the slide\'s base resolution is not supported')
        self.scale = float(scale)
        self.width = max(1, int(self.base_width // self.scale))
        self.height = max(1, int(self.base_height // self.scale))
        self.is_rgb = meta.get('bandCount', 3) in (3, 4) or 'bands' not in meta

    @property
    def info(self) -> SlideInfo:
        return SlideInfo(self.path, self.base_width, self.base_height, self.base_magnification,
                         self.magnification, self.scale, self.width, self.height)

    def region(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """RGB uint8 pixels of ``[y0:y1, x0:x1]`` in analysis pixels (clipped to the slide)."""
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(self.width, int(x1)), min(self.height, int(y1))
        if x1 <= x0 or y1 <= y0:
            return np.zeros((max(0, y1 - y0), max(0, x1 - x0), 3), np.uint8)
        import large_image

        array, _ = self.source.getRegion(
            region=dict(left=x0 * self.scale, top=y0 * self.scale,
                        right=min(self.base_width, x1 * self.scale),
                        bottom=min(self.base_height, y1 * self.scale), units='base_pixels'),
            output=dict(maxWidth=x1 - x0, maxHeight=y1 - y0),
            format=large_image.constants.TILE_FORMAT_NUMPY)
        return _fit(_to_rgb(array), y1 - y0, x1 - x0)

    def thumbnail(self, max_size: int = 2048) -> np.ndarray:
        """An RGB overview whose longer side is at most ``max_size`` pixels."""
        import large_image

        array, _ = self.source.getThumbnail(width=max_size, height=max_size,
                                            format=large_image.constants.TILE_FORMAT_NUMPY)
        return _to_rgb(array)


def _to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, None]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating):
            array = np.clip(array * (255 if array.max() <= 1 else 1), 0, 255)
        elif array.max() > 255:
            array = array / (array.max() / 255.0)
        array = array.astype(np.uint8)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.shape[2] == 2:
        array = np.repeat(array[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(array[:, :, :3])


def _fit(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad or crop by at most a pixel or two of rounding so a region has exactly the size asked for."""
    if array.shape[0] == height and array.shape[1] == width:
        return array
    out = np.full((height, width, 3), 255, np.uint8)
    h, w = min(height, array.shape[0]), min(width, array.shape[1])
    out[:h, :w] = array[:h, :w]
    if h < height:
        out[h:, :w] = array[h - 1:h, :w]
    if w < width:
        out[:, w:] = out[:, w - 1:w]
    return out
