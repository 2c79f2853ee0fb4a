// The reliability figure of the review page: for the latest round with a `calibration` (GET .../rounds), how often
// the model was right (y) against the probability it showed (x), per bin of shown probability, over the round's
// labeled segments, each predicted by a model that did not train on it. Points on the diagonal mean "87 %" is right
// 87 % of the time. The calibrated bins (the probabilities the product shows) are drawn as points whose area grows
// with the labels in the bin, the raw ones (before temperature scaling) faint behind them; the text gives the
// expected calibration error before and after and what the temperature did.
import template from './reliability.pug';
import { LiveView, notMeasuredWhy } from '../common.js';

const SIZE = 300;
const MARGIN = { left: 52, right: 14, top: 12, bottom: 42 };
/** The radius (px) of the point of the bin with the most labels; the others' areas are in proportion. */
const MAX_RADIUS = 11;
/** The smallest radius (px), so that a bin of one label stays visible. */
const MIN_RADIUS = 2.5;

/** A fraction as a whole percentage: 0.874 → "87 %". */
const percent = (value) => `${Math.round(value * 100)} %`;
const labelsWord = (count) => `${count} label${count === 1 ? '' : 's'}`;

/** The figure's geometry for reliability.pug from a round's `calibration`. */
function figureOf(calibration) {
  const plot = SIZE - MARGIN.left - MARGIN.right;
  const sx = (v) => MARGIN.left + v * plot;
  const sy = (v) => MARGIN.top + (1 - v) * plot;
  const largest = Math.max(1, ...calibration.raw.bins.map((b) => b.count),
    ...calibration.calibrated.bins.map((b) => b.count));
  const points = (bins, kind) => bins.map((bin) => ({
    ...bin,
    cx: sx(bin.confidence).toFixed(1),
    cy: sy(bin.accuracy).toFixed(1),
    r: Math.max(MIN_RADIUS, MAX_RADIUS * Math.sqrt(bin.count / largest)).toFixed(1),
    tooltip: `${kind}, shown ${percent(bin.low)}–${percent(bin.high)}: ${labelsWord(bin.count)}; the model said ` +
      `${percent(bin.confidence)} on average and was right on ${percent(bin.accuracy)} of them.`,
  }));
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((v) => ({ x: sx(v), y: sy(v), label: `${v * 100} %` }));
  return {
    width: SIZE,
    height: SIZE,
    left: MARGIN.left,
    right: sx(1),
    top: MARGIN.top,
    bottom: sy(0),
    middle: MARGIN.left + plot / 2,
    middleY: MARGIN.top + plot / 2,
    ticks,
    raw: points(calibration.raw.bins, 'Before scaling'),
    calibrated: points(calibration.calibrated.bins, 'As shown'),
  };
}

/** What the temperature did to the probabilities, in one sentence. */
function temperatureWords(temperature) {
  const t = temperature.toFixed(2);
  let effect = 'so the probabilities are shown as the model gives them';
  if (temperature > 1.005) {
    effect = 'which softens them: the model was over-confident, and its "95 %" becomes a more modest number';
  } else if (temperature < 0.995) {
    effect = 'which sharpens them: the model was under-confident, and its probabilities move away from even odds';
  }
  return `Every probability shown is the model's, with its log divided by a temperature of ${t} fitted on ` +
    `predictions for labels the model did not train on, ${effect}; the predicted category never changes.`;
}

/** Why no round has a calibration yet, as a sentence, from the latest round. */
function missingWhy(latest) {
  if (!latest) {
    return 'No training round yet.';
  }
  if (latest.calibration === undefined) {
    return 'The rounds were trained before calibration was recorded; the next round will have it.';
  }
  return `${notMeasuredWhy(latest)} Calibration is measured on the same predictions, so it is not either.`;
}

const Reliability = LiveView.extend({
  initialize() {
    this.render({ state: 'loading' });
  },

  render(locals) {
    this.$el.html(template(locals));
    return this;
  },

  /** Draw the figure of the latest round with a calibration among GET .../rounds' `rounds` (oldest first). */
  show(rounds) {
    const round = [...rounds].reverse().find((r) => r.calibration && r.calibration.calibrated);
    if (!round) {
      return this.render({ state: 'none', why: missingWhy(rounds[rounds.length - 1]) });
    }
    const { calibration } = round;
    const latest = rounds[rounds.length - 1];
    return this.render({
      state: 'ready',
      round,
      figure: figureOf(calibration),
      ece: { raw: percent(calibration.raw.ece), calibrated: percent(calibration.calibrated.ece) },
      labels: labelsWord(calibration.labels),
      temperature: temperatureWords(calibration.temperature),
      older: round !== latest ? `Round ${latest.number} has no calibration: ${missingWhy(latest)} Shown: round ` +
        `${round.number}, the latest with one.` : '',
    });
  },

  /** Say the rounds could not be read. */
  failed() {
    return this.render({ state: 'failed' });
  },
});

export default Reliability;
