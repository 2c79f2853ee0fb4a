"""The child process of a segment job: segments and features of one slide, progress as Slicer tags on stdout.

Run as ``python -m histomics_label.jobs.workers.segments '<PipelineConfig as JSON>' [rows per part]``; an engine
error is one ``Error: ...`` line on stderr and exit code 2, as the Slicer CLI does. With a number of rows per part, a
slide of more segments than that gets its segments only: its features are computed in parts on several workers
(``workers.feature_part``).
"""

from __future__ import annotations

import json
import sys

from .errors import engine_exit


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print('Error: give the pipeline configuration as one JSON argument, and rows per part', file=sys.stderr)
        return 2
    return engine_exit(lambda: make(json.loads(argv[1]), int(argv[2]) if len(argv) == 3 else None))


def make(pipeline: dict, rows_per_part: int | None) -> str:
    from ...core.io.store import SlideStore
    from ...core.pipeline import PipelineConfig, ensure_segments, run_pipeline
    from ...core.progress import SlicerProgress, StagedProgress

    config = PipelineConfig(**pipeline)
    progress = SlicerProgress()
    if rows_per_part is not None:
        config.validate()
        ensure_segments(config, config.slide_reader(), StagedProgress(progress, {'segments': 4, 'rest': 6})
                        .stage('segments'))
        with SlideStore(config.store) as store:
            count = store.n_segments
        if count > rows_per_part:
            return f'{count} segments; their features are left to parts'
    return f'{run_pipeline(config, None, progress).n_segments} segments'


if __name__ == '__main__':
    sys.exit(main(sys.argv))
