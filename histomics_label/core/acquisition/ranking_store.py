"""A round's ranked suggestions: computed once per acquisition function and round, stored, and served from storage.

Ranking is the expensive part of suggesting: BatchBALD draws posterior samples of every segment, Coreset,
entropy-diverse and the k-means cold start compare every segment's embedding. A GET that anyone with read access can
call must not do that each time. So each round ranks the candidates once per function, ``DEPTH`` deep
(``store_rankings``), and writes each ranking to a file: the project's function and those that score segments alone
before the round is recorded (``ranked_in_round``), the other joint ones right after it, as work of their own
(``ranked_after_round``, ``jobs.rankings``), since a labeler waits for the round. A request
(``suggestions.served``) reads the file of the project's function, drops what was labeled since and the audit picks,
and shows the first.

A ranking is keyed by what it was computed from (``fingerprint``): each slide's store file (path, inode,
modification time, size) and latest round number, the seed, feature vectors, sample count and batch size; each
function's ranking is a file of its own under that key. The round number stands for the round's file: a store's
round files are written once, each numbered after its latest (``io.store.append_round``), and a store replaced
(new segments or features) is a new file, so one store file and round number always name the same round. Anything
else (a new round, features recomputed, a slide added) gives a new key; a request that finds no ranking for its key
(before the first round, or after such a change) computes it once and stores it, so only the first request after
the change pays.

How deep, and in what order:

* functions that score each segment alone (confidence, margin, entropy, random) store their ``DEPTH`` best;
* the greedy joint functions (``PREFIX_STABLE``: BatchBALD, Coreset), whose first ``n`` picks of a long run are the
  picks of a run of ``n``, store one run of ``JOINT_DEPTH`` picks. For BatchBALD that run is the greedy order over
  the candidates: the picks after the first batch were chosen given the first batch's labels, which is what they are
  once that batch is labeled, so the batches served one after another until the next round keep BatchBALD's joint
  structure;
* the other joint functions (k-means cold start, entropy-diverse, a deployment's own) choose a batch as a whole, so
  a longer run is not a longer batch: they store up to ``MAX_BATCHES`` successive batches of the project's batch
  size, each chosen with the batches before it counted as labeled.

A segment labeled with an excluded category since the ranking was computed takes its near-duplicates out of the
served list through the retrieval index on disk (``retrieval.stored_index``), in bounded memory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import HistomicsLabelError
from ..features.representations import Representation
from ..io.labels import LabelSet
from ..io.store import SlideStore
from . import suggestions
from .base import JointAcquisition, acquisition_functions

DEPTH = 256
"""Picks stored per round for the whole project by a function that scores segments alone: ranking them all costs a
sort, and at a batch of 8 that is 32 batches before the list runs out."""
JOINT_DEPTH = 64
"""Picks stored by a joint function: 8 batches of 8 (a project retrains every few labels: 10 by default). Each pick
costs a pass over the candidates (Coreset: one distance per segment and pick, about a second per pick at 80,000
segments of 384 dimensions on a loaded 2-core machine), and the round computes every function, so depth is time."""
MAX_BATCHES = 8
"""Successive batches stored for a joint function that chooses a batch as a whole (``PREFIX_STABLE`` explains)."""
PREFIX_STABLE = frozenset({'batchbald', 'coreset'})
"""Greedy joint functions: each pick depends only on the picks before it, so one long run serves many batches."""
FORMAT = 1


@dataclass(frozen=True)
class Ranking:
    """A stored ranking: the function that ranked, its picks best first as ``(slide position, row)`` with a score
    each, and per slide the rows labeled with an excluded category when it was computed (their near-duplicates are
    already left out)."""

    function: str
    slides: np.ndarray
    rows: np.ndarray
    scores: np.ndarray
    excluded: list[np.ndarray]
    awaiting_round: bool = False
    """An empty ranking served in its place until the next round stores one (``ranking_for``)."""


def fingerprint(store_paths: Sequence[str], seed: int, embedding_key: str | None, mc_samples: int,
                batch: int) -> str:
    """The key of the rankings computed from these stores as they are now (see the module's notes); each function's
    ranking is a file of its own under the key."""
    slides = []
    for path in store_paths:
        with SlideStore(path) as store:
            numbers = store.rounds()
        slides.append([os.path.abspath(path), _identity(path), numbers[-1] if numbers else None])
    text = json.dumps([FORMAT, DEPTH, JOINT_DEPTH, MAX_BATCHES, int(batch), int(seed), embedding_key,
                       int(mc_samples), slides])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _identity(path: str) -> list[int]:
    stat = os.stat(path)
    return [stat.st_ino, stat.st_mtime_ns, stat.st_size]


def ranking_path(directory: str | os.PathLike, key: str, certainty: str) -> str:
    return os.path.join(os.fspath(directory), f'{key}.{certainty}.npz')


def save(directory: str | os.PathLike, key: str, certainty: str, ranking: Ranking) -> None:
    """Write a ranking atomically (a temporary file renamed into place) and remove rankings of other keys."""
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(os.fspath(directory), f'.{uuid.uuid4().hex[:12]}.tmp.npz')
    try:
        np.savez(temp, function=np.array(ranking.function), slides=ranking.slides.astype(np.int64),
                 rows=ranking.rows.astype(np.int64), scores=ranking.scores.astype(np.float64),
                 excluded_counts=np.array([len(e) for e in ranking.excluded], np.int64),
                 excluded=np.concatenate([np.zeros(0, np.int64)] + [np.asarray(e, np.int64)
                                                                    for e in ranking.excluded]))
        os.replace(temp, ranking_path(directory, key, certainty))
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    for name in os.listdir(directory):
        if name.endswith('.npz') and not name.startswith((f'{key}.', '.')):
            os.remove(os.path.join(os.fspath(directory), name))


def load(directory: str | os.PathLike, key: str, certainty: str) -> Ranking | None:
    """The stored ranking of ``certainty`` under ``key``, or None when there is none."""
    path = ranking_path(directory, key, certainty)
    try:
        with np.load(path) as data:
            bounds = np.cumsum(np.concatenate([[0], data['excluded_counts']]))
            excluded = [data['excluded'][bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
            return Ranking(str(data['function']), data['slides'], data['rows'], data['scores'], excluded)
    except FileNotFoundError:
        return None


def carry_over(directory: str | os.PathLike, old_key: str, new_key: str) -> list[str]:
    """Keep the rankings stored under ``old_key`` as those of ``new_key`` (the stores changed in a way that leaves
    every ranking as it was, such as a category renamed); returns the functions carried over. Under each function's
    lock, so that a request computing it meanwhile is not overwritten by the older ranking."""
    carried = []
    if not os.path.isdir(directory) or old_key == new_key:
        return carried
    for name in sorted(os.listdir(directory)):
        if not (name.startswith(f'{old_key}.') and name.endswith('.npz')):
            continue
        certainty = name[len(old_key) + 1:-len('.npz')]
        with open(os.path.join(os.fspath(directory), f'.{certainty}.lock'), 'w') as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            target = ranking_path(directory, new_key, certainty)
            if not os.path.exists(target):
                os.replace(os.path.join(os.fspath(directory), name), target)
                carried.append(certainty)
    return carried


def compute(slides: Sequence[tuple[str, LabelSet]], certainty: str, seed: int, rep: Representation | None,
            embedding_key: str | None, mc_samples: int, batch: int, depth: int = DEPTH) -> Ranking:
    """Rank the candidates of ``slides`` for ``certainty`` as a request would, ``depth`` deep (module notes)."""
    function, parts, cold = suggestions.resolve_function(certainty, suggestions.slide_parts(slides), embedding_key)
    probabilities = suggestions.model_probabilities(function, parts, cold)
    context = suggestions.function_context(function, parts, rep, embedding_key, mc_samples, seed)
    candidates = suggestions.candidate_mask(parts) & ~suggestions.near_excluded(parts, embedding_key,
                                                                                 context.get('embeddings'))
    labeled = np.concatenate([part.labeled for part in parts])
    if not isinstance(function, JointAcquisition):
        selection = function.select(probabilities, candidates, depth, seed=seed, labeled=labeled, **context)
        rows, scores = selection.rows, selection.scores
    elif function.name in PREFIX_STABLE:
        selection = function.select(probabilities, candidates, min(depth, JOINT_DEPTH), seed=seed, labeled=labeled,
                                    **context)
        rows, scores = selection.rows, selection.scores
    else:
        rows, scores = _successive_batches(function, probabilities, candidates, labeled, context, seed,
                                           max(1, int(batch)), min(depth, JOINT_DEPTH))
    offsets = suggestions.part_offsets(parts)
    index = np.searchsorted(offsets, rows, side='right') - 1
    positions = np.array([part.position for part in parts], np.int64)
    excluded = [np.zeros(0, np.int64) for _ in slides]
    for part in parts:
        excluded[part.position] = np.flatnonzero(part.excluded)
    return Ranking(function.name, positions[index] if len(rows) else np.zeros(0, np.int64),
                   (rows - offsets[index]).astype(np.int64) if len(rows) else np.zeros(0, np.int64),
                   np.asarray(scores, np.float64), excluded)


def _successive_batches(function, probabilities, candidates: np.ndarray, labeled: np.ndarray, context: dict,
                        seed: int, batch: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``MAX_BATCHES`` batches of ``batch``, each chosen with the ones before it counted as labeled."""
    remaining, covered = candidates.copy(), labeled.copy()
    rows, scores = [], []
    for _ in range(MAX_BATCHES):
        wanted = min(batch, depth - sum(len(r) for r in rows))
        if wanted <= 0:
            break
        selection = function.select(probabilities, remaining, wanted, seed=seed, labeled=covered, **context)
        if not len(selection.rows):
            break
        rows.append(selection.rows)
        scores.append(selection.scores)
        remaining[selection.rows] = False
        covered[selection.rows] = True
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows).astype(np.int64), np.concatenate(scores).astype(np.float64)


def ranking_for(directory: str | os.PathLike, slides: Sequence[tuple[str, LabelSet]], certainty: str, seed: int,
                rep: Representation | None, embedding_key: str | None, mc_samples: int, batch: int) -> Ranking:
    """The stored ranking of ``certainty`` for these slides as they are now; computed and stored when missing
    (``_once``: readers arriving together, or while the round stores it, compute it once), except for a function
    that needs the model's posterior samples (BatchBALD: a CNN run over every segment, hundreds of MiB in the web
    server): until the next round stores its ranking (after a re-segmentation, say) an empty one ``awaiting_round``
    stands in, and the request completes its batch at random, saying so."""
    key = fingerprint([path for path, _ in slides], seed, embedding_key, mc_samples, batch)
    found = load(directory, key, certainty)
    if found is not None:
        return found
    function = suggestions.resolve_function(certainty, suggestions.slide_parts(slides), embedding_key)[0]
    if 'samples' in function.needs:  # the model's posterior samples over every segment: a round's work
        empty = np.zeros(0, np.int64)
        return Ranking(function.name, empty, empty, np.zeros(0), [empty for _ in slides], awaiting_round=True)
    return _once(directory, key, certainty,
                 lambda: compute(slides, certainty, seed, rep, embedding_key, mc_samples, batch))


def _once(directory: str | os.PathLike, key: str, certainty: str, make: Callable[[], Ranking]) -> Ranking:
    """The ranking stored under ``key``, or the one ``make`` gives, stored: under a lock file per function, so a
    second process or thread that needs it waits for the first and then reads it instead of computing it again."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(os.fspath(directory), f'.{certainty}.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = load(directory, key, certainty)
        if found is None:
            found = make()
            save(directory, key, certainty, found)
    return found


def store_rankings(directory: str | os.PathLike, slides: Sequence[tuple[str, LabelSet]], seed: int,
                   rep: Representation | None, embedding_key: str | None, mc_samples: int,
                   batch: int, functions: Sequence[str] | None = None) -> dict[str, str]:
    """The ranking of each of ``functions`` (every registered one when None), in that order, computed and stored;
    returns, per function that could not rank (say Coreset on a project without feature vectors), why. Those rank
    on request, failing the way they always did. A function that hands over to another (the k-means cold start once
    a model exists) stores the ranking of the one it hands over to, computed once; one a request already computed
    is kept."""
    parts = suggestions.slide_parts(slides)
    key = fingerprint([path for path, _ in slides], seed, embedding_key, mc_samples, batch)
    by_function: dict[str, Ranking] = {}
    failed = {}
    for certainty in acquisition_functions.names() if functions is None else functions:
        try:
            function = suggestions.resolve_function(certainty, parts, embedding_key)[0].name
            shared = by_function.get(function)
            by_function[function] = _once(directory, key, certainty, lambda c=certainty, s=shared: s or compute(
                slides, c, seed, rep, embedding_key, mc_samples, batch))
        except (HistomicsLabelError, ValueError) as exc:
            failed[certainty] = str(exc)
    return failed


def ranked_in_round(certainty: str) -> list[str]:
    """What a round ranks before it is recorded: the project's function (``certainty``) and every function that
    scores segments alone (a sort each). A labeler waits for the round, so the joint functions, whose ranking is
    a pass over every segment per pick, are ranked after it (``ranked_after_round``)."""
    return [certainty] + [name for name in acquisition_functions.names()
                          if name != certainty and not issubclass(acquisition_functions.get(name), JointAcquisition)]


def ranked_after_round(certainty: str) -> list[str]:
    """The functions left once the round is recorded: those that need the model's posterior samples first (a
    request cannot rank them, ``ranking_for``), then the others in name order."""
    in_round = ranked_in_round(certainty)
    left = [name for name in acquisition_functions.names() if name not in in_round]
    return sorted(left, key=lambda name: 'samples' not in acquisition_functions.get(name).needs)
