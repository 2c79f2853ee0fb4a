// The learning curve section of the review page (the rounds of GET .../rounds) as a small inline SVG chart: per
// finished round, two accuracies (y, 0 to 100 %), each with a vertical bar for its 95 % interval: the balanced
// accuracy by k-fold cross-validation over the round's labels (circles), and the balanced accuracy on the audit
// sample, segments drawn at random and so free of the bias of actively chosen labels (diamonds). The x axis is
// switched between the labels a round used and the labelers' active minutes up to it. Rounds without a value are
// left out of a series (and of the minutes view), and the note below the chart says how many and why.
import template from './learningCurve.pug';
import { LiveView, accuracyOf, auditOf } from '../common.js';

const WIDTH = 460;
const HEIGHT = 256;
const MARGIN = { left: 56, right: 16, top: 30, bottom: 44 };
/** Half the width of an interval bar's caps (px). */
const CAP = 4;
/** How far the first and last rounds stand in from the ends of the x axis (px), their bars clear of the y axis. */
const INSET = 14;
/** How far an audit point stands right of its round's cross-validated point (px), so that their bars stay apart. */
const DODGE = 6;
/** Half the diagonal of an audit point's diamond (px). */
const DIAMOND = 5;

/** The x axes the switch offers: what a round's x is, and the axis' title. */
const AXES = {
  labels: { value: (round) => round.labelsUsed, title: 'Labels used', button: 'Labels' },
  minutes: { value: (round) => round.labelingMinutes, title: 'Labeling minutes (active)', button: 'Labeling minutes' },
};

function niceTicks(min, max, count = 5) {
  if (min === max) {
    return [min];
  }
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) {
    ticks.push(Math.round(v * 1e6) / 1e6);
  }
  return ticks;
}

/** Whether an accuracy (a round's `accuracy` or `auditAccuracy`) has its value and interval. */
function complete(accuracy) {
  return Boolean(accuracy) && ['balancedAccuracy', 'low', 'high'].every((key) => typeof accuracy[key] === 'number');
}

const plural = (count, word) => `${count} round${count === 1 ? '' : 's'} ${word}`;

/** What the note under the chart says: how many rounds each series shows, and which were left out and why. */
function noteOf(rounds, axis, cv, audit) {
  const parts = [`${plural(cv.length, 'cross-validated')}, ${audit.length} with audit labels; the bars are 95 % ` +
    'intervals.'];
  const placed = rounds.filter((r) => typeof AXES[axis].value(r) === 'number');
  const noAccuracy = placed.filter((r) => !complete(r.accuracy)).length;
  if (noAccuracy) {
    parts.push(`${plural(noAccuracy, 'without')} a cross-validated accuracy (an image model, or a category with a ` +
      'single label) left out.');
  }
  if (placed.length < rounds.length) {
    parts.push(`${plural(rounds.length - placed.length, 'trained')} before labeling time was recorded left out of ` +
      'this view.');
  }
  return parts.join(' ');
}

/**
 * The chart's geometry for learningCurve.pug from GET .../rounds' `rounds` (oldest first) against `axis` ('labels'
 * or 'minutes'); null when neither series has a point.
 */
function chartOf(rounds, axis) {
  const xOf = AXES[axis].value;
  const placed = rounds.filter((r) => typeof xOf(r) === 'number');
  const cv = placed.filter((r) => complete(r.accuracy));
  const audit = placed.filter((r) => complete(r.auditAccuracy));
  if (!cv.length && !audit.length) {
    return null;
  }
  const xs = [...cv, ...audit].map(xOf);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x0 === x1) {
    [x0, x1] = [Math.max(0, x0 - 1), x1 + 1];
  }
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (v) => MARGIN.left + INSET + ((v - x0) / (x1 - x0)) * (plotW - 2 * INSET);
  const sy = (v) => MARGIN.top + (1 - v) * plotH;
  /** A series' points (each round's value, interval bar and tooltip), `dodge` px right of the round's x. */
  const series = (list, field, name, words, dodge) => list.map((r) => {
    const { balancedAccuracy, low, high, labels } = r[field];
    const cx = sx(xOf(r)) + dodge;
    const said = words(r);
    return {
      cx: cx.toFixed(1), cy: sy(balancedAccuracy).toFixed(1), number: r.number, x: xOf(r), labels,
      accuracy: balancedAccuracy, low, high, tooltip: `Round ${r.number}: ${name} ${said.text}. ${said.title}`,
      bar: { x: cx.toFixed(1), x0: (cx - CAP).toFixed(1), x1: (cx + CAP).toFixed(1), low: sy(low).toFixed(1),
        high: sy(high).toFixed(1) },
    };
  });
  const pathOf = (points) => points.map((p, i) => `${i ? 'L' : 'M'}${p.cx},${p.cy}`).join(' ');
  const cvPoints = series(cv, 'accuracy', 'cross-validated accuracy', accuracyOf, 0);
  const auditPoints = series(audit, 'auditAccuracy', 'audit accuracy', auditOf, DODGE).map((p) => ({
    ...p, diamond: `M${p.cx},${(Number(p.cy) - DIAMOND).toFixed(1)} l${DIAMOND},${DIAMOND} ` +
      `l${-DIAMOND},${DIAMOND} l${-DIAMOND},${-DIAMOND} z`,
  }));
  return {
    width: WIDTH,
    height: HEIGHT,
    left: MARGIN.left,
    right: MARGIN.left + plotW,
    top: MARGIN.top,
    bottom: MARGIN.top + plotH,
    middleX: MARGIN.left + plotW / 2,
    middleY: MARGIN.top + plotH / 2,
    xTitle: AXES[axis].title,
    xTicks: niceTicks(x0, x1).map((v) => ({ x: sx(v), label: v })),
    yTicks: [0, 0.25, 0.5, 0.75, 1].map((v) => ({ y: sy(v), label: `${v * 100} %`, grid: Boolean(v) })),
    cv: { points: cvPoints, path: pathOf(cvPoints) },
    audit: { points: auditPoints, path: pathOf(auditPoints) },
    legend: { y: MARGIN.top - 16, cvX: MARGIN.left + 8, auditX: MARGIN.left + 200 },
    note: noteOf(rounds, axis, cv, audit),
  };
}

/** Why the chart is empty on `axis`, as a sentence. */
function emptyWhy(rounds, axis) {
  if (axis === 'minutes' && !rounds.some((r) => typeof r.labelingMinutes === 'number')) {
    return 'No round records its labeling time yet: rounds trained before it was recorded have none.';
  }
  return 'No round with a cross-validated or audit accuracy yet.';
}

const LearningCurve = LiveView.extend({
  events: {
    'click .hl-curve-x': '_axisClicked',
  },

  initialize() {
    this.rounds = null;
    this.axis = 'labels';
    this.render('loading');
  },

  /** Draw `state` 'loading', 'failed' or 'ready' (with the rounds given to `show`). */
  render(state) {
    const ready = state === 'ready';
    this.$el.html(template({
      state, axis: this.axis, axes: Object.entries(AXES).map(([value, { button }]) => ({ value, text: button })),
      chart: ready ? chartOf(this.rounds, this.axis) : null, empty: ready ? emptyWhy(this.rounds, this.axis) : '',
    }));
    return this;
  },

  /** Draw the curve of GET .../rounds' `rounds` (oldest first). */
  show(rounds) {
    this.rounds = rounds;
    return this.render('ready');
  },

  _axisClicked(event) {
    this.axis = event.currentTarget.dataset.axis;
    this.render('ready');
  },
});

export default LearningCurve;
