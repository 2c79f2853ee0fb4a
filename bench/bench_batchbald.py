"""Benchmark Histomics Label's BatchBALD against ``batchbald_redux`` on identical Monte-Carlo posterior samples.

Both choose a batch of ``--batch`` (32) candidates greedily maximising the joint mutual information between the
batch's labels and the model parameters, from the same ``(S, N, C)`` samples (``--mc-samples`` 20):

* ``ours``   -- the ``'batchbald'`` acquisition function of ``histomics_label.core.acquisition`` (its ``rank``
  with ``samples=``), or ``histomics_label.core.batchbald.batchbald`` when the registry has none yet;
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
(|ours ∩ theirs| / batch), whether the picks made with exact joint entropies agree in order, ours against itself
with another seed (how much the sampled configurations alone move the picks), and each batch's joint mutual
information under one common Monte-Carlo estimate (which batch is better, whoever picked it). A pilot run at a
tenth of the smallest size predicts the times of the first: theirs, whose time is linear in N (it evaluates every
candidate at every step), is skipped where its time extrapolated from the previous size would exceed ``--limit``
seconds, and the prediction printed; ours, which prunes candidates by an upper bound, only after a size that
already took longer than the limit.

Run ``python bench/bench_batchbald.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault('TQDM_DISABLE', '1')  # redux draws progress bars on every call; they would time too

BENCH = Path(__file__).resolve().parent
DEFAULT_SIZES = (10_000, 100_000)
FULL_SIZES = (10_000, 100_000, 1_000_000)
JITTER = 0.1  # sd of the logit jitter that makes tiled copies distinct
FLOOR = 1e-12  # smallest probability given to both: redux takes logarithms


# --------------------------------------------------------------------------------------------------------------
# The samples.
# --------------------------------------------------------------------------------------------------------------

def real_samples(n_labels: int, n_samples: int, cache: Path, seed: int) -> tuple[np.ndarray, str]:
    """MC-dropout samples ``(S, n, C)`` of the linear model on every DSB2018 segment, and a description."""
    sys.path.insert(0, str(BENCH))
    from bench_active_learning import BACKGROUND_SEGMENTS, build_task, initial_set

    from histomics_label.core.models import models

    task = build_task('sizes', BACKGROUND_SEGMENTS, cache)
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
    return samples.astype(np.float64), description


def dirichlet_samples(n: int, n_samples: int, n_classes: int, seed: int) -> tuple[np.ndarray, str]:
    """Seeded Dirichlet samples: a mean per row from Dirichlet(1), each sample Dirichlet(10 · mean)."""
    rng = np.random.default_rng(seed)
    means = rng.dirichlet(np.ones(n_classes), size=n)
    samples = np.stack([np.stack([rng.dirichlet(10 * m + 1e-3) for m in means]) for _ in range(n_samples)])
    return samples, f'seeded Dirichlet: row means ~ Dir(1), samples ~ Dir(10 x mean), {n_classes} classes'


def tile(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``base`` ``(S, n0, C)`` repeated to ``n`` rows, each row's logits shifted by a seeded per-class jitter.

    The same jitter applies to every sample of a row, so the spread between samples (what BatchBALD measures)
    is the model's; only the row's mean moves a little. Probabilities are floored at ``FLOOR`` and renormalised.
    """
    rng = np.random.default_rng([seed, n])
    source = np.arange(n) % base.shape[1]
    logits = np.log(np.clip(base[:, source, :], FLOOR, 1.0))
    logits += JITTER * rng.standard_normal((1, n, base.shape[2]))
    logits -= logits.max(axis=2, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=2, keepdims=True)
    probabilities = np.clip(probabilities, FLOOR, 1.0)
    return probabilities / probabilities.sum(axis=2, keepdims=True)


# --------------------------------------------------------------------------------------------------------------
# The contenders.
# --------------------------------------------------------------------------------------------------------------

def make_ours(configurations: int) -> tuple[object, str]:
    """A callable ``(samples, batch, seed) -> picks`` for our BatchBALD, and how it is reached."""
    from histomics_label.core.acquisition import acquisition_functions

    if 'batchbald' in acquisition_functions:
        cls = acquisition_functions.get('batchbald')
        try:
            function = cls(num_configurations=configurations)
            how = f'acquisition_functions["batchbald"](num_configurations={configurations}).rank(..., samples=)'
        except TypeError:
            function = cls()
            how = 'acquisition_functions["batchbald"]().rank(..., samples=) (its default configuration count)'

        def ours(samples: np.ndarray, batch: int, seed: int) -> np.ndarray:
            everything = np.ones(samples.shape[1], bool)
            return np.asarray(function.rank(samples.mean(axis=0), everything, batch, seed=seed, samples=samples))
        return ours, how

    from histomics_label.core.batchbald import batchbald

    def ours_core(samples: np.ndarray, batch: int, seed: int) -> np.ndarray:
        return batchbald(samples, batch, num_configurations=configurations, seed=seed).rows
    return ours_core, f'histomics_label.core.batchbald.batchbald(num_configurations={configurations}) (not registered)'


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
    per_sample = logs[:, np.arange(len(rows))[None, :], labels].sum(axis=2)  # (S, draws)
    top = per_sample.max(axis=0)
    log_mixture = top + np.log(np.exp(per_sample - top).mean(axis=0))
    joint = -log_mixture.mean()
    conditional = -(probabilities * logs).sum(axis=2).mean(axis=0).sum()
    return float(joint - conditional)


def exact_picks(n_classes: int, configurations: int, batch: int) -> int:
    """How many picks are made with exact joint entropies: pick i (from 1) is exact while C^(i−1) ≤ M."""
    count = 0
    while count < batch and n_classes ** count <= configurations:
        count += 1
    return count


def timed(function, *args) -> tuple[float, np.ndarray]:
    """``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def run_size(n: int, base: np.ndarray, args: argparse.Namespace, ours, predicted: dict) -> dict:
    """Both contenders (unless predicted too slow) on ``n`` candidates; figures for the table."""
    import torch

    samples = tile(base, n, args.seed) if base.shape[1] != n else base
    n_classes = samples.shape[2]
    row: dict = dict(candidates=n, classes=n_classes, exact_picks=exact_picks(n_classes, args.configurations,
                                                                             args.batch))
    picks = {}
    if predicted.get('ours', 0) > args.limit:
        row['ours_skipped_predicted_s'] = predicted['ours']
    else:
        row['ours_s'], picks['ours'] = timed(ours, samples, args.batch, args.seed)
        for _ in range(args.repeat - 1):
            row['ours_s'] = min(row['ours_s'], timed(ours, samples, args.batch, args.seed)[0])
    if predicted.get('theirs', 0) > args.limit:
        row['theirs_skipped_predicted_s'] = predicted['theirs']
    else:
        started = time.perf_counter()
        log_probs = torch.from_numpy(np.ascontiguousarray(np.log(samples).transpose(1, 0, 2)))
        row['theirs_prepare_s'] = time.perf_counter() - started
        row['theirs_s'], picks['theirs'] = timed(theirs, log_probs, args.batch, args.configurations, args.seed)
        for _ in range(args.repeat - 1):
            row['theirs_s'] = min(row['theirs_s'], timed(theirs, log_probs, args.batch, args.configurations,
                                                         args.seed)[0])
        del log_probs
    if 'ours' in picks:
        if row['ours_s'] <= args.limit / 4:  # a second run of ours, only where it is cheap
            again = ours(samples, args.batch, args.seed + 1)
            row['ours_vs_ours_other_seed'] = len(set(picks['ours'].tolist()) & set(again.tolist())) / args.batch
        row['ours_information'] = joint_information(samples, picks['ours'], args.draws, args.seed)
    if 'theirs' in picks:
        row['theirs_information'] = joint_information(samples, picks['theirs'], args.draws, args.seed)
    if len(picks) == 2:
        a, b = picks['ours'].tolist(), picks['theirs'].tolist()
        row['overlap'] = len(set(a) & set(b)) / args.batch
        k = row['exact_picks']
        row['exact_picks_same_order'] = a[:k] == b[:k]
        row['ratio'] = row['theirs_s'] / row['ours_s']
    row['picks'] = {name: value.tolist() for name, value in picks.items()}
    return row


def _seconds(row: dict, name: str) -> str:
    """A contender's seconds, ``(~N)`` when it was skipped with N predicted, or a dash."""
    if f'{name}_s' in row:
        return f"{row[f'{name}_s']:.2f}"
    if f'{name}_skipped_predicted_s' in row:
        return f"(~{row[f'{name}_skipped_predicted_s']:.0f})"
    return '-'


def _number(value: float | None, width: int, spec: str) -> str:
    """``value`` formatted and right-aligned, or a dash when there is none."""
    return '-'.rjust(width) if value is None else format(value, spec).rjust(width)


def print_table(report: dict) -> None:
    """The figures as a plain-text table on stdout."""
    params = report['params']
    print(f"\nsamples: {report['source']}\n  S = {params['mc_samples']} MC samples, batch {params['batch']}, "
          f"M = {params['configurations']} configurations (redux num_samples = our num_configurations), float64, "
          f"CPU ({report['machine']['cpus']} cores, torch {report['machine']['torch_threads']} threads)\n"
          f"  ours: {report['ours']}\n  theirs: batchbald_redux {report['theirs_version']} get_batchbald_batch")
    head = (f"\n{'candidates':>11} {'ours s':>8} {'theirs s':>9} {'theirs/ours':>11} {'overlap':>7} "
            f"{'exact picks':>11} {'ours/ours':>9} {'I ours':>7} {'I theirs':>8}")
    print(head)
    print('-' * (len(head) - 1))
    for row in report['sizes']:
        exact = (f"{row['exact_picks']} {'same' if row['exact_picks_same_order'] else 'differ'}"
                 if 'overlap' in row else '-')
        cells = [f"{row['candidates']:>10,}" + ('p' if row.get('pilot') else ' '), f"{_seconds(row, 'ours'):>8}",
                 f"{_seconds(row, 'theirs'):>9}", f"{row['ratio']:>11.1f}" if 'ratio' in row else f"{'-':>11}",
                 f"{row['overlap']:>7.2f}" if 'overlap' in row else f"{'-':>7}", f'{exact:>11}',
                 _number(row.get('ours_vs_ours_other_seed'), 9, '.2f'), _number(row.get('ours_information'), 7, '.3f'),
                 _number(row.get('theirs_information'), 8, '.3f')]
        print(' '.join(cells))
    runs = f"best of {params['repeat']}" if params['repeat'] > 1 else 'one run'
    print(f"""
ours s / theirs s: the selection call alone, {runs} (theirs' log and transpose to (N, S, C) done before).
p: the pilot run (a tenth of the smallest size; --quick a fiftieth). (~N): skipped, N seconds predicted (limit
{params['limit']:g} s): theirs' previous time scaled linearly in N; ours' previous time itself (it prunes candidates,
so it is not linear in N). overlap: |ours ∩ theirs| / batch.
exact picks: how many picks both make with exact joint entropies (C^(i-1) <= M) and whether those agree in
order; later picks depend on each one's random configurations. ours/ours: overlap of ours with seed
{params['seed']} and seed {params['seed'] + 1} (the sampling's own effect; only where ours took under a quarter of
the limit). I: the batch's joint mutual information I(y_batch; w) in nats, by one common Monte-Carlo estimate
({params['draws']:,} configurations) for both batches; it cannot exceed ln S = {math.log(params['mc_samples']):.3f}
(the labels can at most tell which of the S equally likely samples is the true model).""")
    for note in report['notes']:
        print(f'note: {note}')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', help=f'candidate counts (default {DEFAULT_SIZES})')
    parser.add_argument('--full', action='store_true', help=f'also 1M candidates: {FULL_SIZES}')
    parser.add_argument('--quick', action='store_true',
                        help='10k candidates only, limit 30 s, pilot at a fiftieth (under a minute on 2 cores)')
    parser.add_argument('--batch', type=int, default=32, help='batch size')
    parser.add_argument('--mc-samples', type=int, default=20, help='posterior samples S')
    parser.add_argument('--configurations', type=int, default=10_000,
                        help='joint configurations M: redux num_samples, our num_configurations')
    parser.add_argument('--source', choices=('real', 'dirichlet'), default='real', help='where the samples come from')
    parser.add_argument('--labels', type=int, default=20, help='labels the real model is trained on')
    parser.add_argument('--limit', type=float, help='skip a run predicted to take longer, s (default 120; 30 --quick)')
    parser.add_argument('--no-pilot', dest='pilot', action='store_false',
                        help='no pilot run at a tenth (--quick: a fiftieth) of the smallest size, which predicts '
                             'the first size\'s times')
    parser.add_argument('--repeat', type=int, default=1, help='runs per contender and size; the fastest counts')
    parser.add_argument('--draws', type=int, default=100_000, help='configurations of the common I estimate')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op threads for both (default 1: on a busy 2-core machine every parallel '
                             'region waits for a scheduler slice; measured 7-14x slower with 2 there)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cache', type=Path, default=BENCH.parent / 'bench-output', help='embedding cache folder')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([10_000] if args.quick else list(FULL_SIZES if args.full else DEFAULT_SIZES))
    args.limit = args.limit or (30.0 if args.quick else 120.0)
    args.pilot_fraction = 50 if args.quick else 10
    return args


def main(argv: list[str] | None = None) -> dict:
    """Make the samples, run both contenders at every size, print the table; return (and write) the figures."""
    import importlib.metadata

    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.source == 'real':
        base, source = real_samples(args.labels, args.mc_samples, args.cache, args.seed)
    else:
        base, source = dirichlet_samples(min(args.sizes), args.mc_samples, 3, args.seed)
    ours, how = make_ours(args.configurations)
    notes = []
    rows: list[dict] = []
    predicted: dict[str, float] = {}
    sizes = sorted(args.sizes)
    pilot = max(args.batch, sizes[0] // args.pilot_fraction) if args.pilot else None
    for n in ([pilot] if pilot else []) + sizes:
        row = run_size(n, base, args, ours, predicted)
        row['pilot'] = n == pilot
        rows.append(row)
        for name in ('ours', 'theirs'):
            seconds = row.get(f'{name}_s', row.get(f'{name}_skipped_predicted_s'))
            if seconds is not None:
                predicted[name] = seconds  # scaled to each next size below
        following = [m for m in sizes if m > n]
        if following:
            # Theirs evaluates every candidate at every step: linear in N. Ours evaluates candidates in order of an
            # upper bound until none can win, so its time is far from proportional to N: it is skipped only after
            # a size that already took longer than the limit.
            predicted = {name: value * following[0] / n if name == 'theirs' else value
                         for name, value in predicted.items()}
        skipped = [name for name in ('ours', 'theirs') if f'{name}_skipped_predicted_s' in row]
        for name in skipped:
            how = 'linear in N from the previous size' if name == 'theirs' else 'the previous size already took it'
            notes.append(f'{name} skipped at {n:,} candidates: about {row[f"{name}_skipped_predicted_s"]:.0f} s '
                         f'predicted ({how}), over the {args.limit:g} s limit')
        print(f'{n:,} candidates done', file=sys.stderr)
    report = dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), platform=platform.platform(),
                     python=platform.python_version(), torch=torch.__version__, load_average=os.getloadavg()),
        params=dict(batch=args.batch, mc_samples=args.mc_samples, configurations=args.configurations,
                    limit=args.limit, repeat=args.repeat, draws=args.draws, seed=args.seed, labels=args.labels),
        source=source, ours=how, theirs_version=importlib.metadata.version('batchbald-redux'), sizes=rows,
        notes=notes)
    report['seconds'] = time.perf_counter() - started
    print_table(report)
    print(f"\ntotal {report['seconds']:.0f} s (load average at the end {os.getloadavg()[0]:.1f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == '__main__':
    main()
