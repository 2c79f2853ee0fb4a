"""Run the child process of a slide's segments (``workers.segments``: its Slicer progress tags reported as they come),
of a part of its features (``workers.feature_part``) or of a round (``workers.rounds``) and follow it, killed as
soon as the caller says the work must stop.

Both executors use it: the Girder server's queue (``jobs.segments``) and a girder_worker task (``workers.tasks``). It
imports neither girder nor the engine, so a worker machine runs it with the plugin's package alone.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from contextlib import suppress

from .errors import child_error

_PROGRESS = re.compile(r'<filter-progress>([0-9.]+)</filter-progress>')
_COMMENT = re.compile(r'<filter-comment>(.*?)</filter-comment>')

Report = Callable[[float, str], None]
"""``report(fraction done, message)``."""
StopReason = Callable[[], 'str | None']
"""Why the work must stop now, or None."""


class ChildFailed(RuntimeError):
    """The child exited non-zero; the message is its own reason (``child_error``)."""


def dies_with_parent() -> None:
    """``preexec_fn`` for a child process: the kernel kills it when the process that started it dies (a ``kill -9``
    included), so that work queued again after a restart (of Girder, or of a worker) never runs beside an orphan of
    itself."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def run_segments_child(pipeline: dict, report: Report, stop_reason: StopReason, poll_s: float = 1.0,
                       rows_per_part: int | None = None) -> str | None:
    """Make the segments and features ``pipeline`` (a ``PipelineConfig`` as a dict) asks for in a child interpreter
    that dies with this process; with ``rows_per_part``, only the segments of a slide with more segments than that
    (``workers.segments``).

    Returns None when it finished, or the reason it was stopped (it was killed: ``stop_reason`` gave one); raises
    ``ChildFailed`` when it failed.
    """
    extra = [] if rows_per_part is None else [str(rows_per_part)]
    return follow_child([sys.executable, '-m', 'histomics_label.jobs.workers.segments', json.dumps(pipeline), *extra],
                        None, _slicer_lines(report, 'segments'), stop_reason, poll_s, 'the pipeline')


def run_feature_part_child(pipeline: dict, rows: tuple[int, int], part: str, report: Report, stop_reason: StopReason,
                           poll_s: float = 1.0) -> str | None:
    """Compute the features of the store's ``rows`` into the part file ``part`` (``workers.feature_part``) in a
    child interpreter that dies with this process; returns and raises as ``run_segments_child``."""
    command = [sys.executable, '-m', 'histomics_label.jobs.workers.feature_part', json.dumps(pipeline),
               str(rows[0]), str(rows[1]), part]
    return follow_child(command, None, _slicer_lines(report, 'features'), stop_reason, poll_s, 'the feature part')


def _slicer_lines(report: Report, first_message: str) -> Callable[[str], None]:
    """What reads a child's Slicer progress tags, reporting each fraction with the latest comment."""
    message = [first_message]

    def on_line(line: str) -> None:
        comment = _COMMENT.search(line)
        if comment:
            message[0] = comment.group(1)
        progress = _PROGRESS.search(line)
        if progress:
            report(float(progress.group(1)), message[0])
    return on_line


def run_round_child(request: dict, stop_reason: StopReason, poll_s: float = 1.0) -> dict | str:
    """Train a round (``workers.rounds``: its ``request`` and answer) in a child interpreter that dies with this
    process; returns the child's answer, or the reason it was stopped; raises ``ChildFailed`` when it failed."""
    lines: list[str] = []
    stopped = follow_child([sys.executable, '-m', 'histomics_label.jobs.workers.rounds'], json.dumps(request),
                           lines.append, stop_reason, poll_s, 'the round')
    return stopped if stopped else json.loads(lines[-1])


def follow_child(command: list[str], stdin: str | None, on_line: Callable[[str], None], stop_reason: StopReason,
                 poll_s: float, what: str) -> str | None:
    """Run ``command`` (``stdin`` written to it), each line of its output to ``on_line``, killed once
    ``stop_reason`` gives a reason; returns that reason, or None when it finished; raises ``ChildFailed`` when it
    failed."""
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    stopped: list[str] = []
    done = threading.Event()
    with subprocess.Popen(command, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          preexec_fn=dies_with_parent) as child:

        def watch() -> None:
            while not done.wait(poll_s):
                reason = stop_reason()
                if reason:
                    stopped.append(reason)
                    child.kill()
                    return

        errors: list[str] = []
        readers = [threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True),
                   threading.Thread(target=watch, daemon=True, name='histomics-label-child-watch')]
        for reader in readers:
            reader.start()
        try:
            if stdin is not None:
                with suppress(BrokenPipeError):  # a child that failed at once: its stderr says why
                    child.stdin.write(stdin)
                    child.stdin.close()
            for line in child.stdout:
                on_line(line)
            child.wait()
        finally:
            done.set()
            for reader in readers:
                reader.join()
    if stopped:
        return stopped[0]
    if child.returncode != 0:
        raise ChildFailed(child_error(errors, child.returncode, what))
    return None
