"""The child process of a CNN training round: the same engine call as in the server, in its own interpreter.

A CNN on masked patches trains for minutes and holds its patches and tensors in memory; in a child process that
cannot slow the Girder server's requests or take it down. Reads one JSON object on stdin (the pipeline
configuration, the model and each slide's store and labels) and writes the stores' new round numbers, the
round's metrics and each slide's prediction change as one JSON line on stdout; an engine error is one ``Error: ...``
line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    from ...core.errors import HistomicsLabelError
    from ...core.io.labels import Category, LabelSet
    from ...core.pipeline import PipelineConfig, model_options, representation
    from ...core.rounds import train_slides_round

    try:
        request = json.load(sys.stdin)
        pipeline = PipelineConfig(**request['pipeline'])
        slides = []
        for slide in request['slides']:
            categories = [Category(c['name'], c['color'], c['excluded']) for c in slide['categories']]
            slides.append((slide['store'], LabelSet(categories, slide['segment_ids'], slide['category_index'])))
        records = train_slides_round(slides, representation(pipeline), request['model'], model_options(pipeline))
    except (HistomicsLabelError, KeyError, TypeError, ValueError) as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({'numbers': [record.number for record in records], 'metrics': records[0].metrics,
                      'slideChanges': [record.metrics.get('slide_predictions_changed') for record in records]}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
