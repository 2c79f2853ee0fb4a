"""The DSB2018 segment task shared by tests: every real nucleus plus each nucleus-free background block."""

import numpy as np
from skimage.segmentation import relabel_sequential


def nuclei_and_background(image: np.ndarray, mask: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The image as RGB uint8, a raster whose ids 1..n are the nuclei and whose higher ids are the ``block``-pixel
    squares holding no nucleus, and n."""
    rgb = np.repeat((image.astype(np.float64) * (255 / image.max())).astype(np.uint8)[:, :, None], 3, axis=2)
    raster = relabel_sequential(mask)[0].astype(np.uint32)
    n_nuclei = int(raster.max())
    next_id = n_nuclei + 1
    for y in range(0, raster.shape[0], block):
        for x in range(0, raster.shape[1], block):
            if not raster[y:y + block, x:x + block].any():
                raster[y:y + block, x:x + block] = next_id
                next_id += 1
    return rgb, raster, n_nuclei
