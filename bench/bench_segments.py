"""Benchmark Histomics Label's tiled SLIC against its peers, all measured in the same run on the same slide.

Contenders (each runs in its own Python subprocess, so its time and memory are its own):

* ``ours``        -- ``TiledSLIC`` (segment source ``'slic'``) on a local dask cluster of ``--workers`` processes,
  writing an h5py raster (256² chunks, gzip) as the pipeline does.
* ``ours-inline`` -- the same without dask (one process), for a per-core comparison; skipped with ``--quick``.
* ``histomicstk`` -- HistomicsTK 1.4.0's ``SuperpixelSegmentation`` CLI: its module's parser built from its XML,
  then ``createSuperPixels``, exactly what its ``__main__`` does (timed without the imports). It has no
  ``--scheduler``: its tiles run one after another in one process.
* ``slic``        -- one-shot ``skimage.segmentation.slic`` on the whole slide read into memory at once, with the
  same tissue mask and superpixel count rule as ours: what tiling would give if memory did not matter.

Same slide, magnification, superpixel size and compactness for all. Histomics Label's ``radius`` r asks SLIC for
(tissue area) / (2r)² superpixels; HistomicsTK's ``superpixelSize`` s asks for (pixels) / s², so s = 2r. HistomicsTK
runs with ``--overlap true`` (seam-free, like ours), ``--slic_zero false`` and the same compactness (the same SLIC
variant as ours) and ``--boundaries false`` (its raster then holds plain ids we can compare).

Measurements, by the parent process:

* wall time of the whole subprocess (interpreter start, imports, slide opening, dask start, segmentation, output
  writing), and the child's own split into import / setup / segment seconds (``segment``: the segmentation call
  alone, after imports and dask start-up, including slide reading and writing the output raster);
* peak RSS two ways: ``os.wait4``'s ``ru_maxrss`` (the largest single process of the contender's process tree; the
  kernel folds in every waited-for descendant, e.g. dask workers) and the largest *sum* of RSS over the process
  tree, sampled every 50 ms with psutil (what the machine must hold at once; shared pages are counted per process,
  so it is an upper bound);
* CPU seconds (user + system) of the tree from ``wait4``;
* segment count, and boundary recall / precision against the one-shot SLIC (when it ran): the share of the
  reference's boundary pixels inside tissue that have a boundary pixel of the contender within ``--tolerance``
  pixels (and the converse).

Run ``python bench/bench_segments.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_MAGNIFICATION = 10.0
QUICK_MAGNIFICATION = 5.0
DEFAULT_RADIUS = 100.0
DEFAULT_COMPACTNESS = 15.0  # the pipeline's default
DEFAULT_TILE_SIZE = 2048  # the pipeline's default
HISTOMICSTK_TILE_SIZE = 4096  # the CLI's default
POLL_S = 0.05
ONE_SHOT_BYTES_PER_PIXEL = 160  # peak RSS of one-shot slic measured at about 140 B per analysis pixel
HISTOMICSTK_CLI = 'histomicstk.cli.SuperpixelSegmentation.SuperpixelSegmentation'


# --------------------------------------------------------------------------------------------------------------
# Children: each contender's own process. They write what only they can know to a JSON file.
# --------------------------------------------------------------------------------------------------------------

def _child_ours(cfg: dict) -> dict:
    """Tiled SLIC into an h5py raster, on a dask cluster (``workers`` > 0) or inline (``workers`` == 0)."""
    start = time.perf_counter()
    import contextlib

    import h5py

    import histomics_label.core.slic  # noqa: F401  (registers 'slic')
    from histomics_label.core.distributed import dask_client
    from histomics_label.core.segments import segment_sources
    from histomics_label.core.slide import SlideReader
    from histomics_label.core.store import RASTER_COMPRESSION

    imported = time.perf_counter()
    slide = SlideReader(cfg['slide'], cfg['magnification'])
    cluster = dask_client(None, cfg['workers']) if cfg['workers'] else contextlib.nullcontext()
    with cluster as client, h5py.File(cfg['raster'], 'w') as h5:
        raster = h5.create_dataset('label_raster', shape=(slide.height, slide.width), dtype=np.uint32,
                                   chunks=(min(256, slide.height), min(256, slide.width)), fillvalue=0,
                                   **RASTER_COMPRESSION)
        source = segment_sources.create('slic', radius=cfg['radius'], compactness=cfg['compactness'],
                                        tile_size=cfg['tile_size'], client=client)
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
                segments=len(table), width=slide.width, height=slide.height)


def _child_slic(cfg: dict) -> dict:
    """One-shot skimage SLIC of the whole slide in memory, with ours' tissue mask and superpixel count rule."""
    start = time.perf_counter()
    from skimage.segmentation import slic

    from histomics_label.core.slic import TiledSLIC
    from histomics_label.core.slide import SlideReader
    from histomics_label.core.tissue import tissue_mask, tissue_threshold

    imported = time.perf_counter()
    slide = SlideReader(cfg['slide'], cfg['magnification'])
    clean = TiledSLIC(radius=cfg['radius']).clean  # the same speck / hole cleanup as ours
    ready = time.perf_counter()
    rgb = slide.region(0, 0, slide.width, slide.height)
    mask = tissue_mask(rgb, tissue_threshold(slide.thumbnail()), clean)
    n_segments = max(1, round(int(np.count_nonzero(mask)) / (2 * cfg['radius']) ** 2))
    labels = slic(rgb, n_segments=n_segments, compactness=cfg['compactness'], mask=mask, start_label=1,
                  channel_axis=-1)
    done = time.perf_counter()
    np.save(cfg['raster'], labels.astype(np.uint32))
    return dict(import_s=imported - start, setup_s=ready - imported, segment_s=done - ready,
                segments=int(len(np.unique(labels[labels > 0]))), width=slide.width, height=slide.height,
                tissue_fraction=float(mask.mean()))


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
    peak_rss_mb: float = 0.0
    peak_tree_rss_mb: float = 0.0
    child: dict = field(default_factory=dict)
    quality: dict = field(default_factory=dict)
    error: str = ''
    load_before: float = 0.0


def _tree_rss(process) -> int:
    """Sum of RSS over a psutil process and its live descendants (processes vanishing meanwhile count 0)."""
    import psutil

    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(name: str, command: list[str], result_path: Path, env: dict) -> Measured:
    """Run ``command``; return its wall time, CPU time and peak RSS (see module doc) with the child's JSON."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched = psutil.Process(proc.pid)
    peak = [0]
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_S):
            peak[0] = max(peak[0], _tree_rss(watched))

    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    poller = threading.Thread(target=poll, daemon=True)
    reader.start()
    poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    stop.set()
    poller.join()
    reader.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    measured = Measured(name, proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                        peak[0] / 2 ** 20)
    if proc.returncode == 0 and result_path.exists():
        measured.child = json.loads(result_path.read_text())
    else:
        measured.error = ''.join(output)[-3000:]
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


def _commands(args: argparse.Namespace, work: Path) -> list[tuple[str, str, dict, Path]]:
    """(name, child kind, config, raster path) of every contender, in running order."""
    common = dict(slide=str(args.slide), magnification=args.magnification, radius=args.radius,
                  compactness=args.compactness)
    runs = [('ours', 'ours', dict(common, workers=args.workers, tile_size=args.tile_size), work / 'ours.h5')]
    if not args.quick:
        runs.append(('ours-inline', 'ours', dict(common, workers=0, tile_size=args.tile_size),
                     work / 'ours-inline.h5'))
    htk_out = work / 'histomicstk.tiff'
    # HistomicsTK asks SLIC for (pixels) / superpixelSize² superpixels and ours for (tissue pixels) / (2 r)², so the
    # same superpixel size is superpixelSize = 2 r. Plain SLIC (not SLIC0) with our compactness, as ours runs it;
    # no boundary marks, so its raster holds plain ids; --overlap unless asked otherwise, seam-free like ours.
    htk_argv = [str(args.slide), str(htk_out), '--magnification', f'{args.magnification:g}',
                '--superpixelSize', str(int(round(2 * args.radius))), '--tileSize', str(args.histomicstk_tile_size),
                '--overlap', 'false' if args.histomicstk_no_overlap else 'true', '--slic_zero', 'false',
                '--compactness', f'{args.compactness:g}', '--boundaries', 'false']
    runs.append(('histomicstk', 'histomicstk', dict(argv=htk_argv), htk_out))
    if not args.no_slic and _one_shot_fits(args):
        runs.append(('slic', 'slic', common, work / 'slic.npy'))
    for name, _kind, cfg, raster in runs:
        cfg['raster'] = str(raster)
        cfg['result'] = str(work / f'{name}.result.json')
    return runs


def _child_env(args: argparse.Namespace) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', str(args.workers)),
                PYTHONUNBUFFERED='1')


def run_one(name: str, kind: str, cfg: dict, work: Path, env: dict) -> Measured:
    """Run one contender's child process and measure it, telling stderr how it went."""
    config_path = work / f'{name}.config.json'
    config_path.write_text(json.dumps(cfg))
    load = os.getloadavg()[0]
    print(f'running {name} (load average {load:.2f}) ...', file=sys.stderr, flush=True)
    result = measure(name, [sys.executable, __file__, '--child', kind, str(config_path)], Path(cfg['result']), env)
    result.load_before = load
    state = f'{result.wall_s:.1f} s' if not result.error else f'FAILED (exit {result.returncode})'
    print(f'  {name}: {state}', file=sys.stderr, flush=True)
    if result.error:
        print(result.error, file=sys.stderr)
    return result


def _one_shot_fits(args: argparse.Namespace) -> bool:
    """Whether one-shot SLIC of the whole slide should fit in the memory available now (else it is skipped)."""
    import psutil

    from histomics_label.core.slide import SlideReader

    slide = SlideReader(str(args.slide), args.magnification)
    need = slide.width * slide.height * ONE_SHOT_BYTES_PER_PIXEL
    available = psutil.virtual_memory().available
    if need > 0.7 * available:
        print(f'skipping one-shot slic: it would need about {need / 2 ** 30:.1f} GiB, '
              f'{available / 2 ** 30:.1f} GiB are available', file=sys.stderr)
        return False
    return True


def run_all(args: argparse.Namespace, work: Path) -> tuple[list[Measured], dict | None]:
    """Run every contender ``--repeat`` times (rounds, one contender after another, each in a fresh subprocess);
    keep each contender's fastest run; score boundaries. Returns the runs and the chance-level boundary scores."""
    env = _child_env(args)
    runs = _commands(args, work)
    best: dict[str, Measured] = {}
    for _ in range(args.repeat):
        for name, kind, cfg, _raster in runs:
            result = run_one(name, kind, cfg, work, env)
            if name not in best or (not result.error and (best[name].error or result.wall_s < best[name].wall_s)):
                best[name] = result
    measured = [best[name] for name, *_ in runs]
    rasters = {name: raster for name, _kind, _cfg, raster in runs}
    reference = load_raster(rasters['slic']) if 'slic' in rasters and not best['slic'].error else None
    chance = None
    if reference is not None:
        for result in measured:
            if result.name != 'slic' and not result.error:
                candidate = load_raster(rasters[result.name])
                if candidate is not None:
                    result.quality = boundary_scores(reference, candidate, args.tolerance)
        # what two unrelated superpixel grids of this size score: the reference against itself moved by (r, r)
        shift = int(round(args.radius))
        chance = boundary_scores(reference, np.roll(reference, (shift, shift), axis=(0, 1)), args.tolerance)
    return measured, chance


def profile_ours(args: argparse.Namespace, work: Path, top: int = 15) -> str:
    """Run ours inline (one process) under cProfile into ``args.profile``; return the top functions by own time."""
    import io
    import pstats

    common = dict(slide=str(args.slide), magnification=args.magnification, radius=args.radius,
                  compactness=args.compactness, workers=0, tile_size=args.tile_size,
                  raster=str(work / 'profile.h5'), result=str(work / 'profile.result.json'),
                  profile=str(args.profile.resolve()))
    result = run_one('ours-profile', 'ours', common, work, _child_env(args))
    if result.error:
        return ''
    text = io.StringIO()
    stats = pstats.Stats(str(args.profile), stream=text)
    stats.sort_stats('tottime').print_stats(top)
    return text.getvalue()


def figures(args: argparse.Namespace, measured: list[Measured], chance: dict | None) -> dict:
    """Everything the run found, as JSON-ready figures, with ours / peer ratios."""
    import psutil

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
    ratios = {}
    for ours in ('ours', 'ours-inline'):
        for peer in ('histomicstk', 'slic'):
            if ours in contenders and peer in contenders:
                ratios[f'{ours}/{peer}'] = _ratios(contenders[ours], contenders[peer])
    tissue = next((m.child.get('tissue_fraction') for m in measured if 'tissue_fraction' in m.child), None)
    return dict(
        date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), memory_gib=round(psutil.virtual_memory().total / 2 ** 30, 1),
                     processor=platform.processor() or platform.machine(), python=platform.python_version(),
                     load_average_end=os.getloadavg()[0]),
        slide=dict(path=str(args.slide), width=size.get('width'), height=size.get('height'),
                   megapixels=megapixels, tissue_fraction=tissue),
        params=dict(magnification=args.magnification, radius=args.radius, histomicstk_superpixel_size=2 * args.radius,
                    compactness=args.compactness, tile_size=args.tile_size, workers=args.workers,
                    histomicstk_tile_size=args.histomicstk_tile_size,
                    histomicstk_overlap=not args.histomicstk_no_overlap, tolerance_px=args.tolerance,
                    repeat=args.repeat),
        contenders=contenders, ratios=ratios, boundary_chance=chance)


def _ratios(ours: dict, peer: dict) -> dict:
    def ratio(key: str) -> float | None:
        return ours[key] / peer[key] if ours[key] and peer[key] else None

    return dict(throughput_wall=ratio('mp_per_s_wall'), throughput_segment=ratio('mp_per_s_segment'),
                throughput_cpu=ratio('mp_per_cpu_s'), peak_rss=ratio('peak_rss_mb'),
                peak_tree_rss=ratio('peak_tree_rss_mb'))


def _fmt(value, spec: str) -> str:
    """``format(value, spec)``, or a dash as wide as ``spec`` asks when there is no value."""
    if value is None:
        width = spec.split('.')[0].rstrip('df')
        return '-'.rjust(int(width) if width.isdigit() else 0)
    return format(value, spec)


def print_table(report: dict) -> None:
    """The figures as plain-text tables on stdout."""
    slide, params, machine = report['slide'], report['params'], report['machine']
    print(f"\nslide {slide['path']}\n  {slide['width']} x {slide['height']} px = {slide['megapixels']:.1f} MP at "
          f"{params['magnification']:g}x, tissue {_fmt(slide['tissue_fraction'], '.0%')}; radius {params['radius']:g}"
          f" (histomicstk superpixelSize {params['histomicstk_superpixel_size']:g}), compactness "
          f"{params['compactness']:g}, our tiles {params['tile_size']} on {params['workers']} workers, histomicstk "
          f"tiles {params['histomicstk_tile_size']}{'' if params['histomicstk_overlap'] else ' without overlap'}; "
          f"{machine['cpus']} CPUs, best of {params['repeat']}\n")
    head = (f"{'contender':<12} {'wall s':>6} {'MP/s':>5} {'seg s':>6} {'MP/s':>5} {'import':>6} {'setup':>5} "
            f"{'cpu s':>6} {'MP/cpu-s':>8} {'RSS MB':>6} {'tree MB':>7} {'segments':>8} {'recall':>6} {'prec.':>5} "
            f"{'load':>4}")
    print(head)
    print('-' * len(head))
    for name, c in report['contenders'].items():
        if c['error']:
            print(f'{name:<12} FAILED (exit {c["returncode"]})')
            continue
        child, quality = c['child'], c['quality']
        print(f"{name:<12} {c['wall_s']:6.1f} {_fmt(c['mp_per_s_wall'], '5.2f')} "
              f"{_fmt(child.get('segment_s'), '6.1f')} {_fmt(c['mp_per_s_segment'], '5.2f')} "
              f"{_fmt(child.get('import_s'), '6.1f')} {_fmt(child.get('setup_s'), '5.1f')} {c['cpu_s']:6.1f} "
              f"{_fmt(c['mp_per_cpu_s'], '8.2f')} {c['peak_rss_mb']:6.0f} {c['peak_tree_rss_mb']:7.0f} "
              f"{_fmt(child.get('segments'), '8d')} {_fmt(quality.get('boundary_recall'), '6.3f')} "
              f"{_fmt(quality.get('boundary_precision'), '5.3f')} {c['load_before']:4.1f}")
    chance = report['boundary_chance']
    if chance:
        label = '(chance)'.ljust(head.index(' recall'))
        print(f"{label} {chance['boundary_recall']:6.3f} {chance['boundary_precision']:5.3f}")
    print('\nratios: throughput ours / peer (> 1: ours faster), memory ours / peer (< 1: ours leaner)')
    head = f"{'':<24} {'MP/s wall':>9} {'MP/s seg':>9} {'MP/cpu-s':>9} {'RSS':>6} {'tree RSS':>8}"
    print(head)
    for pair, r in report['ratios'].items():
        print(f"{pair:<24} {_fmt(r['throughput_wall'], '9.2f')} {_fmt(r['throughput_segment'], '9.2f')} "
              f"{_fmt(r['throughput_cpu'], '9.2f')} {_fmt(r['peak_rss'], '6.2f')} {_fmt(r['peak_tree_rss'], '8.2f')}")
    print(f"""
wall: the whole subprocess (interpreter, imports, dask start, slide reading, segmentation, output writing).
seg: the segmentation call alone (slide reading and output writing included; imports and dask start excluded).
cpu s: user + system CPU of the whole process tree. RSS: largest single process (wait4). tree: largest sum over
the process tree (psutil, every {POLL_S * 1000:.0f} ms). recall / prec.: boundaries against one-shot slic within
{params['tolerance_px']} px; (chance): the one-shot slic against itself shifted by one radius. load: 1-minute load
average when the contender started; other work on the machine slows wall times (cpu s suffers least).""")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--slide', type=Path, help="slide file (default: the project's sample slide)")
    parser.add_argument('--magnification', type=float,
                        help=f'analysis magnification (default {DEFAULT_MAGNIFICATION:g}, {QUICK_MAGNIFICATION:g} '
                             'with --quick)')
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
    parser.add_argument('--quick', action='store_true', help='lower magnification, skip the inline run')
    parser.add_argument('--no-slic', action='store_true', help='skip the one-shot slic (and boundary scores)')
    parser.add_argument('--repeat', type=int, default=1, help='rounds to run; each contender keeps its fastest')
    parser.add_argument('--profile', type=Path,
                        help='also run ours inline under cProfile, save the stats here and print the hot spots')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--keep', type=Path, help='keep the rasters and logs in this folder (default: temp)')
    args = parser.parse_args(argv)
    if args.magnification is None:
        args.magnification = QUICK_MAGNIFICATION if args.quick else DEFAULT_MAGNIFICATION
    if args.slide is None:
        from histomics_label.sample_data import sample_slide

        args.slide = sample_slide()
    args.slide = args.slide.resolve()
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the tables; return (and optionally write) the figures."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='bench-segments-') as temp:
        work = args.keep or Path(temp)
        work.mkdir(parents=True, exist_ok=True)
        report = figures(args, *run_all(args, work))
        hot_spots = profile_ours(args, work) if args.profile else ''
    print_table(report)
    if hot_spots:
        print(f'\nours inline under cProfile (stats in {args.profile}), by own time:\n{hot_spots}')
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == '__main__':
    if len(sys.argv) == 4 and sys.argv[1] == '--child':
        _run_child(sys.argv[2], sys.argv[3])
    else:
        main()
