"""Progress reporting shared by every long step.

A step calls ``progress(done, total, message)``. The CLI turns that into Slicer's ``<filter-progress>`` lines for
the DSA job panel, or a progress bar when a person watches a terminal.
"""

from __future__ import annotations

import sys
from typing import Protocol


class Progress(Protocol):
    def __call__(self, done: int, total: int, message: str = '') -> None: ...


def no_progress(done: int, total: int, message: str = '') -> None:
    """A progress callback that reports nothing."""


class StagedProgress:
    """Maps the progress of one stage of a pipeline onto the whole pipeline's 0–1 range."""

    def __init__(self, report: Progress, stages: dict[str, float]) -> None:
        total = sum(stages.values())
        self._report = report
        self._spans: dict[str, tuple[float, float]] = {}
        start = 0.0
        for name, weight in stages.items():
            self._spans[name] = (start / total, weight / total)
            start += weight

    def stage(self, name: str) -> Progress:
        offset, span = self._spans[name]

        def report(done: int, total: int, message: str = '') -> None:
            fraction = offset + span * (done / total if total else 1.0)
            self._report(int(round(fraction * 1000)), 1000, message or name)
        return report


class SlicerProgress:
    """Writes Slicer execution-model progress tags, which slicer_cli_web shows in the job panel."""

    def __init__(self, stream=None) -> None:
        self._stream = stream or sys.stdout
        self._last = -1.0
        self._message = None

    def __call__(self, done: int, total: int, message: str = '') -> None:
        fraction = min(1.0, done / total) if total else 1.0
        if message != self._message:
            self._message = message
            self._stream.write(f'<filter-comment>{message}</filter-comment>\n')
        if fraction - self._last >= 0.005 or fraction >= 1.0:
            self._last = fraction
            self._stream.write(f'<filter-progress>{fraction:.4f}</filter-progress>\n')
            self._stream.flush()


class TerminalProgress:
    """A human-readable progress bar (tqdm) for a person running the CLI in a terminal."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=1000, unit='‰', bar_format='{desc} {bar} {percentage:3.0f}% {elapsed}')

    def __call__(self, done: int, total: int, message: str = '') -> None:
        position = int(1000 * min(1.0, done / total)) if total else 1000
        self._bar.set_description_str(message[:40].ljust(40))
        self._bar.update(position - self._bar.n)
        if position >= 1000:
            self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
