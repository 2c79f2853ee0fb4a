"""BatchBALD against batchbald-redux on identical MC samples, and on arrays whose right answer is known."""

import time

import numpy as np
import pytest
import torch
from batchbald_redux.batchbald import get_batchbald_batch

from histomics_label.core.acquisition.batchbald import _GreedySelector, bald, batchbald, expected_entropy


def mc_samples(n_samples: int, n_rows: int, n_classes: int, seed: int = 0) -> np.ndarray:
    """(S, N, C) probabilities: per-row logits plus per-sample noise of a per-row size, so rows differ in both
    aleatoric and epistemic uncertainty."""
    rng = np.random.default_rng(seed)
    logits = 2 * rng.normal(size=(1, n_rows, n_classes))
    logits = logits + rng.normal(size=(n_samples, n_rows, n_classes)) * rng.uniform(0.2, 2.0, size=(1, n_rows, 1))
    probabilities = np.exp(logits - logits.max(axis=2, keepdims=True))
    return probabilities / probabilities.sum(axis=2, keepdims=True)


def redux(samples: np.ndarray, n: int, num_configurations: int, seed: int = 0):
    """batchbald-redux's batch on the same samples, in its (N, K, C) log-probability layout, float64."""
    torch.manual_seed(seed)
    log_probs = torch.from_numpy(np.log(samples).transpose(1, 0, 2).copy())
    return get_batchbald_batch(log_probs, n, num_configurations, dtype=torch.float64)


@pytest.mark.parametrize('n_classes, batch, budget', [(3, 6, 1000), (2, 10, 1024), (5, 4, 200)])
def test_same_picks_and_gains_as_batchbald_redux_with_exact_joint_entropies(n_classes, batch, budget):
    samples = mc_samples(20, 400, n_classes, seed=n_classes)
    reference = redux(samples, batch, budget)
    ours = batchbald(samples, batch, num_configurations=budget)
    assert ours.joint_picks == batch  # judged where 20 samples are not saturated: every pick is a joint one
    assert ours.rows.tolist() == reference.indices
    # redux scores the batch's joint mutual information after each pick; ours are the per-pick gains.
    np.testing.assert_allclose(np.cumsum(ours.gains), reference.scores, rtol=1e-7, atol=1e-9)


def joint_information(samples: np.ndarray, rows) -> float:
    """The exact ``I(y_rows; ω)`` by enumerating every label configuration of the rows."""
    joint = np.ones((samples.shape[0], 1))
    for row in rows:
        joint = (joint[:, :, None] * samples[:, row, None, :]).reshape(samples.shape[0], -1)
    marginal = joint.mean(axis=0)
    marginal = marginal[marginal > 0]
    return float(-(marginal * np.log(marginal)).sum() - expected_entropy(samples)[list(rows)].sum())


def test_with_sampled_configurations_the_batch_is_as_informative_as_batchbald_redux_s():
    """Past the budget both sample configurations (with different random draws, so late picks may differ): the
    exact picks agree, and the exact joint information of the batch, enumerated over all 2^14 configurations,
    is as high as redux's batch's and close to our running estimate."""
    samples = mc_samples(20, 300, 2, seed=7)
    reference = redux(samples, 14, 256)
    ours = batchbald(samples, 14, num_configurations=256, seed=3)
    assert ours.joint_picks == 14  # 2 classes: 14 picks hold under ln 20 nats, so no pick is past saturation
    assert ours.rows[:9].tolist() == reference.indices[:9]  # 2^8 = 256 configurations: exact up to the 9th pick
    ours_exact = joint_information(samples, ours.rows)
    assert ours_exact >= 0.99 * joint_information(samples, reference.indices)
    assert np.cumsum(ours.gains)[-1] == pytest.approx(ours_exact, rel=0.05)
    assert ours_exact > joint_information(samples, np.argsort(-bald(samples))[:14])  # better than top BALD


def pair_information(samples: np.ndarray, given: int) -> np.ndarray:
    """``I(y_n; ω | y_given)`` of every row n, by enumerating the C × C label configurations of the pair."""
    joint = np.einsum('sc,snd->ncd', samples[:, given], samples).reshape(samples.shape[1], -1) / len(samples)
    first = samples[:, given].mean(axis=0)
    return (-(joint * np.log(np.where(joint > 0, joint, 1))).sum(axis=1)
            + (first * np.log(np.where(first > 0, first, 1))).sum() - expected_entropy(samples))


def test_pruning_by_bounds_keeps_the_brute_force_pick_in_both_regimes():
    """Joint picks are the brute-force argmax of the sampled-configuration gains; once the 20 samples are saturated
    the picks are the brute-force argmax of the pairwise bound min_a I(y_n; ω | y_a), computed here by enumeration."""
    samples = mc_samples(20, 2000, 4, seed=1)
    selector = _GreedySelector(samples, np.arange(2000), 500, 0, torch.device('cpu'), torch.float64)
    pairwise = bald(samples)
    phases = []
    for _ in range(12):
        weights, responsibilities = selector._configuration_weights()
        every = selector._gains(torch.arange(2000), weights, responsibilities).numpy()
        open_rows = ~selector.closed.numpy()
        position, gain = selector.step()
        scores = every if not selector.saturated else pairwise
        best = np.flatnonzero(open_rows)[np.argmax(scores[open_rows])]
        assert position == best and gain == pytest.approx(float(scores[best]), abs=1e-9)
        phases.append(selector.saturated)
        pairwise = np.minimum(pairwise, pair_information(samples, position))
    assert not selector.exact and phases[0] is False and phases[-1] is True  # both regimes were exercised


def jittered_copies(base: np.ndarray, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``base`` ``(S, n, C)`` repeated ``copies`` times, each row's logits moved by a seeded per-class jitter
    (s.d. 0.1, the same for every sample), and each row's source row: rows of one source are near-duplicates."""
    source = np.tile(np.arange(base.shape[1]), copies)
    logits = np.log(base[:, source, :]) + 0.1 * np.random.default_rng(seed).standard_normal((1, len(source),
                                                                                             base.shape[2]))
    probabilities = np.exp(logits - logits.max(axis=2, keepdims=True))
    return probabilities / probabilities.sum(axis=2, keepdims=True), source


@pytest.mark.parametrize('n_classes', [2, 3])
def test_a_batch_past_saturation_has_no_near_duplicates(n_classes):
    """A near-duplicate is a jittered copy of the same source row. 20 samples hold at most ln 20 nats, which a batch
    of 24 exhausts; the plain greedy then ranks by noise and by second looks at ambiguous rows, and picks copies of
    rows already in the batch (18 and 20 distinct sources of 24 before this was fixed; BALD's top 24 are copies
    too). Ours picks 24 distinct sources."""
    samples, source = jittered_copies(mc_samples(20, 150, n_classes, seed=10 + n_classes), 10, seed=n_classes)
    assert len(set(source[np.argsort(-bald(samples))[:24]].tolist())) < 24
    chosen = batchbald(samples, 24, num_configurations=2000)
    assert chosen.joint_picks < 24 and len(chosen.rows) == 24  # saturated, and still a full batch
    assert len(set(source[chosen.rows].tolist())) == 24


def test_a_duplicate_of_a_chosen_row_adds_nothing():
    """Rows 0 and 1 are identical and the most informative; BALD would take both, BatchBALD takes one."""
    samples = mc_samples(10, 50, 3, seed=2)
    samples[:, 0] = samples[:, 1] = np.where(np.arange(10)[:, None] % 2 == 0, [0.98, 0.01, 0.01], [0.01, 0.98, 0.01])
    assert set(np.argsort(-bald(samples))[:2]) == {0, 1}
    chosen = batchbald(samples, 5)
    assert chosen.rows[0] in (0, 1) and not {0, 1} <= set(chosen.rows.tolist())


def test_bald_and_expected_entropy_on_hand_built_rows():
    samples = np.array([
        [[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
        [[0.0, 1.0], [0.5, 0.5], [0.9, 0.1]],
    ])  # row 0: samples disagree with certainty; row 1: agree on a coin flip; row 2: agree on 0.9
    np.testing.assert_allclose(bald(samples), [np.log(2), 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(expected_entropy(samples), [0.0, np.log(2), -0.9 * np.log(0.9) - 0.1 * np.log(0.1)])
    chosen = batchbald(samples, 3)
    assert chosen.rows[0] == 0 and chosen.gains[0] == pytest.approx(np.log(2))
    assert np.all(np.abs(chosen.gains[1:]) < 1e-12)


def test_candidates_determinism_and_checks():
    samples = mc_samples(20, 300, 3, seed=4)
    candidates = np.arange(1, 300, 2)
    chosen = batchbald(samples, 12, candidates, num_configurations=100, seed=5)
    assert set(chosen.rows.tolist()) <= set(candidates.tolist()) and len(set(chosen.rows.tolist())) == 12
    again = batchbald(samples, 12, candidates[::-1], num_configurations=100, seed=5)
    assert again.rows.tolist() == chosen.rows.tolist()
    np.testing.assert_array_equal(again.gains, chosen.gains)
    assert batchbald(samples, 500, np.arange(5)).rows.size == 5
    assert batchbald(samples, 0).rows.size == 0
    with pytest.raises(ValueError, match='0..299'):
        batchbald(samples, 2, np.array([300]))
    with pytest.raises(ValueError, match=r'\(S, N, C\)'):
        batchbald(samples[0], 2)


def test_faster_than_batchbald_redux_on_the_same_batch():
    """A guard against losing the vectorisation: the measured ratio is far larger (see the module's notes)."""
    samples = mc_samples(20, 2000, 3, seed=6)
    start = time.perf_counter()
    reference = redux(samples, 8, 1000)
    redux_time = time.perf_counter() - start
    start = time.perf_counter()
    ours = batchbald(samples, 8, num_configurations=1000)
    our_time = time.perf_counter() - start
    # 3^6 ≤ 1000: exact to the 7th pick; the 7th is past the samples' saturation, where the two differ by design
    assert ours.joint_picks == 6 and ours.rows.tolist()[:6] == reference.indices[:6]
    assert our_time * 3 < redux_time
