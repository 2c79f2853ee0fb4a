// The learning curve section of the review page (GET .../rounds) as a small inline SVG chart: each finished round's
// balanced accuracy by k-fold cross-validation over its labels (y, 0 to 100 %) against the labels it used (x), with
// a vertical bar for its 95 % interval. Rounds without a cross-validated accuracy (an image model, a category with a
// single label) are left out of the line and counted below it.
import { getJson } from '../../api.js';
import template from './learningCurve.pug';
import { LiveView, accuracyOf } from '../common.js';

const WIDTH = 460;
const HEIGHT = 240;
const MARGIN = { left: 56, right: 16, top: 14, bottom: 44 };
/** Half the width of an interval bar's caps (px). */
const CAP = 4;
/** How far the first and last rounds stand in from the ends of the x axis (px), their bars clear of the y axis. */
const INSET = 14;

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

/** Whether a round has a cross-validated accuracy (with its interval) and the number of labels it used. */
function measured(round) {
  const { accuracy } = round;
  return Boolean(accuracy) && ['balancedAccuracy', 'low', 'high'].every((key) => typeof accuracy[key] === 'number') &&
    typeof round.labelsUsed === 'number';
}

/** The chart's geometry for learningCurve.pug from GET .../rounds' `rounds` (oldest first); null without points. */
function chartOf(rounds) {
  const points = rounds.filter(measured);
  if (!points.length) {
    return null;
  }
  const xs = points.map((r) => r.labelsUsed);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x0 === x1) {
    [x0, x1] = [Math.max(0, x0 - 1), x1 + 1];
  }
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (v) => MARGIN.left + INSET + ((v - x0) / (x1 - x0)) * (plotW - 2 * INSET);
  const sy = (v) => MARGIN.top + (1 - v) * plotH;
  const skipped = rounds.length - points.length;
  return {
    width: WIDTH,
    height: HEIGHT,
    left: MARGIN.left,
    right: MARGIN.left + plotW,
    top: MARGIN.top,
    bottom: MARGIN.top + plotH,
    middleX: MARGIN.left + plotW / 2,
    middleY: MARGIN.top + plotH / 2,
    xTicks: niceTicks(x0, x1).map((v) => ({ x: sx(v), label: v })),
    yTicks: [0, 0.25, 0.5, 0.75, 1].map((v) => ({ y: sy(v), label: `${v * 100} %`, grid: Boolean(v) })),
    path: points.map((r, i) => `${i ? 'L' : 'M'}${sx(r.labelsUsed).toFixed(1)},` +
      `${sy(r.accuracy.balancedAccuracy).toFixed(1)}`).join(' '),
    points: points.map((r) => {
      const { balancedAccuracy, low, high } = r.accuracy;
      const cx = sx(r.labelsUsed);
      const words = accuracyOf(r);
      return {
        cx: cx.toFixed(1), cy: sy(balancedAccuracy).toFixed(1), number: r.number, labels: r.labelsUsed,
        accuracy: balancedAccuracy, low, high, tooltip: `Round ${r.number}: accuracy ${words.text}. ${words.title}`,
        bar: { x: cx.toFixed(1), x0: (cx - CAP).toFixed(1), x1: (cx + CAP).toFixed(1), low: sy(low).toFixed(1),
          high: sy(high).toFixed(1) },
      };
    }),
    note: `${points.length} round${points.length === 1 ? '' : 's'}; the bars are 95 % intervals${skipped
      ? `; ${skipped} round${skipped === 1 ? '' : 's'} without a cross-validated accuracy (an image model, or a ` +
        'category with a single label) left out' : ''}.`,
  };
}

const LearningCurve = LiveView.extend({
  /** `base` is the project's API path, `messages` the page's MessagesView. */
  initialize({ base, messages }) {
    this.base = base;
    this.messages = messages;
    this.render('loading');
  },

  render(state, chart = null) {
    this.$el.html(template({ state, chart }));
    return this;
  },

  async load() {
    try {
      const result = await getJson(`${this.base}/rounds`);
      if (this._destroyed) {
        return;
      }
      this.render('ready', chartOf(result.rounds));
    } catch (error) {
      this.render('failed');
      this.messages.failed('Could not read the training rounds', error);
    }
  },
});

export default LearningCurve;
