"""The audit sample: segments drawn at random, never by an acquisition function, so that their labels measure the
model on the slide as it is rather than on the hard cases active learning seeks out.

Each segment of a slide gets a uniform draw from a generator seeded by a key naming the project and the slide, so
the sample needs no storage, is the same for every request, server and restart, and a new slide adds its own
members without moving anyone else's. Members are the segments whose draw is below ``MEMBER_SHARE`` (slivers,
which are never suggested, left out), queued across the project's slides in the order of their draws. The *audited*
labels are the longest prefix of that queue that is labeled: a prefix of a random order is a uniform random sample
however its members came to be labeled (as an audit suggestion, by painting, or picked by an acquisition function),
so the estimate stays unbiased, and it grows one random segment at a time as labelers answer the audit suggestions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MEMBER_SHARE = 0.05
"""Share of a slide's segments in the audit sample: enough that it never runs out (a 10 000-segment slide has
about 500), few enough that most segments remain for the acquisition function."""
AUDIT_EVERY = 10
"""By default one label in this many comes from the audit sample: about 10 % of a labeler's effort buys an accuracy
estimate that is not biased by how the other labels were chosen."""


@dataclass(frozen=True)
class AuditSlide:
    """What the audit sample needs of one slide: its ``key`` (stable: project and slide ids), labeled mask and the
    segments that may be drawn (not slivers)."""

    key: str
    labeled: np.ndarray
    eligible: np.ndarray


def draws(key: str, n_segments: int) -> np.ndarray:
    """Each segment's uniform draw in [0, 1), the same for the same key whatever else changes."""
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], 'little')
    return np.random.default_rng(seed).random(n_segments)


def queue(slides: Sequence[AuditSlide], share: float = MEMBER_SHARE) -> np.ndarray:
    """``(M, 2)`` rows of ``(slide position, segment row)``: every member of the audit sample, in draw order."""
    found, order = [], []
    for position, slide in enumerate(slides):
        values = draws(slide.key, len(slide.labeled))
        rows = np.flatnonzero((values < share) & slide.eligible)
        found.append(np.column_stack([np.full(len(rows), position), rows]))
        order.append(values[rows])
    if not found:
        return np.zeros((0, 2), np.int64)
    members = np.concatenate(found).astype(np.int64)
    return members[np.argsort(np.concatenate(order), kind='stable')]


def audited(slides: Sequence[AuditSlide], share: float = MEMBER_SHARE) -> np.ndarray:
    """``(K, 2)`` ``(slide position, row)`` of the audited labels: the labeled prefix of ``queue``."""
    members = queue(slides, share)
    labeled = np.array([slides[p].labeled[r] for p, r in members], bool)
    end = int(np.argmin(labeled)) if not labeled.all() else len(members)
    return members[:end]


def next_picks(slides: Sequence[AuditSlide], count: int, labels_total: int, every: int = AUDIT_EVERY,
               share: float = MEMBER_SHARE) -> np.ndarray:
    """``(k, 2)`` audit segments to suggest now among ``count`` suggestions: the first unlabeled members of the
    queue, as many as keep the audited labels at one in ``every`` of all labels once these ``count`` are labeled
    (none with ``every`` = 0, when the sample is used up, or when a single suggestion is asked for)."""
    if every <= 0 or count < 2:
        return np.zeros((0, 2), np.int64)
    members = queue(slides, share)
    labeled = np.array([slides[p].labeled[r] for p, r in members], bool)
    done = int(np.argmin(labeled)) if not labeled.all() else len(members)
    wanted = int(np.ceil((labels_total + count) / every)) - done
    waiting = members[done:][~labeled[done:]]
    return waiting[:max(0, min(wanted, count - 1, len(waiting)))]
