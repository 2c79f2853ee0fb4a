"""How the benchmark scripts measure: wall time of calls and blocks, and the peak memory of a child process tree.

One place for it so that every figure on the benchmarks page is taken the same way: wall seconds by
``time.perf_counter`` (monotonic, the finest clock), the fastest of repeated runs where a script repeats, and peak RSS
read the same way for every contender.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

Result = TypeVar('Result')

POLL_S = 0.05  # how often a measured process tree's RSS is sampled


def stopwatch() -> Callable[[], float]:
    """A function giving the wall seconds since this call, each time it is called (a run's total, a step's time)."""
    started = time.perf_counter()
    return lambda: time.perf_counter() - started


class Timer:
    """Wall seconds spent in ``with`` blocks: ``seconds`` sums every block run under this timer, so one timer can
    total a step repeated in a loop (``with fit_time: ...``) as well as time a single block."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def __enter__(self) -> Timer:
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds += time.perf_counter() - self._started


def timed(function: Callable[..., Result], *args: Any, **kwargs: Any) -> tuple[float, Result]:
    """``(seconds, result)`` of one call."""
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def best_of(repeat: int, function: Callable[..., Result], *args: Any, **kwargs: Any) -> tuple[float, Result]:
    """The fastest of ``repeat`` (at least one) calls' seconds, and the first call's result: on a shared machine the
    fastest run is the one least disturbed by other load."""
    best, result = timed(function, *args, **kwargs)
    for _ in range(repeat - 1):
        best = min(best, timed(function, *args, **kwargs)[0])
    return best, result


def own_peak_rss(pid: int) -> int:
    """A process's own peak RSS in bytes: ``VmHWM`` of ``/proc/PID/status`` (0 when it is gone).

    Not ``ru_maxrss``: when a process execs, Linux carries the peak RSS of the memory it replaces (its parent's,
    after a vfork) into ``ru_maxrss``, so every contender would show at least the harness's own peak."""
    try:
        with open(f'/proc/{pid}/status') as handle:
            return next((int(line.split()[1]) * 1024 for line in handle if line.startswith('VmHWM:')), 0)
    except OSError:
        return 0


def _sample_tree(process, peaks: dict[int, int]) -> int:
    """Sum of RSS over a psutil process and its live descendants (processes vanishing meanwhile count 0); records
    each member's own peak RSS so far in ``peaks`` (by pid)."""
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
            continue
        peaks[member.pid] = max(peaks.get(member.pid, 0), own_peak_rss(member.pid))
    return total


@dataclass
class ProcessRun:
    """What ``run_process`` measured of one command's process tree."""

    pid: int
    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the process and the descendants it waited for
    peak_tree_rss: int  # bytes: the largest sum of RSS over the tree at one sample
    peaks: dict[int, int] = field(default_factory=dict)  # each member's own peak RSS in bytes, by pid
    output: str = ''  # stdout and stderr together


def run_process(command: list[str], env: dict) -> ProcessRun:
    """Run ``command`` to its end, sampling its process tree's RSS every ``POLL_S`` seconds; its wall time, CPU time
    (from ``wait4``), peak tree RSS, each member's own peak and its output."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched = psutil.Process(proc.pid)
    tree_peak, peaks = [0], {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(POLL_S):
            tree_peak[0] = max(tree_peak[0], _sample_tree(watched, peaks))

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
    return ProcessRun(proc.pid, proc.returncode, wall, usage.ru_utime + usage.ru_stime, tree_peak[0], peaks,
                      ''.join(output))
