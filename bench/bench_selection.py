"""Selection speed: one batch chosen by every registered acquisition function from 10k, 100k and 1M candidates.

Every name in ``histomics_label.core.acquisition.base.acquisition_functions`` (whatever is registered when it runs)
chooses one batch of the project's default size (``batchSize`` of ``projects.config.DEFAULTS``, 8) as the
application does (``suggestions.suggest_across``): ``function.select(probabilities, candidates, n, seed=,
labeled=, **needs)``, with ``probabilities`` ``None`` for functions that do not use a model. BatchBALD also
chooses a batch of 32, the size of the issue's comparison with batchbald-redux (``bench_batchbald.py``).

Inputs, per candidate count N (the unlabeled rows; ``--labeled`` more rows are labeled, 64 by default):

* ``samples`` ``(S, N, C)`` with S = 20 (``suggestions.MC_SAMPLES``): ``bench_batchbald.py``'s real MC-dropout
  samples of the linear model on the 524 DSB2018 segments (3 classes), tiled to N rows with a seeded logit jitter;
* ``probabilities`` ``(N, C)``: the samples' mean;
* ``embeddings`` ``(N, 1280)`` float32: the same segments' real ``efficientnet_lite0`` embeddings, tiled the same
  way (row i of every input is the same segment) plus seeded uniform noise of sd ``EMBEDDING_JITTER`` times each
  dimension's sd, so that no two rows are identical;
* ``labeled``: the boolean mask of the labeled rows (seeded positions).

The copies are seeded synthetic data: only speed is measured here, never which rows are picked. A function
needing any other input is skipped with a note. Each size's inputs are built once, untimed, and only for the
functions that run at that size; every function first makes one untimed selection from 500 rows (first-call
costs such as imports are not a selection's).

Torch and numpy's BLAS run on ``--threads`` (1) threads, as in ``bench_batchbald.py``: on a busy 2-core machine
every parallel region waits for a scheduler slice (coreset was 2× slower with 2 BLAS threads).

A row (function and batch) is skipped at a size where its time, extrapolated from its two previous sizes on a
log-log line (linearly from one), would exceed ``--limit`` (300 s: far too long to wait for a suggestion);
BatchBALD's batch of 32 uses ``--extra-limit`` (30 s; ``--full``: the same as ``--limit``), since
``bench_batchbald.py`` measures it in full. Skips are printed with their predicted time.

``--report DIR`` writes the benchmarks page's section (``bench/report.py``): ``DIR/selection.md`` with a log-log
plot of seconds against candidates, ``.json`` and ``.goals.json`` (every function selects from 1M candidates).

Run ``python bench/bench_selection.py --help``; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from measure import Timer, best_of, stopwatch
from registered_functions import runnable_functions
from report import print_total, publish

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import bench_batchbald  # noqa: E402  (after the path: report.py and bench_active_learning.py live beside it)

NAME = 'selection'  # the report's section name (bench/run_all.py)
BOUND = 'bound: matmul + top-k'  # the lower bound's row (``lower_bound``)
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
EXTRA_BATCHES = {'batchbald': 32}  # the issue compares BatchBALD with batchbald-redux at batch 32
KNOWN_NEEDS = {'samples', 'embeddings', 'features', 'labeled', 'labeled_mask'}
EMBEDDING_JITTER = 0.1  # noise sd of tiled embeddings, as a share of each dimension's sd over the real segments
WARM_UP_ROWS = 500
GOAL_SIZE = 1_000_000
SLOW_S = 60.0  # a selection slower than this at the goal's size is called out in the verdict
ROW_BLOCK = 65_536  # rows of tiled embeddings made at a time (bounded temporary memory)


# --------------------------------------------------------------------------------------------------------------
# The inputs.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Base:
    """The real per-segment inputs every size is tiled from: embeddings ``(n0, D)`` and samples ``(S, n0, C)``."""

    embeddings: np.ndarray
    samples: np.ndarray
    description: str


@dataclass
class Inputs:
    """One size's inputs, each made on first use (untimed); ``seconds`` is what making them took."""

    base: Base
    candidates: int
    n_labeled: int
    seed: int
    seconds: float = 0.0
    _made: dict = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.candidates + self.n_labeled

    def get(self, name: str) -> np.ndarray:
        """``samples``, ``probabilities``, ``embeddings`` or ``labeled`` (a boolean mask)."""
        if name not in self._made:
            with Timer() as making:
                self._made[name] = getattr(self, f'_make_{name}')()
            self.seconds += making.seconds
        return self._made[name]

    def _make_samples(self) -> np.ndarray:
        return bench_batchbald.tile(self.base.samples, self.rows, self.seed)

    def _make_probabilities(self) -> np.ndarray:
        return self.get('samples').mean(axis=0)

    def _make_embeddings(self) -> np.ndarray:
        return tile_embeddings(self.base.embeddings, self.rows, self.seed)

    def _make_labeled(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.rows, 2])
        labeled = np.zeros(self.rows, bool)
        labeled[rng.choice(self.rows, self.n_labeled, replace=False)] = True
        return labeled


def tile_embeddings(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``base`` ``(n0, D)`` repeated to ``n`` float32 rows (row i copies ``bench_batchbald.source_rows``' row) plus
    seeded noise of ``EMBEDDING_JITTER`` times each dimension's sd; made in blocks of rows.

    The noise is uniform (scaled to that sd), which numpy draws about 3× faster than Gaussian noise: at 1M rows
    the inputs otherwise take longer to make than most selections.
    """
    base = np.asarray(base, np.float32)
    width = (2 * math.sqrt(3) * EMBEDDING_JITTER * base.std(axis=0)).astype(np.float32)  # uniform of that sd
    source = bench_batchbald.source_rows(n, len(base))
    rng = np.random.default_rng([seed, n, 1])
    out = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, ROW_BLOCK):
        stop = min(n, start + ROW_BLOCK)
        noise = rng.random((stop - start, base.shape[1]), dtype=np.float32)
        noise -= 0.5
        noise *= width
        np.add(base[source[start:stop]], noise, out=out[start:stop])
    return out


# --------------------------------------------------------------------------------------------------------------
# The contenders: one row per function and batch size.
# --------------------------------------------------------------------------------------------------------------

@dataclass
class Row:
    """One function at one batch size, with its times per size (measured or predicted)."""

    name: str
    function: object
    batch: int
    needs: tuple[str, ...]
    uses_model: bool
    extra: bool  # the extra batch size, not the project's default
    seconds: dict[int, float] = field(default_factory=dict)
    predicted: dict[int, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f'{self.name} (batch {self.batch})'

    def inputs_needed(self) -> list[str]:
        """Which inputs a selection reads: its needs (aliases resolved), the labeled mask, the probabilities."""
        wanted = {'labeled'} | {'embeddings' if need == 'features' else need for need in self.needs}
        wanted.discard('labeled_mask')
        if self.uses_model:
            wanted.add('probabilities')
        return sorted(wanted)


def contenders(batch: int) -> tuple[list[Row], list[str]]:
    """A row per registered function at ``batch`` (plus ``EXTRA_BATCHES``), and notes on functions skipped."""
    found, notes = runnable_functions(KNOWN_NEEDS)
    rows = []
    for name, function, needs in found:
        uses_model = bool(getattr(function, 'uses_model', True))
        rows.append(Row(name, function, batch, needs, uses_model, False))
        if name in EXTRA_BATCHES and EXTRA_BATCHES[name] != batch:
            rows.append(Row(name, function, EXTRA_BATCHES[name], needs, uses_model, True))
    return rows, notes


def select(row: Row, inputs: Inputs, seed: int) -> np.ndarray:
    """One selection as ``suggestions.suggest_across`` makes it; returns the picked rows."""
    context = {need: inputs.get('embeddings' if need == 'features' else need) for need in row.needs
               if need not in ('labeled', 'labeled_mask')}
    labeled = inputs.get('labeled')
    probabilities = inputs.get('probabilities') if row.uses_model else None
    if 'labeled_mask' in row.needs:
        context['labeled_mask'] = labeled
    return row.function.select(probabilities, ~labeled, row.batch, seed=seed, labeled=labeled, **context).rows


def predict(row: Row, n: int) -> float | None:
    """The row's time at ``n`` candidates from its measured times: a log-log line through the last two (slope
    kept within [0, 2]), or linear from one; None before any measurement."""
    known = sorted(row.seconds.items())
    if not known:
        return None
    n1, t1 = known[-1]
    slope = 1.0
    if len(known) >= 2:
        n0, t0 = known[-2]
        if t0 > 0 and t1 > 0:
            slope = min(2.0, max(0.0, math.log(t1 / t0) / math.log(n1 / n0)))
    return t1 * (n / n1) ** slope


def exponent(row: Row) -> float | None:
    """The log-log slope of the row's time between its two largest measured sizes (1: linear in N)."""
    known = sorted(row.seconds.items())
    if len(known) < 2 or min(known[-2][1], known[-1][1]) <= 0:
        return None
    (n0, t0), (n1, t1) = known[-2:]
    return math.log(t1 / t0) / math.log(n1 / n0)


# --------------------------------------------------------------------------------------------------------------
# The run.
# --------------------------------------------------------------------------------------------------------------

def warm_up(rows: list[Row], base: Base, args: argparse.Namespace) -> None:
    """One untimed selection per row from ``WARM_UP_ROWS`` candidates (imports, first kernel dispatches)."""
    small = Inputs(base, WARM_UP_ROWS, args.labeled, args.seed)
    for row in rows:
        select(row, small, args.seed)


def measure(row: Row, inputs: Inputs, args: argparse.Namespace) -> float:
    """Best of ``--repeat`` selections' seconds (inputs made beforehand, untimed)."""
    for name in row.inputs_needed():
        inputs.get(name)
    return best_of(args.repeat, select, row, inputs, args.seed)[0]


def lower_bound(embeddings: np.ndarray, classes: int, batch: int, seed: int) -> np.ndarray:
    """The least any model-based selection does: score every candidate with a linear model (one matrix multiply of
    the embeddings by ``classes`` weight columns, what predicting takes) and keep the ``batch`` best (a top-k by
    ``argpartition``, what choosing takes). Weights are seeded noise: only the time counts."""
    weights = np.random.default_rng(seed).standard_normal((embeddings.shape[1], classes), dtype=np.float32)
    scores = (embeddings @ weights).max(axis=1)
    return np.argpartition(scores, batch)[:batch]


def run_size(n: int, rows: list[Row], base: Base, args: argparse.Namespace,
             bound: Row) -> tuple[float, list[str]]:
    """Every row at ``n`` candidates unless predicted too slow, and the lower bound (``bound``'s seconds); returns
    the inputs' making time and notes."""
    inputs = Inputs(base, n, args.labeled, args.seed)
    classes = int(base.samples.shape[2])
    bound.seconds[n] = best_of(args.repeat, lower_bound, inputs.get('embeddings'), classes, bound.batch,
                               args.seed)[0]
    notes = []
    for row in rows:
        expected = predict(row, n)
        limit = args.extra_limit if row.extra else args.limit
        if expected is not None and expected > limit:
            row.predicted[n] = expected
            notes.append(f'{row.label} skipped at {n:,} candidates: about {expected:.0f} s predicted from its smaller '
                         f'sizes, over the {limit:g} s limit' + (' (--full runs it)' if row.extra else ''))
            continue
        row.seconds[n] = measure(row, inputs, args)
        print(f'  {row.label:<32} {n:>10,} candidates {row.seconds[n]:8.2f} s', file=sys.stderr, flush=True)
    return inputs.seconds, notes


def run(args: argparse.Namespace) -> dict:
    """Time every row at every size; the figures."""
    import torch
    from threadpoolctl import threadpool_limits

    from histomics_label.core.acquisition.suggestions import MC_SAMPLES
    from histomics_label.projects.config import DEFAULTS

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy's BLAS (coreset, k-means): on a busy machine 1 thread was 2x faster
    elapsed = stopwatch()
    embeddings, samples, description, _ = bench_batchbald.real_inputs(args.labels, MC_SAMPLES, args.cache, args.seed)
    base = Base(np.asarray(embeddings, np.float32), samples, description)
    batch = args.batch or int(DEFAULTS['batchSize'])
    rows, notes = contenders(batch)
    warm_up(rows, base, args)
    bound = Row(BOUND, lower_bound, batch, ('embeddings',), True, False)
    input_seconds = {}
    for n in sorted(args.sizes):
        input_seconds[n], size_notes = run_size(n, rows, base, args, bound)
        notes += size_notes
    return dict(
        date=datetime.datetime.now().isoformat(timespec='seconds'),
        machine=dict(cpus=os.cpu_count(), torch_threads=torch.get_num_threads(), platform=platform.platform(),
                     python=platform.python_version(), numpy=np.__version__, torch=torch.__version__,
                     load_average=os.getloadavg()),
        params=dict(sizes=sorted(args.sizes), batch=batch, extra_batches=EXTRA_BATCHES, labeled=args.labeled,
                    mc_samples=MC_SAMPLES, classes=int(samples.shape[2]), dim=int(base.embeddings.shape[1]),
                    embedding_jitter=EMBEDDING_JITTER, limit=args.limit, extra_limit=args.extra_limit,
                    repeat=args.repeat, seed=args.seed, quick=args.quick, full=args.full),
        inputs=dict(description=description, base_segments=int(samples.shape[1]), making_seconds=input_seconds),
        rows=[dict(function=row.name, batch=row.batch, needs=list(row.needs), uses_model=row.uses_model,
                   extra=row.extra, seconds=row.seconds, predicted_seconds=row.predicted, exponent=exponent(row))
              for row in rows],
        bound=dict(function=BOUND, batch=batch, needs=['embeddings'], uses_model=True, extra=False,
                   seconds=bound.seconds, predicted_seconds={}, exponent=exponent(bound)),
        notes=notes, seconds=elapsed())


# --------------------------------------------------------------------------------------------------------------
# Figures: table, plot, goal, section.
# --------------------------------------------------------------------------------------------------------------

def cell(row: dict, n: int) -> str:
    """Measured seconds at ``n``, or a dash (a prediction is never shown as a measurement: see ``predicted``)."""
    if n in row['seconds']:
        value = row['seconds'][n]
        return f'{value:.3f}' if value < 1 else f'{value:.2f}' if value < 100 else f'{value:.0f}'
    return '-'


def predicted(row: dict) -> str:
    """The sizes the row was skipped at with their predicted seconds (``1,000,000: ~54``), or a dash."""
    return ', '.join(f'{n:,}: ~{seconds:.0f}' for n, seconds in sorted(row['predicted_seconds'].items())) or '-'


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Headers and cells: function, batch, needs, seconds per size, exponent, and the time over the lower bound's
    at the largest size; the bound's own row last."""
    sizes = report['params']['sizes']
    largest = max(sizes)
    bound = report['bound']['seconds'].get(largest)
    headers = ['function', 'batch', 'needs', *[f'{n:,} s' for n in sizes], 'skipped: s predicted', 'exponent',
               f'÷ bound at {largest:,}']

    def over_bound(row: dict) -> str:
        if not bound or largest not in row['seconds']:
            return '-'
        ratio = row['seconds'][largest] / bound
        return f'{ratio:.2f}×' if ratio < 10 else f'{ratio:,.0f}×'

    rows = [[row['function'], str(row['batch']), ', '.join(row['needs']) or 'probabilities',
             *[cell(row, n) for n in sizes], predicted(row),
             '-' if row['exponent'] is None else f"{row['exponent']:.2f}", over_bound(row)]
            for row in [*report['rows'], report['bound']]]
    return headers, rows


def legend(report: dict) -> str:
    """What the columns mean."""
    params = report['params']
    runs = f"best of {params['repeat']}" if params['repeat'] > 1 else 'one run'
    return (f"seconds: one select() call ({runs}) choosing the batch from N unlabeled candidates (plus "
            f"{params['labeled']} labeled rows),\ninputs made beforehand. skipped: s predicted: a prediction, not a "
            f"measurement, from the smaller sizes\n(limit {params['limit']:g} s; {params['extra_limit']:g} s for the "
            "extra batch sizes). "
            'needs: the inputs besides the labeled mask (probabilities for the others).\nexponent: log-log slope '
            'between the two largest measured sizes (1 = linear in N; below 1, part of the\ntime does not grow '
            f'with N, e.g. k-means on a fixed-size sample). {BOUND}: the lower bound, a linear\nmodel\'s scores '
            f'(one {params["dim"]}-d × {params["classes"]} matrix multiply over the candidates) and a top-k by '
            'argpartition; ÷ bound: a\nfunction\'s time over it at the largest size (what a round\'s ranking '
            'costs beyond predicting and choosing).')


def print_table(report: dict) -> None:
    """The figures as a plain-text table on stdout."""
    headers, rows = table_rows(report)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print(f"\nsamples: {report['inputs']['description']}; embeddings: the same segments' real "
          f"{report['params']['dim']}-d ones tiled the same way + noise sd {report['params']['embedding_jitter']} x "
          f"each dimension's sd; S = {report['params']['mc_samples']}, {report['params']['classes']} classes; "
          f"torch and BLAS {report['machine']['torch_threads']} thread(s), {report['machine']['cpus']} CPUs\n")
    print('  '.join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    print('-' * (sum(widths) + 2 * (len(widths) - 1)))
    for r in rows:
        print('  '.join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    print(f'\n{legend(report)}')
    for note in report['notes']:
        print(f'note: {note}')
    making = ', '.join(f'{n:,}: {s:.1f} s' for n, s in report['inputs']['making_seconds'].items())
    print(f'inputs made (untimed): {making}')


def plot(report: dict, directory: Path) -> str:
    """Log-log seconds against candidates per row (predicted times of skipped sizes as open markers)."""
    from report import figure, save_plot

    fig, ax = figure(8.5, 4.5)
    for row in report['rows']:
        measured = sorted(row['seconds'].items())
        line, = ax.plot([n for n, _ in measured], [s for _, s in measured], marker='o',
                        linestyle='--' if row['extra'] else '-', label=f"{row['function']} (batch {row['batch']})")
        predicted = sorted(row['predicted_seconds'].items())
        if predicted and measured:
            ax.plot([measured[-1][0], *[n for n, _ in predicted]], [measured[-1][1], *[s for _, s in predicted]],
                    linestyle=':', color=line.get_color(), marker='o', markerfacecolor='none')
    bound = sorted(report['bound']['seconds'].items())
    ax.plot([n for n, _ in bound], [s for _, s in bound], color='black', linestyle=':', marker='x', label=BOUND)
    if any(row['predicted_seconds'] for row in report['rows']):
        ax.set_title('open markers: predicted from the smaller sizes, not run', fontsize=8)
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('candidates')
    ax.set_ylabel('seconds per selection')
    ax.grid(alpha=0.3, which='both')
    ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
    return save_plot(fig, directory, NAME, 'seconds')


def goals(report: dict) -> list:
    """Every function (project batch) selects from 1M candidates: met when each was measured there."""
    from report import Goal

    batch = report['params']['batch']
    rows = [row for row in report['rows'] if not row['extra']]
    goal = f'each acquisition function selects a batch of {batch} from {GOAL_SIZE:,} candidates'
    done = sorted((row for row in rows if GOAL_SIZE in row['seconds']), key=lambda r: -r['seconds'][GOAL_SIZE])
    missing = [row for row in rows if GOAL_SIZE not in row['seconds']]
    times = ', '.join(f"{row['function']} {cell(row, GOAL_SIZE)} s" for row in done)
    slow = [f"{row['function']} ({row['seconds'][GOAL_SIZE]:.0f} s)" for row in done
            if row['seconds'][GOAL_SIZE] > SLOW_S]
    measured = (f'{len(done)} of {len(rows)} at {GOAL_SIZE:,}: {times}' if done else f'none measured at {GOAL_SIZE:,}')
    if slow:
        measured += f'; over {SLOW_S:g} s: {", ".join(slow)}'
    if GOAL_SIZE not in report['params']['sizes']:
        sizes = ', '.join(f'{n:,}' for n in report['params']['sizes'])
        reasons = [f"{GOAL_SIZE:,} candidates were not among this run's sizes ({sizes}"
                   f"{'; --quick' if report['params']['quick'] else ''})"]
    else:
        reasons = [f"{row['function']}: skipped, ~{row['predicted_seconds'][GOAL_SIZE]:.0f} s predicted (limit "
                   f"{report['params']['limit']:g} s)" for row in missing]
    return [Goal(goal, measured, not missing, '; '.join(reasons))]


def reading(report: dict) -> str:
    """A few computed sentences on this run."""
    largest = max(report['params']['sizes'])
    rows = [row for row in report['rows'] if largest in row['seconds']]
    if not rows:
        return ''
    ordered = sorted(rows, key=lambda r: -r['seconds'][largest])
    lines = [f"* At {largest:,} candidates the slowest is {ordered[0]['function']} (batch {ordered[0]['batch']}, "
             f"{ordered[0]['seconds'][largest]:.2f} s) and the fastest {ordered[-1]['function']} "
             f"({ordered[-1]['seconds'][largest]:.3f} s)."]
    bound = report['bound']['seconds'].get(largest)
    if bound:
        lines.append(f"* The lower bound (a linear model's matrix multiply over every candidate and a top-k) takes "
                     f"{bound:.3f} s at {largest:,} candidates: the fastest function is "
                     f"{ordered[-1]['seconds'][largest] / bound:.1f}× it, the slowest "
                     f"{ordered[0]['seconds'][largest] / bound:,.0f}×.")
    sublinear = [f"{row['function']} ({row['exponent']:.2f})" for row in rows
                 if row['exponent'] is not None and row['exponent'] < 0.8]
    if sublinear:
        lines.append(f"* Growing slower than N between the two largest sizes: {', '.join(sublinear)}.")
    superlinear = [f"{row['function']} ({row['exponent']:.2f})" for row in rows if row['exponent'] is not None
                   and row['exponent'] > 1.2 and row['seconds'][largest] >= 1]
    if superlinear:
        lines.append(f"* Growing faster than N between the two largest sizes (among those taking a second or more): "
                     f"{', '.join(superlinear)}.")
    return '\n'.join(lines)


def markdown(report: dict, directory: Path) -> str:
    """The benchmarks page's section."""
    from report import table

    params = report['params']
    headers, rows = table_rows(report)
    notes = '\n'.join(f'* {note}' for note in report['notes'])
    making = ', '.join(f'{n:,}: {s:.1f} s' for n, s in report['inputs']['making_seconds'].items())
    return f"""## Selection speed of every acquisition function

`bench/bench_selection.py`: every registered acquisition function chooses one batch of {params['batch']} (the
project default; BatchBALD also {', '.join(str(b) for b in params['extra_batches'].values())}, the issue's
comparison size) from N unlabeled candidates (plus {params['labeled']} labeled rows), called as the application
calls it. Samples: {report['inputs']['description']}; probabilities: their mean; embeddings: the same segments'
real {params['dim']}-d float32 embeddings tiled the same way plus seeded noise of {params['embedding_jitter']} × each
dimension's sd; S = {params['mc_samples']}, {params['classes']} classes. The copies are seeded synthetic data: only
speed is measured. Torch and numpy's BLAS on {report['machine']['torch_threads']} thread(s),
{report['machine']['cpus']} CPUs. Inputs made untimed ({making}).

{table(headers, rows, 'lrl' + 'r' * (len(headers) - 3))}

![Seconds per selection against candidates]({plot(report, directory)})

```
{legend(report)}
```

{notes}

{reading(report)}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', help=f'candidate counts (default {SIZES})')
    parser.add_argument('--quick', action='store_true', help=f'{QUICK_SIZES} candidates only (about 30 s on 2 cores)')
    parser.add_argument('--full', action='store_true',
                        help='the extra batch sizes (BatchBALD 32) under --limit too, so also at 1M (~2 minutes more)')
    parser.add_argument('--batch', type=int, help='batch size (default: the project default, batchSize)')
    parser.add_argument('--labeled', type=int, default=64, help='labeled rows besides the candidates')
    parser.add_argument('--labels', type=int, default=20, help='labels the real model is trained on')
    parser.add_argument('--limit', type=float, default=300.0,
                        help='skip a selection predicted to take longer, s (default 300)')
    parser.add_argument('--extra-limit', type=float,
                        help='the same for the extra batch sizes (default 30 s; 5 s --quick; --full: --limit)')
    parser.add_argument('--repeat', type=int, default=1, help='selections per function and size; the fastest counts')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch intra-op and numpy BLAS threads (default 1, as bench_batchbald.py: on a busy '
                             '2-core machine every parallel region waits for a scheduler slice; coreset measured 2x '
                             'slower with 2 BLAS threads there)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cache', type=Path, default=BENCH.parent / 'bench-output', help='embedding cache folder')
    parser.add_argument('--json', type=Path, help='also write the figures to this JSON file')
    parser.add_argument('--report', type=Path, help="write the benchmarks page's section here (bench/report.py)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or list(QUICK_SIZES if args.quick else SIZES)
    if args.extra_limit is None:
        args.extra_limit = args.limit if args.full else 5.0 if args.quick else 30.0
    return args


def main(argv: list[str] | None = None) -> dict:
    """Time every function at every size, print the table; return (and write) the figures."""
    args = parse_args(argv)
    report = run(args)
    print_table(report)
    print_total(report['seconds'])
    publish(report, args.json, args.report, NAME, lambda directory: markdown(report, directory), goals(report))
    return report


if __name__ == '__main__':
    main()
