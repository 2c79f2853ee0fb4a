"""Feature throughput: patches per second of every registered feature extractor on the CPU, beside its raw network.

Patches are real: the sample H&E slide (``histomics_label.devtools.sample_data.sample_slide()``, read through
``SlideReader`` at the project's default magnification, 5×) segmented by the pipeline's tiled SLIC (inline, radius
``--radius``: 24, the demo project's, since the default 100 leaves only a few dozen segments at 5× on this slide),
and the first ``--patches`` segments cut as the pipeline cuts them: ``patches.iter_patches`` (tile windows of the
slide and the segment-id raster, pixels of other segments masked grey), in batches of 64 (the pipeline's
``feature_batch_size``), at each patch size of ``--sizes``: 48 (bench_active_learning's nuclei), 64 (the demo
project's), the project default ``patchSize`` (100) and each extractor's own input size (224).

For every extractor in ``histomics_label.core.features.extractors`` (whatever is registered when it runs), at each patch
size and torch thread count (all cores, and 1):

* ``ours``: the pipeline's path, end to end: cutting the patches (slide reading and masking included) and
  ``extractor.extract`` (resizing to the network's input, normalising, the forward pass, copying the embeddings
  out);
* ``raw``: the same network's forward pass alone (``extractor.embed(network, images)`` in inference mode) on the
  very tensors ``ours`` fed it, captured as they went by and run right after each batch (so both see the same load
  on a shared machine); ``ours / raw`` is what our cutting, masking and preprocessing cost on top of the network.

Weights. ``timm`` (``resnet50``, the docs' example) and ``uni`` (UNI's ViT-L/16) get their hub weights nowhere here
(no hub; UNI's are gated), so each runs on a checkpoint of its own architecture with seeded random weights, made once
by ``local_checkpoint`` under ``bench-output/checkpoints`` and passed as ``weights_path``, the way a deployment
passes a downloaded file: the same network, so the same cost, as the real weights. An extractor that still cannot run
(no timm, …) is reported as "not measured" with the error it raised. An extractor whose batch of 64 is predicted
(from a first batch of 8) to take longer than ``--slow`` seconds (ViT-L on a few cores) is measured on 16 patches, at
the project's default patch size and all threads only, and its rows say so. The image models (``cnn_*``: models that
learn from the patches themselves) are timed too: ``predict_proba`` on the same patches, after a one-epoch fit
(untimed) that gives them weights.

Each measurement is preceded by an untimed batch (first-call costs are not throughput). ``--report DIR`` writes
the benchmarks page's section (``bench/report.py``): ``DIR/features.md``, ``.json`` and ``.goals.json``.

Run ``python bench/bench_features.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from measure import Timer, stopwatch, timed
from report import print_total, publish

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # TensorFlow's start-up chatter (cnn_keras) is not a figure

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

NAME = 'features'  # the report's section name (bench/run_all.py)
OTHER_PATCH_SIZES = (48, 64)  # bench_active_learning's DSB2018 nuclei; the demo project (stack/demo.py)
RADIUS = 24  # the demo project's superpixel radius at 5x
BATCH = 64  # the pipeline's feature_batch_size
TILE = 1024  # Representation's tile_size: the slide windows patches are cut from
OPTIONS = {'timm': {'model_name': 'resnet50'}}  # an extractor's required options (the docs' timm example)
LOCAL_WEIGHTS = ('timm', 'uni')  # extractors whose weights are made locally (see the module doc)
CHECKPOINTS = BENCH.parent / 'bench-output' / 'checkpoints'
DEFAULT_SLOW_S = 20.0  # a batch predicted slower than this: SLOW_PATCHES at one size and thread count
PROBE = 8  # patches of the first warm-up, which predicts a batch's time
SLOW_PATCHES = 16


# --------------------------------------------------------------------------------------------------------------
# The patches.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Segments:
    """The sample slide at the analysis magnification, its segment-id raster and table, and how they were made."""

    slide: object
    raster: np.ndarray
    table: object
    description: str
    seconds: float


def segment_sample(radius: int) -> Segments:
    """The sample H&E slide segmented by the pipeline's tiled SLIC, inline, at the project's magnification."""
    from histomics_label.core.io.slide import SlideReader
    from histomics_label.core.segments.slic import TiledSLIC
    from histomics_label.devtools import sample_data
    from histomics_label.projects.config import DEFAULTS

    elapsed = stopwatch()
    slide = SlideReader(str(sample_data.sample_slide()), DEFAULTS['magnification'])
    raster = np.zeros((slide.height, slide.width), np.uint32)
    table = TiledSLIC(radius=radius, compactness=DEFAULTS['compactness']).segment(slide, raster)
    description = (f"the sample H&E slide ({slide.base_width:,} × {slide.base_height:,} px at "
                   f"{slide.base_magnification:g}×) at {DEFAULTS['magnification']:g}× ({slide.width:,} × "
                   f"{slide.height:,} px), tiled SLIC radius {radius}, compactness {DEFAULTS['compactness']:g}: "
                   f"{len(table):,} segments")
    return Segments(slide, raster, table, description, elapsed())


def cut(segments: Segments, size: int, count: int):
    """``iter_patches`` over the first ``count`` segments at ``size`` px, batches of ``BATCH``, as the pipeline."""
    from histomics_label.core.features.patches import iter_patches

    ids = segments.table.ids[:count]
    return iter_patches(segments.slide, segments.raster, segments.table, size, ids=ids, batch_size=BATCH,
                        tile_size=TILE)


# --------------------------------------------------------------------------------------------------------------
# Extractors: ours (end to end) and the raw forward on the same tensors.
# --------------------------------------------------------------------------------------------------------------

def local_checkpoint(name: str, options: dict) -> Path:
    """A checkpoint of extractor ``name``'s network (built by the extractor itself, as it loads weights) with
    random weights seeded 0, saved once under ``CHECKPOINTS`` as a plain state dict (UNI's ``pytorch_model.bin``
    layout). Its path."""
    import torch

    from histomics_label.core.features.extractors import extractors

    path = CHECKPOINTS / f"{name}-{options.get('model_name', 'default')}-random-seed0.bin"
    if not path.exists():
        CHECKPOINTS.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        network = extractors.create(name, batch_size=BATCH, weights_path=str(path), **options).build_network()
        partial = path.with_suffix('.partial')
        torch.save(network.state_dict(), partial)
        partial.rename(path)
    return path


def load_extractor(name: str):
    """``(extractor, None)`` ready to run (weights found and loaded), or ``(None, why not)`` with the error."""
    from histomics_label.core.features.extractors import extractors

    try:
        options = dict(OPTIONS.get(name, {}))
        if name in LOCAL_WEIGHTS:
            options['weights_path'] = str(local_checkpoint(name, options))
        extractor = extractors.create(name, batch_size=BATCH, **options)
        extractor.params()  # finds and digests the weights
        load = getattr(extractor, 'load', None)
        if load is not None:
            load()
        return extractor, None
    except Exception as exc:
        return None, f'{type(exc).__name__}: {exc}'


class Capture:
    """Wraps an extractor's ``embed`` to keep a reference to every input tensor it receives (no copy), so the raw
    forward can be timed on the very same tensors afterwards, and to time the forward pass inside ``extract``
    (``forward_time``), which splits our time into cutting, preprocessing and network within the same calls.
    ``embed`` is the extractor's own, unwrapped."""

    def __init__(self, extractor) -> None:
        self.extractor = extractor
        self.embed = extractor.embed
        self.tensors: list = []
        self.forward_time = Timer()

    def __enter__(self) -> Capture:
        def embed(network, images):
            self.tensors.append(images)
            with self.forward_time:
                return self.embed(network, images)

        self.extractor.embed = embed  # an instance attribute shadows the method while capturing
        return self

    def __exit__(self, *exc) -> None:
        del self.extractor.embed


def forward(embed, network, tensors: list) -> float:
    """Seconds of the network's forward pass alone (the extractor's own ``embed``) over ``tensors``, in inference
    mode as ``extract`` runs it."""
    import torch

    with Timer() as timer, torch.inference_mode():
        for images in tensors:
            embed(network, images)
    return timer.seconds


def ours_and_raw(extractor, segments: Segments, size: int, count: int) -> tuple[dict, list[np.ndarray]]:
    """Cut and embed ``count`` patches (ours), and right after each batch the raw forward on the tensors the network
    saw in it (interleaved, so that both see the same load on a shared machine); seconds of cutting, of
    ``extract``, of the forward pass inside it and of the raw forward, the patch count, and the patches (for the
    image models)."""
    batches = cut(segments, size, count)
    cutting, extracting = Timer(), Timer()
    raw_s, patches = 0.0, []
    with Capture(extractor) as capture:
        while True:
            with cutting:
                batch = next(batches, None)
            if batch is None:
                break
            with extracting:
                extractor.extract(batch[1])
            raw_s += forward(capture.embed, extractor.load(), capture.tensors)
            patches.append(batch[1])
            capture.tensors.clear()  # the next batch's tensors only
    timing = dict(cut_s=cutting.seconds, extract_s=extracting.seconds, raw_s=raw_s,
                  patches=sum(len(batch) for batch in patches), network_s=capture.forward_time.seconds)
    return timing, patches


def warm_up(extractor, segments: Segments, size: int, patches: int = BATCH) -> float:
    """One untimed batch of ``patches``, so that no timed run pays the first call's costs (kernel selection,
    allocations); its seconds."""
    batch = next(cut(segments, size, patches))[1]
    return timed(extractor.extract, batch)[0]


def measure_extractor(extractor, segments: Segments, sizes: list[int], threads: list[int],
                      count: int, slow_s: float) -> tuple[list[dict], dict[int, np.ndarray]]:
    """Ours and raw at every patch size and thread count; also the patches cut at each size. An extractor whose
    batch is predicted to take over ``slow_s`` is measured on ``SLOW_PATCHES`` at the default patch size, all threads
    only (``one_batch`` in its rows)."""
    import torch

    from histomics_label.projects.config import DEFAULTS

    rows, patches = [], {}
    torch.set_num_threads(max(threads))
    slow = warm_up(extractor, segments, sizes[0], PROBE) * BATCH / PROBE > slow_s
    if slow:
        sizes, threads, count = [int(DEFAULTS['patchSize'])], [max(threads)], min(count, SLOW_PATCHES)
        print(f'  {extractor.name}: a batch takes over {slow_s:g} s: {count} patches, {sizes[0]} px, {threads[0]} '
              'threads', file=sys.stderr, flush=True)
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        if not slow:  # a slow extractor's probe, at these threads, was its warm-up
            warm_up(extractor, segments, sizes[0], BATCH)
        for size in sizes:
            timing, cut_patches = ours_and_raw(extractor, segments, size, count)
            patches[size] = np.concatenate(cut_patches)
            rows.append(dict(extractor=extractor.name, patch=size, input=int(extractor.input_size),
                             threads=n_threads, ours_s=timing['cut_s'] + timing['extract_s'], one_batch=slow,
                             **timing))
            n = timing['patches']
            print(f"  {extractor.name} {size} px, {n_threads} thread(s): ours {n / rows[-1]['ours_s']:.1f} "
                  f"patches/s, raw {n / timing['raw_s']:.1f}", file=sys.stderr, flush=True)
    return rows, patches


# --------------------------------------------------------------------------------------------------------------
# Image models: prediction on the patches themselves.
# --------------------------------------------------------------------------------------------------------------

def image_models() -> list[str]:
    """Registered models that learn from the patches (``representation == 'image'``)."""
    from histomics_label.core.models import models

    return [name for name in models.names() if getattr(models.get(name), 'representation', 'vector') == 'image']


def measure_model(name: str, patches: dict[int, np.ndarray], threads: list[int]) -> tuple[list[dict], str | None]:
    """``predict_proba`` patches/s at each patch size, after an untimed one-epoch fit and warm-up prediction.

    Torch models run at each thread count; others (keras) once, on their framework's own threads.
    """
    import torch

    from histomics_label.core.models import models

    rows = []
    try:
        cls = models.get(name)
        counts = threads if getattr(cls, 'framework', '') == 'torch' else [None]
        for size, images in sorted(patches.items()):
            labels = np.arange(len(images)) % 2
            model = models.create(name, epochs=1, validation=0.0, augment=False).fit(images, labels, 2)
            for n_threads in counts:
                if n_threads is not None:
                    torch.set_num_threads(n_threads)
                model.predict_proba(images[:BATCH])
                seconds = timed(model.predict_proba, images)[0]
                rows.append(dict(model=name, patch=size, threads=n_threads, patches=len(images), seconds=seconds))
    except Exception as exc:
        return rows, f'{type(exc).__name__}: {exc}'
    return rows, None


# --------------------------------------------------------------------------------------------------------------
# The run and its figures.
# --------------------------------------------------------------------------------------------------------------

def patch_sizes(args: argparse.Namespace, input_sizes: list[int]) -> list[int]:
    """The sizes to cut: ``--sizes``, or the others, the project default and the extractors' input sizes."""
    from histomics_label.projects.config import DEFAULTS

    if args.sizes:
        return sorted(set(args.sizes))
    others = () if args.quick else OTHER_PATCH_SIZES  # --quick: the project default and the input sizes
    return sorted({*others, int(DEFAULTS['patchSize']), *input_sizes})


def run(args: argparse.Namespace) -> dict:
    """Segment the slide, measure every extractor and image model; the figures."""
    import torch

    from histomics_label.core import pipeline  # noqa: F401  (registers every variant, as the application does)
    from histomics_label.core.features.extractors import extractors

    elapsed = stopwatch()
    threads = sorted({os.cpu_count() or 1, 1}, reverse=True) if not args.threads else args.threads
    loaded, not_measured, computes_nothing = {}, {}, []
    for name in extractors.names():
        if not getattr(extractors.get(name), 'computes', True):
            computes_nothing.append(name)  # embeddings imported per slide: there is no network to time
            continue
        extractor, reason = load_extractor(name)
        if extractor is None:
            not_measured[name] = reason
            print(f'  {name}: not measured: {reason}', file=sys.stderr, flush=True)
        else:
            loaded[name] = extractor
    sizes = patch_sizes(args, [int(e.input_size) for e in loaded.values()])
    segments = segment_sample(args.radius)
    count = min(args.patches, len(segments.table))
    rows, patches = [], {}
    for extractor in loaded.values():
        measured, cut_here = measure_extractor(extractor, segments, sizes, threads, count, args.slow)
        rows += measured
        patches = cut_here if len(cut_here) >= len(patches) else patches  # the image models get every size
    if not patches:  # no extractor ran: cut the patches for the image models all the same
        patches = {size: np.concatenate([b for _, b in cut(segments, size, count)]) for size in sizes}
    model_rows, model_errors = [], {}
    for name in image_models():
        measured, error = measure_model(name, patches, threads)
        model_rows += measured
        if error:
            model_errors[name] = error
    return dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                     torch=torch.__version__, load_average=os.getloadavg()),
        params=dict(sizes=sizes, threads=threads, patches=count, batch=BATCH, tile=TILE, radius=args.radius,
                    quick=args.quick, slow_s=args.slow),
        slide=dict(description=segments.description, segmentation_s=segments.seconds),
        extractors=rows, not_measured=not_measured, computes_nothing=computes_nothing, models=model_rows,
        model_errors=model_errors,
        seconds=elapsed())


EXTRACTOR_HEADERS = ('extractor', 'patch px', 'input px', 'threads', 'patches', 'ours patches/s', 'raw patches/s',
                     'ours/raw time', 'cut %', 'preprocessing %', 'network %')
MODEL_HEADERS = ('model', 'patch px', 'threads', 'patches', 'predict patches/s')


def extractor_cells(row: dict) -> list[str]:
    """One extractor row's cells."""
    n, ours_s = row['patches'], row['ours_s']
    return [row['extractor'], str(row['patch']), str(row['input']), str(row['threads']),
            f"{n} (slow: one size)" if row.get('one_batch') else str(n),
            f"{n / ours_s:.1f}", f"{n / row['raw_s']:.1f}", f"{ours_s / row['raw_s']:.2f}",
            f"{row['cut_s'] / ours_s:.1%}", f"{(row['extract_s'] - row['network_s']) / ours_s:.1%}",
            f"{row['network_s'] / ours_s:.1%}"]


def model_cells(row: dict) -> list[str]:
    """One image model row's cells."""
    threads = 'framework' if row['threads'] is None else str(row['threads'])
    return [row['model'], str(row['patch']), threads, str(row['patches']), f"{row['patches'] / row['seconds']:.0f}"]


def legend() -> str:
    """What the columns mean."""
    return ("ours: cutting the patches from the slide (reading, masking) + extractor.extract (resize to the input "
            "size,\nnormalise, forward, copy out), end to end. raw: the network's forward alone on the same tensors, "
            "run right\nafter each batch. ours/raw time: 1.00 = no overhead beyond the network (the two are separate "
            "runs, so\nload on a shared machine moves it by a few %). cut / preprocessing / network %: shares of our "
            "time,\nthe network timed inside our own calls (preprocessing = extract minus that), so they add up to "
            "100 %\nwhatever the load. threads: torch intra-op threads ('framework': TensorFlow's own). predict: "
            "an image\nmodel's predict_proba on the same patches (no extractor).")


def print_tables(report: dict) -> None:
    """The figures as plain-text tables on stdout."""
    print(f"\nslide: {report['slide']['description']} ({report['slide']['segmentation_s']:.1f} s); the first "
          f"{report['params']['patches']} segments' patches, batches of {BATCH}\n")
    for headers, rows in ((EXTRACTOR_HEADERS, [extractor_cells(r) for r in report['extractors']]),
                          (MODEL_HEADERS, [model_cells(r) for r in report['models']])):
        if not rows:
            continue
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        print('  '.join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
        print('-' * (sum(widths) + 2 * (len(widths) - 1)))
        for r in rows:
            print('  '.join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
        print()
    print(legend())
    for name, reason in {**report['not_measured'], **report['model_errors']}.items():
        print(f'{name}: not measured: {reason}')


def goals(report: dict) -> list:
    """Goal "throughput measured for every extractor": met only when each registered extractor ran."""
    from report import Goal

    ran = sorted({row['extractor'] for row in report['extractors']})
    total = len(ran) + len(report['not_measured'])
    best = {}
    for row in report['extractors']:
        rate = row['patches'] / row['ours_s']
        best[row['extractor']] = max(best.get(row['extractor'], 0.0), rate)
    measured = f'{len(ran)} of {total}' + (': ' + ', '.join(f'{name} up to {best[name]:.1f} patches/s'
                                                             for name in ran) if ran else '')
    note = '; '.join(f'{name}: not measured: {reason}' for name, reason in report['not_measured'].items())
    return [Goal('throughput measured for every extractor (patches/s on the CPU)', measured,
                 not report['not_measured'], note)]


def reading(report: dict) -> str:
    """A few computed sentences on this run: where our time goes at the project's default patch size."""
    from histomics_label.projects.config import DEFAULTS

    lines = []
    for row in report['extractors']:
        if row['patch'] != DEFAULTS['patchSize']:
            continue
        n, ours_s = row['patches'], row['ours_s']
        lines.append(f"* {row['extractor']}, default {row['patch']} px patches, {row['threads']} thread(s): "
                     f"{n / ours_s:.1f} patches/s end to end, {n / row['raw_s']:.1f} for the network alone; the "
                     f"network takes {row['network_s'] / ours_s:.1%} of our time, cutting {row['cut_s'] / ours_s:.1%},"
                     f" resizing, normalising and copying out {(row['extract_s'] - row['network_s']) / ours_s:.1%}.")
    return '\n'.join(lines)


def markdown(report: dict) -> str:
    """The benchmarks page's section."""
    from report import table

    params = report['params']
    missing = '\n'.join(f'* `{name}`: not measured: {reason}'
                        for name, reason in {**report['not_measured'], **report['model_errors']}.items())
    models = ''
    if report['models']:
        models = ("Image models (they learn from the patches themselves), `predict_proba` on the same patches:\n\n"
                  + table(MODEL_HEADERS, [model_cells(r) for r in report['models']]))
    return f"""## Feature throughput

`bench/bench_features.py`: patches per second of every registered feature extractor on the CPU
({report['machine']['cpus']} cores), on real patches: {report['slide']['description']}; the first
{params['patches']} segments' masked patches cut as the pipeline cuts them (`iter_patches`, batches of {BATCH},
{TILE} px windows) at each patch size. The peer is the same network's raw forward pass on the very tensors ours fed it,
timed in the same run: ours / raw is what cutting, masking and preprocessing add. `timm` (resnet50) and `uni`
(UNI's ViT-L/16) run on local checkpoints of their own architecture with seeded random weights (`weights_path`; no
hub here, and UNI's weights are gated): the same networks, so the same cost, as the real weights. A row marked
*slow* is an extractor whose batch of {BATCH} was predicted to take over {params['slow_s']:g} s (from a first batch of
{PROBE}), measured on {SLOW_PATCHES} patches at one size and all threads.

{table(EXTRACTOR_HEADERS, [extractor_cells(r) for r in report['extractors']]) if report['extractors'] else
 'No extractor could be measured.'}

{models}

```
{legend()}
```

{missing}
{chr(10).join(f"* `{name}`: computes nothing here (its embeddings are imported per slide), so it has no "
              "throughput." for name in report['computes_nothing'])}

{reading(report)}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        help=f'patch sizes (default {OTHER_PATCH_SIZES}, the project default and the input sizes)')
    parser.add_argument('--patches', type=int, help='patches per measurement (default 128; 64 --quick)')
    parser.add_argument('--threads', type=int, nargs='+', help='torch thread counts (default: all cores, and 1)')
    parser.add_argument('--radius', type=int, default=RADIUS, help='SLIC radius at 5x (analysis px)')
    parser.add_argument('--slow', type=float, default=DEFAULT_SLOW_S,
                        help=f'an extractor whose batch is predicted to take longer (s) gets {SLOW_PATCHES} patches at '
                             'one size, all threads')
    parser.add_argument('--quick', action='store_true',
                        help='the project default and input sizes only, 64 patches, all cores only')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    args.patches = args.patches or (64 if args.quick else 128)
    if args.quick and not args.threads:
        args.threads = [os.cpu_count() or 1]
    return args


def main(argv: list[str] | None = None) -> dict:
    """Measure, print the tables; return (and write) the figures."""
    args = parse_args(argv)
    report = run(args)
    print_tables(report)
    print_total(report['seconds'])
    publish(report, args.json, args.report, NAME, lambda directory: markdown(report), goals(report))
    return report


if __name__ == '__main__':
    main()
