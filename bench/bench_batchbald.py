"""Benchmark Histomics Label's BatchBALD against ``batchbald_redux`` on identical Monte-Carlo posterior samples.

Both choose a batch of ``--batch`` (32) candidates greedily maximising the joint mutual information between the
batch's labels and the model parameters, from the same ``(S, N, C)`` samples (``--mc-samples`` 20):

* ``ours``   -- the ``'batchbald'`` acquisition function of ``histomics_label.core.acquisition.base`` (its ``rank``
  with ``samples=``), or ``histomics_label.core.acquisition.batchbald.batchbald`` when the registry has none yet;
* ``theirs`` -- ``batchbald_redux.batchbald.get_batchbald_batch(log_probs_N_K_C, batch_size, num_samples,
  dtype=torch.double, device='cpu')``, given the same samples as an ``(N, S, C)`` double tensor of log
  probabilities (the transposition and logarithm are done before timing).

Both enumerate the chosen labels' joint configurations exactly while there are at most ``M`` of them and then draw
``M`` configurations, ``M / S`` from each posterior sample: redux's ``num_samples`` and our
``num_configurations`` mean the same, and both get ``--configurations`` (10,000, redux's README example).

The samples come from a real model: the ``linear`` model trained on ``--labels`` labeled pool segments of
bench_active_learning.py's 3-class DSB2018 task, its MC-dropout ``predict_samples`` over every segment, tiled to
the candidate count with a seeded logit jitter per (row, class) so that no two candidates are identical (ties would
make the overlap meaningless). ``--source dirichlet`` draws seeded Dirichlet samples instead.

Figures per candidate count: seconds of each (the selection call alone), theirs / ours, the overlap of the picks
(|ours ∩ theirs| / batch), whether the picks both make with exact joint entropies before the samples saturate
agree in order (past saturation ours ranks by a pairwise bound, see ``batchbald.py``, and redux by noise), how many
picks of each are jittered copies of a segment already in its batch (near-duplicates), ours against itself with
other seeds (how much the sampled configurations alone move the picks), and each batch's joint mutual information
under one common Monte-Carlo estimate from ``--reference-samples`` (2,000) fresh posterior samples of the same
model, far from the selection's ln S ceiling (which batch is better, whoever picked it). A pilot run
(``--pilot`` candidates) predicts the times of the first size: theirs, whose time is linear in N (it evaluates every
candidate at every step), is skipped where its time extrapolated from the previous size would exceed ``--limit``
seconds, and the prediction printed; ours, which prunes candidates by an upper bound, only after a size that
already took longer than the limit.

``--report DIR`` also writes the benchmarks page's section (``bench/report.py``): ``DIR/batchbald.md``, ``.json``
and ``.goals.json`` with the issue's goals (ours ≥ 3× faster, the same unsaturated picks, no near-duplicates)
judged on this run.

Run ``python bench/bench_batchbald.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from measure import Timer, best_of, stopwatch
from report import print_total, publish

os.environ.setdefault('TQDM_DISABLE', '1')  # redux draws progress bars on every call; they would time too

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))  # report.py and bench_active_learning.py, also when imported from elsewhere

NAME = 'batchbald'  # the report's section name (bench/run_all.py)
DEFAULT_SIZES = (2_000, 10_000, 100_000)
FULL_SIZES = (2_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000,)
DEFAULT_PILOT, QUICK_PILOT = 1_000, 200
DEFAULT_LIMIT_S = 400.0  # redux at 10,000 candidates takes about 260 s here: the picks are judged there too
JITTER = 0.1  # sd of the logit jitter that makes tiled copies distinct
FLOOR = 1e-12  # smallest probability given to both: redux takes logarithms
GOAL_RATIO = 3.0  # the issue: ours at least this many times faster than the peer, with the same picks

Ours = Callable[[np.ndarray, int, int], object]  # -> batchbald.BatchSelection


# --------------------------------------------------------------------------------------------------------------
# The samples.
# --------------------------------------------------------------------------------------------------------------

def real_inputs(n_labels: int, n_samples: int, cache: Path, seed: int,
                reference: int = 0) -> tuple[np.ndarray, np.ndarray, str, np.ndarray]:
    """Real embeddings ``(n, D)`` of every DSB2018 segment, the linear model's MC-dropout samples ``(S, n, C)``
    of them (float64), a description, and ``reference`` further samples of the same model drawn with another seed
    (``(reference, n, C)``, to judge a batch's information with a posterior far from saturation).

    The model is trained on ``n_labels`` labeled pool segments of bench_active_learning.py's 3-class task
    (the same seeded initial set, topped up at random). Row ``i`` of both arrays is the same segment.
    """
    from bench_active_learning import BACKGROUND_SEGMENTS, build_dsb_task, initial_set

    from histomics_label.core.models import models

    task = build_dsb_task('sizes', BACKGROUND_SEGMENTS, cache)
    X, y = task.features[task.pool], task.labels[task.pool]
    rng = np.random.default_rng(seed)
    rows = initial_set(y, task.n_classes, 2, seed)
    rest = rng.permutation(np.setdiff1d(np.arange(len(y)), rows))
    rows = np.concatenate([rows, rest[:max(0, n_labels - len(rows))]])
    model = models.create('linear', seed=seed).fit(X[rows], y[rows], task.n_classes)
    samples = model.predict_samples(task.features, n_samples, seed)
    description = (f"linear model trained on {len(rows)} labeled pool segments of the 3-class DSB2018 task "
                   f"({', '.join(task.class_names)}), MC-dropout samples of all {task.features.shape[0]} segments' "
                   f"{task.segments['embedding']['extractor']} embeddings, tiled with a seeded logit jitter "
                   f"(sd {JITTER})")
    more = model.predict_samples(task.features, reference, seed + 1) if reference else samples[:0]
    return task.features, samples.astype(np.float64), description, more.astype(np.float64)


def dirichlet_samples(n: int, n_samples: int, n_classes: int, seed: int) -> tuple[np.ndarray, str]:
    """Seeded Dirichlet samples: a mean per row from Dirichlet(1), each sample Dirichlet(10 · mean)."""
    rng = np.random.default_rng(seed)
    means = rng.dirichlet(np.ones(n_classes), size=n)
    samples = np.stack([np.stack([rng.dirichlet(10 * m + 1e-3) for m in means]) for _ in range(n_samples)])
    return samples, f'seeded Dirichlet: row means ~ Dir(1), samples ~ Dir(10 x mean), {n_classes} classes'


def source_rows(n: int, n_base: int) -> np.ndarray:
    """Which base row each of ``n`` tiled rows copies: ``0, 1, …, n_base − 1, 0, 1, …``."""
    return np.arange(n) % n_base


def tile(base: np.ndarray, n: int, seed: int, rows: np.ndarray | None = None) -> np.ndarray:
    """``base`` ``(S, n0, C)`` repeated to ``n`` rows, each row's logits shifted by a seeded per-class jitter
    (only the ``rows`` given, when given: the same values as those rows of the whole).

    The same jitter applies to every sample of a row, so the spread between samples (what BatchBALD measures)
    is the model's; only the row's mean moves a little. Probabilities are floored at ``FLOOR`` and renormalised.
    """
    rng = np.random.default_rng([seed, n])
    jitter = JITTER * rng.standard_normal((1, n, base.shape[2]))
    rows = np.arange(n) if rows is None else np.asarray(rows)
    logits = np.log(np.clip(base[:, source_rows(n, base.shape[1])[rows], :], FLOOR, 1.0)) + jitter[:, rows]
    logits -= logits.max(axis=2, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=2, keepdims=True)
    probabilities = np.clip(probabilities, FLOOR, 1.0)
    return probabilities / probabilities.sum(axis=2, keepdims=True)


# --------------------------------------------------------------------------------------------------------------
# The contenders.
# --------------------------------------------------------------------------------------------------------------

def make_ours(configurations: int) -> tuple[Ours, str]:
    """A callable ``(samples, batch, seed) -> BatchSelection`` for our BatchBALD (its picks and how many of them
    were made before the samples saturated), and how it is reached."""
    from histomics_label.core.acquisition.batchbald import batchbald

    def ours(samples: np.ndarray, batch: int, seed: int):
        return batchbald(samples, batch, num_configurations=configurations, seed=seed)
    return ours, f'histomics_label.core.acquisition.batchbald.batchbald(num_configurations={configurations})'


def theirs(log_probs, batch: int, configurations: int, seed: int) -> np.ndarray:
    """redux's greedy BatchBALD on ``(N, S, C)`` log probabilities; torch's generator seeded for its sampling."""
    import torch
    from batchbald_redux.batchbald import get_batchbald_batch

    torch.manual_seed(seed)
    chosen = get_batchbald_batch(log_probs, batch, configurations, dtype=torch.double, device='cpu')
    return np.asarray(chosen.indices, np.int64)


def joint_information(samples: np.ndarray, rows: np.ndarray, draws: int, seed: int) -> float:
    """``I(y_rows; ω)`` in nats by one common Monte-Carlo estimate, for comparing two batches fairly.

    ``H(y_A)`` is estimated from ``draws`` configurations drawn from the posterior mixture (a sample, then each
    label from it) as ``−mean log p(y_A)`` with ``p(y_A) = mean_s Π p_s(y_i)``; the conditional part
    ``Σ_i E_s H(p_s(y_i))`` is exact.
    """
    probabilities = samples[:, rows, :]  # (S, k, C)
    n_samples = probabilities.shape[0]
    rng = np.random.default_rng(seed)
    which = rng.integers(0, n_samples, draws)
    cumulative = np.cumsum(probabilities[which], axis=2)  # (draws, k, C)
    labels = (rng.random((draws, len(rows), 1)) >= cumulative / cumulative[:, :, -1:]).sum(axis=2)
    labels = labels.clip(max=probabilities.shape[2] - 1)
    logs = np.log(np.clip(probabilities, FLOOR, 1.0))  # (S, k, C)
    log_mixture = np.empty(draws)
    step = max(1, (1 << 24) // (n_samples * len(rows)))  # draws per block of at most 16M (S, draws, k) values
    for start in range(0, draws, step):
        part = labels[start:start + step]
        per_sample = logs[:, np.arange(len(rows))[None, :], part].sum(axis=2)  # (S, draws in this block)
        top = per_sample.max(axis=0)
        log_mixture[start:start + len(part)] = top + np.log(np.exp(per_sample - top).mean(axis=0))
    joint = -log_mixture.mean()
    conditional = -(probabilities * logs).sum(axis=2).mean(axis=0).sum()
    return float(joint - conditional)


def exact_picks(n_classes: int, configurations: int, batch: int) -> int:
    """How many picks are made with exact joint entropies: pick i (from 1) is exact while C^(i−1) ≤ M."""
    count = 0
    while count < batch and n_classes ** count <= configurations:
        count += 1
    return count


def overlap(a: np.ndarray, b: np.ndarray, batch: int) -> float:
    """``|a ∩ b| / batch``."""
    return len(set(a.tolist()) & set(b.tolist())) / batch


def run_theirs(samples: np.ndarray, args: argparse.Namespace, row: dict) -> np.ndarray:
    """Redux on ``samples`` (log and transpose done untimed), its best time of ``--repeat`` in ``row``; its picks."""
    import torch

    with Timer() as prepare:
        log_probs = torch.from_numpy(np.ascontiguousarray(np.log(samples).transpose(1, 0, 2)))
    row['theirs_prepare_s'] = prepare.seconds
    row['theirs_s'], picks = best_of(args.repeat, theirs, log_probs, args.batch, args.configurations, args.seed)
    return picks


def warm_up(base: np.ndarray, args: argparse.Namespace, ours: Ours) -> None:
    """One small untimed selection by each, so that no timed run pays the one-off costs of a first call (imports,
    torch's first dispatch of each kernel), which a running server pays once, not per selection."""
    import torch

    samples = tile(base, 64, args.seed)
    ours(samples, 4, args.seed)
    theirs(torch.from_numpy(np.ascontiguousarray(np.log(samples).transpose(1, 0, 2))), 4, args.configurations,
           args.seed)


def noise_overlaps(samples: np.ndarray, picks: np.ndarray, args: argparse.Namespace, ours: Ours,
                   seeds: int) -> list[float]:
    """Overlap of ours (seed ``--seed``) with ours under each of ``seeds`` other seeds: the sampling's own effect."""
    return [overlap(picks, ours(samples, args.batch, args.seed + k).rows, args.batch) for k in range(1, seeds + 1)]


def near_duplicates(rows: np.ndarray, n: int, n_base: int) -> int:
    """How many picks copy the same base row (``source_rows``) as an earlier pick: jittered near-duplicates."""
    sources = source_rows(n, n_base)[rows]
    return len(sources) - len(set(sources.tolist()))


def run_size(n: int, base: np.ndarray, reference: np.ndarray, args: argparse.Namespace, ours: Ours,
             predicted: dict) -> dict:
    """Both contenders (unless predicted too slow) on ``n`` candidates; figures for the table. ``reference``
    ``(S', n0, C)`` are many more posterior samples of the base rows, which judge each batch's information."""
    samples = tile(base, n, args.seed) if base.shape[1] != n else base
    n_classes = samples.shape[2]
    row: dict = dict(candidates=n, classes=n_classes, exact_picks=exact_picks(n_classes, args.configurations,
                                                                             args.batch))
    picks = {}
    if predicted.get('ours', 0) > args.limit:
        row['ours_skipped_predicted_s'] = predicted['ours']
    else:
        row['ours_s'], selection = best_of(args.repeat, ours, samples, args.batch, args.seed)
        picks['ours'] = selection.rows
        row['joint_picks'] = selection.joint_picks
    if predicted.get('theirs', 0) > args.limit:
        row['theirs_skipped_predicted_s'] = predicted['theirs']
    else:
        picks['theirs'] = run_theirs(samples, args, row)
    if 'ours' in picks:
        # Where both ran the noise decides the "same picks" verdict, so it gets several seeds; elsewhere one, and
        # only where ours is cheap.
        seeds = args.noise_seeds if 'theirs' in picks else int(row['ours_s'] <= args.limit / 4)
        row['ours_vs_ours_other_seeds'] = noise_overlaps(samples, picks['ours'], args, ours, seeds)
    for name, rows in picks.items():
        judged = tile(reference, n, args.seed, rows) if reference.shape[1] != n else reference[:, rows]
        row[f'{name}_information'] = joint_information(judged, np.arange(len(rows)), args.draws, args.seed)
        row[f'{name}_near_duplicates'] = near_duplicates(rows, n, base.shape[1])
    if len(picks) == 2:
        a, b = picks['ours'].tolist(), picks['theirs'].tolist()
        row['overlap'] = overlap(picks['ours'], picks['theirs'], args.batch)
        k = row['compared_picks'] = min(row['exact_picks'], row['joint_picks'])
        row['compared_picks_same_order'] = a[:k] == b[:k]
        row['ratio'] = row['theirs_s'] / row['ours_s']
    row['picks'] = {name: value.tolist() for name, value in picks.items()}
    return row


# --------------------------------------------------------------------------------------------------------------
# The run and its figures.
# --------------------------------------------------------------------------------------------------------------

def next_predictions(predicted: dict[str, float], row: dict, n: int, following: int | None) -> dict[str, float]:
    """Each contender's predicted time at the ``following`` size, from its time (or prediction) at ``n``.

    Theirs evaluates every candidate at every step: linear in N. Ours evaluates candidates in order of an upper
    bound until none can win, so its time is far from proportional to N: it is skipped only after a size that
    already took longer than the limit.
    """
    predicted = dict(predicted)
    for name in ('ours', 'theirs'):
        seconds = row.get(f'{name}_s', row.get(f'{name}_skipped_predicted_s'))
        if seconds is not None:
            predicted[name] = seconds
    if following is None:
        return predicted
    return {name: value * following / n if name == 'theirs' else value for name, value in predicted.items()}


def skip_notes(row: dict, limit: float) -> list[str]:
    """Why a contender was not run at this size."""
    notes = []
    for name in ('ours', 'theirs'):
        if f'{name}_skipped_predicted_s' in row:
            how = 'linear in N from the previous size' if name == 'theirs' else 'the previous size already took it'
            notes.append(f'{name} skipped at {row["candidates"]:,} candidates: about '
                         f'{row[f"{name}_skipped_predicted_s"]:.0f} s predicted ({how}), over the {limit:g} s limit')
    return notes


def run(args: argparse.Namespace) -> dict:
    """Make the samples and run both contenders at every size; the figures (no printing but progress)."""
    import importlib.metadata

    import torch

    torch.set_num_threads(args.threads)
    elapsed = stopwatch()
    if args.source == 'real':
        _, base, source, reference = real_inputs(args.labels, args.mc_samples, args.cache, args.seed,
                                                 args.reference_samples)
    else:
        base, source = dirichlet_samples(min(args.sizes), args.mc_samples, 3, args.seed)
        reference = base
    ours, how = make_ours(args.configurations)
    warm_up(base, args, ours)
    notes: list[str] = []
    rows: list[dict] = []
    predicted: dict[str, float] = {}
    sizes = sorted(args.sizes)
    pilot = [args.pilot] if args.pilot and args.pilot < sizes[0] else []
    for n in pilot + sizes:
        row = run_size(n, base, reference, args, ours, predicted)
        row['pilot'] = n in pilot
        rows.append(row)
        following = next((m for m in sizes if m > n), None)
        predicted = next_predictions(predicted, row, n, following)
        notes += skip_notes(row, args.limit)
        print(f'{n:,} candidates done', file=sys.stderr, flush=True)
    return dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), platform=platform.platform(),
                     python=platform.python_version(), torch=torch.__version__, load_average=os.getloadavg()),
        params=dict(batch=args.batch, mc_samples=args.mc_samples, configurations=args.configurations,
                    limit=args.limit, repeat=args.repeat, draws=args.draws, seed=args.seed, labels=args.labels,
                    noise_seeds=args.noise_seeds, pilot=args.pilot, quick=args.quick, full=args.full,
                    reference_samples=reference.shape[0]),
        source=source, ours=how, theirs_version=importlib.metadata.version('batchbald-redux'), sizes=rows,
        notes=notes, seconds=elapsed())


def _seconds(row: dict, name: str) -> str:
    """A contender's measured seconds, or a dash when it did not run."""
    return f"{row[f'{name}_s']:.2f}" if f'{name}_s' in row else '-'


def _predicted(row: dict) -> str:
    """The seconds predicted for a contender that was skipped (``theirs ~N``), or a dash: never a measurement."""
    return ', '.join(f"{name} ~{row[f'{name}_skipped_predicted_s']:.0f}" for name in ('ours', 'theirs')
                     if f'{name}_skipped_predicted_s' in row) or '-'


def _noise(row: dict) -> str:
    """Ours against ours with other seeds: one overlap, or the range of several; a dash when not run."""
    values = row.get('ours_vs_ours_other_seeds') or []
    if not values:
        return '-'
    low, high = min(values), max(values)
    return f'{low:.2f}' if low == high else f'{low:.2f}–{high:.2f}'


def cells(row: dict) -> list[str]:
    """One table row's cells (plain text and markdown alike)."""
    compared = (f"{row['compared_picks']} {'same' if row['compared_picks_same_order'] else 'differ'}"
                if 'overlap' in row else '-')
    duplicates = '/'.join(str(row[f'{name}_near_duplicates']) if f'{name}_near_duplicates' in row else '-'
                          for name in ('ours', 'theirs'))

    def number(key: str, spec: str) -> str:
        return '-' if row.get(key) is None else format(row[key], spec)

    return [f"{row['candidates']:,}" + (' (pilot)' if row.get('pilot') else ''), _seconds(row, 'ours'),
            _seconds(row, 'theirs'), _predicted(row), number('ratio', '.1f'), number('overlap', '.2f'), compared,
            _noise(row), duplicates, number('ours_information', '.3f'), number('theirs_information', '.3f')]


HEADERS = ('candidates', 'ours s', 'theirs s', 'skipped: s predicted', 'theirs/ours', 'overlap', 'unsaturated',
           'ours/ours', 'copies', 'I ours', 'I theirs')


def legend(params: dict) -> str:
    """What the columns mean, for the printed table and the report."""
    runs = f"best of {params['repeat']}" if params['repeat'] > 1 else 'one run'
    return f"""ours s / theirs s: the selection call alone, {runs} (theirs' log and transpose to (N, S, C) done before).
skipped: s predicted: a prediction, not a measurement, for a contender not run there (limit {params['limit']:g} s):
theirs' previous time scaled linearly in N; ours' previous time itself (it prunes candidates, so it is not linear
in N). overlap: |ours ∩ theirs| / batch.
unsaturated: how many picks both make with exact joint entropies (C^(i-1) <= M) before the S samples saturate
(ours' joint picks: the residual H(w | y_batch) still above the best candidate's pairwise bound), and whether those
agree in order; past saturation ours ranks by the pairwise bound and redux by noise, so they differ by design.
copies: picks (ours/theirs) that are jittered copies of a base row already in the batch. ours/ours: overlap of
ours with seed {params['seed']} and with other seeds ({params['noise_seeds']} where theirs ran, else one where ours
took under a quarter of the limit): how much the sampled configurations alone move the picks. I: the batch's joint
mutual information I(y_batch; w) in nats, by one common Monte-Carlo estimate ({params['draws']:,} configurations)
for both batches under {params['reference_samples']:,} posterior samples of the same model drawn with another seed
(capped at ln {params['reference_samples']:,} = {math.log(max(params['reference_samples'], 1)):.2f}, not at the
selection's ln S = {math.log(params['mc_samples']):.2f})."""


def describe(report: dict) -> str:
    """The samples, settings and contenders in a few lines."""
    params = report['params']
    return (f"samples: {report['source']}\n  S = {params['mc_samples']} MC samples, batch {params['batch']}, "
            f"M = {params['configurations']} configurations (redux num_samples = our num_configurations), float64, "
            f"CPU ({report['machine']['cpus']} cores, torch {report['machine']['torch_threads']} threads)\n"
            f"  ours: {report['ours']}\n  theirs: batchbald_redux {report['theirs_version']} get_batchbald_batch")


def print_table(report: dict) -> None:
    """The figures as a plain-text table on stdout."""
    rows = [cells(row) for row in report['sizes']]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    print(f'\n{describe(report)}\n')
    print(' '.join(h.rjust(w) for h, w in zip(HEADERS, widths, strict=True)))
    print('-' * (sum(widths) + len(widths) - 1))
    for row in rows:
        print(' '.join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print(f"\n{legend(report['params'])}")
    for note in report['notes']:
        print(f'note: {note}')


# --------------------------------------------------------------------------------------------------------------
# The benchmarks page: goals and section.
# --------------------------------------------------------------------------------------------------------------

def both_ran(report: dict) -> list[dict]:
    """The sizes at which both contenders ran, smallest first."""
    return [row for row in report['sizes'] if 'overlap' in row]


def same_picks(row: dict) -> bool:
    """The same picks in the same order wherever both are exact and the samples not saturated."""
    return row['compared_picks_same_order']


def goals(report: dict) -> list:
    """The issue's goals, in three verdicts: ≥ 3× faster at the largest size both ran, the same picks where the
    samples are not saturated, and no near-duplicate in our batch at any size."""
    from report import Goal

    compared = both_ran(report)
    speed = f'BatchBALD (batch {report["params"]["batch"]}, S = {report["params"]["mc_samples"]}) ≥ ' \
            f'{GOAL_RATIO:g}× faster than batchbald-redux'
    picks = 'BatchBALD makes the same picks as batchbald-redux where the samples are not saturated'
    ran = [row for row in report['sizes'] if 'ours_near_duplicates' in row]
    copies = Goal('BatchBALD picks no near-duplicate (jittered copy of a segment already in the batch)',
                  '; '.join(f"{row['candidates']:,}: {row['ours_near_duplicates']} of {report['params']['batch']}"
                            + (f" (redux {row['theirs_near_duplicates']})" if 'theirs_near_duplicates' in row else '')
                            for row in ran) or 'not measured',
                  bool(ran) and all(row['ours_near_duplicates'] == 0 for row in ran))
    if not compared:
        reason = 'batchbald-redux was not run at any size (predicted over the limit)'
        return [Goal(speed, 'not measured', False, reason), Goal(picks, 'not measured', False, reason), copies]
    top = compared[-1]
    beyond = [row for row in report['sizes'] if row['candidates'] > top['candidates'] and 'ours_s' in row
              and 'theirs_skipped_predicted_s' in row]
    extrapolated = '; '.join(f"at {row['candidates']:,} ours took {row['ours_s']:.2f} s and theirs would take "
                             f"~{row['theirs_skipped_predicted_s']:.0f} s (predicted, not run)" for row in beyond)
    measured = '; '.join(f"{row['ratio']:.1f}× at {row['candidates']:,} candidates (ours {row['ours_s']:.2f} s, "
                         f"theirs {row['theirs_s']:.2f} s)" for row in compared)
    speed_met = top['ratio'] >= GOAL_RATIO
    speed_note = '; '.join(([] if speed_met else [f"{top['ratio'] / GOAL_RATIO:.2f} of the goal at "
                                                  f"{top['candidates']:,} candidates"])
                           + ([extrapolated] if extrapolated else []))
    agreement = '; '.join(
        f"{row['candidates']:,}: first {row['compared_picks']} (exact, unsaturated) picks "
        f"{'identical in order' if row['compared_picks_same_order'] else 'DIFFER'}; whole-batch overlap "
        f"{row['overlap']:.2f}" for row in compared)
    picks_met = all(same_picks(row) for row in compared)
    picks_note = '' if picks_met else '; '.join(f"{row['candidates']:,}: unsaturated picks differ"
                                                for row in compared if not same_picks(row))
    return [Goal(speed, measured, speed_met, speed_note), Goal(picks, agreement, picks_met, picks_note), copies]


def reading(report: dict) -> str:
    """How to read this run's figures, computed from them."""
    compared = both_ran(report)
    params = report['params']
    lines = []
    if compared:
        top = compared[-1]
        lines += [f"* At {top['candidates']:,} candidates, the largest size both ran, ours took {top['ours_s']:.2f} "
                  f"s and batchbald-redux {top['theirs_s']:.2f} s: {top['ratio']:.0f}× (goal ≥ {GOAL_RATIO:g}×).",
                  f"* Picks: the first {top['joint_picks']} of ours are joint picks; then the "
                  f"S = {params['mc_samples']} samples are saturated (ln S = {math.log(params['mc_samples']):.2f} "
                  'nats) and ours ranks by the pairwise bound. Both make the first '
                  f"{top['compared_picks']} picks with exact joint entropies before saturation: "
                  f"{'identical in order' if top['compared_picks_same_order'] else 'they DIFFER'}. Past saturation "
                  f"redux picks {top['theirs_near_duplicates']} jittered copies of segments already in its batch, "
                  f"ours {top['ours_near_duplicates']}.",
                  f"* Batch quality at {top['candidates']:,}: I = {top['ours_information']:.3f} nats (ours) and "
                  f"{top['theirs_information']:.3f} (theirs), by the same estimate under "
                  f"{params['reference_samples']:,} fresh samples of the model."]
    ours_only = [row for row in report['sizes'] if 'ours_s' in row and 'theirs_s' not in row]
    if ours_only:
        largest = ours_only[-1]
        predicted = largest.get('theirs_skipped_predicted_s')
        lines.append(f"* Ours alone at {largest['candidates']:,} candidates: {largest['ours_s']:.2f} s"
                     + (f"; redux would need about {predicted:,.0f} s there by its linear scaling." if predicted
                        else '.'))
    return '\n'.join(lines)


def markdown(report: dict) -> str:
    """The benchmarks page's section."""
    from report import table

    params = report['params']
    rows = [cells(row) for row in report['sizes']]
    notes = '\n'.join(f'* {note}' for note in report['notes'])
    return f"""## BatchBALD against batchbald-redux

`bench/bench_batchbald.py`: ours beside `batchbald_redux` {report['theirs_version']}'s `get_batchbald_batch`
on identical samples, batch {params['batch']}, S = {params['mc_samples']} MC samples, M =
{params['configurations']:,} joint configurations for both, float64, torch {report['machine']['torch_threads']}
thread(s) on {report['machine']['cpus']} CPUs. Samples: {report['source']}. Ours: {report['ours']}.

{table(HEADERS, rows)}

```
{legend(params)}
```

{notes}

{reading(report)}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', help=f'candidate counts (default {DEFAULT_SIZES})')
    parser.add_argument('--full', action='store_true',
                        help=f'also 1M candidates: {FULL_SIZES}')
    parser.add_argument('--quick', action='store_true',
                        help=f'{QUICK_SIZES} candidates, pilot {QUICK_PILOT}, limit 30 s (about 30 s on 2 cores)')
    parser.add_argument('--batch', type=int, default=32, help='batch size')
    parser.add_argument('--mc-samples', type=int, default=20, help='posterior samples S')
    parser.add_argument('--configurations', type=int, default=10_000,
                        help='joint configurations M: redux num_samples, our num_configurations')
    parser.add_argument('--source', choices=('real', 'dirichlet'), default='real', help='where the samples come from')
    parser.add_argument('--labels', type=int, default=20, help='labels the real model is trained on')
    parser.add_argument('--limit', type=float,
                        help=f'skip a run predicted to take longer, s (default {DEFAULT_LIMIT_S:g}; 30 --quick)')
    parser.add_argument('--pilot', type=int,
                        help=f'a first, smaller size that predicts the next one\'s times (default {DEFAULT_PILOT}; '
                             f'{QUICK_PILOT} --quick; 0: none)')
    parser.add_argument('--noise-seeds', type=int, default=4,
                        help='other seeds of ours where both ran (the sampling noise the picks are judged against)')
    parser.add_argument('--repeat', type=int, default=1, help='runs per contender and size; the fastest counts')
    parser.add_argument('--draws', type=int, default=100_000, help='configurations of the common I estimate')
    parser.add_argument('--reference-samples', type=int, default=2_000,
                        help='posterior samples of the same model (another seed) that judge each batch\'s information '
                             '(--source real)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads for both (default 1: on a busy 2-core machine every parallel '
                             'region waits for a scheduler slice; measured 7-14x slower with 2 there)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cache', type=Path, default=BENCH.parent / 'bench-output', help='embedding cache folder')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or list(QUICK_SIZES if args.quick else FULL_SIZES if args.full else DEFAULT_SIZES)
    args.limit = args.limit or (30.0 if args.quick else DEFAULT_LIMIT_S)
    if args.pilot is None:
        args.pilot = QUICK_PILOT if args.quick else DEFAULT_PILOT
    return args


def main(argv: list[str] | None = None) -> dict:
    """Run both contenders at every size, print the table; return (and write) the figures."""
    args = parse_args(argv)
    report = run(args)
    print_table(report)
    print_total(report['seconds'])
    publish(report, args.json, args.report, NAME, lambda directory: markdown(report), goals(report))
    return report


if __name__ == '__main__':
    main()
