"""The reason a worker child process (``workers.segments``, ``workers.rounds``) gave for failing.

Both workers print ``Error: <why>`` on stderr when the engine refuses its input (the same line the Slicer CLI prints),
after whatever libraries logged; a crash prints a traceback instead. The job or round shows the worker's own reason
when there is one, else the last thing it wrote, else its exit code.
"""

from __future__ import annotations

from collections.abc import Iterable


def child_error(stderr: Iterable[str], returncode: int, what: str) -> str:
    """The message for a child that exited with ``returncode``: its last ``Error:`` line without the prefix, its last
    stderr line, or "``what`` exited with code N"."""
    lines = [line.strip() for line in stderr if line.strip()]
    reason = next((line for line in reversed(lines) if line.startswith('Error:')), lines[-1] if lines else '')
    return reason.removeprefix('Error: ') or f'{what} exited with code {returncode}'
