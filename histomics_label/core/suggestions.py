"""Ranking the unlabeled segments most worth labeling next, with what each acquisition function needs.

Candidates are the segments nobody has labeled; a segment labeled with an excluded category is labeled, so it is
never suggested, and the model never predicts an excluded category because it never trains on one. Functions that
need more than probabilities say so in ``needs``: posterior ``samples`` (BatchBALD) come from the round's model,
``embeddings`` (Coreset, diversity, cold start) from the stored feature vectors, ``labeled`` is the labeled mask.
"""

from __future__ import annotations

import numpy as np

from .acquisition import AcquisitionFunction, acquisition_functions
from .errors import ConfigurationError
from .labels import LabelSet
from .representations import Representation
from .rounds import round_model, sample_all
from .store import RoundRecord, SlideStore

MC_SAMPLES = 20
"""Posterior samples drawn for BatchBALD (as in the BatchBALD paper's experiments)."""


def suggest(store_path: str, labels: LabelSet, certainty: str, count: int, seed: int = 0,
            rep: Representation | None = None, embedding_key: str | None = None,
            mc_samples: int = MC_SAMPLES) -> list[dict]:
    """The ``count`` unlabeled segments most worth labeling next, best first, as JSON-able dicts.

    ``rep`` is the representation the round's model reads (for posterior samples); ``embedding_key`` names the
    stored feature vectors used by functions that need embeddings. Functions that do not use a model (k-means cold
    start, Coreset) suggest before the first round; their suggestions then carry no prediction. A score that is
    not finite (Coreset's first pick with nothing labeled: infinitely far from everything) is None.
    """
    function = acquisition_functions.create(certainty)
    with SlideStore(store_path) as store:
        record = store.latest_round()
        table = store.segments()
        scale = store.slide_info.scale
        labeled = np.zeros(store.n_segments, bool)
        labeled[labels.segment_ids - 1] = True
        if record is None and function.uses_model:
            raise ConfigurationError(f'{certainty!r} ranks with a trained model; train a round first, or start '
                                     'with kmeans_cold_start or coreset, which need only the embeddings')
        trained = record.model_params['classes'] if record is not None else []
        probabilities = record.probabilities[:, trained] if record is not None else None
        context = _context(function, store, record, rep, embedding_key, labeled, mc_samples, seed)
    selection = function.select(probabilities, ~labeled, count, seed=seed, **context)
    result = []
    for rank, (row, score) in enumerate(zip(selection.rows, selection.scores, strict=True)):
        x0, y0, x1, y1 = (int(v) for v in table.bbox[row])
        suggestion = {'rank': rank + 1, 'segment': int(row + 1),
                      'score': float(score) if np.isfinite(score) else None, 'predicted': None,
                      'probabilities': {}, 'bbox': [x0, y0, x1, y1],
                      'bbox_base': [round(v * scale) for v in (x0, y0, x1, y1)],
                      'centroid': [float(v) for v in table.centroid[row]]}
        if record is not None:
            names = [record.categories[c]['name'] for c in trained]
            suggestion['predicted'] = names[int(probabilities[row].argmax())]
            suggestion['probabilities'] = {name: float(p) for name, p in zip(names, probabilities[row], strict=True)}
        result.append(suggestion)
    return result


def _context(function: AcquisitionFunction, store: SlideStore, record: RoundRecord | None,
             rep: Representation | None, embedding_key: str | None, labeled: np.ndarray, mc_samples: int,
             seed: int) -> dict:
    context = {}
    for need in function.needs:
        if need == 'labeled':
            context['labeled'] = labeled
        elif need == 'embeddings':
            if not embedding_key or embedding_key not in store.feature_names():
                raise ConfigurationError(f'{function.name!r} compares segments by their embeddings; compute '
                                         'feature vectors first (--feature vector)')
            context['embeddings'] = store.features(embedding_key)
        elif need == 'samples':
            if rep is None or record is None:
                raise ConfigurationError(f'{function.name!r} needs a trained model to draw posterior samples')
            samples = sample_all(round_model(record), rep, store, mc_samples, seed)
            context['samples'] = samples
        else:
            raise ConfigurationError(f'{function.name!r} needs {need!r}, which the pipeline cannot provide')
    return context

