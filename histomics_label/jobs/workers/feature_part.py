"""The child process of a feature part: one range of a store's rows, computed into a part file
(``core.features.parts``), progress as Slicer tags on stdout.

Run as ``python -m histomics_label.jobs.workers.feature_part '<PipelineConfig as JSON>' START STOP PART``: the
configuration names the slide (and an imported segment-id image) and the store of segments only; an engine error is
one ``Error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys

from .errors import engine_exit


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print('Error: give the pipeline configuration as JSON, the first and past-last rows, and the part\'s path',
              file=sys.stderr)
        return 2
    return engine_exit(lambda: compute(json.loads(argv[1]), (int(argv[2]), int(argv[3])), argv[4]))


def compute(pipeline: dict, rows: tuple[int, int], part: str) -> str:
    from ...core.features.parts import compute_part
    from ...core.pipeline import PipelineConfig, representation
    from ...core.progress import SlicerProgress

    config = PipelineConfig(**pipeline)
    config.validate()
    compute_part(representation(config), config.slide_reader(), config.store, rows, part, SlicerProgress())
    return f'rows {rows[0]} to {rows[1]}'


if __name__ == '__main__':
    sys.exit(main(sys.argv))
