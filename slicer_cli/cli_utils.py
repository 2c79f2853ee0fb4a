"""Plumbing shared by the Slicer CLI tasks in this folder: reading the arguments their XML spec declares, turning
vector arguments into lists, choosing the progress reporter, and the run → "Error: ..." / exit code 2 contract.

The tasks run as scripts (``python slicer_cli/<Name>/<Name>.py``, which is also how
``slicer_cli_web.cli_list_entrypoint`` and the Docker image start them), so this module is not part of a package:
each entry point puts this folder on ``sys.path`` and imports it as ``cli_utils``.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

Result = TypeVar('Result')


def parse_args(xml_path: Path, argv: list[str] | None = None) -> Namespace:
    """Parse ``argv`` (default: ``sys.argv``) against the task's XML spec; ``--xml`` prints the spec and exits."""
    import logging

    from ctk_cli import CLIArgumentParser

    # ctk_cli warns about slicer_cli_web's own XML attributes (``reference``) that it does not use.
    logging.getLogger('ctk_cli.module').setLevel(logging.ERROR)
    return CLIArgumentParser(str(xml_path)).parse_args(argv)


def strings(values: str | Iterable | None) -> list[str]:
    """The items of a vector argument, stripped and without blanks: ctk_cli gives a list (items not stripped),
    a caller in Python may give one comma-separated string."""
    if not values:
        return []
    if isinstance(values, str):
        values = values.split(',')
    return [str(v).strip() for v in values if str(v).strip()]


def integers(values: str | Iterable | None) -> list[int]:
    """The items of an integer vector argument (segment ids) as ints."""
    return [int(v) for v in strings(values)]


def progress_reporter(args: Namespace):
    """Slicer ``<filter-progress>`` tags for the job panel (``--progress``, or output not to a terminal), else a
    terminal progress bar."""
    from histomics_label.core.progress import SlicerProgress, TerminalProgress

    if args.progress or not sys.stdout.isatty():
        return SlicerProgress()
    return TerminalProgress()


def main(xml_path: Path, run: Callable[[Namespace], Result], finished: Callable[[Result], str],
         argv: list[str] | None = None) -> int:
    """Parse the arguments and run the task. An error the engine reports (a ``HistomicsLabelError``: bad input,
    missing files) prints ``Error: ...`` and returns exit code 2, which the DSA job panel shows; success prints
    ``Finished: <finished(result)>`` and returns 0. Anything else is a bug and keeps its traceback."""
    from histomics_label.core.errors import HistomicsLabelError

    args = parse_args(xml_path, argv)
    try:
        result = run(args)
    except HistomicsLabelError as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'Finished: {finished(result)}', file=sys.stderr)
    return 0
