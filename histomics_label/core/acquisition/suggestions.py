"""Ranking the unlabeled segments most worth labeling next, with what each acquisition function needs.

Candidates are the segments nobody has labeled and that are not slivers (``SLIVER_SHARE``); a segment labeled with
an excluded category is labeled, so it is never suggested, nor are its near-duplicates (``NEAR_DUPLICATE_SHARE``),
and the model never predicts an excluded category because it never trains on one. Functions that need more than
probabilities say so in ``needs``: posterior ``samples`` (BatchBALD) come from the round's model, ``embeddings``
(Coreset, diversity, cold start) from the stored feature vectors, ``labeled`` is the labeled mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError
from ..features.representations import Representation
from ..io.labels import LabelSet
from ..io.store import RoundRecord, SlideStore
from ..rounds import round_model, sample_all
from . import audit
from .base import AcquisitionFunction, acquisition_functions

MC_SAMPLES = 20
"""Posterior samples drawn for BatchBALD (as in the BatchBALD paper's experiments)."""
DEFAULT_FUNCTION = 'batchbald'
"""The function a project ranks with unless its admin chooses another, and the one a cold-start function hands
over to once a model exists: the best across tasks in the product-loop benchmark (the live server driven through
its REST API with an oracle; area under the learning curve minus random's, paired by seed, mean over the DSB2018
and H&E tasks: +0.020 [+0.006, +0.034], the only interval above 0; entropy_diverse +0.015, negative_entropy
-0.004, which falls below random on H&E), as in the offline engine's benchmark."""
COLD_START = 'kmeans_cold_start'
"""What ranks before the first model when the project's function needs one: segments typical of the groups the
embeddings form, so the first labels cover the slide instead of waiting for a model that cannot exist yet."""
SLIVER_SHARE = 0.1
"""Segments smaller than this share of their slide's median segment are never suggested: the slivers tiles, tissue
edges and pen marks leave (at most a few pixels; a tenth of the median parts them from real segments on the sample
slide) are not worth an expert's look. They are still predicted and may be labeled."""
NEAR_DUPLICATE_SHARE = 0.005
"""A segment labeled with an excluded category (not classifiable, pen, background) takes this share of the
project's segments nearest to it in the embeddings (at least one, at most ``MAX_NEAR_DUPLICATES``) out of the
suggestions with it: a labeler who said "artifact" once should not be asked about its copies."""
MAX_NEAR_DUPLICATES = 100
TORN = 0.25
"""A second category at least this likely makes a suggestion one the model is torn about."""
SURE = 0.8
"""A prediction at least this likely is not called unsure."""


def suggest(store_path: str, labels: LabelSet, certainty: str, count: int, seed: int = 0,
            rep: Representation | None = None, embedding_key: str | None = None,
            mc_samples: int = MC_SAMPLES) -> list[dict]:
    """The ``count`` unlabeled segments most worth labeling next, best first, as JSON-able dicts.

    ``rep`` is the representation the round's model reads (for posterior samples); ``embedding_key`` names the
    stored feature vectors used by functions that need embeddings. Functions that do not use a model (k-means cold
    start, Coreset) suggest before the first round; their suggestions then carry no prediction. A score that is
    not finite (Coreset's first pick with nothing labeled: infinitely far from everything) is None.
    """
    found = suggest_across([(store_path, labels)], certainty, count, seed, rep, embedding_key, mc_samples)
    for suggestion in found:
        del suggestion['slide']
    return found


def suggest_across(slides: Sequence[tuple[str, LabelSet]], certainty: str, count: int, seed: int = 0,
                   rep: Representation | None = None, embedding_key: str | None = None,
                   mc_samples: int = MC_SAMPLES, audit_keys: Sequence[str] | None = None,
                   audit_every: int = audit.AUDIT_EVERY) -> list[dict]:
    """``suggest`` over the segments of several slides at once (a project): one ranking of all their unlabeled
    segments, each suggestion naming its ``slide`` (the index into ``slides``).

    Functions that use a model rank the slides whose latest round was trained on the same categories as the
    first such slide's; a slide without a round (segmented after the last training) waits for the next round.
    Before the first round they cannot rank at all, and ``COLD_START`` ranks instead, by itself: a new project
    gets suggestions at once; a project configured with a cold-start function switches to ``DEFAULT_FUNCTION``
    by itself once a model exists. Each suggestion names the ``strategy`` that ranked it and, in words, the ``reason``.

    With ``audit_keys`` (one stable key per slide), the last suggestions of a batch come from the audit sample
    (``audit.next_picks``: about one label in ``audit_every``), with ``strategy`` ``'audit'``.
    """
    function, parts, cold = resolve_function(certainty, slide_parts(slides), embedding_key)
    labeled = np.concatenate([part.labeled for part in parts])
    probabilities = model_probabilities(function, parts, cold)
    context = function_context(function, parts, rep, embedding_key, mc_samples, seed)
    candidates = candidate_mask(parts) & ~near_excluded(parts, embedding_key, context.get('embeddings'))
    audit_rows = audit_picks(parts, candidates, count, audit_keys, audit_every)
    selection = function.select(probabilities, candidates, count - len(audit_rows), seed=seed, labeled=labeled,
                                **context)
    filled = fill(selection.rows, candidates, count - len(audit_rows), seed)
    rows = np.concatenate([selection.rows, filled, audit_rows]).astype(np.int64)
    scores = np.concatenate([selection.scores, np.full(len(filled) + len(audit_rows), np.nan)])
    strategies = [function.name] * len(selection.rows) + [FILL] * len(filled) + ['audit'] * len(audit_rows)
    return describe(parts, rows, scores, strategies)


def slide_parts(slides: Sequence[tuple[str, LabelSet]]) -> list[_SlidePart]:
    """What ranking needs of each slide (``_SlidePart``), in the order of ``slides``."""
    return [_slide_part(position, store_path, labels) for position, (store_path, labels) in enumerate(slides)]


def resolve_function(certainty: str, parts: list[_SlidePart],
                     embedding_key: str | None) -> tuple[AcquisitionFunction, list[_SlidePart], bool]:
    """The function that ranks now, the parts it ranks and whether it is the cold start (no model yet).

    A cold-start function hands over to ``DEFAULT_FUNCTION`` once a model exists; a model-based function with no
    model anywhere hands over to ``COLD_START``; a model-based function ranks only the slides whose latest round
    was trained on the same categories as the first such slide's."""
    function = acquisition_functions.create(certainty)
    if function.cold_start and any(part.record is not None for part in parts):
        function = acquisition_functions.create(DEFAULT_FUNCTION)
    cold = function.uses_model and all(part.record is None for part in parts)
    if cold:
        function = _cold_start(parts, embedding_key)
    elif function.uses_model:
        ranked = [part for part in parts if part.record is not None]
        trained = ranked[0].record.model_params['classes']
        names = [ranked[0].record.categories[c]['name'] for c in trained]
        parts = [part for part in ranked if [part.record.categories[c]['name'] for c in
                                             part.record.model_params['classes']] == names]
    return function, parts, cold


def model_probabilities(function: AcquisitionFunction, parts: list[_SlidePart], cold: bool) -> np.ndarray | None:
    """The parts' probabilities over the trained classes, slide after slide; None for a model-free function."""
    if cold and function.uses_model:
        return np.ones((sum(len(part.labeled) for part in parts), 1))  # random reads only how many there are
    if function.uses_model:
        return np.concatenate([part.record.probabilities[:, part.record.model_params['classes']]
                               for part in parts])
    return None


def candidate_mask(parts: list[_SlidePart]) -> np.ndarray:
    """Over the parts' segments, those that may be suggested: unlabeled and not slivers."""
    return ~np.concatenate([part.labeled for part in parts]) & ~np.concatenate([part.slivers for part in parts])


def part_offsets(parts: list[_SlidePart]) -> np.ndarray:
    """Where each part's rows start in the concatenation of the parts' segments (and the total, last)."""
    return np.cumsum([0] + [len(part.labeled) for part in parts]).astype(np.int64)


def audit_picks(parts: list[_SlidePart], candidates: np.ndarray, count: int, audit_keys: Sequence[str] | None,
                audit_every: int) -> np.ndarray:
    """Rows (over the parts) of the audit suggestions among ``count``, taken out of ``candidates`` in place; none
    without ``audit_keys``."""
    if audit_keys is None:
        return np.zeros(0, np.int64)
    labeled_total = int(sum(part.labeled.sum() for part in parts))
    members = [audit.AuditSlide(audit_keys[part.position], part.labeled, ~part.slivers) for part in parts]
    found = audit.next_picks(members, count, labeled_total, audit_every)
    if not len(found):
        return np.zeros(0, np.int64)
    rows = part_offsets(parts)[found[:, 0]] + found[:, 1]
    candidates[rows] = False
    return rows.astype(np.int64)


def describe(parts: list[_SlidePart], rows: np.ndarray, scores: np.ndarray, strategies: Sequence[str]) -> list[dict]:
    """The suggestions at ``rows`` (over the parts) as JSON-able dicts, best first: box and centroid read for these
    rows only, the prediction from each slide's latest round, and the reason in words."""
    offsets = part_offsets(parts)
    picks = [(int(np.searchsorted(offsets, row, side='right')) - 1, row) for row in rows]
    tables = {}
    for index in {index for index, _ in picks}:
        local_rows = sorted({int(row - offsets[index]) for i, row in picks if i == index})
        with SlideStore(parts[index].store_path) as store:
            table = store.segments(np.array(local_rows, np.int64))
        tables[index] = {r: (table.bbox[k], table.centroid[k]) for k, r in enumerate(local_rows)}
    result = []
    for rank, ((index, row), score, strategy) in enumerate(zip(picks, scores, strategies, strict=True)):
        part, local = parts[index], int(row - offsets[index])
        bbox, centroid = tables[index][local]
        x0, y0, x1, y1 = (int(v) for v in bbox)
        suggestion = {'rank': rank + 1, 'slide': part.position, 'segment': local + 1,
                      'score': float(score) if np.isfinite(score) else None, 'strategy': strategy,
                      'reason': REASONS.get(strategy), 'predicted': None, 'probabilities': {},
                      'bbox': [x0, y0, x1, y1],
                      'bbox_base': [round(v * part.scale) for v in (x0, y0, x1, y1)],
                      'centroid': [float(v) for v in centroid]}
        if part.record is not None:
            classes = part.record.model_params['classes']
            names = [part.record.categories[c]['name'] for c in classes]
            predicted = part.record.probabilities[local, classes]
            suggestion['predicted'] = names[int(predicted.argmax())]
            suggestion['probabilities'] = {name: float(p) for name, p in zip(names, predicted, strict=True)}
            if suggestion['reason'] is None:
                suggestion['reason'] = uncertainty_reason(suggestion['probabilities'], strategy)
        result.append(suggestion)
    return result


FILL = 'random_fill'
"""The strategy of suggestions drawn at random to complete a batch that the function left short (BatchBALD never
picks a segment the model cannot tell from one already in the batch, and a weak model cannot tell many apart)."""


AWAITING_ROUND = 'random_until_round'
"""The strategy of suggestions drawn at random because the function's ranking is a round's work and no round has
ranked the slides as they are now (``ranking_store.ranking_for``)."""


def fill(chosen: np.ndarray, candidates: np.ndarray, wanted: int, seed: int) -> np.ndarray:
    """Seeded random candidates not ``chosen``, as many as the batch still lacks: a labeler who asked for eight
    suggestions gets eight while unlabeled segments remain."""
    remaining = candidates.copy()
    remaining[chosen] = False
    short = min(wanted - len(chosen), int(remaining.sum()))
    if short <= 0:
        return np.zeros(0, np.int64)
    return np.random.default_rng([seed, 2]).choice(np.flatnonzero(remaining), short, replace=False)


REASONS = {
    'kmeans_cold_start': 'typical of a group of similar segments nobody has labeled yet',
    'coreset': 'unlike anything labeled so far',
    'random': 'drawn at random, so that the labels also sample the slide evenly',
    'audit': 'drawn at random to check the model on the slide as it is (an audit label)',
    FILL: 'drawn at random: the model cannot tell the other segments from those already suggested',
    AWAITING_ROUND: 'drawn at random until the next round ranks the segments as they are now',
}
"""Why a function suggests a segment, in a pathologist's words; the others say it from the prediction."""


def uncertainty_reason(probabilities: dict[str, float], strategy: str) -> str:
    """Why the model wants a segment labeled, from its probabilities and the function that picked it: torn between
    its two likeliest categories; else, for BatchBALD, which seeks what the model's plausible versions (its posterior
    samples) disagree about, that disagreement, however sure their average is; else unsure of its prediction, or,
    where even that is likely, among the segments it is least sure of (a card must never call 95 % "unsure")."""
    (first, p1), *rest = sorted(probabilities.items(), key=lambda pair: -pair[1])
    said = f'{first}, {round(p1 * 100)} %'
    if rest and rest[0][1] >= TORN:
        return f'the model is torn between {first} ({round(p1 * 100)} %) and {rest[0][0]} ({round(rest[0][1] * 100)} %)'
    if strategy == 'batchbald':
        return f'versions of the model that fit the labels equally well disagree about it (on average {said})'
    if p1 < SURE:
        return f'the model is unsure: {said}'
    return f'among the segments the model is least sure of, though it says {said}'


def near_excluded(parts: list[_SlidePart], embedding_key: str | None,
                  embeddings: np.ndarray | None = None) -> np.ndarray:
    """Over the parts' segments, those among the ``NEAR_DUPLICATE_SHARE`` nearest (cosine, in the stored
    embeddings) to a segment labeled with an excluded category; none where the slides have no embeddings."""
    marked = np.flatnonzero(np.concatenate([part.excluded for part in parts]))
    near = np.zeros(sum(len(part.labeled) for part in parts), bool)
    if not len(marked):
        return near
    if embeddings is None:
        embeddings = _stored_embeddings(parts, embedding_key)
        if embeddings is None:
            return near
    vectors = np.asarray(embeddings, np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    count = int(min(MAX_NEAR_DUPLICATES, max(1, round(NEAR_DUPLICATE_SHARE * len(vectors)))))
    for start in range(0, len(marked), 256):  # bounded memory: 256 rows of similarities at a time
        similarity = vectors[marked[start:start + 256]] @ vectors.T
        nearest = np.argpartition(-similarity, min(count, len(vectors) - 1), axis=1)[:, :count + 1]
        near[nearest.ravel()] = True
    return near


def _cold_start(parts: list[_SlidePart], embedding_key: str | None) -> AcquisitionFunction:
    """The function that ranks before any model: ``COLD_START`` on the embeddings, or a seeded random sample where
    the slides have no embeddings (a project of image models before features are computed)."""
    for part in parts:
        with SlideStore(part.store_path) as store:
            if not _has_embeddings(store, embedding_key):
                return acquisition_functions.create('random')
    return acquisition_functions.create(COLD_START)


def _has_embeddings(store: SlideStore, embedding_key: str | None) -> bool:
    return bool(embedding_key) and embedding_key in store.feature_names()


def _stored_embeddings(parts: list[_SlidePart], embedding_key: str | None) -> np.ndarray | None:
    """The parts' stored feature vectors, slide after slide; None when a slide has none under ``embedding_key``."""
    arrays = []
    for part in parts:
        with SlideStore(part.store_path) as store:
            if not _has_embeddings(store, embedding_key):
                return None
            arrays.append(store.features(embedding_key))
    return np.concatenate(arrays)


@dataclass
class _SlidePart:
    """What ranking needs of one slide: its latest round, scale, labeled mask and slivers (never suggested)."""

    position: int
    store_path: str
    record: RoundRecord | None
    scale: float
    labeled: np.ndarray
    slivers: np.ndarray
    excluded: np.ndarray
    """Segments labeled with an excluded category."""


def _slide_part(position: int, store_path: str, labels: LabelSet) -> _SlidePart:
    with SlideStore(store_path) as store:
        labeled = np.zeros(store.n_segments, bool)
        labels.check_segments(store.n_segments)
        labeled[labels.segment_ids - 1] = True
        area = store.segment_areas()
        slivers = area < SLIVER_SHARE * np.median(area) if len(area) else np.zeros(0, bool)
        excluded = np.zeros(store.n_segments, bool)
        if len(labels):
            excluded[labels.segment_ids - 1] = np.array([c.excluded for c in labels.categories],
                                                        bool)[labels.category_index]
        return _SlidePart(position, store_path, store.latest_round(), store.slide_info.scale, labeled, slivers,
                          excluded)


def function_context(function: AcquisitionFunction, parts: list[_SlidePart], rep: Representation | None,
             embedding_key: str | None, mc_samples: int, seed: int) -> dict:
    context = {}
    for need in function.needs:
        if need == 'labeled':
            continue
        if need == 'embeddings':
            context['embeddings'] = _stored_embeddings(parts, embedding_key)
            if context['embeddings'] is None:
                raise ConfigurationError(f'{function.name!r} compares segments by their embeddings; '
                                         'compute feature vectors first (--feature vector)')
        elif need == 'samples':
            if rep is None or any(part.record is None for part in parts):
                raise ConfigurationError(f'{function.name!r} needs a trained model to draw posterior samples')
            arrays = []
            for part in parts:
                with SlideStore(part.store_path) as store:
                    arrays.append(sample_all(round_model(part.record), rep, store, mc_samples, seed))
            context['samples'] = np.concatenate(arrays, axis=1)
        else:
            raise ConfigurationError(f'{function.name!r} needs {need!r}, which the pipeline cannot provide')
    return context


def audited_labels(slides: Sequence[tuple[str, LabelSet]], audit_keys: Sequence[str]) -> list[np.ndarray]:
    """Per slide, the sorted segment ids of its audited labels (``audit.audited``): the random sample whose
    labels measure the model without the bias of actively chosen labels."""
    parts = slide_parts(slides)
    found = audit.audited([audit.AuditSlide(key, part.labeled, ~part.slivers)
                           for key, part in zip(audit_keys, parts, strict=True)])
    return [np.sort(found[found[:, 0] == position, 1]) + 1 for position in range(len(parts))]
