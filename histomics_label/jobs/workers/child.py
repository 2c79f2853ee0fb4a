"""Run a slide's segment child process (``workers.segments``) and follow it: its Slicer progress tags reported as
they come, killed as soon as the caller says the work must stop.

Both executors of segment work use it: the Girder server's queue (``jobs.segments``) and a girder_worker task
(``workers.tasks``). It imports neither girder nor the engine, so a worker machine runs it with the plugin's package
alone.
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


def run_segments_child(pipeline: dict, report: Report, stop_reason: StopReason, poll_s: float = 1.0) -> str | None:
    """Make the segments and features ``pipeline`` (a ``PipelineConfig`` as a dict) asks for in a child interpreter
    that dies with this process.

    Returns None when it finished, or the reason it was stopped (it was killed: ``stop_reason`` gave one); raises
    ``ChildFailed`` when it failed.
    """
    command = [sys.executable, '-m', 'histomics_label.jobs.workers.segments', json.dumps(pipeline)]
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    stopped: list[str] = []
    done = threading.Event()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
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
                   threading.Thread(target=watch, daemon=True, name='histomics-label-segments-watch')]
        for reader in readers:
            reader.start()
        try:
            message = 'segments'
            for line in child.stdout:
                comment = _COMMENT.search(line)
                if comment:
                    message = comment.group(1)
                progress = _PROGRESS.search(line)
                if progress:
                    report(float(progress.group(1)), message)
            child.wait()
        finally:
            done.set()
            for reader in readers:
                reader.join()
    if stopped:
        return stopped[0]
    if child.returncode != 0:
        raise ChildFailed(child_error(errors, child.returncode, 'the pipeline'))
    return None
