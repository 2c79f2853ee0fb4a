"""What a round's child process (``workers.rounds``) is asked to do: the project's slides, labels and settings, and
what the round stores besides its model. Rounds (``rounds``) and the rankings after them (``rankings``) both ask it.
"""

from __future__ import annotations

from dataclasses import asdict

from ..core.acquisition import ranking_store
from ..core.acquisition.suggestions import MC_SAMPLES
from ..core.io.labels import LabelSet
from ..core.pipeline import PipelineConfig
from ..projects.segmented import rankings_folder


def round_outputs(folder: dict, config: dict) -> dict:
    """What a round stores besides its model and predictions, and where: the ranked suggestions of ``functions``
    (``ranking_store.ranked_in_round``: the project's and the cheap ones; ``rankings`` ranks the rest after) in
    ``rankings``, a folder of the project's data folder, and the retrieval index of ``extractor``."""
    return {'rankings': str(rankings_folder(folder)), 'seed': config['seed'], 'extractor': config['extractor'],
            'batch': config['batchSize'], 'mc_samples': MC_SAMPLES,
            'functions': ranking_store.ranked_in_round(config['certainty'])}


def round_request(stores: list[tuple[str, LabelSet]], pipeline: PipelineConfig, model: str, outputs: dict,
                  audited: list | None) -> dict:
    """What the round child (``workers.rounds``) reads: the pipeline's settings, the model, each slide's store and
    labels, the round's ``outputs``, and ``audited``, each slide's audited segment ids (for a model that is
    cross-validated; None for a CNN)."""
    request = {'pipeline': asdict(pipeline), 'model': model, 'outputs': outputs, 'slides': [
        {'store': path, 'categories': [c.as_dict() for c in labels.categories],
         'segment_ids': labels.segment_ids.tolist(), 'category_index': labels.category_index.tolist()}
        for path, labels in stores]}
    if audited is not None:
        request['audited'] = [ids.tolist() for ids in audited]
    return request
