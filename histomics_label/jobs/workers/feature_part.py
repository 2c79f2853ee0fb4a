"""The child process of a feature part: one range of a store's rows, computed into a part file
(``core.features.parts``), progress as Slicer tags on stdout.

Run as ``python -m histomics_label.jobs.workers.feature_part '<PipelineConfig as JSON>' START STOP PART``: the
configuration names the slide (and an imported segment-id image) and the store of segments only; an engine error is
one ``Error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from ...core.errors import HistomicsLabelError
    from ...core.features.parts import compute_part
    from ...core.pipeline import PipelineConfig, representation
    from ...core.progress import SlicerProgress

    if len(argv) != 5:
        print('Error: give the pipeline configuration as JSON, the first and past-last rows, and the part\'s path',
              file=sys.stderr)
        return 2
    try:
        config = PipelineConfig(**json.loads(argv[1]))
        config.validate()
        rows = int(argv[2]), int(argv[3])
        compute_part(representation(config), config.slide_reader(), config.store, rows, argv[4], SlicerProgress())
    except (HistomicsLabelError, TypeError, ValueError) as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'Finished: rows {rows[0]} to {rows[1]}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
