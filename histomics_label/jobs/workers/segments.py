"""The child process of a segment job: segments and features of one slide, progress as Slicer tags on stdout.

Run as ``python -m histomics_label.jobs.workers.segments '<PipelineConfig as JSON>'``; an engine error is one
``Error: ...`` line on stderr and exit code 2, as the Slicer CLI does.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from ...core.errors import HistomicsLabelError
    from ...core.pipeline import PipelineConfig, run_pipeline
    from ...core.progress import SlicerProgress

    if len(argv) != 2:
        print('Error: give the pipeline configuration as one JSON argument', file=sys.stderr)
        return 2
    try:
        config = PipelineConfig(**json.loads(argv[1]))
        result = run_pipeline(config, None, SlicerProgress())
    except (HistomicsLabelError, TypeError, ValueError) as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'Finished: {result.n_segments} segments', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
