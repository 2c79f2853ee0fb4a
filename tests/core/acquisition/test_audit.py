"""The audit sample: drawn at random and stable, served one random segment at a time, and counted only as a prefix
of its random order, so the accuracy it gives is that of the slide, not of the hard cases active learning picks."""

import numpy as np
import pytest
from helpers.stain_oracle import CATEGORIES, stain_classes

from histomics_label.core.acquisition import audit
from histomics_label.core.acquisition.suggestions import SLIVER_SHARE, audited_labels, suggest_across
from histomics_label.core.io.labels import Category, LabelSet
from histomics_label.core.io.store import SlideStore
from histomics_label.core.models.training import balanced_accuracy
from histomics_label.core.pipeline import model_options, representation
from histomics_label.core.rounds import train_slides_round


def slide(key: str, n: int, labeled=(), eligible=None) -> audit.AuditSlide:
    mask = np.zeros(n, bool)
    mask[list(labeled)] = True
    return audit.AuditSlide(key, mask, np.ones(n, bool) if eligible is None else eligible)


def test_draws_are_stable_per_slide_and_independent_between_slides():
    first = audit.draws('project/slide-a', 5000)
    np.testing.assert_array_equal(first, audit.draws('project/slide-a', 5000))
    other = audit.draws('project/slide-b', 5000)
    assert abs(np.corrcoef(first, other)[0, 1]) < 0.05
    assert abs((first < audit.MEMBER_SHARE).mean() - audit.MEMBER_SHARE) < 0.01  # a uniform draw


def test_queue_holds_eligible_members_of_every_slide_in_draw_order():
    eligible = np.ones(4000, bool)
    eligible[::2] = False  # slivers are never drawn
    slides = [slide('p/a', 4000, eligible=eligible), slide('p/b', 3000)]
    members = audit.queue(slides)
    values = [audit.draws(s.key, len(s.labeled)) for s in slides]
    order = np.array([values[p][r] for p, r in members])
    assert np.all(np.diff(order) >= 0) and np.all(order < audit.MEMBER_SHARE)
    assert set(np.unique(members[:, 0])) == {0, 1} and not np.any(members[members[:, 0] == 0, 1] % 2 == 0)
    expected = sum(int(((v < audit.MEMBER_SHARE) & s.eligible).sum()) for v, s in zip(values, slides, strict=True))
    assert len(members) == expected


def test_only_the_labeled_prefix_of_the_random_order_is_audited():
    members = audit.queue([slide('p/a', 2000)])
    rows = members[:, 1]
    labeled = [rows[0], rows[1], rows[3]]  # the third member is not labeled yet; the fourth was painted
    found = audit.audited([slide('p/a', 2000, labeled)])
    assert found[:, 1].tolist() == [rows[0], rows[1]]
    found = audit.audited([slide('p/a', 2000, labeled + [rows[2]])])
    assert found[:, 1].tolist() == [rows[0], rows[1], rows[2], rows[3]]


def test_next_picks_keep_one_label_in_every_n_from_the_sample():
    members = audit.queue([slide('p/a', 2000)])
    assert len(audit.next_picks([slide('p/a', 2000)], 8, labels_total=0, every=10)) == 1  # ceil(8 / 10)
    picks = audit.next_picks([slide('p/a', 2000)], 8, labels_total=40, every=4)  # 12 wanted by 48 labels
    np.testing.assert_array_equal(picks[:, 1], members[:7, 1])  # never the whole batch: one stays the model's
    done = slide('p/a', 2000, members[:12, 1])
    assert len(audit.next_picks([done], 8, labels_total=40, every=4)) == 0
    assert len(audit.next_picks([slide('p/a', 2000)], 8, 40, every=0)) == 0
    assert len(audit.next_picks([slide('p/a', 2000)], 1, 40, every=4)) == 0


@pytest.fixture(scope='module')
def oracle(embedded_cmu, cmu_svs):
    return stain_classes(embedded_cmu, cmu_svs, 5)


def test_audit_labels_measure_the_whole_slide(embedded_cmu, cmu_svs, oracle, tmp_path):
    """Oracle check through suggestions and rounds: a labeler answers every suggestion with the truth; the audit
    suggestions are the random sample's members, and the round's audit accuracy, from those labels only, has an
    interval that holds the model's real balanced accuracy on every segment nobody labeled."""
    store = tmp_path / 'audit.h5'
    store.write_bytes(embedded_cmu.read_bytes())
    categories = [Category(name, '#000000') for name in CATEGORIES]
    key = ['project/slide']
    config = dict(slide=str(cmu_svs), store=str(store), magnification=5, radius=10, patch_size=48)
    from histomics_label.core.pipeline import PipelineConfig

    pipeline = PipelineConfig(**config)
    labeled = {int(r) + 1: int(oracle[r]) for c in range(3) for r in np.flatnonzero(oracle == c)[:3]}
    served_audit = []
    with SlideStore(store) as opened:
        area = opened.segment_areas()
    eligible = area >= SLIVER_SHARE * np.median(area)
    members = audit.queue([audit.AuditSlide(key[0], np.zeros(len(area), bool), eligible)])
    assert len(members) >= 8
    for _ in range(6):
        labels = LabelSet(categories, sorted(labeled), [labeled[s] for s in sorted(labeled)])
        train_slides_round([(str(store), labels)], representation(pipeline), 'linear', model_options(pipeline),
                           audited=audited_labels([(str(store), labels)], key))
        found = suggest_across([(str(store), labels)], 'margin', 8, audit_keys=key, audit_every=3)
        audits = [s['segment'] for s in found if s['strategy'] == 'audit']
        assert all(s['strategy'] == 'audit' for s in found[len(found) - len(audits):])
        assert audits or set(members[:, 1] + 1) <= set(labeled)  # served until every member is labeled
        served_audit += audits
        labeled.update({s['segment']: int(oracle[s['segment'] - 1]) for s in found})
    labels = LabelSet(categories, sorted(labeled), [labeled[s] for s in sorted(labeled)])
    audited = audited_labels([(str(store), labels)], key)[0]
    assert set(served_audit) <= set(audited.tolist()) and len(audited) == len(members)
    assert np.all(eligible[audited - 1])
    record = train_slides_round([(str(store), labels)], representation(pipeline), 'linear', model_options(pipeline),
                                audited=[audited])[0]
    estimate = record.metrics['audit_accuracy']
    assert estimate['labels'] == len(audited)
    unlabeled = np.setdiff1d(np.arange(len(oracle)), np.array(sorted(labeled)) - 1)
    truth = balanced_accuracy(record.probabilities[unlabeled].argmax(axis=1), oracle[unlabeled])
    assert estimate['low'] <= truth <= estimate['high'], (estimate, truth)
