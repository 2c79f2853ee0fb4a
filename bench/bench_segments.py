"""Benchmark Histomics Label's tiled SLIC against its peers, all measured in the same run on the same slide.

Like for like: every contender below segments *every pixel* of the slide (HistomicsTK's CLI has no tissue mask),
into about as many superpixels (HistomicsTK's count is matched to ours within ``--match`` by tuning its
``superpixelSize``, below). Contenders (each runs in its own Python subprocess, so its time and memory are its own):

* ``ours``        -- ``TiledSLIC`` (segment source ``'slic'``, ``tissue=False``) on a local dask cluster of
  ``--workers`` processes, writing an h5py raster (256² chunks, gzip) as the pipeline does.
* ``ours-inline`` -- the same without dask (one process), for a per-core comparison; skipped with ``--quick``.
* ``histomicstk`` -- HistomicsTK 1.4.0's ``SuperpixelSegmentation`` CLI: its module's parser built from its XML,
  then ``createSuperPixels``, exactly what its ``__main__`` does (timed without the imports). It has no
  ``--scheduler``: its tiles run one after another in one process.
* ``slic``        -- one-shot ``skimage.segmentation.slic`` on the whole slide read into memory at once, asked for
  (pixels) / (2r)² superpixels as ours is: what tiling would give if memory did not matter.
* ``ours-tissue`` -- on the sample pyramid only, for reference: the product's default, which masks glass and asks
  for (tissue area) / (2r)² superpixels. It does less work than the others, so it is in no ratio.

Same slide, magnification and compactness for all. Histomics Label's ``radius`` r asks SLIC for (area) / (2r)²
superpixels; HistomicsTK's ``superpixelSize`` s asks for (pixels) / s², so s = 2r asks for as many, but it returns
more than ours (397 against 287 on the sample pyramid). So on the sample pyramid HistomicsTK runs again with s scaled by
√(its count / ours) until the counts agree within ``--match`` (at most ``--match-tries`` runs; every try is
reported), and the series reuses the s found there (each size's count ratio is reported and judged). HistomicsTK
runs with ``--overlap true`` (seam-free, like ours), ``--slic_zero false`` and the same compactness (the same SLIC
variant as ours) and ``--boundaries false`` (its raster then holds plain ids we can compare).

Measurements, by the parent process:

* wall time of the whole subprocess (interpreter start, imports, slide opening, dask start, segmentation, output
  writing), and the child's own split into import / setup / segment seconds (``segment``: the segmentation call
  alone, after imports and dask start-up, including slide reading and writing the output raster);
* peak RSS two ways: the largest single process of the contender's tree (each process's own ``VmHWM``: the child
  reports its own at its end, its descendants, e.g. dask workers, are read every 50 ms; ``wait4``'s ``ru_maxrss``
  would include the harness's own peak, see ``measure.own_peak_rss``) and the largest *sum* of RSS over the process
  tree, sampled every 50 ms with psutil (what the machine must hold at once; shared pages are counted per process,
  so it is an upper bound);
* CPU seconds (user + system) of the tree from ``wait4``;
* segment count, and boundary recall / precision against the one-shot SLIC (when it ran): the share of the
  reference's boundary pixels that have a boundary pixel of the contender within ``--tolerance`` pixels (and the
  converse).

The limit: ``memory_bandwidth`` times a large numpy copy on this machine; one pass over the slide at that bandwidth
(reading 3 B of RGB and writing a 4 B id per pixel) is the fastest any segmentation could go per CPU second. Ours'
MP per CPU second is reported as a share of it, and ours inline runs under cProfile on the sample pyramid (every
pixel, and with the tissue mask) so the page names what takes the time.

Two parts, one after the other:

1. The sample pyramid (``--slide``, default the project's sample slide): every contender.
2. The scaling series (``--sizes``, megapixels at the analysis magnification; default 25, 100 and 1,000 MP, i.e.
   5,000², 10,000² and 31,623² px, the issue's 25 MP to 1 GP; ``--quick`` 1, 4 and 16 MP): slides made by
   ``generated_slide.py`` from the sample's tissue at the analysis magnification. Ours runs at every size.
   HistomicsTK runs at the smallest size and at the goal's (the smallest ≥ 100 MP, else the largest), elsewhere only
   when its time, predicted linearly from its seconds per megapixel of work at the previous size (the pixels its
   overlapping tiles cover, counted with large_image's own tile iterator), is within ``--limit``; one-shot slic only
   where it fits in memory and is predicted within the limit. Skips are printed (and reported) with their prediction.

``--report DIR`` writes the benchmarks page's section (``bench/report.py``): ``segments.md`` (tables, a plot of
seconds and peak RSS against megapixels), ``segments.json`` and ``segments.goals.json`` with the issue's goals
judged on this run, on the sample pyramid and on the ≥ 100 MP slide, each only where the segment counts match:
ours ≥ 1.5× HistomicsTK's megapixels per CPU second and ≥ 3× its wall throughput on ``--workers`` cores; and memory
flat with slide size (ours' peak RSS, largest process and tree, growing < 1.5× from 25 MP to ≥ 1 GP).

Run ``python bench/bench_segments.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import POLL_S, own_peak_rss, run_process, stopwatch  # noqa: E402
from report import Goal, publish  # noqa: E402

DEFAULT_MAGNIFICATION = 10.0
QUICK_MAGNIFICATION = 5.0
DEFAULT_SIZES = (25.0, 100.0, 1000.0)  # MP at the analysis magnification: 5,000², 10,000², 31,623² px
QUICK_SIZES = (1.0, 4.0, 16.0)  # 1,000², 2,000², 4,000² px
DEFAULT_LIMIT_S = 300.0
QUICK_LIMIT_S = 20.0
GOAL_CPU_THROUGHPUT = 1.5  # the issue: ours >= 1.5x HistomicsTK's megapixels per CPU second on identical work ...
GOAL_WALL_THROUGHPUT = 3.0  # ... and >= 3x its wall throughput on the same (2) cores ...
GOAL_MEGAPIXELS = 100.0  # ... on the sample pyramid and on a >= 100 MP slide
GOAL_MEMORY_GROWTH = 1.5  # "memory flat with slide size": ours' peak RSS grows less than this over the series ...
GOAL_MEMORY_TO_MP = 1000.0  # ... from 25 MP to 1 GP
DEFAULT_MATCH = 0.10  # identical work: HistomicsTK's segment count within 10 % of ours
DEFAULT_MATCH_TRIES = 4
BYTES_PER_PIXEL_PASS = 3 + 4  # one pass: read an RGB pixel, write a uint32 id
DEFAULT_RADIUS = 100.0
DEFAULT_COMPACTNESS = 15.0  # the pipeline's default
DEFAULT_TILE_SIZE = 2048  # the pipeline's default
HISTOMICSTK_TILE_SIZE = 4096  # the CLI's default
ONE_SHOT_BYTES_PER_PIXEL = 160  # peak RSS of one-shot slic measured at 130-155 B per analysis pixel
ONE_SHOT_MEMORY_SHARE = 0.5  # one-shot slic runs only if it needs at most this share of the memory available
HISTOMICSTK_CLI = 'histomicstk.cli.SuperpixelSegmentation.SuperpixelSegmentation'


# --------------------------------------------------------------------------------------------------------------
# Children: each contender's own process. They write what only they can know to a JSON file.
# --------------------------------------------------------------------------------------------------------------

def _child_ours(cfg: dict) -> dict:
    """Tiled SLIC into an h5py raster, on a dask cluster (``workers`` > 0) or inline (``workers`` == 0)."""
    start = time.perf_counter()
    import contextlib

    import h5py

    from histomics_label.core.distributed import dask_client
    from histomics_label.core.io.slide import SlideReader
    from histomics_label.core.io.store import RASTER_COMPRESSION
    from histomics_label.core.segments import segment_sources

    imported = time.perf_counter()
    slide = SlideReader(cfg['slide'], cfg['magnification'])
    cluster = dask_client(None, cfg['workers']) if cfg['workers'] else contextlib.nullcontext()
    with cluster as client, h5py.File(cfg['raster'], 'w') as h5:
        raster = h5.create_dataset('label_raster', shape=(slide.height, slide.width), dtype=np.uint32,
                                   chunks=(min(256, slide.height), min(256, slide.width)), fillvalue=0,
                                   **RASTER_COMPRESSION)
        source = segment_sources.create('slic', radius=cfg['radius'], compactness=cfg['compactness'],
                                        tile_size=cfg['tile_size'], tissue=cfg['tissue'], client=client)
        ready = time.perf_counter()
        if cfg.get('profile'):
            import cProfile

            profiler = cProfile.Profile()
            table = profiler.runcall(source.segment, slide, raster)
            profiler.dump_stats(cfg['profile'])
        else:
            table = source.segment(slide, raster)
    done = time.perf_counter()
    return dict(import_s=imported - start, setup_s=ready - imported, segment_s=done - ready,
                segments=len(table), width=slide.width, height=slide.height,
                window_px=source.tile_size + 2 * source.overlap,
                tiles=math.ceil(slide.width / source.tile_size) * math.ceil(slide.height / source.tile_size))


def _child_slic(cfg: dict) -> dict:
    """One-shot skimage SLIC of every pixel of the whole slide in memory, with ours' superpixel count rule. The
    slide's tissue fraction (ours' tissue mask) is computed after the timing, for the report only."""
    start = time.perf_counter()
    from skimage.segmentation import slic

    from histomics_label.core.io.slide import SlideReader
    from histomics_label.core.segments.slic import TiledSLIC
    from histomics_label.core.segments.tissue import tissue_mask, tissue_threshold

    imported = time.perf_counter()
    slide = SlideReader(cfg['slide'], cfg['magnification'])
    ready = time.perf_counter()
    rgb = slide.region(0, 0, slide.width, slide.height)
    n_segments = max(1, round(slide.width * slide.height / (2 * cfg['radius']) ** 2))
    labels = slic(rgb, n_segments=n_segments, compactness=cfg['compactness'], start_label=1, channel_axis=-1)
    done = time.perf_counter()
    np.save(cfg['raster'], labels.astype(np.uint32))
    clean = TiledSLIC(radius=cfg['radius']).clean  # the same speck / hole cleanup as ours
    tissue = tissue_mask(rgb, tissue_threshold(slide.thumbnail()), clean)
    return dict(import_s=imported - start, setup_s=ready - imported, segment_s=done - ready,
                segments=int(len(np.unique(labels))), width=slide.width, height=slide.height,
                tissue_fraction=float(tissue.mean()))


def _child_histomicstk(cfg: dict) -> dict:
    """HistomicsTK's SuperpixelSegmentation: its module, its XML-driven parser, its ``createSuperPixels``."""
    import contextlib
    import importlib
    import io

    start = time.perf_counter()
    cli = importlib.import_module(HISTOMICSTK_CLI)
    imported = time.perf_counter()
    opts = cli.CLIArgumentParser(str(Path(cli.__file__).with_suffix('.xml'))).parse_args(cfg['argv'])
    ready = time.perf_counter()
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        cli.createSuperPixels(opts)
    done = time.perf_counter()
    lines = log.getvalue().splitlines()
    Path(cfg['result']).with_suffix('.log').write_text(log.getvalue())
    found = [line for line in lines if line.startswith('>> Found')]
    tiles = [line for line in lines if line[:1].isdigit() and '/' in line.split(' ')[0]]  # 'k/n (w x h) - found'
    return dict(import_s=imported - start, setup_s=ready - imported, segment_s=done - ready,
                segments=int(found[-1].split()[2]) if found else None, tiles=len(tiles))


CHILDREN = {'ours': _child_ours, 'slic': _child_slic, 'histomicstk': _child_histomicstk}


def _run_child(kind: str, config_path: str) -> None:
    cfg = json.loads(Path(config_path).read_text())
    result = CHILDREN[kind](cfg)
    result['own_peak_rss_mb'] = own_peak_rss(os.getpid()) / 2 ** 20
    Path(cfg['result']).write_text(json.dumps(result))


# --------------------------------------------------------------------------------------------------------------
# Parent: run, measure, compare, report.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Measured:
    """What the parent measured of one contender's process tree, plus what the child reported."""

    name: str
    returncode: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0  # the largest single process: max of main_rss_mb and worker_rss_mb
    peak_tree_rss_mb: float = 0.0
    main_rss_mb: float = 0.0  # the contender's own process
    worker_rss_mb: float = 0.0  # its largest descendant (dask worker), 0 without any
    child: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    error: str = ''
    load_before: float = 0.0


def measure(name: str, command: list[str], result_path: Path, env: dict) -> Measured:
    """Run ``command``; return its wall time, CPU time and peak RSS (see module doc) with the child's JSON."""
    ran = run_process(command, env)
    measured = Measured(name, ran.returncode, ran.wall_s, ran.cpu_s, peak_tree_rss_mb=ran.peak_tree_rss / 2 ** 20)
    if ran.returncode == 0 and result_path.exists():
        measured.child = json.loads(result_path.read_text())
    else:
        measured.error = ran.output[-3000:]
    measured.main_rss_mb = max(ran.peaks.pop(ran.pid, 0) / 2 ** 20, measured.child.get('own_peak_rss_mb', 0))
    measured.worker_rss_mb = max(ran.peaks.values(), default=0) / 2 ** 20
    measured.peak_rss_mb = max(measured.main_rss_mb, measured.worker_rss_mb)
    return measured


def boundaries(labels: np.ndarray, inside_only: bool = False) -> np.ndarray:
    """Pixels with a 4-neighbour of another label; ``inside_only``: only between two nonzero labels."""
    edge = np.zeros(labels.shape, bool)
    for axis in (0, 1):
        a = labels[:-1] if axis == 0 else labels[:, :-1]
        b = labels[1:] if axis == 0 else labels[:, 1:]
        differ = a != b
        if inside_only:
            differ &= (a > 0) & (b > 0)
        if axis == 0:
            edge[:-1] |= differ
            edge[1:] |= differ
        else:
            edge[:, :-1] |= differ
            edge[:, 1:] |= differ
    return edge


def _near(edge: np.ndarray, tolerance: int) -> np.ndarray:
    """Pixels within ``tolerance`` (Chebyshev distance) of an edge pixel; separable square dilation."""
    import scipy.ndimage as ndi

    if tolerance <= 0:
        return edge
    size = 2 * tolerance + 1
    grown = ndi.maximum_filter1d(edge.view(np.uint8), size, axis=0)
    return ndi.maximum_filter1d(grown, size, axis=1).astype(bool)


def boundary_scores(reference: np.ndarray, candidate: np.ndarray, tolerance: int) -> dict:
    """Boundary recall and precision of ``candidate`` against ``reference`` inside the reference's tissue (> 0).

    Only the reference's boundaries between two segments count (not tissue against glass, which a contender that
    segments glass too never draws); candidate boundaries count where the reference has tissue.
    """
    height = min(reference.shape[0], candidate.shape[0])
    width = min(reference.shape[1], candidate.shape[1])
    reference, candidate = reference[:height, :width], candidate[:height, :width]
    tissue = reference > 0
    ref_edge = boundaries(reference, inside_only=True)
    cand_edge = boundaries(candidate) & tissue
    recall = np.count_nonzero(ref_edge & _near(cand_edge, tolerance)) / max(1, np.count_nonzero(ref_edge))
    precision = np.count_nonzero(cand_edge & _near(ref_edge, tolerance)) / max(1, np.count_nonzero(cand_edge))
    return dict(boundary_recall=float(recall), boundary_precision=float(precision), tolerance_px=tolerance)


def load_raster(path: Path) -> np.ndarray | None:
    """A contender's segment-id raster as a 2-D integer array, or None when it wrote none."""
    if not path.exists():
        return None
    if path.suffix == '.npy':
        return np.load(path)
    if path.suffix == '.h5':
        import h5py

        with h5py.File(path, 'r') as h5:
            return h5['label_raster'][()]
    import tifffile

    rgb = tifffile.imread(path, key=0).astype(np.uint32)  # HistomicsTK packs ids into R + 256 G + 65536 B
    return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)


@dataclass
class Run:
    """One contender's child process on one slide: which child, its JSON config, the raster it writes."""

    name: str
    kind: str
    cfg: dict
    raster: Path


def superpixel_size(args: argparse.Namespace) -> int:
    """HistomicsTK's ``superpixelSize``: the one ``match_histomicstk`` found, else the one for our radius (it asks
    for (pixels) / s² superpixels, ours for (pixels) / (2 r)², so the same request is s = 2 r)."""
    return args.histomicstk_superpixel_size or int(round(2 * args.radius))


def histomicstk_argv(slide: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """HistomicsTK's CLI arguments: plain SLIC (not SLIC0) with our compactness, as ours runs it; no boundary
    marks, so its raster holds plain ids; ``--overlap`` unless asked otherwise, seam-free like ours."""
    return [str(slide), str(out), '--magnification', f'{args.magnification:g}',
            '--superpixelSize', str(superpixel_size(args)), '--tileSize', str(args.histomicstk_tile_size),
            '--overlap', 'false' if args.histomicstk_no_overlap else 'true', '--slic_zero', 'false',
            '--compactness', f'{args.compactness:g}', '--boundaries', 'false']


def contender_runs(slide: Path, names: list[str], args: argparse.Namespace, work: Path) -> list[Run]:
    """The runs of the contenders ``names`` on ``slide``, in that order, with their files under ``work``."""
    common = dict(slide=str(slide), magnification=args.magnification, radius=args.radius,
                  compactness=args.compactness)
    tiled = dict(common, tile_size=args.tile_size, tissue=False)
    configs = {'ours': ('ours', dict(tiled, workers=args.workers), 'ours.h5'),
               'ours-inline': ('ours', dict(tiled, workers=0), 'ours-inline.h5'),
               'ours-tissue': ('ours', dict(tiled, workers=args.workers, tissue=True), 'ours-tissue.h5'),
               'histomicstk': ('histomicstk', dict(argv=histomicstk_argv(slide, work / 'histomicstk.tiff', args)),
                               'histomicstk.tiff'),
               'slic': ('slic', dict(common), 'slic.npy')}
    runs = []
    for name in names:
        kind, cfg, raster = configs[name]
        runs.append(Run(name, kind, dict(cfg, raster=str(work / raster), result=str(work / f'{name}.result.json')),
                        work / raster))
    return runs


def _child_env(args: argparse.Namespace) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', str(args.workers)),
                PYTHONUNBUFFERED='1')


def run_one(run: Run, label: str, work: Path, env: dict) -> Measured:
    """Run one contender's child process and measure it, telling stderr how it went."""
    config_path = work / f'{run.name}.config.json'
    config_path.write_text(json.dumps(run.cfg))
    load = os.getloadavg()[0]
    print(f'running {label} (load average {load:.2f}) ...', file=sys.stderr, flush=True)
    result = measure(run.name, [sys.executable, __file__, '--child', run.kind, str(config_path)],
                     Path(run.cfg['result']), env)
    result.load_before = load
    state = f'{result.wall_s:.1f} s' if not result.error else f'FAILED (exit {result.returncode})'
    print(f'  {label}: {state}', file=sys.stderr, flush=True)
    if result.error:
        print(result.error, file=sys.stderr)
    return result


def one_shot_fits(slide: Path, args: argparse.Namespace) -> tuple[bool, str]:
    """Whether one-shot SLIC of the whole slide should fit in half the memory available now, and why not (the
    machine may be shared: a contender that takes most of its memory would push other work into swap or OOM)."""
    import psutil

    from histomics_label.core.io.slide import SlideReader

    reader = SlideReader(str(slide), args.magnification)
    need = reader.width * reader.height * ONE_SHOT_BYTES_PER_PIXEL
    available = psutil.virtual_memory().available
    if need > ONE_SHOT_MEMORY_SHARE * available:
        return False, (f'it would need about {need / 2 ** 30:.1f} GiB ({ONE_SHOT_BYTES_PER_PIXEL} B per pixel), more '
                       f'than {ONE_SHOT_MEMORY_SHARE:.0%} of the {available / 2 ** 30:.1f} GiB available')
    return True, ''


def compare(slide: Path, names: list[str], label: str, args: argparse.Namespace,
            work: Path, match: bool = False) -> tuple[list[Measured], dict | None]:
    """Run ``names`` on ``slide`` ``--repeat`` times (rounds, one contender after another, each a fresh
    subprocess), keep each contender's fastest run and score boundaries against the one-shot slic when it ran.
    With ``match``, HistomicsTK's first round is ``match_histomicstk`` (ours must run before it). Returns the runs
    and the chance-level boundary scores."""
    work.mkdir(parents=True, exist_ok=True)
    env = _child_env(args)
    runs = contender_runs(slide, names, args, work)
    best: dict[str, Measured] = {}
    for round_index in range(args.repeat):
        for k, run in enumerate(runs):
            if run.name == 'histomicstk' and match and round_index == 0:
                result = match_histomicstk(run, best.get('ours'), label, work, env, args)
                runs[k] = run = contender_runs(slide, [run.name], args, work)[0]  # at the matched size from now on
            else:
                result = run_one(run, f'{run.name} on {label}', work, env)
            kept = best.get(run.name)
            if kept is None or (not result.error and (kept.error or result.wall_s < kept.wall_s)):
                best[run.name] = result
    measured = [best[run.name] for run in runs]
    return measured, score_boundaries(measured, {run.name: run.raster for run in runs}, args)


def count_ratio(peer: Measured | dict, ours: Measured | dict) -> float | None:
    """The peer's segment count over ours', or None when either is missing."""
    def segments(m: Measured | dict) -> int | None:
        child = m.child if isinstance(m, Measured) else m['child']
        return child.get('segments')

    a, b = segments(peer), segments(ours)
    return a / b if a and b else None


def match_histomicstk(run: Run, ours: Measured | None, label: str, work: Path, env: dict,
                      args: argparse.Namespace) -> Measured:
    """Run HistomicsTK until its segment count is within ``--match`` of ours' (``superpixelSize`` scaled by
    √(its count / ours) between tries, as SLIC's count goes with 1 / s²), at most ``--match-tries`` runs; the size
    found is kept in ``args`` for the series. Every try is recorded in ``args.match_tries_made``. Returns the last
    run."""
    for tries in itertools.count(1):
        size = superpixel_size(args)
        result = run_one(run, f'histomicstk (superpixelSize {size}) on {label}', work, env)
        ratio = None if ours is None or ours.error or result.error else count_ratio(result, ours)
        args.match_tries_made.append(dict(slide=label, superpixel_size=size, segments=result.child.get('segments'),
                                          ours_segments=ours.child.get('segments') if ours else None,
                                          ratio=ratio, wall_s=result.wall_s))
        if ratio is None or abs(ratio - 1) <= args.match or tries >= args.match_tries:
            return result
        args.histomicstk_superpixel_size = max(8, int(round(size * math.sqrt(ratio))))
        if args.histomicstk_superpixel_size == size:
            return result
        run = contender_runs(Path(run.cfg['argv'][0]), ['histomicstk'], args, work)[0]


def score_boundaries(measured: list[Measured], rasters: dict[str, Path], args: argparse.Namespace) -> dict | None:
    """Boundary recall / precision of every contender against the one-shot slic (into ``quality``), and what two
    unrelated superpixel grids of this size score (the reference against itself moved by one radius)."""
    by_name = {m.name: m for m in measured}
    if 'slic' not in by_name or by_name['slic'].error:
        return None
    reference = load_raster(rasters['slic'])
    if reference is None:
        return None
    for result in measured:
        if result.name != 'slic' and not result.error:
            candidate = load_raster(rasters[result.name])
            if candidate is not None:
                result.quality = boundary_scores(reference, candidate, args.tolerance)
    shift = int(round(args.radius))
    return boundary_scores(reference, np.roll(reference, (shift, shift), axis=(0, 1)), args.tolerance)


PROFILED = {'every pixel': dict(tissue=False), 'tissue mask': dict(tissue=True)}


def profile_ours(args: argparse.Namespace, work: Path, top: int = 8) -> dict:
    """Ours inline (one process) on the sample pyramid under cProfile, every pixel and with the tissue mask (the
    product's default): per configuration, the profiled total and the ``top`` functions by own time, each with its
    share. cProfile's own overhead inflates many small Python calls, not the compiled SLIC loop."""
    import pstats

    work.mkdir(parents=True, exist_ok=True)
    profiles = {}
    for name, change in PROFILED.items():
        tag = name.replace(' ', '-')
        run = contender_runs(args.slide, ['ours-inline'], args, work)[0]
        stats_path = work / f'profile-{tag}.prof'
        run.cfg.update(change, raster=str(work / f'profile-{tag}.h5'),
                       result=str(work / f'profile-{tag}.result.json'), profile=str(stats_path))
        if run_one(run, f'ours inline under cProfile ({name})', work, _child_env(args)).error:
            continue
        stats = pstats.Stats(str(stats_path))
        rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:top]
        profiles[name] = dict(total_s=stats.total_tt, top=[
            dict(function=f'{Path(file).name}:{line} {function}' if line else function, own_s=own,
                 share=own / stats.total_tt, calls=calls)
            for (file, line, function), (_, calls, own, _, _) in rows])
    return profiles


def memory_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """This machine's memory bandwidth in bytes per second, one core: the best of ``repeats`` numpy copies of a
    ``megabytes`` array (each copy reads and writes every byte once)."""
    source = np.ones(megabytes * 2 ** 20, np.uint8)
    target = np.empty_like(source)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.nbytes / best


# --------------------------------------------------------------------------------------------------------------
# The scaling series: generated slides of growing size; peers where they are predicted to fit.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Rate:
    """Seconds per megapixel of work of one contender's latest successful run, to predict the next one's time
    (linear: fixed costs included, so a prediction for a larger slide errs high). HistomicsTK's work is the
    pixels its tiles cover, overlaps counted every time (``histomicstk_pixels``); the others' the slide's pixels."""

    seconds_per_mp: float
    basis: str  # where it was measured, e.g. '25 MP'


def histomicstk_pixels(slide: Path, args: argparse.Namespace) -> int:
    """Pixels HistomicsTK's CLI segments on ``slide``: its tiles at the analysis magnification (``tileSize`` plus,
    with ``--overlap``, 8 × superpixelSize on the far sides, as its code sets them), each overlap as often as it is
    segmented. large_image's tile iterator is lazy, so counting reads no pixels."""
    import large_image

    overlap = 0 if args.histomicstk_no_overlap else 8 * superpixel_size(args)
    size = args.histomicstk_tile_size + overlap
    tiles = large_image.open(str(slide)).tileIterator(
        format=large_image.constants.TILE_FORMAT_NUMPY, tile_size=dict(width=size, height=size),
        tile_overlap=dict(x=overlap, y=overlap), scale={'magnification': args.magnification})
    return sum(tile['width'] * tile['height'] for tile in tiles)


def work_mp(name: str, megapixels: float, htk_mp: float) -> float:
    """A contender's megapixels of work on a slide (see ``Rate``)."""
    return htk_mp if name == 'histomicstk' else megapixels


def update_rates(rates: dict[str, Rate], measured: list[Measured], megapixels: float, htk_mp: float,
                 basis: str) -> None:
    """Remember each successful contender's seconds per megapixel of work, for the next size's predictions."""
    for m in measured:
        if not m.error:
            rates[m.name] = Rate(m.wall_s / work_mp(m.name, megapixels, htk_mp), basis)


def plan_size(size: float, slide: Path, megapixels: float, htk_mp: float, must_run_htk: bool,
              rates: dict[str, Rate], args: argparse.Namespace) -> tuple[list[str], dict, dict]:
    """Which contenders run on this generated slide: ours always; HistomicsTK where ``must_run_htk`` (the
    smallest size and the goal's size) or predicted within ``--limit``; one-shot slic where it fits in memory and
    is predicted within ``--limit``. Returns (names, predicted seconds, reasons for the skipped)."""
    predicted = {name: rates[name].seconds_per_mp * work_mp(name, megapixels, htk_mp)
                 for name in ('ours', 'histomicstk', 'slic') if name in rates}
    names, skipped = ['ours'], {}
    for name in ('histomicstk', 'slic'):
        if name == 'slic' and args.no_slic:
            continue
        fits, why = one_shot_fits(slide, args) if name == 'slic' else (True, '')
        if not fits:
            skipped[name] = why
        elif name in predicted and predicted[name] > args.limit and not (name == 'histomicstk' and must_run_htk):
            rate = rates[name]
            skipped[name] = (f'predicted {predicted[name]:.0f} s ({rate.seconds_per_mp:.2f} s per MP of work at '
                             f'{rate.basis} × {work_mp(name, megapixels, htk_mp):.1f} MP) > --limit {args.limit:g} s')
        else:
            names.append(name)
    for name, why in skipped.items():
        print(f'skipping {name} at {size:g} MP: {why}', file=sys.stderr, flush=True)
    shown = ', '.join(f'{name} {seconds:.0f} s' for name, seconds in predicted.items() if name in names)
    if shown:
        print(f'{size:g} MP: predicted {shown}', file=sys.stderr, flush=True)
    return names, predicted, skipped


def goal_size(sizes: list[float]) -> float:
    """The series size the ≥ GOAL_MEGAPIXELS throughput goal is judged at: the smallest that large, else the
    largest (a run whose sizes are all smaller, e.g. ``--quick``)."""
    return min((s for s in sizes if s >= GOAL_MEGAPIXELS), default=max(sizes))


def run_series(args: argparse.Namespace, work: Path, rates: dict[str, Rate]) -> list[dict]:
    """Every ``--sizes`` slide (generated, cached), smallest first, with the contenders ``plan_size`` picks."""
    from generated_slide import generated_slide, slide_info

    sizes = sorted(args.sizes)
    points = []
    for size in sizes:
        slide = generated_slide(size, args.magnification)
        info = slide_info(slide)
        htk_mp = histomicstk_pixels(slide, args) / 1e6
        names, predicted, skipped = plan_size(size, slide, info['megapixels'], htk_mp,
                                              size in (sizes[0], goal_size(sizes)), rates, args)
        measured, chance = compare(slide, names, f'{size:g} MP', args, work / f'series-{size:g}mp')
        update_rates(rates, measured, info['megapixels'], htk_mp, f'{size:g} MP')
        point = comparison(slide, measured, chance, info['tissue_fraction'])
        points.append(dict(point, size_mp=size, histomicstk_work_mp=htk_mp, predicted_s=predicted, skipped=skipped,
                           slide_seconds_to_make=info['seconds_to_make']))
    return points


# --------------------------------------------------------------------------------------------------------------
# Figures, goals, tables, report.
# --------------------------------------------------------------------------------------------------------------

def comparison(slide: Path, measured: list[Measured], chance: dict | None, tissue: float | None) -> dict:
    """One slide's figures: its size, every contender's measurements with throughputs, ours / peer ratios."""
    size = next((m.child for m in measured if m.child.get('width')), {})
    megapixels = size.get('width', 0) * size.get('height', 0) / 1e6
    contenders = {}
    for m in measured:
        entry = asdict(m)
        entry.pop('name')
        ok = not m.error
        segment_s = m.child.get('segment_s')
        entry['mp_per_s_wall'] = megapixels / m.wall_s if ok and m.wall_s else None
        entry['mp_per_s_segment'] = megapixels / segment_s if ok and segment_s else None
        entry['mp_per_cpu_s'] = megapixels / m.cpu_s if ok and m.cpu_s else None
        contenders[m.name] = entry
    ratios = {f'{ours}/{peer}': _ratios(contenders[ours], contenders[peer])
              for ours in ('ours', 'ours-inline') for peer in ('histomicstk', 'slic')
              if ours in contenders and peer in contenders}
    if tissue is None:
        tissue = next((m.child['tissue_fraction'] for m in measured if 'tissue_fraction' in m.child), None)
    return dict(slide=dict(path=str(slide), width=size.get('width'), height=size.get('height'),
                           megapixels=megapixels, tissue_fraction=tissue),
                contenders=contenders, ratios=ratios, boundary_chance=chance)


def _ratios(ours: dict, peer: dict) -> dict:
    def ratio(key: str) -> float | None:
        return ours[key] / peer[key] if ours[key] and peer[key] else None

    return dict(throughput_wall=ratio('mp_per_s_wall'), throughput_segment=ratio('mp_per_s_segment'),
                throughput_cpu=ratio('mp_per_cpu_s'), peak_rss=ratio('peak_rss_mb'),
                peak_tree_rss=ratio('peak_tree_rss_mb'), peer_segments=count_ratio(peer, ours))


def growth(points: list[dict]) -> dict:
    """Per contender, how wall time, CPU time and memory grow from its smallest to its largest measured slide:
    the ratios, and the exponent b of a power law (figure ∝ MP^b) through those two points."""
    out = {}
    for name in ('ours', 'histomicstk', 'slic'):
        ran = [p for p in points if name in p['contenders'] and not p['contenders'][name]['error']]
        if len(ran) < 2:
            continue
        first, last = ran[0], ran[-1]
        mp_ratio = last['slide']['megapixels'] / first['slide']['megapixels']
        entry = dict(from_mp=first['slide']['megapixels'], to_mp=last['slide']['megapixels'], mp_ratio=mp_ratio)
        for key in ('wall_s', 'cpu_s', 'peak_rss_mb', 'peak_tree_rss_mb'):
            ratio = last['contenders'][name][key] / first['contenders'][name][key]
            entry[key] = dict(ratio=ratio, exponent=math.log(ratio) / math.log(mp_ratio))
        out[name] = entry
    return out


def limit(sample: dict, bandwidth: float) -> dict:
    """The one-pass limit (module doc) against ours' megapixels per CPU second on the sample pyramid."""
    limit_mp = bandwidth / BYTES_PER_PIXEL_PASS / 1e6
    ours = sample['contenders'].get('ours-inline') or sample['contenders'].get('ours') or {}
    measured = ours.get('mp_per_cpu_s')
    return dict(bandwidth_gb_s=bandwidth / 1e9, mp_per_cpu_s=limit_mp, ours_mp_per_cpu_s=measured,
                ours_share=measured / limit_mp if measured else None)


def figures(args: argparse.Namespace, sample: dict, points: list[dict], profiles: dict, bandwidth: float) -> dict:
    """Everything the run found, as JSON-ready figures."""
    from report import machine

    return dict(
        date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'), machine=machine(),
        params=dict(magnification=args.magnification, radius=args.radius,
                    histomicstk_superpixel_size=superpixel_size(args), compactness=args.compactness,
                    tile_size=args.tile_size, workers=args.workers, histomicstk_tile_size=args.histomicstk_tile_size,
                    histomicstk_overlap=not args.histomicstk_no_overlap, tolerance_px=args.tolerance,
                    repeat=args.repeat, sizes=sorted(args.sizes), limit_s=args.limit, quick=args.quick,
                    match=args.match, match_tries=args.match_tries),
        matching=args.match_tries_made, sample=sample, series=points, growth=growth(points),
        limit=limit(sample, bandwidth), profiles=profiles)


THROUGHPUTS = {'cpu': ('throughput_cpu', GOAL_CPU_THROUGHPUT, 'megapixels per CPU second'),
               'wall': ('throughput_wall', GOAL_WALL_THROUGHPUT, 'wall throughput')}


def _throughput_goal(point: dict, where: str, at_goal_size: bool, workers: int, kind: str,
                     match: float) -> Goal:
    """One throughput goal (``THROUGHPUTS[kind]``) on one slide, judged only on identical work (segment counts
    within ``match``), with what limits it when it is not met (from this run's figures)."""
    key, target, what = THROUGHPUTS[kind]
    cores = f' on {workers} cores' if kind == 'wall' else ''
    goal = f'tiled SLIC {what} ≥ {target:g}× HistomicsTK\'s{cores}, every pixel, counts within {match:.0%}: {where}'
    ours, htk = point['contenders'].get('ours'), point['contenders'].get('histomicstk')
    if not ours or not htk or ours['error'] or htk['error']:
        return Goal(goal, 'not measured (a contender did not run or failed)', False,
                    'see the section for which run is missing')
    ratio = point['ratios']['ours/histomicstk']
    value, counts = ratio[key], ratio['peer_segments']
    seconds = 'cpu_s' if kind == 'cpu' else 'wall_s'
    measured = (f'{value:.2f}× ({ours[seconds]:.1f} s against {htk[seconds]:.1f} s {kind}, '
                f'{point["slide"]["megapixels"]:.1f} MP; {ours["child"]["segments"]:,} against '
                f'{htk["child"]["segments"]:,} segments)')
    alike = counts is not None and abs(counts - 1) <= match
    if value >= target and at_goal_size and alike:
        return Goal(goal, measured, True)
    notes = []
    if not at_goal_size:
        notes.append('below the goal size')
    if not alike:
        notes.append(f'not identical work: HistomicsTK made {counts:.2f}× ours\' segments (allowed ±{match:.0%})'
                     if counts else 'not identical work: a segment count is missing')
    if value < target:
        if kind == 'cpu':
            notes.append(f'{value / target:.0%} of the goal: both run scikit-image\'s SLIC on every pixel, so per CPU '
                         f'second the difference is only what each does around it (see the profile)')
        else:
            busy = ours['cpu_s'] / ours['wall_s']
            fixed = ours['wall_s'] - ours['child']['segment_s']
            notes.append(f'{value / target:.0%} of the goal: on {workers} cores a {workers}-worker pool can beat a '
                         f'one-process peer by at most {workers}× its per-CPU-second ratio '
                         f'({workers * ratio["throughput_cpu"]:.2f}× here); ours kept {busy:.2f} cores busy, and '
                         f'{fixed:.1f} s of its {ours["wall_s"]:.1f} s were interpreter, imports and dask start-up')
    return Goal(goal, measured, False, '; '.join(notes))


def _memory_goal(report: dict) -> Goal:
    """Ours' peak memory from the smallest to the largest generated slide (criterion in ``goal``)."""
    goal = (f'memory flat with slide size: ours\' peak RSS (largest process, and the process tree) grows '
            f'< {GOAL_MEMORY_GROWTH:g}× from the smallest generated slide to one of ≥ {GOAL_MEMORY_TO_MP:g} MP')
    grown = report['growth']['ours']
    rss, tree = grown['peak_rss_mb']['ratio'], grown['peak_tree_rss_mb']['ratio']
    points = [p for p in report['series'] if 'ours' in p['contenders'] and not p['contenders']['ours']['error']]
    first, last = points[0]['contenders']['ours'], points[-1]['contenders']['ours']
    measured = (f'{rss:.2f}× ({first["peak_rss_mb"]:.0f} → {last["peak_rss_mb"]:.0f} MB), tree {tree:.2f}× '
                f'({first["peak_tree_rss_mb"]:.0f} → {last["peak_tree_rss_mb"]:.0f} MB) while the slide grew '
                f'{grown["mp_ratio"]:.0f}× ({grown["from_mp"]:.1f} → {grown["to_mp"]:.1f} MP)')
    far_enough = grown['to_mp'] >= GOAL_MEMORY_TO_MP * 0.99
    met = rss < GOAL_MEMORY_GROWTH and tree < GOAL_MEMORY_GROWTH and far_enough
    if met:
        return Goal(goal, measured, True)
    if not far_enough:
        return Goal(goal, measured, False, f'the largest slide run was {grown["to_mp"]:.0f} MP (--sizes)')
    side, window = min(points[0]['slide']['width'], points[0]['slide']['height']), first['child']['window_px']
    small = (f'; the smallest slide ({side:,} px a side) is smaller than one of ours\' windows ({window:,} px: a '
             'tile and its overlaps), so its workers held less there' if side < window else '')
    note = (f'{max(rss, tree) / GOAL_MEMORY_GROWTH:.2f}× the allowed growth: ours\' own process '
            f'{first["main_rss_mb"]:.0f} → {last["main_rss_mb"]:.0f} MB, its largest worker '
            f'{first["worker_rss_mb"]:.0f} → {last["worker_rss_mb"]:.0f} MB; segments '
            f'{first["child"]["segments"]} → {last["child"]["segments"]}{small}')
    return Goal(goal, measured, met, note)


def goals(report: dict) -> list[Goal]:
    """The issue's segment goals, judged on this run's figures: per CPU second and wall, on the sample pyramid and
    the goal-size slide, and memory over the series where ours ran on two sizes or more (the full tier)."""
    p, sample = report['params'], report['sample']
    slides = [(sample, f'sample pyramid ({sample["slide"]["megapixels"]:.1f} MP at {p["magnification"]:g}×)', True)]
    if report['series']:
        target = goal_size(p['sizes'])
        slides.append((next(pt for pt in report['series'] if pt['size_mp'] == target),
                       f'generated {target:g} MP slide (goal: ≥ {GOAL_MEGAPIXELS:g} MP)', target >= GOAL_MEGAPIXELS))
    verdicts = [_throughput_goal(point, where, at_goal_size, p['workers'], kind, p['match'])
                for kind in THROUGHPUTS for point, where, at_goal_size in slides]
    if report['growth'].get('ours'):
        verdicts.append(_memory_goal(report))
    return verdicts


def _fmt(value, spec: str) -> str:
    """``format(value, spec)``, or a dash as wide as ``spec`` asks when there is no value."""
    if value is None:
        width = spec.split('.')[0].rstrip('df')
        return '-'.rjust(int(width) if width.isdigit() else 0)
    return format(value, spec)


def contender_rows(point: dict) -> list[list[str]]:
    """One row per contender of a slide: the columns of ``CONTENDER_COLUMNS``."""
    rows = []
    for name, c in point['contenders'].items():
        if c['error']:
            rows.append([name, f'FAILED (exit {c["returncode"]})'] + [''] * (len(CONTENDER_COLUMNS) - 2))
            continue
        child, quality = c['child'], c['quality']
        rows.append([name, f"{c['wall_s']:.1f}", _fmt(c['mp_per_s_wall'], '.2f'), _fmt(child.get('segment_s'), '.1f'),
                     _fmt(c['mp_per_s_segment'], '.2f'), _fmt(child.get('import_s'), '.1f'),
                     _fmt(child.get('setup_s'), '.1f'), f"{c['cpu_s']:.1f}", _fmt(c['mp_per_cpu_s'], '.2f'),
                     f"{c['peak_rss_mb']:.0f}", f"{c['peak_tree_rss_mb']:.0f}", _fmt(child.get('segments'), 'd'),
                     _fmt(quality.get('boundary_recall'), '.3f'), _fmt(quality.get('boundary_precision'), '.3f'),
                     f"{c['load_before']:.1f}"])
    chance = point['boundary_chance']
    if chance:
        rows.append(['(chance)'] + [''] * 11 + [f"{chance['boundary_recall']:.3f}",
                                                f"{chance['boundary_precision']:.3f}", ''])
    return rows


CONTENDER_COLUMNS = ['contender', 'wall s', 'MP/s', 'seg s', 'seg MP/s', 'import s', 'setup s', 'cpu s', 'MP/cpu-s',
                     'RSS MB', 'tree MB', 'segments', 'recall', 'prec.', 'load']
RATIO_COLUMNS = ['ours ÷ peer', 'MP/s wall', 'MP/s seg', 'MP/cpu-s', 'RSS', 'tree RSS', 'peer segments ÷ ours']
SERIES_COLUMNS = ['MP', 'contender', 'wall s', 'MP/s', 'cpu s', 'MP/cpu-s', 'RSS MB', 'tree MB', 'segments', 'recall',
                  'load']


def ratio_rows(point: dict) -> list[list[str]]:
    """One row per ours / peer pair: throughput ratios (> 1: ours faster) and memory ratios (< 1: ours leaner)."""
    return [[pair, _fmt(r['throughput_wall'], '.2f'), _fmt(r['throughput_segment'], '.2f'),
             _fmt(r['throughput_cpu'], '.2f'), _fmt(r['peak_rss'], '.2f'), _fmt(r['peak_tree_rss'], '.2f'),
             _fmt(r['peer_segments'], '.2f')]
            for pair, r in point['ratios'].items()]


MATCH_COLUMNS = ['slide', 'superpixelSize', 'HistomicsTK segments', 'ours', 'ratio', 'wall s']


def match_rows(report: dict) -> list[list[str]]:
    """HistomicsTK's tries at matching ours' segment count, in order."""
    return [[t['slide'], str(t['superpixel_size']), _fmt(t['segments'], 'd'), _fmt(t['ours_segments'], 'd'),
             _fmt(t['ratio'], '.2f'), f"{t['wall_s']:.1f}"] for t in report['matching']]


PROFILE_COLUMNS = ['profile', 'own s', 'share', 'calls', 'function']


def profile_rows(report: dict) -> list[list[str]]:
    """The hot spots of ours inline under cProfile, per configuration, by own time."""
    return [[name, f"{entry['own_s']:.2f}", f"{entry['share']:.0%}", str(entry['calls']), entry['function']]
            for name, profile in report['profiles'].items() for entry in profile['top']]


def limit_text(report: dict) -> str:
    """One sentence: how far ours is from one pass over the pixels at memory bandwidth."""
    lim = report['limit']
    if not lim['ours_mp_per_cpu_s']:
        return 'The one-pass limit was not compared (ours did not run).'
    parts = []
    for name, profile in report['profiles'].items():
        shares = {what: sum(e['share'] for e in profile['top'] if marker in e['function'])
                  for what, marker in PROFILE_PARTS.items()}
        parts.append(f"{name} ({profile['total_s']:.1f} s profiled): "
                     + ', '.join(f'{what} {share:.0%}' for what, share in shares.items()))
    return (f"One pass over the pixels at this machine's memory bandwidth ({lim['bandwidth_gb_s']:.1f} GB/s, one "
            f"core, numpy copy; {BYTES_PER_PIXEL_PASS} B per pixel) would segment {lim['mp_per_cpu_s']:.0f} MP per "
            f"CPU second; ours inline does {lim['ours_mp_per_cpu_s']:.2f}, {lim['ours_share']:.2%} of that limit. "
            f"What takes the time, by own time under cProfile: {'; '.join(parts)}.")


PROFILE_PARTS = {"skimage's slic (its compiled loop runs inside it)": 'slic_superpixels.py',
                 'colour conversion': 'colorconv.py'}
"""What ``limit_text`` sums from the profile's top functions: a marker in the function's name or file."""


def series_rows(points: list[dict]) -> list[list[str]]:
    """One row per size and contender that ran; a skipped contender's row says why."""
    rows = []
    for point in points:
        size = f"{point['size_mp']:g}"
        for name, c in point['contenders'].items():
            if c['error']:
                rows.append([size, name, f'FAILED (exit {c["returncode"]})'] + [''] * (len(SERIES_COLUMNS) - 3))
                continue
            rows.append([size, name, f"{c['wall_s']:.1f}", _fmt(c['mp_per_s_wall'], '.2f'), f"{c['cpu_s']:.1f}",
                         _fmt(c['mp_per_cpu_s'], '.2f'), f"{c['peak_rss_mb']:.0f}", f"{c['peak_tree_rss_mb']:.0f}",
                         _fmt(c['child'].get('segments'), 'd'), _fmt(c['quality'].get('boundary_recall'), '.3f'),
                         f"{c['load_before']:.1f}"])
        rows += [[size, name, f'skipped: {why}'] + [''] * (len(SERIES_COLUMNS) - 3)
                 for name, why in point['skipped'].items()]
    return rows


LONG_CELL = 24  # a plain-text cell this long (a skip reason) runs on to the end of its line


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table for the terminal: first column left-aligned, the rest right-aligned; a cell too long for
    its column (a skip reason) runs on to the end of the line."""
    short = [row for row in rows if all(len(cell) < LONG_CELL for cell in row)]
    widths = [max([len(h)] + [len(row[i]) for row in short if i < len(row)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            if len(cell) >= LONG_CELL:
                out.append(cell)
                break
            out.append(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]))
        return ' '.join(out).rstrip()

    head = line(headers)
    return '\n'.join([head, '-' * len(head)] + [line(row) for row in rows])


def setup_text(report: dict) -> str:
    """One paragraph: the settings every contender shared, and the machine."""
    p, m, s = report['params'], report['machine'], report['sample']['slide']
    overlap = '' if p['histomicstk_overlap'] else ' without overlap'
    return (f"Radius {p['radius']:g} px (HistomicsTK superpixelSize {p['histomicstk_superpixel_size']}, matched "
            f"to ours' segment count within {p['match']:.0%}), every pixel segmented by all, compactness "
            f"{p['compactness']:g}, analysis magnification {p['magnification']:g}×; ours: tiles {p['tile_size']} on "
            f"{p['workers']} dask workers; HistomicsTK: tiles {p['histomicstk_tile_size']}{overlap}. Sample pyramid "
            f"{s['width']:,} × {s['height']:,} px = {s['megapixels']:.1f} MP, tissue "
            f"{_fmt(s['tissue_fraction'], '.0%')}. {m['cpus']} CPUs ({m.get('cpu', m['machine'])}), "
            f"{m.get('memory_gib', '?')} GiB, Python {m['python']}; best of {p['repeat']}; 1-minute load average at "
            f"the end {m.get('load_average', ['?'])[0]}.")


def growth_lines(report: dict) -> list[str]:
    """One sentence per contender: how its time and memory grew over the series."""
    names = {'ours': 'Ours', 'histomicstk': 'HistomicsTK', 'slic': 'One-shot slic'}
    lines = []
    for name, g in report['growth'].items():
        lines.append(f"{names[name]}, {g['from_mp']:.1f} → {g['to_mp']:.1f} MP ({g['mp_ratio']:.0f}×): wall "
                     f"{g['wall_s']['ratio']:.1f}× (∝ MP^{g['wall_s']['exponent']:.2f}), CPU "
                     f"{g['cpu_s']['ratio']:.1f}×, peak RSS {g['peak_rss_mb']['ratio']:.2f}× "
                     f"(∝ MP^{g['peak_rss_mb']['exponent']:.2f}), tree RSS {g['peak_tree_rss_mb']['ratio']:.2f}×.")
    return lines


def print_report(report: dict, verdicts: list[Goal]) -> None:
    """The figures as plain-text tables on stdout."""
    print(f"\n{setup_text(report)}\n\nsample pyramid {report['sample']['slide']['path']}\n")
    print(text_table(CONTENDER_COLUMNS, contender_rows(report['sample'])))
    print('\nratios: throughput ours / peer (> 1: ours faster), memory ours / peer (< 1: ours leaner)')
    print(text_table(RATIO_COLUMNS, ratio_rows(report['sample'])))
    print("\nHistomicsTK's superpixelSize, matched to ours' segment count")
    print(text_table(MATCH_COLUMNS, match_rows(report)))
    print(f"\n{limit_text(report)}\n")
    print(text_table(PROFILE_COLUMNS, profile_rows(report)))
    if report['series']:
        print(f"\nscaling series: generated slides at {report['params']['magnification']:g}×, --limit "
              f"{report['params']['limit_s']:g} s\n")
        print(text_table(SERIES_COLUMNS, series_rows(report['series'])))
        print('\n' + '\n'.join(growth_lines(report)))
    print('\ngoals:')
    for goal in verdicts:
        note = f'; {goal.note}' if goal.note else ''
        print(f"  {'met' if goal.met else 'NOT met'}: {goal.goal}: {goal.measured}{note}")
    print(f"""
wall: the whole subprocess (interpreter, imports, dask start, slide reading, segmentation, output writing).
seg: the segmentation call alone (slide reading and output writing included; imports and dask start excluded).
cpu s: user + system CPU of the whole process tree. RSS: largest single process (own VmHWM). tree: largest sum over
the process tree (psutil, every {POLL_S * 1000:.0f} ms). recall / prec.: boundaries against one-shot slic within
{report['params']['tolerance_px']} px; (chance): the one-shot slic against itself shifted by one radius. load:
1-minute load average when the contender started; other work on the machine slows wall times (cpu s suffers least).""")


def plot_scaling(report: dict, directory: Path) -> str:
    """Seconds and peak RSS against slide megapixels (log–log), ours and peers; returns the plot's file name."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    from report import figure, save_plot

    fig, _ = figure(10, 4)
    fig.clf()
    seconds_axes, memory_axes = fig.subplots(1, 2)
    styles = {'ours': ('tab:blue', 'o'), 'histomicstk': ('tab:red', 's'), 'slic': ('tab:gray', '^')}
    for name, (color, marker) in styles.items():
        ran = [p for p in report['series'] if name in p['contenders'] and not p['contenders'][name]['error']]
        if not ran:
            continue
        mp = [p['slide']['megapixels'] for p in ran]
        seconds_axes.plot(mp, [p['contenders'][name]['wall_s'] for p in ran], marker=marker, color=color, label=name)
        memory_axes.plot(mp, [p['contenders'][name]['peak_rss_mb'] for p in ran], marker=marker, color=color,
                         label=f'{name}, largest process')
        memory_axes.plot(mp, [p['contenders'][name]['peak_tree_rss_mb'] for p in ran], marker=marker, color=color,
                         linestyle=':', fillstyle='none', label=f'{name}, process tree')
    sizes = [p['slide']['megapixels'] for p in report['series']]
    plain = FuncFormatter(lambda value, _: f'{value:g}')
    for axes, ylabel in ((seconds_axes, 'wall seconds'), (memory_axes, 'peak RSS (MB)')):
        axes.set_xscale('log')
        axes.set_yscale('log')
        axes.set_xticks(sizes, [f'{size:.3g}' for size in sizes])
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel(f"slide megapixels at {report['params']['magnification']:g}×")
        axes.set_ylabel(ylabel)
        axes.grid(True, which='both', alpha=0.3)
        axes.legend(fontsize=7)
    seconds_axes.set_title('time')
    memory_axes.set_title('memory')
    return save_plot(fig, directory, 'segments', 'scaling')


def section(report: dict, verdicts: list[Goal], plot: str) -> str:
    """The benchmarks page's section: what ran, the tables, the plot, the goals and how to read them."""
    from report import table

    p, sample = report['params'], report['sample']
    series = ''
    if report['series']:
        slides = report['series']
        made = ', '.join(f"{pt['slide']['width']:,}² px ({_fmt(pt['slide']['tissue_fraction'], '.0%')} tissue)"
                         for pt in slides)
        series = f"""
### Scaling: generated slides of {', '.join(f"{pt['size_mp']:g}" for pt in slides)} MP

`bench/generated_slide.py` mosaics the sample pyramid's real tissue (read at {p['magnification']:g}×, copies
mirrored so tissue continues across seams) into square pyramidal TIFFs whose base is {p['magnification']:g}×:
{made}. Ours runs at every size; HistomicsTK at the smallest and at the goal's size, elsewhere only when its time,
predicted from its seconds per megapixel of work at the previous size (its tiles with their overlaps), is within
{p['limit_s']:g} s; one-shot slic only where it fits in memory and is predicted within that limit (boundary recall
there).

{table(SERIES_COLUMNS, series_rows(slides), align='lr' + 'r' * (len(SERIES_COLUMNS) - 2))}

![Seconds and peak RSS against slide megapixels]({plot})

{chr(10).join('* ' + line for line in growth_lines(report))}
"""
    goal_rows = [[g.goal, g.measured, 'yes' if g.met else '**no**', g.note] for g in verdicts]
    return f"""## Segments: tiled SLIC against HistomicsTK and one-shot SLIC

`bench/bench_segments.py`: Histomics Label's tiled SLIC (`ours`, on a local dask cluster), HistomicsTK 1.4.0's
`SuperpixelSegmentation` CLI (`histomicstk`, one process: it has no scheduler) and one-shot
`skimage.segmentation.slic` of the whole slide in memory (`slic`) segment every pixel of the same slide at the same
magnification into about as many superpixels (like for like: HistomicsTK has no tissue mask), each in its own
subprocess, one after another. `ours-tissue`, on the sample pyramid only, is the product's default (glass masked,
fewer pixels segmented), shown for reference and in no ratio. {setup_text(report)}

### The sample pyramid

{table(CONTENDER_COLUMNS, contender_rows(sample))}

{table(RATIO_COLUMNS, ratio_rows(sample))}

HistomicsTK's `superpixelSize`, run until its segment count was within {p['match']:.0%} of ours' (each try's count
goes with 1 / size², so the next size is the last × √(its count / ours)); the series reuses the last:

{table(MATCH_COLUMNS, match_rows(report), align='lrrrrr')}

### How far from the limit

{limit_text(report)}

{table(PROFILE_COLUMNS, profile_rows(report), align='lrrrl')}
{series}
### Goals

{table(['goal', 'measured', 'met', 'shortfall and what limits it'], goal_rows, align='llll')}

How to read: *wall* is the whole subprocess (interpreter, imports, dask start-up, slide reading, segmentation,
output writing) and MP/s divides the slide's megapixels (glass included, the same numerator for all) by it; *seg*
is the segmentation call alone; *cpu s* is user + system CPU of the process tree, the figure least disturbed by
other work on the machine (*load*: 1-minute load average when the contender started). *RSS* is the largest single
process, *tree* the largest sum over the process tree (sampled every {POLL_S * 1000:.0f} ms). *recall* / *prec.*:
boundary agreement with the one-shot slic within {p['tolerance_px']} px; *(chance)* is what two unrelated grids of
this superpixel size score. Ratios are ours ÷ peer (throughput > 1: ours faster; memory < 1: ours leaner).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--slide', type=Path, help="slide file (default: the project's sample slide)")
    parser.add_argument('--magnification', type=float,
                        help=f'analysis magnification (default {DEFAULT_MAGNIFICATION:g}, {QUICK_MAGNIFICATION:g} '
                             'with --quick); the generated slides are made at it')
    parser.add_argument('--sizes', type=float, nargs='*',
                        help='generated slide sizes in megapixels at the analysis magnification (default '
                             f'{" ".join(f"{s:g}" for s in DEFAULT_SIZES)}; with --quick '
                             f'{" ".join(f"{s:g}" for s in QUICK_SIZES)}; none: no scaling series)')
    parser.add_argument('--limit', type=float,
                        help='skip a peer whose predicted time on a generated slide exceeds this many seconds '
                             f'(default {DEFAULT_LIMIT_S:g}, {QUICK_LIMIT_S:g} with --quick; HistomicsTK always runs '
                             'at the smallest and the goal size)')
    parser.add_argument('--radius', type=float, default=DEFAULT_RADIUS,
                        help='superpixel radius in analysis pixels (histomicstk superpixelSize = 2 x radius)')
    parser.add_argument('--compactness', type=float, default=DEFAULT_COMPACTNESS, help='SLIC compactness, all')
    parser.add_argument('--tile-size', type=int, default=DEFAULT_TILE_SIZE, help='our tile size')
    parser.add_argument('--histomicstk-tile-size', type=int, default=HISTOMICSTK_TILE_SIZE,
                        help="histomicstk's tileSize (its default)")
    parser.add_argument('--histomicstk-no-overlap', action='store_true',
                        help="run histomicstk without --overlap (its default: faster, but seams at its tile edges)")
    parser.add_argument('--workers', type=int, default=2, help='dask worker processes for ours')
    parser.add_argument('--tolerance', type=int, default=2, help='boundary match tolerance in pixels')
    parser.add_argument('--quick', action='store_true',
                        help='lower magnification, smaller sizes and limit, no inline run (about 2 minutes)')
    parser.add_argument('--no-slic', action='store_true', help='skip the one-shot slic (and boundary scores)')
    parser.add_argument('--repeat', type=int, default=1, help='rounds to run; each contender keeps its fastest')
    parser.add_argument('--match', type=float, default=DEFAULT_MATCH,
                        help="HistomicsTK's segment count must be within this share of ours (identical work)")
    parser.add_argument('--match-tries', type=int, default=DEFAULT_MATCH_TRIES,
                        help="at most this many HistomicsTK runs on the sample pyramid to match the counts")
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    parser.add_argument('--keep', type=Path, help='keep the rasters and logs in this folder (default: temp)')
    args = parser.parse_args(argv)
    if args.magnification is None:
        args.magnification = QUICK_MAGNIFICATION if args.quick else DEFAULT_MAGNIFICATION
    if args.sizes is None:
        args.sizes = list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.limit is None:
        args.limit = QUICK_LIMIT_S if args.quick else DEFAULT_LIMIT_S
    if args.slide is None:
        from histomics_label.devtools.sample_data import sample_slide

        args.slide = sample_slide()
    args.slide = args.slide.resolve()
    args.histomicstk_superpixel_size = None  # until match_histomicstk finds one
    args.match_tries_made = []
    return args


def sample_names(args: argparse.Namespace) -> list[str]:
    """The contenders on the sample pyramid: ours (and inline, unless ``--quick``), HistomicsTK, and one-shot slic
    unless skipped or too large for the memory available."""
    names = ['ours'] + ([] if args.quick else ['ours-inline']) + ['ours-tissue', 'histomicstk']
    if not args.no_slic:
        fits, why = one_shot_fits(args.slide, args)
        if fits:
            names.append('slic')
        else:
            print(f'skipping one-shot slic on the sample pyramid: {why}', file=sys.stderr)
    return names


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the tables; return (and optionally write) the figures."""
    args = parse_args(argv)
    elapsed = stopwatch()
    with tempfile.TemporaryDirectory(prefix='bench-segments-') as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        measured, chance = compare(args.slide, sample_names(args), 'the sample pyramid', args, work / 'sample',
                                   match=True)
        sample = comparison(args.slide, measured, chance, None)
        rates: dict[str, Rate] = {}
        megapixels = sample['slide']['megapixels']
        update_rates(rates, measured, megapixels, histomicstk_pixels(args.slide, args) / 1e6, 'the sample pyramid')
        points = run_series(args, work, rates) if args.sizes else []
        profiles = profile_ours(args, work / 'profile')
    report = figures(args, sample, points, profiles, memory_bandwidth())
    report['seconds'] = elapsed()
    verdicts = goals(report)
    print_report(report, verdicts)
    print(f"\ntotal {report['seconds']:.0f} s")
    publish(report, args.json, args.report, 'segments',
            lambda directory: section(report, verdicts, plot_scaling(report, directory) if report['series'] else ''),
            verdicts)
    return report


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--child':
        _run_child(sys.argv[2], sys.argv[3])
    else:
        main()
