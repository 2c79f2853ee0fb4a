"""The reason a worker child process (``workers.segments``, ``workers.feature_part``, ``workers.rounds``) gave for
failing, and how the first two end.

The children print ``Error: <why>`` on stderr when the engine refuses its input (the same line the Slicer CLI prints),
after whatever libraries logged; a crash prints a traceback instead. The job or round shows the worker's own reason
when there is one, else the last thing it wrote, else its exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable


def child_error(stderr: Iterable[str], returncode: int, what: str) -> str:
    """The message for a child that exited with ``returncode``: its last ``Error:`` line without the prefix, its last
    stderr line, or "``what`` exited with code N"."""
    lines = [line.strip() for line in stderr if line.strip()]
    reason = next((line for line in reversed(lines) if line.startswith('Error:')), lines[-1] if lines else '')
    return reason.removeprefix('Error: ') or f'{what} exited with code {returncode}'


def engine_exit(step: Callable[[], str]) -> int:
    """Run a child's engine ``step`` (which returns what it made, for the ``Finished:`` line); its exit code: 2 with
    one ``Error:`` line when the engine refused its input, as the Slicer CLI does."""
    from ...core.errors import HistomicsLabelError

    try:
        made = step()
    except (HistomicsLabelError, TypeError, ValueError) as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'Finished: {made}', file=sys.stderr)
    return 0
