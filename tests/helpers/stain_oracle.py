"""A ground-truth oracle for the H&E sample: every segment's category from the stain of its own pixels.

No pathologist's labels of the sample exist offline, so tests that need the truth of every segment (does an accuracy
estimate cover the real accuracy, are probabilities calibrated) take it from colour deconvolution: each segment goes
to the category whose stain score stands out most among its (z-scored) haematoxylin share, eosin share and paleness.
The learner never sees these numbers: it trains on embeddings of masked patches and has to find the same
distinction there, as it would in a person's labels.
"""

import numpy as np

CATEGORIES = ('cellular', 'stroma', 'lumen/fat')


def stain_classes(store_path, slide_path, magnification: float) -> np.ndarray:
    """Per segment (row = id − 1), the index into ``CATEGORIES`` of its stain class."""
    from skimage.color import rgb2hed

    from histomics_label.core.io.slide import SlideReader
    from histomics_label.core.io.store import SlideStore

    with SlideStore(str(store_path)) as store:
        table = store.segments()
        slide = SlideReader(str(slide_path), magnification)
        scores = np.zeros((len(table), 3))
        for row, (x0, y0, x1, y1) in enumerate(table.bbox):
            pixels = slide.region(x0, y0, x1, y1)[store.label_region(x0, y0, x1, y1) == row + 1]
            hed = np.clip(rgb2hed(pixels[None].astype(np.float64) / 255)[0], 0, None).mean(axis=0)
            share = hed[0] / max(hed[0] + hed[1], 1e-9)
            scores[row] = share, 1 - share, pixels.mean() / 255
    z = (scores - scores.mean(axis=0)) / scores.std(axis=0)
    return z.argmax(axis=1)
