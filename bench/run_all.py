"""Run every benchmark and write the benchmarks page, ``docs/benchmarks.md``, with its tables and plots.

Each benchmark runs as its own process, one after another (their timings must not share the machine), with
``--report``: it writes its section, figures, plots and goal verdicts (``bench/report.py``) into a work folder;
this script then puts the page together: how it was run and on what machine, every goal with its verdict, and the
sections in order. Plots go to ``docs/benchmarks/``, beside each section's figures as JSON. A benchmark that fails
gets a section saying so with the end of its log, and the others still run.

Three tiers, each benchmark's arguments for them in ``BENCHMARKS``: ``python bench/run_all.py`` runs the standard
tier, the sizes most goals name and fewer seeds and smaller sizes elsewhere (28.7 minutes on 2
cores on 2026-12-07, of which the peers HistomicsTK and batchbald-redux about 10; about 31 since the product loop
measures the default function, batchbald, and the calibration benchmark joined, not run whole since; the page says
what each script ran); ``--full`` runs every script at its largest (hours: 10 seeds, the 1 GP slide, the H&E product
loop, the latency and painting benchmarks at 1 M segments, ranking on request at 1 M segments); ``--quick`` runs
each at its smallest (8.8 minutes) and judges little. ``tox -e bench`` installs the peers first and runs this.
``--only NAME ... --keep-others`` runs only those and keeps every other benchmark's section, goals and files from the
page as it was.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from measure import stopwatch  # noqa: E402
from report import machine, table  # noqa: E402


@dataclass(frozen=True)
class Benchmark:
    """One benchmark script, the section name its ``--report`` writes, and its arguments in each tier."""

    name: str
    script: str
    title: str
    standard: tuple[str, ...] = ()
    quick: tuple[str, ...] = ('--quick',)
    full: tuple[str, ...] = ()

    def arguments(self, tier: str) -> tuple[str, ...]:
        return {'quick': self.quick, 'standard': self.standard, 'full': self.full}[tier]


BENCHMARKS = (
    # standard-tier seconds measured on 2 cores (2026-12-07) in the comments
    Benchmark('segments', 'bench_segments.py', 'Segments: tiled SLIC against HistomicsTK and one-shot SLIC',
              standard=('--sizes', '100'), quick=('--quick', '--sizes', '1')),
    # ~450 s, HistomicsTK ~280 s of it; --full adds 25 MP and 1 GP (~12 min)
    Benchmark('selection', 'bench_selection.py', 'Selection speed of every acquisition function',
              full=('--full',)),  # ~110 s
    Benchmark('batchbald', 'bench_batchbald.py', 'BatchBALD against batchbald-redux',
              standard=('--sizes', '2000', '10000'), full=('--full',)),
    # ~400 s, batchbald-redux ~340 s of it; ours alone at 100,000 and 1 M candidates in --full
    Benchmark('active_learning', 'bench_active_learning.py', 'Active-learning effectiveness',
              standard=('--seeds', '2')),  # ~150 s; 10 seeds in --full
    Benchmark('calibration', 'bench_calibration.py', 'Calibration at few labels'),  # ~60 s
    Benchmark('product_loop', 'bench_product_loop.py', 'The product loop: a labeler with an oracle on the live server',
              standard=('--dataset', 'dsb2018', '--seeds', '2', '--functions', 'batchbald', 'margin'),
              quick=('--quick', '--dataset', 'dsb2018')),
    # ~300 s (the product's default, batchbald, and margin, the best of the offline table); H&E, 10 seeds and
    # every function in --full
    Benchmark('latency', 'bench_latency.py', 'Interactive latency on the live stack',
              standard=('--sizes', '100000', '--rounds', '2')),  # ~25 s; a round at 1 M segments takes a minute: --full
    Benchmark('overlay', 'bench_overlay.py', 'The painting view with a million segments',
              standard=('--sizes', '100000'), quick=('--quick', '--sizes', '10000')),
    # ~130 s; 10,000 and 1 M segments in --full
    Benchmark('features', 'bench_features.py', 'Feature throughput', standard=('--quick',),
              quick=('--quick', '--patches', '16')),
    Benchmark('feature_parts', 'bench_feature_parts.py', 'A slide\'s features in parts over two workers',
              standard=('--quick',), quick=('--quick', '--magnification', '5')),  # ~140 s
    Benchmark('segment_workers', 'bench_segment_workers.py', 'A project\'s segments over one and two workers',
              standard=('--quick',), quick=('--quick', '--magnification', '5')),
    # ~130 s with 2 slides; 4 in --full
    Benchmark('cohort', 'bench_scale.py', 'A project at scale: 50 slides, 1 M segments, 8 labelers',
              standard=('--requests', '2', '--no-peer')),  # ~120 s; --full: 10 requests and the on-request peer
)


def run(benchmark: Benchmark, tier: str, work: Path, logs: Path, extra: tuple[str, ...] = ()) -> dict:
    """Run one benchmark with its output shown and logged; returns its outcome and wall time."""
    arguments = (*benchmark.arguments(tier), *extra)
    command = [sys.executable, str(HERE / benchmark.script), '--report', str(work), *arguments]
    print(f'\n=== {benchmark.name}: {" ".join(command[1:])}', flush=True)
    elapsed = stopwatch()
    log_path = logs / f'{benchmark.name}.log'
    with open(log_path, 'w') as log, subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True) as child:
        for line in child.stdout:
            sys.stdout.write(line)
            log.write(line)
    seconds = elapsed()
    complete = child.returncode == 0 and (work / f'{benchmark.name}.md').exists()
    print(f'=== {benchmark.name}: {"done" if complete else "FAILED"} in {seconds:.0f} s', flush=True)
    return {'benchmark': benchmark, 'seconds': seconds, 'complete': complete, 'log': log_path,
            'returncode': child.returncode, 'arguments': arguments}


def section(outcome: dict, work: Path, images: Path) -> tuple[str, list[dict]]:
    """A benchmark's section of the page (plots copied beside the page) and its goal verdicts."""
    benchmark = outcome['benchmark']
    if not outcome['complete']:
        tail = ''.join(outcome['log'].read_text().splitlines(keepends=True)[-15:])
        return (f'## {benchmark.title}\n\n`bench/{benchmark.script}` did not complete (exit code '
                f'{outcome["returncode"]}); the end of its log:\n\n```\n{tail}```\n'), []
    markdown = (work / f'{benchmark.name}.md').read_text()
    for plot in sorted(work.glob(f'{benchmark.name}-*.png')):
        shutil.copyfile(plot, images / plot.name)
    shutil.copyfile(work / f'{benchmark.name}.json', images / f'{benchmark.name}.json')
    markdown = re.sub(r'\]\((' + re.escape(benchmark.name) + r'-[^)]+\.png)\)', rf']({images.name}/\1)', markdown)
    goals_path = work / f'{benchmark.name}.goals.json'
    goals = json.loads(goals_path.read_text()) if goals_path.exists() else []
    return markdown, [{**goal, 'benchmark': benchmark.name} for goal in goals]


@dataclass(frozen=True)
class Kept:
    """A benchmark not run now whose section, goal rows and runs-table row are kept from the page as it was."""

    benchmark: Benchmark
    section: str
    goal_rows: tuple[str, ...]
    run_row: str


def kept_parts(text: str, keep: list[Benchmark]) -> dict[str, Kept]:
    """The parts of an earlier page that belong to the benchmarks in ``keep``: a section is the one that names
    its script first (each section opens with ``bench/<script>``), a table row the one whose first cell is its
    name."""
    sections = re.split(r'\n(?=## )', text)
    kept = {}
    for benchmark in keep:
        found = [s for s in sections if s.startswith('## ') and not s.startswith('## Goals')
                 and _first_script(s) == benchmark.script]
        if not found:
            continue
        head = [line for line in sections[0].splitlines() if line.startswith(f'| {benchmark.name} | ')]
        goals = next((s for s in sections if s.startswith('## Goals')), '')
        goal_rows = tuple(line for line in goals.splitlines() if line.startswith(f'| {benchmark.name} | '))
        kept[benchmark.name] = Kept(benchmark, found[0].strip(), goal_rows, head[0] if head else '')
    return kept


def _first_script(section_text: str) -> str | None:
    """The benchmark script a section names first, or None."""
    found = [(section_text.find(f'bench/{b.script}'), b.script) for b in BENCHMARKS
             if f'bench/{b.script}' in section_text]
    return min(found)[1] if found else None


def page(outcomes: list[dict], tier: str, work: Path, out: Path, total: float,
         kept: dict[str, Kept] | None = None) -> str:
    kept = kept or {}
    images = out.with_suffix('')
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob('*'):  # a benchmark's earlier files, unless kept; files of no benchmark stay
        owner = next((b.name for b in BENCHMARKS if old.name.startswith(f'{b.name}-') or old.name == f'{b.name}.json'),
                     None)
        if owner is not None and owner not in kept:
            old.unlink()
    ran = {o['benchmark'].name: o for o in outcomes}
    sections, goal_rows, run_rows = [], [], []
    for benchmark in BENCHMARKS:
        if benchmark.name in ran:
            outcome = ran[benchmark.name]
            text, verdicts = section(outcome, work, images)
            sections.append(text.strip())
            goal_rows += [[g['benchmark'], g['goal'], g['measured'], 'yes' if g['met'] else '**no**', g.get('note', '')]
                          for g in verdicts]
            run_rows.append([benchmark.name, f'`bench/{benchmark.script}`', ' '.join(outcome['arguments']) or '-',
                             f'{outcome["seconds"]:.0f}', 'complete' if outcome['complete'] else 'failed'])
        elif benchmark.name in kept:
            part = kept[benchmark.name]
            sections.append(part.section)
            goal_rows += list(part.goal_rows)
            run_rows.append(part.run_row.replace('| complete |', '| complete (kept from the earlier page) |')
                            if part.run_row else [benchmark.name, f'`bench/{benchmark.script}`', '', '', 'kept'])
    info = machine()
    runs = _table_with_rows(['benchmark', 'script', 'arguments', 'wall s', 'result'], run_rows, 'llrrr')
    verdicts = _table_with_rows(['benchmark', 'goal', 'measured', 'met', 'shortfall and what limits it'], goal_rows,
                                'lllll') if goal_rows else 'No goal verdicts were written.'
    if kept:
        total_note = (f' This run updated {", ".join(ran)} only (`--only ... --keep-others`); the sections of '
                      f'{", ".join(kept)} are kept from the earlier page, measured in its run.')
    else:
        total_note = ''
    mode = TIERS[tier]
    return f"""# Benchmarks

Every figure on this page comes from one run of `python bench/run_all.py{TIER_FLAGS[tier]}`, which ran
each benchmark below as its own process, one after another, and wrote this page. Peers were measured in the same
run on the same machine, so the ratios hold better than the absolute times (this machine is shared and noisy).
`tox -e bench` installs the peers (HistomicsTK, batchbald-redux) and runs it; each script also runs alone (see
`bench/README.md`).

{mode}

Run on {info['date']}: {info.get('cpu', '?')}, {info['cpus']} CPUs, {info.get('memory_gib', '?')} GiB, \
{info['machine']}, Python {info['python']}, numpy {info['numpy']}; 1-minute load average at the end \
{info.get('load_average', ['?'])[0]}. Total {total / 60:.1f} minutes.{total_note}

{runs}

## Goals

{verdicts}

{chr(10).join(chr(10) + s + chr(10) for s in sections)}"""


TIERS = {
    'quick': ('**This is a `--quick` run**: smaller sizes, fewer seeds and smaller budgets, so several goals cannot '
              'be judged here (they say why); the standard run, `python bench/run_all.py`, is the one to quote.'),
    'standard': ('This is the standard tier: each benchmark ran with the arguments its row shows, fewer seeds and '
                 'sizes than its largest, so the intervals are wider and some sizes and goals (the 25 MP and 1 GP '
                 'slides with the segments\' memory goal over slide sizes, the H&E product loop, the latency and '
                 'painting benchmarks at 1 M segments, ranking on request at 1 M segments) are left to '
                 '`python bench/run_all.py --full` (hours).'),
    'full': 'This is the full tier (`--full`, hours): every script ran at its largest.',
}
TIER_FLAGS = {'quick': ' --quick', 'standard': '', 'full': ' --full'}


def _table_with_rows(headers: list[str], rows: list, align: str) -> str:
    """A markdown table whose rows are cell lists or rows kept verbatim from an earlier page."""
    lines = table(headers, [], align).splitlines()
    for row in rows:
        lines.append(row if isinstance(row, str) else table(headers, [row], align).splitlines()[-1])
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    tiers = parser.add_mutually_exclusive_group()
    tiers.add_argument('--quick', action='store_true',
                       help='every benchmark at its smallest (about 9 minutes on 2 cores)')
    tiers.add_argument('--full', action='store_true',
                       help='every benchmark at its largest, its full arguments in BENCHMARKS (hours)')
    parser.add_argument('--only', nargs='+', choices=[b.name for b in BENCHMARKS],
                        help='run only these (the page then holds only them)')
    parser.add_argument('--keep-others', action='store_true',
                        help='with --only: keep the other benchmarks\' sections, goals and files from the page as it '
                             'was, instead of leaving them out')
    parser.add_argument('--bench-args', default='',
                        help='with --only: more arguments for the chosen benchmarks, e.g. "--seeds 5" (the page '
                             'shows what each section ran)')
    parser.add_argument('--out', type=Path, default=ROOT / 'docs' / 'benchmarks.md', help='the page to write')
    parser.add_argument('--work', type=Path, default=ROOT / 'bench-output' / 'report',
                        help='where the benchmarks write their sections and logs')
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    if args.work.exists():
        shutil.rmtree(args.work)
    logs = args.work / 'logs'
    logs.mkdir(parents=True)
    elapsed = stopwatch()
    if args.bench_args and not args.only:
        parser.error('--bench-args needs --only')
    extra = tuple(shlex.split(args.bench_args))
    tier = 'quick' if args.quick else 'full' if args.full else 'standard'
    outcomes = [run(benchmark, tier, args.work, logs, extra) for benchmark in chosen]
    total = elapsed()
    others = [b for b in BENCHMARKS if b not in chosen]
    kept = kept_parts(args.out.read_text(), others) if args.keep_others and args.out.exists() else {}
    args.out.write_text(page(outcomes, tier, args.work, args.out, total, kept))
    print(f'\n{args.out} written; {sum(o["complete"] for o in outcomes)}/{len(outcomes)} benchmarks complete in '
          f'{total / 60:.1f} minutes ({datetime.datetime.now():%H:%M})')
    return 0 if all(o['complete'] for o in outcomes) else 1


if __name__ == '__main__':
    sys.exit(main())
