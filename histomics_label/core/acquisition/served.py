"""The suggestions a request shows: the project's stored ranking (``ranking_store``), less what changed since.

What a request does, and why it stays bounded: it reads each slide's latest round and segment areas (the
predictions shown and the slivers: memory proportional to the segments and classes, no feature vectors), the stored
ranking (``DEPTH`` picks), and nothing else unless something changed since the ranking was computed:

* a segment labeled since leaves the list (the labeled masks come with the request's labels);
* a segment labeled with an excluded category since takes its near-duplicates with it: one exact search per such
  segment over the retrieval index on disk, in bounded chunks (``retrieval.stored_index``);
* the audit picks are taken out and shown last, as when ranking on request (``audit.next_picks``).

Only when the stored list runs out does the request rank by itself: a function that scores segments alone ranks the
rest from the round's probabilities it has already read; a joint function's batch is completed with seeded random
picks that say so (``suggestions.FILL``), as a batch the function left short always was. No posterior sample is
drawn and no embedding matrix is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..features.representations import Representation
from ..io.labels import LabelSet
from ..io.store import SlideStore
from ..retrieval.stored_index import StoredIndex
from . import audit, ranking_store, suggestions
from .base import JointAcquisition

BYTES_PER_SEGMENT = 64
"""The memory a served request may hold per segment of the project: the latest round's probabilities (4 bytes per
category; 2–4 categories in practice), each slide's segment areas and their median (16), the audit draws (8) and a
few boolean masks; ``tests/core/acquisition/test_ranking_store.py`` measures it."""
FIXED_BYTES = 16 << 20
"""Beyond that, whatever the number of segments: one chunk of a search of the retrieval index
(``stored_index.CHUNK_BYTES`` of float64 and the float32 rows it was read from), the stored ranking (``DEPTH``
picks) and the answer."""


def served_suggestions(directory: str | os.PathLike, slides: Sequence[tuple[str, LabelSet]], certainty: str,
                       count: int, seed: int = 0, rep: Representation | None = None,
                       embedding_key: str | None = None, mc_samples: int = suggestions.MC_SAMPLES,
                       audit_keys: Sequence[str] | None = None, audit_every: int = audit.AUDIT_EVERY,
                       batch: int = 8) -> list[dict]:
    """``suggestions.suggest_across``'s answer, served from the ranking stored in ``directory`` (computed and
    stored there first when there is none for the slides as they are now)."""
    ranking = ranking_store.ranking_for(directory, slides, certainty, seed, rep, embedding_key, mc_samples, batch)
    function, parts, cold = suggestions.resolve_function(certainty, suggestions.slide_parts(slides), embedding_key)
    offsets = suggestions.part_offsets(parts)
    candidates = suggestions.candidate_mask(parts) & ~_near_new_excluded(parts, ranking, embedding_key)
    audit_rows = suggestions.audit_picks(parts, candidates, count, audit_keys, audit_every)
    wanted = count - len(audit_rows)
    where = {part.position: i for i, part in enumerate(parts)}
    known = np.array([int(s) in where for s in ranking.slides], bool)
    rows = np.array([offsets[where[int(s)]] for s in ranking.slides[known]], np.int64) + ranking.rows[known]
    scores = ranking.scores[known]
    keep = candidates[rows] if len(rows) else np.zeros(0, bool)
    rows, scores = rows[keep][:wanted], scores[keep][:wanted]
    strategies = [ranking.function] * len(rows)
    if len(rows) < wanted:
        more_rows, more_scores, strategy = _beyond(function, parts, cold, rows, candidates, wanted, seed)
        if ranking.awaiting_round and strategy == suggestions.FILL:
            strategy = suggestions.AWAITING_ROUND
        rows = np.concatenate([rows, more_rows]).astype(np.int64)
        scores = np.concatenate([scores, more_scores])
        strategies += [strategy] * len(more_rows)
    rows = np.concatenate([rows, audit_rows]).astype(np.int64)
    scores = np.concatenate([scores, np.full(len(audit_rows), np.nan)])
    return suggestions.describe(parts, rows, scores, strategies + ['audit'] * len(audit_rows))


def _beyond(function, parts, cold: bool, chosen: np.ndarray, candidates: np.ndarray, wanted: int,
            seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """What completes a batch once the stored list has run out (module notes): rows, scores and their strategy."""
    if not isinstance(function, JointAcquisition):
        remaining = candidates.copy()
        remaining[chosen] = False
        probabilities = suggestions.model_probabilities(function, parts, cold)
        selection = function.select(probabilities, remaining, wanted - len(chosen), seed=seed)
        return selection.rows, selection.scores, function.name
    filled = suggestions.fill(chosen, candidates, wanted, seed)
    return filled, np.full(len(filled), np.nan), suggestions.FILL


def _near_new_excluded(parts, ranking: ranking_store.Ranking, embedding_key: str | None) -> np.ndarray:
    """Over the parts' segments, the near-duplicates of segments labeled with an excluded category since the
    ranking was computed (those of earlier ones are not in it): the ``suggestions.NEAR_DUPLICATE_SHARE`` nearest by
    cosine, found by an exact search of the index on disk; none where the slides have no feature vectors."""
    offsets = suggestions.part_offsets(parts)
    near = np.zeros(int(offsets[-1]), bool)
    new = np.concatenate([np.zeros(0, np.int64)] + [
        offsets[i] + np.setdiff1d(np.flatnonzero(part.excluded), ranking.excluded[part.position])
        for i, part in enumerate(parts)]).astype(np.int64)
    if not len(new) or not embedding_key:
        return near
    for part in parts:
        with SlideStore(part.store_path) as store:
            if embedding_key not in store.feature_names():
                return near
    index = StoredIndex.open([part.store_path for part in parts], embedding_key)
    count = int(min(suggestions.MAX_NEAR_DUPLICATES, max(1, round(suggestions.NEAR_DUPLICATE_SHARE * len(index)))))
    for row in new:
        positions, _ = index.nearest(index.query_vector(index.key(int(row))), min(count + 1, len(index)))
        near[positions] = True
    return near
