"""Calibration at few labels: how far the probabilities a round shows are from the accuracy they promise.

On the active-learning benchmark's tasks (``bench_active_learning``: DSB2018 3-class and H&E, the same cached
embeddings, pool and test halves), for each label count, ``--draws`` random sets of pool labels (at least one per
class). For each, the model as a round makes it (``round_model``: the engine's ``linear`` model standardised on a
sample of every segment, its temperature fitted on out-of-fold predictions over the labels, called in the order
``rounds.train_slides_round`` calls them; not a round through the server, which the product loop measures), then on
every test segment (none of them labeled):

* the expected calibration error (ECE, 10 bins: the count-weighted gap between the shown probability and the
  accuracy of the segments shown it) of the raw and of the calibrated probabilities, the latter being what every view
  shows ("stroma, 87 %");
* among the segments shown a probability of at least 95 %, the share that is wrong.

Goals (issue "The learning loop a labeler actually runs": calibrated probabilities): the shown probabilities are no
worse calibrated than the raw ones at any label count, and from 30 labels on they are within 0.05 of the accuracy
they promise (ECE ≤ 0.05).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_active_learning as offline  # noqa: E402
import report  # noqa: E402
from measure import stopwatch  # noqa: E402

COUNTS = (15, 30, 60, 120)
SURE = 0.95
GOAL_ECE = 0.05
GOAL_FROM = 30


def draw(labels: np.ndarray, pool: np.ndarray, count: int, n_classes: int, seed: int) -> np.ndarray:
    """``count`` random pool rows holding every class at least once (a labeler's first labels usually do)."""
    rng = np.random.default_rng([seed, count])
    rows = np.flatnonzero(pool)
    first = np.array([rng.choice(rows[labels[rows] == c]) for c in range(n_classes)])
    rest = rng.choice(np.setdiff1d(rows, first), count - n_classes, replace=False)
    return np.concatenate([first, rest])


def round_model(features: np.ndarray, labels: np.ndarray, n_classes: int, population: np.ndarray, seed: int):
    """The model and temperature a round makes from these labels (``rounds.train_slides_round``'s steps for a model
    on stored vectors): fitted on every label, the temperature from its out-of-fold predictions."""
    from histomics_label.core.models import models
    from histomics_label.core.models.calibration import calibrate
    from histomics_label.core.models.evaluation import out_of_fold

    model = models.create('linear', seed=seed).fit(features, labels, n_classes, population=population)
    found = out_of_fold(lambda: models.create('linear', seed=seed), features, labels, n_classes, seed,
                        population=population)
    return model, (calibrate(found, labels)['temperature'] if found is not None else 1.0)


def measure_draw(task: offline.Task, count: int, seed: int) -> dict:
    """ECE of the raw and shown probabilities on the test half, the temperature, and how often "sure" is wrong."""
    from histomics_label.core.models import models
    from histomics_label.core.models.calibration import apply_temperature, expected_calibration_error
    from histomics_label.core.rounds import segment_sample

    rows = draw(task.labels, task.pool, count, task.n_classes, seed)
    sample = segment_sample(len(task.features), models.get('linear').population_points, seed)
    model, temperature = round_model(task.features[rows], task.labels[rows], task.n_classes,
                                     task.features[sample], seed)
    truth = task.labels[task.test]
    raw = model.predict_proba(task.features[task.test])
    shown = apply_temperature(raw, temperature)
    sure = shown.max(axis=1) >= SURE
    return dict(seed=seed, labels=count, temperature=temperature,
                raw_ece=expected_calibration_error(raw, truth), shown_ece=expected_calibration_error(shown, truth),
                sure=int(sure.sum()), sure_wrong=int((shown[sure].argmax(axis=1) != truth[sure]).sum()),
                accuracy=offline.balanced_accuracy(shown.argmax(axis=1), truth))


def summarise(draws: list[dict]) -> list[dict]:
    """Per label count: mean ECE (raw, shown) with the seeds' spread, the mean temperature, "sure" and wrong."""
    rows = []
    for count in sorted({d['labels'] for d in draws}):
        these = [d for d in draws if d['labels'] == count]
        raw, shown = np.array([d['raw_ece'] for d in these]), np.array([d['shown_ece'] for d in these])
        sure, wrong = sum(d['sure'] for d in these), sum(d['sure_wrong'] for d in these)
        rows.append(dict(labels=count, draws=len(these), raw_ece=float(raw.mean()), raw_sd=float(raw.std()),
                         shown_ece=float(shown.mean()), shown_sd=float(shown.std()),
                         better=int((shown <= raw).sum()),
                         temperature=float(np.mean([d['temperature'] for d in these])),
                         accuracy=float(np.mean([d['accuracy'] for d in these])),
                         sure=sure, sure_wrong=wrong))
    return rows


def check_goals(results: dict) -> list[report.Goal]:
    goals = []
    for name, result in results.items():
        rows = result['summary']
        worse = [r for r in rows if r['shown_ece'] > r['raw_ece']]
        goals.append(report.Goal(
            f'{name}: the shown (calibrated) probabilities are no worse calibrated than the raw ones at any label '
            'count',
            '; '.join(f"{r['labels']} labels: ECE {r['shown_ece']:.3f} against raw {r['raw_ece']:.3f}" for r in rows),
            not worse, '' if not worse else
            'worse at ' + ', '.join(f"{r['labels']} labels (+{r['shown_ece'] - r['raw_ece']:.3f})" for r in worse)
            + ': the temperature is fitted on out-of-fold models with a fifth fewer labels'))
        judged = [r for r in rows if r['labels'] >= GOAL_FROM]
        over = [r for r in judged if r['shown_ece'] > GOAL_ECE]
        goals.append(report.Goal(
            f'{name}: from {GOAL_FROM} labels on, the shown probabilities are within {GOAL_ECE} of the accuracy they '
            f'promise (ECE ≤ {GOAL_ECE})',
            ', '.join(f"{r['labels']}: {r['shown_ece']:.3f}" for r in judged), not over,
            '' if not over else ', '.join(f"{r['labels']} labels {r['shown_ece'] - GOAL_ECE:+.3f} over"
                                          for r in over) + ' (a mean over random label sets; see the spread)'))
    return goals


HEADERS = ('labels', 'draws', 'raw ECE', 'shown ECE', 'shown ≤ raw', 'temperature', 'balanced accuracy',
           f'shown ≥ {SURE:.0%}: wrong')


def table_rows(rows: list[dict]) -> list[list[str]]:
    return [[r['labels'], r['draws'], f"{r['raw_ece']:.3f} ± {r['raw_sd']:.3f}",
             f"{r['shown_ece']:.3f} ± {r['shown_sd']:.3f}", f"{r['better']}/{r['draws']}", f"{r['temperature']:.2f}",
             f"{r['accuracy']:.3f}",
             f"{r['sure_wrong']} of {r['sure']} ({r['sure_wrong'] / r['sure']:.1%})" if r['sure'] else '-']
            for r in rows]


def markdown(results: dict, args: argparse.Namespace, seconds: float) -> str:
    parts = [f"""## Calibration at few labels

`bench/bench_calibration.py`: the probabilities a round shows, against what they promise, on the test half of the
active-learning tasks (the section above describes them) after random pool labels: for each label count
{args.draws} random sets (every class at least once), the model as a round makes it (the engine's `linear` model
standardised on a sample of every segment, its temperature fitted on the out-of-fold predictions over the labels,
in the order a round calls them: a simpler path than a round through the server, which the product loop below
measures). ECE: expected calibration error over 10 bins on every test segment, mean ± sd over
the sets; raw: before the temperature; shown: what every view shows. Last column: of the test segments shown a
probability of at least {SURE:.0%}, how many are wrong. {seconds:.0f} s on {report.machine()['cpus']} CPUs.
"""]
    for result in results.values():
        parts.append(f"### {result['description']}\n\n{report.table(HEADERS, table_rows(result['summary']))}\n")
    return '\n'.join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--dataset', choices=('dsb2018', 'he', 'both'), default='both')
    parser.add_argument('--counts', type=int, nargs='+', default=list(COUNTS), help='label counts')
    parser.add_argument('--draws', type=int, default=8, help='random label sets per count')
    parser.add_argument('--quick', action='store_true', help='3 draws')
    parser.add_argument('--cache', type=Path, default=offline.DEFAULT_CACHE, help='folder of the embedding cache')
    parser.add_argument('--json', type=Path, help='write every figure to this JSON file')
    parser.add_argument('--report', type=Path, metavar='DIR', help='write the benchmarks-page section here')
    args = parser.parse_args(argv)
    if args.quick:
        args.draws = 3
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    elapsed = stopwatch()
    tasks = offline.build_tasks(argparse.Namespace(dataset=args.dataset, task='sizes', cache=args.cache,
                                                   background_segments=offline.BACKGROUND_SEGMENTS))
    tasks.pop('dsb2018-binary', None)
    results = {}
    for name, task in tasks.items():
        draws = [measure_draw(task, count, seed) for count in args.counts for seed in range(args.draws)]
        results[name] = dict(description=task.description, draws=draws, summary=summarise(draws))
        print(f'\n{task.description}\n{report.table(HEADERS, table_rows(results[name]["summary"]))}', flush=True)
    seconds = elapsed()
    report.print_total(seconds)
    report.publish({'datasets': results, 'args': vars(args)}, args.json, args.report, 'calibration',
                   lambda _directory: markdown(results, args, seconds), check_goals(results))
    return results


if __name__ == '__main__':
    main()
