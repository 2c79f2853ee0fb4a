"""The child process of a segment job: segments and features of one slide, progress as Slicer tags on stdout.

Run as ``python -m histomics_label.jobs.workers.segments '<PipelineConfig as JSON>' [rows per part]``; an engine
error is one ``Error: ...`` line on stderr and exit code 2, as the Slicer CLI does. With a number of rows per part, a
slide of more segments than that gets its segments only: its features are computed in parts on several workers
(``workers.feature_part``).
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    from ...core.errors import HistomicsLabelError
    from ...core.io.store import SlideStore
    from ...core.pipeline import PipelineConfig, ensure_segments, run_pipeline
    from ...core.progress import SlicerProgress, StagedProgress

    if len(argv) not in (2, 3):
        print('Error: give the pipeline configuration as one JSON argument, and rows per part', file=sys.stderr)
        return 2
    try:
        config = PipelineConfig(**json.loads(argv[1]))
        if len(argv) == 3:
            config.validate()
            progress = SlicerProgress()
            ensure_segments(config, config.slide_reader(), StagedProgress(progress, {'segments': 4, 'rest': 6})
                            .stage('segments'))
            with SlideStore(config.store) as store:
                count = store.n_segments
            if count > int(argv[2]):
                print(f'Finished: {count} segments; their features are left to parts', file=sys.stderr)
                return 0
        result = run_pipeline(config, None, SlicerProgress())
    except (HistomicsLabelError, TypeError, ValueError) as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(f'Finished: {result.n_segments} segments', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
