"""What the model tests share."""

import numpy as np
import pytest
import skimage.data
from skimage.color import rgb2hed
from skimage.measure import regionprops
from skimage.segmentation import slic

from histomics_label.core.models import one_torch_thread


@pytest.fixture(scope='module', autouse=True)
def single_torch_thread():
    """One intra-op thread: the machines running the suite are shared, and threads fighting slow torch several
    times."""
    with one_torch_thread():
        yield


@pytest.fixture(scope='module')
def ihc():
    """Colour features of ~700 SLIC superpixels of a real IHC image, labeled 1 where DAB (brown) stain is strong.

    The label comes from colour deconvolution (the DAB channel) and the features are plain RGB statistics, so the
    model must learn the stain's colour, as it would from a person's labels.
    """
    image = skimage.data.immunohistochemistry()
    raster = slic(image, n_segments=700, compactness=10, start_label=1)
    hed = rgb2hed(image)
    features, labels, x = [], [], []
    for region in regionprops(raster):
        pixels = image[region.coords[:, 0], region.coords[:, 1]].astype(np.float32)
        features.append(np.concatenate([pixels.mean(axis=0), pixels.std(axis=0), [region.area]]))
        labels.append(int(hed[region.coords[:, 0], region.coords[:, 1], 2].mean() > 0.04))
        x.append(region.centroid[1])
    return np.array(features, np.float32), np.array(labels), np.array(x)
