"""BatchBALD: a batch of segments whose labels together tell the most about the model's parameters.

Kirsch, van Amersfoort & Gal (NeurIPS 2019) choose a batch ``A`` greedily to maximise the joint mutual information
``I(y_A; ω)`` between the labels of the batch and the model parameters, estimated from ``S`` Monte-Carlo posterior
samples ``p_s(y_n)`` (MC dropout, an ensemble, …) given as an ``(S, N, C)`` array. Adding segment ``n`` to ``A``
gains ``I(y_n; ω | y_A) = H(y_n | y_A) − E_s H(p_s(y_n))``; ``H(y_n | y_A)`` needs the joint distribution of the
labels already chosen. While it has at most ``num_configurations`` label configurations it is enumerated exactly;
after that ``num_configurations`` configurations are drawn (seeded) from the posterior mixture, ``⌊M / S⌋`` from
each sample, as the paper does.

Writing ``R[m, s]`` for the posterior weight of sample ``s`` given configuration ``m`` (rows sum to one) and
``π_m`` for the configuration's weight (its probability when exact, ``1 / M`` when sampled), the gain is
``Σ_m π_m H(Σ_s R[m, s] p_s(y_n)) − E_s H(p_s(y_n))``: one ``(M, S) @ (S, N·C)`` product and an entropy per step,
vectorised in torch (on the CPU or a GPU). Working with ``log R`` keeps products of many probabilities finite.

Two exact bounds let a step evaluate only a few candidates, with the same picks as evaluating all of them:

* merging configurations into groups (each group's total weight, and its weighted mean row of ``R``) can only
  raise ``Σ_m π_m H(R[m] p)``, by concavity of entropy, so the gain computed on the groups bounds the gain. Groups
  of configurations with alike posteriors ``R[m]`` (same most probable sample, then also its probability in
  tenths, then also the runner-up) give tight bounds at a small fraction of the cost; a single group gives BALD;
* with exact configurations the gain of a segment never grows as the batch grows (``H(y_n | y_A)`` shrinks), so
  the gain computed at an earlier step bounds it at a later one.

Each step discards the candidates whose bound is below the best gain evaluated so far, grouping by grouping, and
evaluates the rest in descending order of their bound until the best gain beats every remaining bound. Against
batchbald-redux (which loops over candidates in Python) this is two orders of magnitude faster on a CPU.

Saturation. ``S`` samples are an empirical posterior of entropy ``ln S``, so the estimated ``I(y_A; ω)`` can never
exceed ``ln S``: the gains shrink as the posterior over the samples given the batch's labels, ``H(ω | y_A) =
ln S − I(y_A; ω)``, runs out, whatever the candidates are worth. Past that point the picks are ranked by noise
and, measured on real MC-dropout samples (``bench/bench_batchbald.py``), batchbald-redux and a plain greedy pick
jittered copies of segments already in the batch (21 of 32 at 10,000 candidates with S = 20; still 5 of 32 with
S = 1,000, whose ln S is also reached: a batch of 32 holds more information than any affordable S can carry). So
each step also keeps, for every candidate, the exact pairwise bound ``min_a I(y_n; ω | y_a)`` over the chosen
``a`` (conditioning on more labels only lowers ``H(y_n | ·)``, so it bounds the joint gain; each pair needs only
``C`` configurations, far from the ``ln S`` ceiling). While the residual ``H(ω | y_A)`` is at least the best
candidate's pairwise bound, the samples can still hold what that candidate could add and the joint gain ranks; once
it is below, the batch is *saturated* and the rest of it is ranked by the pairwise bound, which a copy of a chosen
segment (whose label its twin's already tells) loses to every distinct informative candidate. With exact
configurations the pairwise bound also prunes the joint evaluation.

Twins. BatchBALD takes the labels of a batch to be independent draws given ``ω``, so a second label of an
ambiguous segment (samples near 50/50) is worth up to ``ln 2`` nats however alike the two segments are: measured
on the benchmark's samples, a jittered copy's ``I(y_copy; ω | y_original)`` reaches 0.2 nats, above most distinct
candidates' gains late in a batch. A pathologist gives a segment and its near-copy one label, not two independent
ones, so a candidate that the model cannot tell from a chosen segment (``TWIN_DISTANCE``) is closed when that
segment is picked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigurationError
from .base import (
    JointAcquisition,
    Selection,
    acquisition_functions,
    candidate_rows,
    check_samples,
    empty_selection,
    row_count,
)

MEMORY_BUDGET = 1 << 27  # bytes for the (M, chunk, C) block of one evaluation
TWIN_DISTANCE = 0.2
"""A candidate whose class probabilities lie within this total-variation distance of a chosen segment's under every
posterior sample is its twin and is never picked: the model cannot tell the two apart, so a labeler's one label
answers both (see the module's notes). Jittered copies of a segment (logits moved by 0.1 s.d.) lie within 0.2 of
it on the benchmark's real samples."""


@dataclass(frozen=True)
class BatchSelection:
    """The chosen rows in the order they were picked and each pick's estimated gain ``I(y_n; ω | y_A)`` in nats.

    The first ``joint_picks`` gains are joint estimates and add up to the estimate of ``I(y_A; ω)`` over those
    picks; the later ones (the samples' posterior was saturated) are each pick's pairwise bound
    ``min_a I(y_n; ω | y_a)`` over the picks before it.
    """

    rows: np.ndarray
    gains: np.ndarray
    joint_picks: int


def entropy(probabilities: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with ``0 log 0 = 0``."""
    probabilities = np.clip(np.asarray(probabilities, np.float64), 0.0, 1.0)
    logs = np.log(np.where(probabilities > 0, probabilities, 1.0))
    return -(probabilities * logs).sum(axis=axis)


def expected_entropy(samples: np.ndarray) -> np.ndarray:
    """``E_s H(p_s(y_n))`` per segment: the aleatoric part of the uncertainty, ``(N,)``."""
    return entropy(check_samples(samples)).mean(axis=0)


def bald(samples: np.ndarray) -> np.ndarray:
    """BALD score ``I(y_n; ω) = H(E_s p_s(y_n)) − E_s H(p_s(y_n))`` per segment, ``(N,)``: the batch-of-one gain."""
    samples = check_samples(samples)
    return entropy(samples.mean(axis=0)) - expected_entropy(samples)


def batchbald(samples: np.ndarray, n: int, candidates: np.ndarray | None = None, *,
              num_configurations: int = 10_000, seed: int = 0, device: str = 'cpu') -> BatchSelection:
    """Greedily choose up to ``n`` candidate rows of ``samples`` ``(S, N, C)`` maximising ``I(y_batch; ω)``.

    ``candidates`` are row indices (default all rows; order does not matter); the caller leaves out labeled
    segments. Exact joint
    entropies are used while the chosen labels have at most ``num_configurations`` configurations, then that many
    configurations are sampled with a generator seeded by ``seed`` and the step, so the result is deterministic.
    Once the samples' posterior is saturated the rest of the batch is ranked by the pairwise bound, and twins of
    chosen candidates are never picked (module notes), so fewer than ``n`` rows come back when only twins are left.
    ``device`` is a torch device (``'cpu'``, ``'cuda'``). Everything runs in float64: late in a batch the gains
    are of the order of 1e-5 nats, below what float32 sums of thousands of terms resolve.
    """
    import torch

    samples = check_samples(samples)
    if num_configurations < 1:
        raise ConfigurationError(f'num_configurations must be positive, not {num_configurations}')
    rows = np.arange(samples.shape[1]) if candidates is None else np.unique(np.asarray(candidates, np.int64))
    if rows.size and (rows[0] < 0 or rows[-1] >= samples.shape[1]):
        raise ValueError(f'Candidate rows must lie in 0..{samples.shape[1] - 1}')
    n = min(int(n), len(rows))
    if n <= 0:
        return BatchSelection(np.zeros(0, np.int64), np.zeros(0, np.float64), 0)
    selector = _GreedySelector(samples, rows, num_configurations, seed, torch.device(device), torch.float64)
    picked, gains = [], []
    joint_picks = 0
    for _ in range(n):
        found = selector.step()
        if found is None:
            break
        row, gain = found
        picked.append(row)
        gains.append(gain)
        joint_picks += not selector.saturated
    return BatchSelection(rows[np.array(picked, np.int64)], np.array(gains, np.float64), joint_picks)


class _GreedySelector:
    """The state of one greedy BatchBALD run over a fixed candidate set (positions ``0..K−1`` into ``rows``)."""

    def __init__(self, samples: np.ndarray, rows: np.ndarray, num_configurations: int, seed: int, device,
                 dtype) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.dtype = dtype
        self.budget = num_configurations
        self.seed = seed
        whole = len(rows) == samples.shape[1] and np.array_equal(rows, np.arange(len(rows)))
        data = samples if whole else samples[:, rows, :]
        self.probs = torch.as_tensor(np.ascontiguousarray(data), dtype=dtype).to(device)  # (S, K, C)
        self.n_samples, self.n_candidates, self.n_classes = self.probs.shape
        self.conditional = _xlogx_sum(self.probs).mean(dim=0).neg()  # E_s H(p_s), (K,)
        # Exact configurations start as the one empty configuration: π = [1], R uniform.
        self.log_joint = torch.zeros((1, self.n_samples), dtype=dtype, device=device)  # log P(config | s)
        self.exact = True
        self.chosen: list[int] = []
        self.tol = 1e3 * torch.finfo(dtype).eps * max(1.0, math.log(self.n_classes))
        # The last gain computed for each candidate: a bound on its gain while configurations are exact.
        self.previous = torch.full((self.n_candidates,), math.inf, dtype=dtype, device=device)
        self.best = (-math.inf, -1)  # (gain, position) of the best candidate evaluated in this step
        self.evaluated = torch.zeros(self.n_candidates, dtype=torch.bool, device=device)
        # min over the chosen a of I(y_n; ω | y_a): BALD before the first pick; -inf once chosen.
        self.pairwise = self._bald()
        self.saturated = False
        self.closed = torch.zeros(self.n_candidates, dtype=torch.bool, device=device)  # chosen, or a twin of one

    def _bald(self):
        """BALD of every candidate, ``(K,)``: the pairwise bound before anything is chosen."""
        torch = self.torch
        uniform = torch.full((1, self.n_samples), 1.0 / self.n_samples, dtype=self.dtype, device=self.device)
        one = torch.ones(1, dtype=self.dtype, device=self.device)
        return self._gains(torch.arange(self.n_candidates, device=self.device), one, uniform)

    def step(self) -> tuple[int, float] | None:
        """Pick the candidate of highest gain, record it and return ``(position, gain)``; None when every candidate
        left is chosen or a twin of a chosen one.

        Bounds from ever finer groupings of the configurations discard candidates that cannot beat the best gain
        evaluated so far; the survivors are evaluated in descending order of their bound. Once the samples'
        posterior is saturated (see the module's notes) the candidate of highest pairwise bound is picked instead.
        """
        torch = self.torch
        if bool(self.closed.all()):
            return None
        weights, responsibilities = self._configuration_weights()
        best_pairwise, where = torch.max(self.pairwise, dim=0)
        if not self.saturated:
            residual = float(weights @ _xlogx_sum(responsibilities).neg())  # H(ω | y_A) over the samples
            self.saturated = residual < float(best_pairwise)
        if self.saturated:
            self._add(int(where))
            return int(where), float(best_pairwise)
        positions = torch.nonzero(~self.closed).flatten()
        bounds = (torch.minimum(self.previous[positions], self.pairwise[positions]) if self.exact
                  else torch.full_like(positions, math.inf, dtype=self.dtype))
        self.best = (-math.inf, -1)
        self.evaluated = torch.zeros(self.n_candidates, dtype=torch.bool, device=self.device)
        for keys in self._groupings(responsibilities):
            group_weights, group_mix = _merge_groups(weights, responsibilities, keys)
            if len(group_weights) * 2 > len(weights):
                break
            bounds = torch.minimum(bounds, self._gains(positions, group_weights, group_mix))
            keep = bounds >= self.best[0] - self.tol
            positions, bounds = positions[keep], bounds[keep]
            self._evaluate_best(positions, bounds, weights, responsibilities, 32)
        self._evaluate_best(positions, bounds, weights, responsibilities, None)
        gain, best = self.best
        self._add(best)
        return best, gain

    def _evaluate_best(self, positions, bounds, weights, responsibilities, limit: int | None) -> None:
        """Evaluate the gains of the candidates of highest bound, updating ``self.best``.

        With a ``limit``, only that many (a first estimate of the best gain, to prune with); without, rounds of
        doubling size until no candidate left has a bound above the best gain.
        """
        torch = self.torch
        chunk = 32
        while True:
            open_bounds = bounds.masked_fill(self.evaluated[positions], -math.inf)
            count = min(chunk if limit is None else limit, int((open_bounds > -math.inf).sum()))
            if count == 0:
                return
            top, order = torch.topk(open_bounds, count)
            top_positions = positions[order[top >= self.best[0] - self.tol]]
            if len(top_positions) == 0:
                return
            gains = self._gains(top_positions, weights, responsibilities)
            self.evaluated[top_positions] = True
            self.previous[top_positions] = gains
            value, where = torch.max(gains, dim=0)
            if float(value) > self.best[0]:
                self.best = (float(value), int(top_positions[where]))
            if limit is not None:
                return
            chunk *= 2

    def _groupings(self, responsibilities):
        """Group keys of the configurations, each grouping a refinement of the one before.

        A group gathers configurations with similar posteriors over the samples ``R[m]``, which makes the merged
        bound tight: first the most probable sample, then also its probability in tenths, then also the second
        most probable sample.
        """
        torch = self.torch
        top, order = torch.topk(responsibilities, min(2, self.n_samples), dim=1)
        first = order[:, 0]
        yield first
        confidence = first * 10 + (top[:, 0] * 9.999).long()
        yield confidence
        if self.n_samples > 1:
            yield confidence * self.n_samples + order[:, 1]

    def _chunk_size(self, n_configurations: int) -> int:
        item = 8 if self.dtype == self.torch.float64 else 4
        return max(1, MEMORY_BUDGET // (n_configurations * self.n_classes * item))

    def _gains(self, positions, weights, responsibilities):
        """``Σ_m π_m H(R[m] p_n) − E_s H(p_s(y_n))`` for the candidates at ``positions``.

        With the configurations' ``π`` and ``R`` this is the gain; with groups of configurations merged (their
        total weight and weighted mean row) it is an upper bound on the gain, by concavity of entropy.
        """
        torch = self.torch
        out = torch.empty(len(positions), dtype=self.dtype, device=self.device)
        step = self._chunk_size(len(weights))
        for start in range(0, len(positions), step):
            part = positions[start:start + step]
            block = self.probs[:, part, :].reshape(self.n_samples, -1)  # (S, b·C)
            mixed = responsibilities @ block  # (M, b·C)
            terms = torch.special.xlogy(mixed, mixed)
            summed = (weights @ terms).reshape(len(part), self.n_classes).sum(dim=1)
            out[start:start + len(part)] = summed.neg_() - self.conditional[part]
        return out

    def _twin_distance(self, given):
        """Each candidate's largest total-variation distance, over the samples, from ``given`` ``(S, C)``: ``(K,)``."""
        torch = self.torch
        out = torch.empty(self.n_candidates, dtype=self.dtype, device=self.device)
        step = self._chunk_size(self.n_samples)
        for start in range(0, self.n_candidates, step):
            block = self.probs[:, start:start + step, :] - given[:, None, :]
            out[start:start + step] = block.abs_().sum(dim=2).amax(dim=0) / 2
        return out

    def _configuration_weights(self):
        """``π`` ``(M,)`` and ``R`` ``(M, S)`` of the configurations of the labels chosen so far."""
        torch = self.torch
        responsibilities = torch.softmax(self.log_joint, dim=1)
        if self.exact:
            weights = torch.exp(torch.logsumexp(self.log_joint, dim=1) - math.log(self.n_samples))
        else:
            weights = torch.full((len(self.log_joint),), 1.0 / len(self.log_joint), dtype=self.dtype,
                                 device=self.device)
        return weights, responsibilities

    def _add(self, position: int) -> None:
        """Add a candidate to the batch, tighten the pairwise bounds by it and update the configurations (exactly,
        or by sampling anew; not at all once saturated, when they are no longer used)."""
        torch = self.torch
        self.chosen.append(position)
        given = self.probs[:, position, :]  # (S, C): the C configurations of y_a alone
        weights = given.mean(dim=0)
        responsibilities = (given / given.sum(dim=0).clamp_min(torch.finfo(self.dtype).tiny)).T  # (C, S)
        every = torch.arange(self.n_candidates, device=self.device)
        self.pairwise = torch.minimum(self.pairwise, self._gains(every, weights, responsibilities))
        self.closed |= self._twin_distance(given) <= TWIN_DISTANCE
        self.closed[position] = True
        self.pairwise[self.closed] = -math.inf
        if self.saturated:
            return
        tiny = torch.finfo(self.dtype).tiny
        if self.exact and self.n_classes ** len(self.chosen) <= self.budget:
            log_p = torch.log(self.probs[:, position, :].clamp_min(tiny)).T  # (C, S)
            self.log_joint = (self.log_joint[:, None, :] + log_p[None, :, :]).reshape(-1, self.n_samples)
            return
        self.exact = False
        self.log_joint = self._sampled_log_joint()

    def _sampled_log_joint(self):
        """``log P(config | s)`` ``(M, S)`` for configurations drawn ``⌊M / S⌋`` from each sample's distribution."""
        torch = self.torch
        per_sample = max(1, self.budget // self.n_samples)
        chosen = self.probs[:, self.chosen, :].double().cpu().numpy()  # (S, k, C)
        rng = np.random.default_rng([self.seed, len(self.chosen)])
        cumulative = np.cumsum(chosen, axis=2)
        cumulative /= cumulative[:, :, -1:]
        uniform = rng.random((self.n_samples, per_sample, len(self.chosen)))
        # Inverse CDF: the class of each chosen label in each configuration, (S, per_sample, k).
        labels = (uniform[..., None] >= cumulative[:, None, :, :]).sum(axis=3).clip(max=self.n_classes - 1)
        labels = torch.as_tensor(labels.reshape(-1, len(self.chosen)), device=self.device)  # (M, k)
        tiny = torch.finfo(self.dtype).tiny
        log_p = torch.log(self.probs[:, self.chosen, :].clamp_min(tiny)).permute(1, 2, 0)  # (k, C, S)
        columns = torch.arange(len(self.chosen), device=self.device)
        return log_p[columns[None, :], labels].sum(dim=1)  # (M, S)


def _merge_groups(weights, responsibilities, keys):
    """Total weight and weighted mean posterior row of each group of configurations (groups by ``keys``)."""
    import torch

    _, inverse = torch.unique(keys, return_inverse=True)
    n_groups = int(inverse.max()) + 1
    group_weights = torch.zeros(n_groups, dtype=weights.dtype, device=weights.device).scatter_add_(0, inverse, weights)
    group_mix = torch.zeros((n_groups, responsibilities.shape[1]), dtype=weights.dtype, device=weights.device)
    group_mix.scatter_add_(0, inverse[:, None].expand_as(responsibilities), weights[:, None] * responsibilities)
    keep = group_weights > 0
    return group_weights[keep], group_mix[keep] / group_weights[keep, None]


def _xlogx_sum(probabilities):
    """``Σ_c p log p`` over the last axis of a torch tensor, with ``0 log 0 = 0``."""
    import torch

    return torch.special.xlogy(probabilities, probabilities).sum(dim=-1)


@acquisition_functions.register('batchbald')
class BatchBALD(JointAcquisition):
    """BatchBALD (Kirsch et al. 2019): the batch whose labels jointly say most about the model's parameters.

    Needs ``samples`` ``(S, N, C)``, the class probabilities of ``S`` Monte-Carlo posterior samples (MC dropout, an
    ensemble). Exact joint entropies while the batch's labels have at most ``num_configurations`` configurations,
    sampled (seeded) configurations beyond; see ``batchbald.py``. Scores are each pick's information gain in nats.
    """

    needs = ('samples',)

    def __init__(self, num_configurations: int = 10_000, device: str = 'cpu') -> None:
        if num_configurations < 1:
            raise ConfigurationError(f'num_configurations must be positive, not {num_configurations}')
        self.num_configurations = int(num_configurations)
        self.device = device

    def params(self) -> dict:
        return {**super().params(), 'num_configurations': self.num_configurations}

    def select(self, probabilities: np.ndarray | None, candidates: np.ndarray, n: int, seed: int = 0,
               **context) -> Selection:
        values, n_rows = self.inputs(context, row_count(probabilities))
        rows = candidate_rows(candidates, n_rows)
        if n <= 0 or rows.size == 0:
            return empty_selection()
        chosen = batchbald(values['samples'], n, rows, num_configurations=self.num_configurations, seed=seed,
                           device=self.device)
        return Selection(chosen.rows, chosen.gains)
