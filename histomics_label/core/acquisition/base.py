"""Acquisition functions: which unlabeled segments a person should label next.

A function scores segments from the model's class probabilities ``(N, C)``; a HIGHER score means more worth
labeling. The names are those of the published Histomics Label's ``--certainty`` option, which names the
certainty measure whose *lowest* values are suggested first: ``confidence`` (max p), ``margin`` (p1 − p2) and
``negative_entropy`` (Σ p log p). The scores here are the same orderings turned around, so the top score is the
least certain segment.

The probabilities come from a model trained without the excluded categories (background, pen, "unsure"), and
the caller passes the ``candidates``: unlabeled segments only, which also leaves out every segment labeled with an
excluded category. Functions that choose a batch jointly (BatchBALD, coreset, …) name the extra inputs they need in
``needs``, which the caller passes as keyword arguments to ``rank`` or ``select``:

* ``samples``: ``(S, N, C)`` class probabilities from ``S`` Monte-Carlo posterior samples of the model;
* ``embeddings``: ``(N, D)`` segment embeddings (the features the model was trained on);
* ``labeled``: rows (or a boolean mask) of every labeled segment, those labeled with an excluded category
  included: a labeled region counts as covered whatever its category.

``select`` returns the rows together with one score per row; for joint functions the score belongs to the pick in
its batch (BatchBALD: its information gain; coreset: its distance to the nearest centre), so they have no
per-segment ``scores`` and their ``probabilities`` argument may be ``None`` when they do not use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError
from ..registry import Registry


@dataclass(frozen=True)
class Selection:
    """Rows to label next, best (or first picked) first, and one float64 score per row."""

    rows: np.ndarray
    scores: np.ndarray


class AcquisitionFunction:
    """Ranks candidate segments by a score computed from class probabilities, highest first."""

    name: str
    needs: tuple[str, ...] = ()
    uses_model = True
    """False for functions that rank from the embeddings alone, so they can suggest before any model is trained."""
    cold_start = False
    """True for functions meant for the first labels only: once a model exists, suggestions switch by themselves to
    the default function (``suggestions.DEFAULT_FUNCTION``), so retraining changes what is asked next."""

    def params(self) -> dict:
        return {'name': self.name}

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:  # pragma: no cover - interface
        """One float64 score per row of ``probabilities``; higher = more worth labeling next."""
        raise NotImplementedError

    def rank(self, probabilities: np.ndarray, candidates: np.ndarray, n: int, seed: int = 0,
             **context) -> np.ndarray:
        """Row indices of the (at most) ``n`` best candidates, best first.

        ``candidates`` is a boolean mask over the rows or an array of row indices. Equal scores are ordered by
        row index, so the ranking never depends on the sort algorithm.
        """
        probabilities = self.model_probabilities(probabilities)
        rows = candidate_rows(candidates, len(probabilities))
        if n <= 0 or rows.size == 0:
            return np.zeros(0, np.int64)
        scores = self.scores(probabilities, seed)[rows]
        order = np.lexsort((rows, -scores))
        return rows[order[:n]]

    def select(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
               **context) -> Selection:
        """``rank`` with each chosen row's score: what a suggestion list shows next to each segment."""
        rows = self.rank(probabilities, candidates, n, seed, **context)
        return Selection(rows, self.scores(probabilities, seed)[rows] if len(rows) else np.zeros(0))

    def model_probabilities(self, probabilities: np.ndarray | None) -> np.ndarray:
        """``probabilities`` checked; a ``ConfigurationError`` when there are none (no model trained yet), since
        a function that scores each segment from them cannot rank without."""
        if probabilities is None:
            raise ConfigurationError(f'{self.name!r} ranks segments by the model\'s class probabilities, and there '
                                     'are none yet: train a model first, or choose a function that needs no model')
        return check_probabilities(probabilities)


acquisition_functions: Registry[AcquisitionFunction] = Registry('certainty metric')


def check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """``probabilities`` as an ``(N, C)`` float64 array, or a ``ValueError`` saying what is wrong."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] < 1:
        raise ValueError(f'Probabilities must be an (N, C) array, not shape {probabilities.shape}')
    if not np.all(np.isfinite(probabilities)):
        raise ValueError('Probabilities must be finite')
    return probabilities


def candidate_rows(candidates: np.ndarray, n_rows: int) -> np.ndarray:
    """Sorted, unique row indices from a boolean mask or an index array."""
    candidates = np.asarray(candidates)
    if candidates.dtype == bool:
        if candidates.shape != (n_rows,):
            raise ValueError(f'The candidate mask has shape {candidates.shape}, not ({n_rows},)')
        return np.flatnonzero(candidates)
    rows = np.unique(candidates.astype(np.int64).ravel())
    if rows.size and (rows[0] < 0 or rows[-1] >= n_rows):
        raise ValueError(f'Candidate rows must lie in 0..{n_rows - 1}')
    return rows


class JointAcquisition(AcquisitionFunction):
    """A function that chooses the batch as a whole, so a segment's worth depends on the rest of the batch.

    Subclasses implement ``select``; ``rank`` is its rows. The inputs named in ``needs`` must be passed.
    """

    def scores(self, probabilities: np.ndarray, seed: int = 0) -> np.ndarray:
        raise ConfigurationError(f'The {self.name!r} acquisition function chooses a batch jointly and scores no '
                                 'segment alone; call select() for the batch and its scores')

    def rank(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
             **context) -> np.ndarray:
        return self.select(probabilities, candidates, n, seed, **context).rows

    def select(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
               **context) -> Selection:  # pragma: no cover - interface
        raise NotImplementedError

    def inputs(self, context: dict, n_rows: int | None) -> tuple[dict, int]:
        """The needed inputs as arrays, checked to have one row per segment; returns them and the row count."""
        missing = [name for name in self.needs if context.get(name) is None]
        if missing:
            raise ConfigurationError(f'The {self.name!r} acquisition function needs {", ".join(missing)}, '
                                     'which were not given')
        values = {}
        for name in self.needs:
            value = np.asarray(context[name])
            if name == 'samples':
                value = check_samples(value)
                rows = value.shape[1]
            elif name == 'embeddings':
                if value.ndim != 2:
                    raise ValueError(f'Embeddings must be an (N, D) array, not shape {value.shape}')
                if not np.all(np.isfinite(value)):
                    raise ValueError('Embeddings must be finite')
                rows = len(value)
            else:
                continue
            if n_rows is not None and rows != n_rows:
                raise ValueError(f'{name} has {rows} rows for {n_rows} segments')
            n_rows = rows
            values[name] = value
        if n_rows is None:
            raise ConfigurationError(f'The {self.name!r} acquisition function cannot tell how many segments there are')
        if 'labeled' in self.needs:
            values['labeled'] = candidate_rows(context['labeled'], n_rows)
        return values, n_rows


def row_count(probabilities: np.ndarray | None) -> int | None:
    return None if probabilities is None else len(check_probabilities(probabilities))


def empty_selection() -> Selection:
    return Selection(np.zeros(0, np.int64), np.zeros(0))


def check_samples(samples: np.ndarray) -> np.ndarray:
    """``samples`` as an ``(S, N, C)`` float array of finite probabilities, or a ``ValueError`` saying why not."""
    samples = np.asarray(samples)
    if samples.ndim != 3 or min(samples.shape[0], samples.shape[2]) < 1:
        raise ValueError(f'MC samples must be an (S, N, C) array of class probabilities, not shape {samples.shape}')
    if not np.issubdtype(samples.dtype, np.floating):
        samples = samples.astype(np.float64)
    if not np.all(np.isfinite(samples)):
        raise ValueError('MC samples must be finite probabilities')
    return samples
