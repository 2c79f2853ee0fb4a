"""Benchmark every registered acquisition function against random labeling, on real nuclei, by learning curves.

One run builds a segment-classification task from the DSB2018 nuclei image and its real instance mask
(``histomics_label.sample_data.dsb2018()``): the segments are the annotated nuclei plus SLIC superpixels of the
area outside them, each embedded from its masked patch with the project's default extractor
(``efficientnet_lite0``, through ``patches.iter_patches`` on a ``patches.ArraySlide``). The image is split into a
left part (the pool a person would label) and a right part (the test set), so no segment of the test set is ever
in the pool; segments that cross the dividing line are left out of both.

Then, for every name in ``acquisition_functions`` plus a class-stratified random baseline, and for each seed,
pool-based active learning with the ``linear`` model: start from a seeded initial set (``--initial`` labels per
class, the same set for every function of a seed, so the comparison is paired), train, measure the test balanced
accuracy, let the function pick the next ``--batch`` pool segments, reveal their labels, and repeat until
``--budget`` labels. A function's extra inputs (its ``needs``) are given as the application would: ``samples``
(MC posterior samples of the pool, ``model.predict_samples(X, --mc-samples, seed)``), ``embeddings`` /
``features`` (the pool's feature vectors) and ``labeled`` (the boolean mask of labeled pool rows); a function
needing anything else is skipped with a note. A function that says it picks a cold start (``cold_start`` true)
chooses its own initial set instead.

Figures per function (mean ± sd over seeds): labels needed to reach 95 % of the balanced accuracy of the linear
model trained on the whole pool (and how many seeds got there within the budget), and the area under the
learning curve from the initial set to the budget, divided by that width (so the mean balanced accuracy over the
budget, in [0, 1]). Embeddings are cached under ``bench-output/`` keyed by a hash of the data and the extractor.

Run ``python bench/bench_active_learning.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / 'bench-output'
PATCH_SIZE = 48  # the largest DSB2018 nucleus is about 40 px across
BACKGROUND_SEGMENTS = 400  # SLIC superpixels asked for outside the nuclei: about a nucleus' area each
SPLIT_FRACTION = 0.5  # the pool is the left half of the image, the test set the right half
TARGET_FRACTION = 0.95
STRATIFIED = 'stratified_random'


# --------------------------------------------------------------------------------------------------------------
# The task: segments, their embeddings and labels, split into pool and test.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Task:
    """Embedded segments with their labels and the spatial split; ``pool``/``test`` are boolean masks."""

    name: str
    description: str
    class_names: list[str]
    features: np.ndarray
    labels: np.ndarray
    pool: np.ndarray
    test: np.ndarray
    split: str
    segments: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def build_segments(n_background: int) -> tuple[np.ndarray, np.ndarray, object, int]:
    """The grey image (uint8), the segment-id raster, its ``SegmentTable`` and the nucleus count.

    Ids ``1..n_nuclei`` are the annotated nuclei (relabelled contiguously); the rest are SLIC superpixels of the
    area no nucleus covers, so every pixel of the image belongs to exactly one segment.
    """
    from skimage.measure import regionprops
    from skimage.segmentation import relabel_sequential, slic

    from histomics_label.core.segments import SegmentTable
    from histomics_label.sample_data import dsb2018

    image, mask = dsb2018()
    grey = np.clip(image, 0, 255).astype(np.uint8)  # the image's values lie in 0..235
    raster = relabel_sequential(mask)[0].astype(np.uint32)
    n_nuclei = int(raster.max())
    background = slic(grey, n_segments=n_background, compactness=1, mask=raster == 0, start_label=1,
                      channel_axis=None)
    raster[background > 0] = background[background > 0].astype(np.uint32) + n_nuclei
    raster = relabel_sequential(raster)[0].astype(np.uint32)  # nuclei keep 1..n_nuclei (they come first)
    props = regionprops(raster)
    table = SegmentTable(bbox=np.array([[p.bbox[1], p.bbox[0], p.bbox[3], p.bbox[2]] for p in props], np.int64),
                         centroid=np.array([[p.centroid[1], p.centroid[0]] for p in props], np.float64),
                         area=np.array([p.area for p in props], np.int64))
    return grey, raster, table, n_nuclei


def embed(grey: np.ndarray, raster: np.ndarray, table, cache_dir: Path) -> tuple[np.ndarray, dict]:
    """Every segment's ``efficientnet_lite0`` embedding of its masked patch, from the cache when it matches.

    The cache key hashes the image, the raster, the patch size and the extractor's parameters (its weights'
    SHA-256 included), so any change of data or network recomputes. Returns ``(features, info)``.
    """
    from histomics_label.core.extractors import extract_features, extractors
    from histomics_label.core.patches import ArraySlide, iter_patches
    from histomics_label.core.representations import DEFAULT_EXTRACTOR

    extractor = extractors.create(DEFAULT_EXTRACTOR, batch_size=64)
    digest = hashlib.sha256()
    for part in (grey.tobytes(), raster.tobytes(), str(grey.shape).encode(), str(PATCH_SIZE).encode(),
                 json.dumps(extractor.params(), sort_keys=True).encode()):
        digest.update(part)
    key = digest.hexdigest()[:16]
    path = cache_dir / f'active-learning-embeddings-{key}.npz'
    info = {'extractor': DEFAULT_EXTRACTOR, 'patch_size': PATCH_SIZE, 'cache': str(path), 'key': key}
    if path.exists():
        with np.load(path) as stored:
            features = stored['features']
        if features.shape == (len(table), extractor.dim):
            return features, dict(info, cached=True, seconds=0.0)
    started = time.perf_counter()
    batches = iter_patches(ArraySlide(grey), raster, table, PATCH_SIZE, batch_size=64, tile_size=256)
    features = extract_features(extractor, batches, len(table))
    seconds = time.perf_counter() - started
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix('.tmp.npz')
    np.savez_compressed(temp, features=features)
    os.replace(temp, path)
    return features, dict(info, cached=False, seconds=seconds)


def build_task(kind: str, n_background: int, cache_dir: Path) -> Task:
    """The ``binary`` (nucleus / background) or ``sizes`` (background / small / large nucleus) task.

    ``sizes`` splits the nuclei at their median area, so both nucleus classes have the same number of members and
    telling them apart needs the shape the embedding saw, not only "is there a bright blob".
    """
    grey, raster, table, n_nuclei = build_segments(n_background)
    features, embedding = embed(grey, raster, table, cache_dir)
    nucleus = table.ids <= n_nuclei
    area = np.asarray(table.area)
    if kind == 'binary':
        labels = nucleus.astype(np.int64)
        class_names = ['background', 'nucleus']
        description = 'binary: nucleus vs background superpixel'
    else:
        median = float(np.median(area[nucleus]))
        labels = np.where(nucleus, np.where(area <= median, 1, 2), 0).astype(np.int64)
        class_names = ['background', 'small nucleus', 'large nucleus']
        description = (f'3-class: background superpixel / small nucleus (area <= {median:.0f} px, the nuclei\'s '
                       f'median) / large nucleus')
    middle = SPLIT_FRACTION * grey.shape[1]
    bbox = np.asarray(table.bbox)
    pool = bbox[:, 2] <= middle  # x1 is exclusive: every pixel left of the line
    test = bbox[:, 0] >= middle
    dropped = int(len(table) - pool.sum() - test.sum())
    split = (f'pool = segments wholly left of x = {middle:.0f} ({pool.sum()}), test = wholly right of it '
             f'({test.sum()}); {dropped} segments crossing the line are in neither')
    segments = dict(total=len(table), nuclei=n_nuclei, background=len(table) - n_nuclei,
                    image=f'{grey.shape[1]} x {grey.shape[0]}', dropped=dropped, embedding=embedding,
                    pool_class_counts=np.bincount(labels[pool], minlength=len(class_names)).tolist(),
                    test_class_counts=np.bincount(labels[test], minlength=len(class_names)).tolist())
    return Task(kind, description, class_names, features, labels, pool, test, split, segments)


# --------------------------------------------------------------------------------------------------------------
# Active learning.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Strategy:
    """One contender: a registry acquisition function (``function``) or the stratified random baseline (None)."""

    name: str
    function: object | None
    needs: tuple[str, ...] = ()
    cold_start: bool = False


MODEL_FREE_NEEDS = {'embeddings', 'features', 'labeled', 'labeled_mask'}
CONTEXT_NEEDS = MODEL_FREE_NEEDS | {'samples'}


def strategies(only: list[str] | None) -> tuple[list[Strategy], list[str]]:
    """Every registered acquisition function we can feed, plus stratified random; and notes on those skipped."""
    from histomics_label.core.acquisition import acquisition_functions

    found, notes = [], []
    for name in acquisition_functions.names():
        if only and name not in only:
            continue
        try:
            function = acquisition_functions.create(name)
        except Exception as exc:  # a constructor that needs options we do not know
            notes.append(f'{name}: skipped, cannot be created without options ({exc})')
            continue
        needs = tuple(getattr(function, 'needs', ()) or ())
        missing = [need for need in needs if need not in CONTEXT_NEEDS]
        if missing:
            notes.append(f'{name}: skipped, needs {", ".join(missing)} which this harness cannot provide')
            continue
        # A cold start has no model yet, so it can only use the model-free inputs.
        cold = bool(getattr(function, 'cold_start', False)) and set(needs) <= MODEL_FREE_NEEDS
        found.append(Strategy(name, function, needs, cold))
    if not only or STRATIFIED in only:
        found.append(Strategy(STRATIFIED, None))
    return found, notes


def balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``truth`` (chance = 1 / K)."""
    return float(np.mean([(predicted[truth == c] == c).mean() for c in np.unique(truth)]))


def initial_set(labels: np.ndarray, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` seeded random pool rows of each class: the same start for every function of a seed."""
    rng = np.random.default_rng([seed, 1])
    picks = [rng.choice(np.flatnonzero(labels == c), size=min(per_class, int((labels == c).sum())), replace=False)
             for c in range(n_classes)]
    return np.concatenate(picks).astype(np.int64)


def stratified_picks(labels: np.ndarray, labeled: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random unlabeled rows, each time from the class with the fewest labels so far (an oracle baseline).

    It knows the labels it has not been given, which no real acquisition function does: it is what perfectly
    class-balanced random labeling would reach.
    """
    labeled = labeled.copy()
    n_classes = int(labels.max()) + 1
    picks = []
    for _ in range(n):
        counts = np.bincount(labels[labeled], minlength=n_classes).astype(np.float64)
        available = [c for c in range(n_classes) if np.any(~labeled & (labels == c))]
        if not available:
            break
        target = min(available, key=lambda c: (counts[c], c))
        row = int(rng.choice(np.flatnonzero(~labeled & (labels == target))))
        labeled[row] = True
        picks.append(row)
    return np.array(picks, np.int64)


def fit(features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int):
    """The ``linear`` model trained on the labeled rows, or None when they hold fewer than two classes."""
    from histomics_label.core.models import models

    if len(np.unique(labels)) < 2:
        return None
    return models.create('linear', seed=seed).fit(features, labels, n_classes)


def context_for(strategy: Strategy, model, features: np.ndarray, labeled: np.ndarray, mc_samples: int,
                seed: int) -> dict:
    """The keyword arguments a function's ``needs`` ask for, computed only when asked."""
    context = {}
    for need in strategy.needs:
        if need == 'samples':
            context[need] = model.predict_samples(features, mc_samples, seed)
        elif need in ('embeddings', 'features'):
            context[need] = features
        elif need in ('labeled', 'labeled_mask'):
            context[need] = labeled.copy()
    return context


def run_one(strategy: Strategy, task: Task, seed: int, args: argparse.Namespace) -> dict:
    """One active-learning run: ``{'labels': [...], 'balanced_accuracy': [...], ...}`` after each batch."""
    X, y = task.features[task.pool], task.labels[task.pool]
    X_test, y_test = task.features[task.test], task.labels[task.test]
    n_initial = args.initial * task.n_classes
    labeled = np.zeros(len(y), bool)
    rng = np.random.default_rng([seed, 2])
    chance = 1.0 / task.n_classes
    notes: list[str] = []
    acquire_s = 0.0
    if strategy.cold_start:
        started = time.perf_counter()
        context = context_for(strategy, None, X, labeled, args.mc_samples, seed)
        uniform = np.full((len(y), task.n_classes), chance)
        labeled[strategy.function.rank(uniform, ~labeled, n_initial, seed=seed, **context)] = True
        acquire_s += time.perf_counter() - started
    else:
        labeled[initial_set(y, task.n_classes, args.initial, seed)] = True
    counts, scores = [], []
    step = 0
    fit_s = 0.0
    while True:
        started = time.perf_counter()
        model = fit(X[labeled], y[labeled], task.n_classes, seed)
        fit_s += time.perf_counter() - started
        score = chance if model is None else balanced_accuracy(model.predict_proba(X_test).argmax(axis=1), y_test)
        counts.append(int(labeled.sum()))
        scores.append(score)
        if labeled.sum() >= min(args.budget, len(y)):
            break
        n = min(args.batch, args.budget - int(labeled.sum()), int((~labeled).sum()))
        step += 1
        started = time.perf_counter()
        if strategy.function is None:
            picks = stratified_picks(y, labeled, n, rng)
        elif model is None and strategy.needs and set(strategy.needs) <= MODEL_FREE_NEEDS:
            uniform = np.full((len(y), task.n_classes), chance)  # model-free functions still choose
            context = context_for(strategy, None, X, labeled, args.mc_samples, seed)
            picks = strategy.function.rank(uniform, ~labeled, n, seed=seed * 1000 + step, **context)
        elif model is None:
            picks = rng.choice(np.flatnonzero(~labeled), size=n, replace=False)
            notes.append(f'{counts[-1]} labels hold one class: random picks')
        else:
            context = context_for(strategy, model, X, labeled, args.mc_samples, seed * 1000 + step)
            picks = strategy.function.rank(model.predict_proba(X), ~labeled, n, seed=seed * 1000 + step, **context)
        acquire_s += time.perf_counter() - started
        picks = np.asarray(picks, np.int64)
        if len(picks) == 0 or labeled[picks].any():
            raise RuntimeError(f'{strategy.name} picked {len(picks)} rows, some already labeled')
        labeled[picks] = True
    return dict(seed=seed, labels=counts, balanced_accuracy=scores, fit_s=fit_s, acquire_s=acquire_s,
                pool_class_counts=np.bincount(y[labeled], minlength=task.n_classes).tolist(), notes=notes)


def reference(task: Task, seeds: list[int]) -> dict:
    """Test balanced accuracy of the linear model trained on every pool label, per seed, and its mean."""
    X, y = task.features[task.pool], task.labels[task.pool]
    X_test, y_test = task.features[task.test], task.labels[task.test]
    scores = [balanced_accuracy(fit(X, y, task.n_classes, seed).predict_proba(X_test).argmax(axis=1), y_test)
              for seed in seeds]
    return dict(per_seed=scores, mean=float(np.mean(scores)), pool_labels=int(len(y)))


# --------------------------------------------------------------------------------------------------------------
# Figures.
# --------------------------------------------------------------------------------------------------------------

def labels_to_reach(counts: list[int], scores: list[float], target: float) -> int | None:
    """The first label count whose balanced accuracy is at least ``target``, or None within the budget."""
    for count, score in zip(counts, scores, strict=True):
        if score >= target:
            return count
    return None


def area_under_curve(counts: list[int], scores: list[float]) -> float:
    """Trapezoidal area under balanced accuracy vs labels, divided by the label range: the mean accuracy."""
    x, y = np.asarray(counts, np.float64), np.asarray(scores, np.float64)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2 / (x[-1] - x[0]))


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarise(runs: dict[str, list[dict]], target: float) -> dict:
    """Per strategy: labels to target (over the seeds that got there), AULC, and AULC minus random's per seed."""
    summary = {}
    baseline = {run['seed']: area_under_curve(run['labels'], run['balanced_accuracy'])
                for run in runs.get('random', [])}
    for name, seeds in runs.items():
        reached = [labels_to_reach(r['labels'], r['balanced_accuracy'], target) for r in seeds]
        got = [value for value in reached if value is not None]
        areas = [area_under_curve(r['labels'], r['balanced_accuracy']) for r in seeds]
        paired = [area - baseline[r['seed']] for area, r in zip(areas, seeds, strict=True) if r['seed'] in baseline]
        final = [r['balanced_accuracy'][-1] for r in seeds]
        summary[name] = dict(labels_to_target=reached, labels_to_target_mean_sd=_mean_sd(got),
                             seeds_reached=len(got), seeds=len(seeds), aulc=areas, aulc_mean_sd=_mean_sd(areas),
                             aulc_minus_random_mean_sd=_mean_sd(paired) if name != 'random' else (None, None),
                             final_mean_sd=_mean_sd(final),
                             seconds=float(sum(r['fit_s'] + r['acquire_s'] for r in seeds)),
                             acquire_s=float(sum(r['acquire_s'] for r in seeds)))
    by_area = max(summary, key=lambda n: summary[n]['aulc_mean_sd'][0])
    by_labels = min(summary, key=lambda n: (-summary[n]['seeds_reached'],
                                             summary[n]['labels_to_target_mean_sd'][0] or float('inf')))
    for name, figures in summary.items():
        figures['best_aulc'] = name == by_area
        figures['best_labels'] = name == by_labels and summary[name]['seeds_reached'] > 0
    return summary


def _fmt(pair: tuple[float | None, float | None], spec: str, width: int) -> str:
    """``mean ± sd`` right-aligned in ``width`` (the sd without a sign), or a dash when there is no value."""
    mean, sd = pair
    if mean is None:
        return '-'.rjust(width)
    return f'{format(mean, spec)} ± {format(sd, spec.lstrip("+"))}'.rjust(width)


def print_report(report: dict) -> None:
    """The figures as a plain-text table on stdout."""
    task, params, ref = report['task'], report['params'], report['reference']
    print(f"\ntask: {task['description']}\n  why: {task['why']}\n  segments: {task['segments']['nuclei']} "
          f"annotated nuclei + {task['segments']['background']} SLIC background superpixels of the "
          f"{task['segments']['image']} px image, patches {PATCH_SIZE} px, {task['segments']['embedding']['extractor']}"
          f" embeddings ({'cached' if task['segments']['embedding']['cached'] else 'computed'})\n  split: "
          f"{task['split']}\n  pool classes {task['segments']['pool_class_counts']}, test classes "
          f"{task['segments']['test_class_counts']} ({', '.join(task['class_names'])})")
    print(f"  linear model on the whole pool ({ref['pool_labels']} labels): test balanced accuracy {ref['mean']:.3f}"
          f" (seeds {', '.join(f'{s:.3f}' for s in ref['per_seed'])}); target {TARGET_FRACTION:.0%} of it = "
          f"{report['target']:.3f}")
    print(f"  {params['seeds']} seeds; start {params['initial']} per class ({params['initial_labels']} labels), "
          f"batches of {params['batch']}, budget {params['budget']}; {params['mc_samples']} MC samples where needed")
    for note in report['notes']:
        print(f'  note: {note}')
    head = (f"\n{'function':<20} {'labels to target':>16} {'reached':>7} {'AULC':>13} {'AULC - random':>15} "
            f"{'final BA':>13} {'time s':>7}")
    print(head)
    print('-' * (len(head) - 1))
    for name, s in sorted(report['summary'].items(), key=lambda item: -item[1]['aulc_mean_sd'][0]):
        labels = _fmt(s['labels_to_target_mean_sd'], '.1f', 14) + (' *' if s['best_labels'] else '  ')
        area = _fmt(s['aulc_mean_sd'], '.3f', 13) + ('*' if s['best_aulc'] else ' ')
        print(f"{name:<20} {labels} {s['seeds_reached']:>3}/{s['seeds']:<3} {area:>14}"
              f"{_fmt(s['aulc_minus_random_mean_sd'], '+.3f', 15)} {_fmt(s['final_mean_sd'], '.3f', 13)} "
              f"{s['seconds']:7.1f}")
    print(f"""
labels to target: labels at the first batch whose test balanced accuracy reached {TARGET_FRACTION:.0%} of the
whole-pool model's (mean ± sd over the seeds that reached it within the budget; 'reached': how many did).
AULC: area under test balanced accuracy vs labels from the initial set to the budget, divided by that range
(the mean balanced accuracy over the budget; 1 is perfect). AULC - random: paired by seed (same initial set).
final BA: at the budget. time s: training + acquisition over all seeds. *: best. {STRATIFIED} knows every
pool label (it keeps the classes balanced), so it is an oracle baseline, not something a person could run.""")


def plot(report: dict, path: Path) -> None:
    """Mean ± sd learning curves of every strategy, with the whole-pool accuracy and the target, as a PNG."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 5.5))
    order = sorted(report['summary'], key=lambda n: -report['summary'][n]['aulc_mean_sd'][0])
    for name in order:
        runs = report['runs'][name]
        counts = np.asarray(runs[0]['labels'])
        curves = np.array([r['balanced_accuracy'] for r in runs if r['labels'] == runs[0]['labels']])
        mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1) if len(curves) > 1 else 0 * curves[0]
        style = '--' if name in ('random', STRATIFIED) else '-'
        line, = axes.plot(counts, mean, style, label=f"{name} (AULC {report['summary'][name]['aulc_mean_sd'][0]:.3f})")
        axes.fill_between(counts, mean - sd, mean + sd, color=line.get_color(), alpha=0.12)
    axes.axhline(report['reference']['mean'], color='black', linewidth=0.8, label='whole pool')
    axes.axhline(report['target'], color='grey', linewidth=0.8, linestyle=':',
                 label=f'{TARGET_FRACTION:.0%} of whole pool')
    axes.set_xlabel('labeled segments')
    axes.set_ylabel('test balanced accuracy')
    extractor = report['task']['segments']['embedding']['extractor']
    axes.set_title(f"{report['task']['name']} task, linear model on {extractor}, mean ± sd over "
                   f"{report['params']['seeds']} seeds")
    axes.legend(fontsize=8, loc='lower right')
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def binary_saturation(cache_dir: Path, args: argparse.Namespace, seeds: list[int]) -> dict:
    """Random labeling on the binary task, up to the budget: how soon it saturates (the reason for 3 classes)."""
    from histomics_label.core.acquisition import acquisition_functions

    task = build_task('binary', args.background_segments, cache_dir)
    target = TARGET_FRACTION * reference(task, seeds)['mean']
    random = Strategy('random', acquisition_functions.create('random'))
    runs = [run_one(random, task, seed, args) for seed in seeds]
    reached = [labels_to_reach(r['labels'], r['balanced_accuracy'], target) for r in runs]
    got = [value for value in reached if value is not None]
    return dict(target=target, labels_to_target=reached, labels_to_target_mean=float(np.mean(got)) if got else None,
                seeds_reached=len(got), initial_mean=float(np.mean([r['balanced_accuracy'][0] for r in runs])),
                initial_labels=2 * args.initial)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--task', choices=('sizes', 'binary'), default='sizes',
                        help='sizes: background / small / large nucleus (default); binary: nucleus / background')
    parser.add_argument('--seeds', type=int, help='seeds per function (default 5; 2 with --quick)')
    parser.add_argument('--budget', type=int, help='labels to stop at (default 100; 40 with --quick)')
    parser.add_argument('--batch', type=int, default=4, help='labels acquired per round')
    parser.add_argument('--initial', type=int, default=2, help='initial labels per class')
    parser.add_argument('--mc-samples', type=int, default=20, help='posterior samples for functions that need them')
    parser.add_argument('--background-segments', type=int, default=BACKGROUND_SEGMENTS,
                        help='SLIC superpixels asked for outside the nuclei')
    parser.add_argument('--functions', nargs='+', help=f'only these acquisition functions (and {STRATIFIED})')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads while learning (default 1: the tensors are small and, on a busy 2-core '
                             'machine, parallel regions wait for scheduler slices)')
    parser.add_argument('--quick', action='store_true', help='2 seeds, budget 40')
    parser.add_argument('--cache', type=Path, default=DEFAULT_CACHE, help='folder of the embedding cache')
    parser.add_argument('--json', type=Path, help='write every curve and figure to this JSON file')
    parser.add_argument('--plot', type=Path, help='write a PNG of the mean ± sd learning curves here')
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (2 if args.quick else 5)
    args.budget = args.budget or (40 if args.quick else 100)
    return args


def main(argv: list[str] | None = None) -> dict:
    """Build the task, run every strategy for every seed, print the table; return (and write) the figures."""
    args = parse_args(argv)
    started = time.perf_counter()
    seeds = list(range(args.seeds))
    task = build_task(args.task, args.background_segments, args.cache)
    import torch

    torch.set_num_threads(args.threads)  # after the embeddings, which are cached or computed on every core
    if args.task == 'sizes':
        saturation = binary_saturation(args.cache, args, seeds)
        mean = saturation['labels_to_target_mean']
        why = (f"on the binary task (nucleus / background) random labeling already reaches {TARGET_FRACTION:.0%} of "
               f"the whole-pool accuracy ({saturation['target'] / TARGET_FRACTION:.3f}) after "
               f"{'-' if mean is None else f'{mean:.0f}'} labels on average ({saturation['seeds_reached']}/"
               f"{len(seeds)} seeds within {args.budget}; {saturation['initial_mean']:.3f} from its "
               f"{saturation['initial_labels']} initial labels), too soon for acquisition functions to differ; "
               'telling small from large nuclei needs the shape in the embedding, and the classes are imbalanced')
    else:
        saturation = None
        why = 'asked for with --task binary'
    ref = reference(task, seeds)
    target = TARGET_FRACTION * ref['mean']
    contenders, notes = strategies(args.functions)
    runs: dict[str, list[dict]] = {}
    for strategy in contenders:
        runs[strategy.name] = [run_one(strategy, task, seed, args) for seed in seeds]
        for run in runs[strategy.name]:
            notes.extend(f'{strategy.name} seed {run["seed"]}: {note}' for note in dict.fromkeys(run['notes']))
        print(f'{strategy.name}: done ({sum(r["fit_s"] + r["acquire_s"] for r in runs[strategy.name]):.1f} s)',
              file=sys.stderr)
    report = dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                     load_average=os.getloadavg()),
        params=dict(seeds=args.seeds, budget=args.budget, batch=args.batch, initial=args.initial,
                    initial_labels=args.initial * task.n_classes, mc_samples=args.mc_samples, model='linear',
                    background_segments=args.background_segments, quick=args.quick, threads=args.threads),
        task=dict(name=task.name, description=task.description, why=why, class_names=task.class_names,
                  split=task.split, segments=task.segments, binary_saturation=saturation),
        reference=ref, target=target, notes=notes,
        functions={s.name: dict(needs=list(s.needs), cold_start=s.cold_start) for s in contenders},
        summary=summarise(runs, target), runs=runs)
    report['seconds'] = time.perf_counter() - started
    print_report(report)
    print(f"\ntotal {report['seconds']:.0f} s on {os.cpu_count()} CPUs (load average at the end "
          f"{os.getloadavg()[0]:.1f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    if args.plot:
        plot(report, args.plot)
    return report


if __name__ == '__main__':
    main()
