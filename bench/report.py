"""What every benchmark script writes for the benchmarks page (``bench/run_all.py`` → ``docs/benchmarks.md``).

A script given ``--report DIR`` writes, besides printing its figures:

* ``DIR/<name>.md``: its section of the page, starting with a ``## `` title: what was run, markdown tables of the
  figures, plots as ``![...](<name>-<what>.png)`` (paths relative to ``DIR``), and how to read them;
* ``DIR/<name>-<what>.png``: its plots;
* ``DIR/<name>.json``: every figure;
* ``DIR/<name>.goals.json``: one entry per goal of the issue it measures, each computed from the figures of this
  run (never written by hand): what the goal is, what was measured, whether it was met, and when it was not, by
  how much it falls short and what limits it.

This module holds the few helpers they share, so that the page reads as one.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Goal:
    """One goal of the benchmarks issue and this run's verdict on it."""

    goal: str  # e.g. "tiled SLIC throughput ≥ 1.5× HistomicsTK's"
    measured: str  # e.g. "1.80× (16.9 s against 30.4 s)"
    met: bool
    note: str = ''  # when not met: by how much it falls short and what limits it


def machine() -> dict:
    """The machine and software a run measured on."""
    import numpy

    info = {'date': str(datetime.date.today()), 'cpus': os.cpu_count(), 'machine': platform.machine(),
            'python': platform.python_version(), 'numpy': numpy.__version__}
    try:
        with open('/proc/cpuinfo') as handle:
            names = [line.split(':', 1)[1].strip() for line in handle if line.startswith('model name')]
        info['cpu'] = names[0] if names else platform.processor()
    except OSError:
        info['cpu'] = platform.processor()
    try:
        with open('/proc/meminfo') as handle:
            total_kb = int(next(line for line in handle if line.startswith('MemTotal')).split()[1])
        info['memory_gib'] = round(total_kb / 2**20, 1)
    except (OSError, StopIteration):
        pass
    try:
        info['load_average'] = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        pass
    return info


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str | None = None) -> str:
    """A markdown table; ``align`` is one letter per column, ``l`` or ``r`` (default: first left, rest right)."""
    align = align or 'l' + 'r' * (len(headers) - 1)
    rule = ['---:' if a == 'r' else '---' for a in align]
    lines = ['| ' + ' | '.join(headers) + ' |', '| ' + ' | '.join(rule) + ' |']
    lines += ['| ' + ' | '.join('' if cell is None else str(cell) for cell in row) + ' |' for row in rows]
    return '\n'.join(lines)


def figure(width: float = 7.0, height: float = 4.0):
    """A matplotlib figure and axes drawn off screen (no display here)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=110)


def save_plot(fig, directory: Path, name: str, what: str) -> str:
    """Save ``fig`` as ``<directory>/<name>-<what>.png``; returns the file name for the section's markdown."""
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    file_name = f'{name}-{what}.png'
    fig.tight_layout()
    fig.savefig(directory / file_name)
    plt.close(fig)
    return file_name


def write_report(directory: Path, name: str, markdown: str, figures: dict, goals: Sequence[Goal]) -> None:
    """Write the section, its figures and its goals (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f'{name}.md').write_text(markdown.strip() + '\n')
    (directory / f'{name}.json').write_text(json.dumps({'machine': machine(), **figures}, indent=1, default=str))
    (directory / f'{name}.goals.json').write_text(json.dumps([asdict(goal) for goal in goals], indent=1))


def print_total(seconds: float) -> None:
    """The run's last line: how long it took and how busy the machine was at the end."""
    print(f'\ntotal {seconds:.0f} s (load average at the end {os.getloadavg()[0]:.1f})')


def publish(figures: dict, json_path: Path | None, directory: Path | None, name: str,
            section: Callable[[Path], str], goals: Sequence[Goal]) -> None:
    """What a script does with its figures once it has printed them: ``--json`` writes them all to ``json_path``;
    ``--report`` writes its section into ``directory`` (``section(directory)`` returns the markdown, saving its
    plots there) with ``write_report``, and prints each goal's verdict."""
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(figures, indent=2, default=str))
    if directory:
        write_report(directory, name, section(directory), figures, goals)
        for goal in goals:
            print(f"goal: {goal.goal}: {'met' if goal.met else 'NOT met'} ({goal.measured})")
