"""The child process of a training round: the same engine calls as in the server, in its own interpreter.

A CNN on masked patches trains for minutes and holds its patches and tensors in memory; in a child process that
cannot slow the Girder server's requests or take it down. With the ``girder_worker`` executor (production) the linear
head's rounds run here too, so that the web server never loads torch, and a CNN's rounds run here on a worker
(``tasks.train_round``).

Reads one JSON object on stdin: the pipeline configuration, the model, each slide's store and labels, and the
round's ``outputs`` (where to store its ranked suggestions and retrieval index, see ``store_outputs``), and with
``rankOnly`` ranks those outputs' functions for the latest round and trains nothing; on a worker
also each slide's ``previous`` round to start from and where to ``export`` the new one, the index being left to the
server. Writes the stores' new round numbers, the round's metrics and each slide's prediction change as one JSON
line on stdout; an engine error is one ``Error: ...`` line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import logging
import sys

logger = logging.getLogger(__name__)


def store_outputs(stores: list, rep, outputs: dict) -> None:
    """At the end of a round, in the process that trained it (this child for a CNN, the server's round thread for
    the linear head, whose training already reads every embedding there): rank the candidates for the acquisition
    functions ``outputs`` names (every one when it names none) and build each slide's retrieval index, so that
    requests only read them. A function that cannot rank (no feature vectors for Coreset) is logged and left to
    rank on request, where it fails as it always did."""
    from ...core.acquisition.ranking_store import store_rankings

    failed = store_rankings(outputs['rankings'], stores, outputs['seed'], rep, outputs['extractor'],
                            outputs['mc_samples'], outputs['batch'], outputs.get('functions'))
    for certainty, reason in failed.items():
        logger.info('No stored ranking for %s: %s', certainty, reason)
    if outputs.get('index', True):
        build_indexes(stores, outputs['extractor'])


def build_indexes(stores: list, extractor: str) -> None:
    """Each slide's retrieval index of its ``extractor`` vectors, unless it has none or it is current."""
    from ...core.errors import HistomicsLabelError
    from ...core.io.store import SlideStore
    from ...core.retrieval import stored_index

    for path, _ in stores:
        with SlideStore(path) as store:
            indexed = extractor in store.feature_names()
        try:
            if indexed:
                stored_index.build(path, extractor)
        except HistomicsLabelError as exc:  # the round stands; a search builds the index or says why it cannot
            logger.info('No retrieval index for %s: %s', path, exc)


def main() -> int:
    import numpy as np

    from ...core.errors import HistomicsLabelError
    from ...core.io.labels import Category, LabelSet
    from ...core.io.store import adopt_round, export_latest_round
    from ...core.pipeline import PipelineConfig, model_options, representation
    from ...core.rounds import train_slides_round

    try:
        request = json.load(sys.stdin)
        pipeline = PipelineConfig(**request['pipeline'])
        slides = []
        for slide in request['slides']:
            if slide.get('previous'):  # on a worker: the server's latest round, into the store's copy
                adopt_round(slide['store'], slide['previous'])
            categories = [Category(c['name'], c['color'], c['excluded']) for c in slide['categories']]
            slides.append((slide['store'], LabelSet(categories, slide['segment_ids'], slide['category_index'])))
        rep = representation(pipeline)
        if request.get('rankOnly'):  # after a round: the functions it left, with no training
            store_outputs(slides, rep, request['outputs'])
            print(json.dumps({'ranked': request['outputs'].get('functions')}))
            return 0
        audited = request.get('audited')
        records = train_slides_round(slides, rep, request['model'], model_options(pipeline),
                                     audited=None if audited is None else [np.asarray(ids, np.int64)
                                                                           for ids in audited])
        store_outputs(slides, rep, request['outputs'])
        for slide in request['slides']:
            if slide.get('export'):  # on a worker: the new round, for the server's store
                export_latest_round(slide['store'], slide['export'])
    except (HistomicsLabelError, KeyError, TypeError, ValueError) as exc:
        print(f'Error: {exc}', file=sys.stderr)
        return 2
    print(json.dumps({'numbers': [record.number for record in records], 'metrics': records[0].metrics,
                      'slideChanges': [record.metrics.get('slide_predictions_changed') for record in records]}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
