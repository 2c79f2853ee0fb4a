"""The product loop, short form of ``bench/bench_product_loop.py``: a labeler with the DSB2018 ground truth drives the
live server through its REST API (suggestions, answers, automatic retraining after each batch) with the product's
default acquisition function and with random suggestions, two seeds each, a few rounds.

It fails when a round ignores its new labels (the round did not train on every answer, the server flagged the model
unchanged, or not one prediction moved) or when the product loop's true accuracy falls clearly behind the offline
engine's loop on the same stored embeddings, seeds and seed labels.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'bench'))

import bench_active_learning as offline  # noqa: E402
import bench_product_loop as bench  # noqa: E402
import product_loop_live as live  # noqa: E402
from product_loop_tasks import dsb_task  # noqa: E402

pytestmark = pytest.mark.live
SEEDS = (0, 1)
INITIAL, BATCH, BUDGET = 2, 4, 16
ENGINE_MARGIN = 0.10
"""How far the product's AULC (mean over the two seeds) may fall below the engine's before the test calls it clearly
behind. Seen run to run on this task (``bench_product_loop.py --quick``): two seeds of random labeling ended 0.094
apart in true balanced accuracy after 24 answers (0.781 and 0.687), margin's 0.003 apart; an AULC averages the whole
curve and two seeds, so it moves less. A gap beyond the largest seed-to-seed difference seen is a real one."""


@pytest.fixture(scope='module')
def loop(stack, tmp_path_factory):
    """The DSB2018 template project and, per function, the product's runs and the engine's runs."""
    client = stack.client()
    data_dir = Path(client.get('system/setting', parameters={'key': 'histomics_label.data_dir'}))
    work = tmp_path_factory.mktemp('product-loop')
    template = live.make_template(client, dsb_task(work / 'slides'), data_dir, work / 'templates')
    default = client.get(f'histomics_label/project/{template.folder}')['config']['certainty']
    functions = [default, 'random'] if default != 'random' else ['random']
    runs = {f: [live.run_loop(client, template, data_dir, f, seed, INITIAL, BATCH, BUDGET) for seed in SEEDS]
            for f in functions}
    settings = bench.argparse.Namespace(initial=INITIAL, budget=BUDGET, batch=BATCH)
    engine = bench.engine_runs(template, live.stored_features(template), functions, list(SEEDS), settings)
    return {'template': template, 'runs': runs, 'engine': engine}


def test_every_round_learns_from_its_new_labels(loop):
    for function, runs in loop['runs'].items():
        for run in runs:
            assert run['labels'] == list(range(INITIAL * 2, BUDGET + 1, BATCH)), (function, run['labels'])
            for record in run['rounds']:
                assert record['trained'] == record['answered'], (function, run['seed'], record)
                if record['new_labels']:
                    assert not record['model_unchanged'], (function, run['seed'], record)
                    assert record['changed'] > 0, (function, run['seed'], record)


def test_true_accuracy_is_measured_against_the_mask(loop):
    """The oracle's classes are the mask's: about a fifth of the server's segments lie mostly in a nucleus, every
    run ends above chance on all of them (an oracle or a truth with its classes swapped ends below), and the runs
    together end well above it.

    After 16 answers, 80 runs of ``bench_product_loop.py`` (four functions, docs/benchmarks) ended between 0.56 and
    0.85 in true balanced accuracy, mean 0.72, standard deviation 0.05; the engine's loop once ended at 0.53. One run
    at 0.6 is seed luck, the mean of four runs at 0.62 is not."""
    truth = loop['template'].truth_rows()[1]
    assert 0.1 < truth.mean() < 0.35
    finals = [run['balanced_accuracy'][-1] for runs in loop['runs'].values() for run in runs]
    assert min(finals) > 0.5, finals
    assert np.mean(finals) > 0.62, finals


def test_product_loop_keeps_up_with_the_offline_engine(loop):
    for function, runs in loop['runs'].items():
        ours = np.mean([offline.area_under_curve(r['labels'], r['balanced_accuracy']) for r in runs])
        engine = np.mean([offline.area_under_curve(r['labels'], r['balanced_accuracy'])
                          for r in loop['engine'][function]])
        assert [r['labels'] for r in loop['engine'][function]] == [r['labels'] for r in runs]
        assert ours >= engine - ENGINE_MARGIN, (function, ours, engine)
