"""The two tasks of ``bench_product_loop.py`` as a labeler meets them: slides to upload, and an oracle per segment.

The product makes its own segments (``POST .../segments``), so the ground truth is turned into an answer for each
**server** segment after segmentation, read from the slide's store (its segment-id raster at the analysis scale):

* ``dsb2018``: the DSB2018 fluorescence nuclei image (stardist's ``img2d.tif``) written as a pyramidal TIFF at 20×,
  with its real instance mask (``mask2d.tif``) as ground truth. A segment's class is the majority of the mask
  inside it: ``nucleus`` when more than half of its pixels lie in an annotated nucleus, ``background`` otherwise;
  every segment has an answer. The image is scaled so that its brightest pixel is ``DSB_PEAK`` of 255: the tissue
  detector is made for bright-field slides, where bright means glass, and at that level every pixel of this dark-
  field image stays above its optical-density ceiling (0.3), so the whole image is segmented.
* ``he``: the H&E images of ``he_task`` (each its own slide of one project, at 20×, the scale ``he_task`` reads it
  at), segmented by the server with ``he_task``'s radius, and labeled by ``he_task``'s stain rule on the server
  segment's pixels. Segments the rule leaves ambiguous are answered with the excluded category ``UNCLEAR`` (the
  product's way to say "not classifiable": the segment never trains and is never suggested again); they are left
  out of the true accuracy, which is over the segments the rule classifies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DSB_PEAK = 180
"""The DSB2018 image's brightest value on the slide: an optical density of -ln(181 / 256) = 0.35 > 0.3."""
UNCLEAR = 'unclear'
"""The excluded category the H&E oracle answers for segments its stain rule leaves ambiguous."""
AMBIGUOUS = -1
"""A truth value: no class (an H&E segment in the stain rule's margins)."""


@dataclass(frozen=True)
class SlideFile:
    """One slide of a task: its name, file and where it came from."""

    name: str
    path: Path
    origin: str


@dataclass
class ProductTask:
    """A task: its project settings, slides, and ``truth(slide name, store path)``, the class index of every
    server segment (``AMBIGUOUS`` where it has none)."""

    name: str
    title: str
    description: str
    class_names: list[str]
    config: dict
    slides: list[SlideFile]
    truth: Callable[[str, Path], np.ndarray]
    oracle: str
    excluded: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def categories(self) -> list[dict]:
        """The project's categories: one per class, and the excluded one the oracle uses for ambiguous segments."""
        colours = ['#888888', '#e6194b', '#3cb44b', '#4363d8']
        found = [{'name': name, 'color': colours[k % len(colours)]} for k, name in enumerate(self.class_names)]
        if self.excluded:
            found.append({'name': self.excluded, 'color': '#000000', 'excluded': True})
        return found


def _slide_raster(store: Path) -> np.ndarray:
    from histomics_label.core.io.store import SlideStore

    with SlideStore(store) as opened:
        return opened.label_raster[...]


def dsb_task(folder: Path) -> ProductTask:
    """The DSB2018 slide (written into ``folder`` once) and its mask-majority oracle."""
    from histomics_label.devtools import sample_data

    image, mask = sample_data.dsb2018()
    path = folder / f'dsb2018_peak{DSB_PEAK}.tiff'
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        grey = np.rint(image.astype(np.float64) * (DSB_PEAK / image.max())).astype(np.uint8)
        sample_data._write_pyramid(np.repeat(grey[:, :, None], 3, axis=2), path)
    nucleus = mask > 0

    def truth(_name: str, store: Path) -> np.ndarray:
        raster = _slide_raster(store)
        if raster.shape != nucleus.shape:
            raise RuntimeError(f'the server analysed the DSB2018 slide at {raster.shape}, not at its mask\'s '
                               f'{nucleus.shape}: set magnification 20')
        count = int(raster.max())
        area = np.bincount(raster.ravel(), minlength=count + 1)[1:]
        inside = np.bincount(raster.ravel(), weights=nucleus.ravel(), minlength=count + 1)[1:]
        return (inside > area / 2).astype(np.int64)

    return ProductTask(
        'dsb2018', 'DSB2018 nuclei, real mask',
        'DSB2018 fluorescence nuclei (512 × 512 px, 125 annotated nuclei) as one 20× slide; the server\'s SLIC '
        'segments, nucleus vs background', ['background', 'nucleus'],
        {'magnification': 20, 'radius': 8, 'patchSize': 48},
        [SlideFile('dsb2018', path, 'stardist 0.9.2 wheel: img2d.tif, scaled to a peak of '
                                    f'{DSB_PEAK} and written as a pyramidal TIFF at 20×')],
        truth, 'nucleus when more than half of the segment lies in an annotated nucleus of mask2d.tif, else background')


def he_task_slides(folder: Path) -> ProductTask:
    """The H&E slides of ``he_task`` (written into ``folder`` once where they are not slides already) and the
    stain-rule oracle."""
    import he_task

    from histomics_label.core.io.slide import SlideReader
    from histomics_label.devtools import sample_data

    slides = []
    found, notes = he_task.available_sources()
    for source, original in found:
        if source.magnification == 20:
            slides.append(SlideFile(source.name, original, source.origin))
            continue
        path = folder / f'{source.name}.tiff'
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            reader = SlideReader(str(original), source.magnification, source.scale)
            sample_data._write_pyramid(reader.region(0, 0, reader.width, reader.height), path)
        slides.append(SlideFile(source.name, path, source.origin + ', written as a pyramidal TIFF at 20×'))
    files = {slide.name: slide.path for slide in slides}

    def truth(name: str, store: Path) -> np.ndarray:
        raster = _slide_raster(store)
        reader = SlideReader(str(files[name]), 20)
        rgb = reader.region(0, 0, reader.width, reader.height)
        if rgb.shape[:2] != raster.shape:
            raise RuntimeError(f'{name}: the server analysed {raster.shape}, the slide reads {rgb.shape[:2]} at 20×')
        h_share, density = he_task.stain(rgb, raster, int(raster.max()))
        labels = he_task.stain_labels(h_share, density)
        return np.where(labels == he_task.AMBIGUOUS, AMBIGUOUS, labels)

    return ProductTask(
        'he', 'H&E, labels from a stain rule',
        f'H&E 3-class ({" / ".join(he_task.CLASS_NAMES)}) on {len(slides)} real H&E images, one slide each, the '
        'server\'s SLIC segments labeled by a stain rule (no pathologist)', list(he_task.CLASS_NAMES),
        {'magnification': 20, 'radius': he_task.RADIUS, 'patchSize': he_task.PATCH_SIZE,
         'compactness': he_task.COMPACTNESS},
        slides, truth, he_task.rule_text().replace('are ambiguous and left out',
                                                   f'are ambiguous: answered "{UNCLEAR}" (an excluded category) '
                                                   'and left out of the true accuracy'),
        excluded=UNCLEAR, notes=notes)


TASKS = {'dsb2018': dsb_task, 'he': he_task_slides}
