// What the views share: percentages, a round's accuracy (cross-validated and on the audit sample) and labeling time in
// words, the parts of a failed request's message, colours
// for colour inputs, a category's colour, and MessagesView, the box of messages the user can dismiss (guided,
// painting and review views).
import messageTemplate from './message.pug';

const { $ } = girder;
const { View } = girder.views;

/** "0.912" → "91.2 %"; a missing value is "n/a". */
export function percent(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

/** The models that learn from image patches: cross-validating one would train it once per fold, so it is not. */
const IMAGE_MODELS = ['cnn_torch', 'cnn_keras'];

/** A fraction as a whole percentage number: 0.784 → 78. */
const whole = (value) => Math.round(value * 100);

/** Why a round (GET .../rounds) has no cross-validated `accuracy`, as a sentence. */
export function notMeasuredWhy(round) {
  if (!round) {
    return 'No training round yet.';
  }
  if (round.accuracy === undefined) {
    return 'This round was trained before rounds were cross-validated.';
  }
  if (IMAGE_MODELS.includes(round.model)) {
    return `The model (${round.model}) learns from image patches; cross-validating it would train it once per ` +
      'fold, so its accuracy is not measured.';
  }
  const single = Object.entries(round.perClass || {}).filter(([, count]) => count === 1).map(([name]) => name);
  if (single.length) {
    return `${single.map((name) => `"${name}"`).join(', ')} ${single.length === 1 ? 'has' : 'have'} a single ` +
      'label; cross-validation needs at least two labels in every trained category.';
  }
  return 'The model learns from image patches, or a trained category has a single label.';
}

/**
 * A round's cross-validated accuracy (its `accuracy`: {balancedAccuracy, low, high, labels, folds}) as a
 * pathologist reads it: `text` "78 % (62–90 %, 18 labels)" and `title`, the tooltip that says what it is; for a round
 * without one (an image model, a category with a single label) `text` is "not measured" and `title` says why.
 * `measured` tells which.
 */
export function accuracyOf(round) {
  const accuracy = round && round.accuracy;
  if (!accuracy || typeof accuracy.balancedAccuracy !== 'number') {
    return { measured: false, text: 'not measured', title: notMeasuredWhy(round) };
  }
  const { balancedAccuracy, low, high, labels, folds } = accuracy;
  const range = `${whole(low)}–${whole(high)} %`;
  const counted = `${labels} label${labels === 1 ? '' : 's'}`;
  return {
    measured: true,
    text: `${whole(balancedAccuracy)} % (${range}, ${counted})`,
    title: `Balanced accuracy (the mean of the categories' recalls) by ${folds}-fold cross-validation over the ` +
      `${counted}; 95 % interval ${range}. It measures the model on the labels, and the segments the model picked ` +
      'for labeling are harder than the slide at large, so it errs low; the accuracy on random checks is the ' +
      'unbiased estimate.',
  };
}

/** "14 random segments": how many audited labels an audit accuracy rests on. */
function randomSegments(count) {
  return `${count} random segment${count === 1 ? '' : 's'}`;
}

/** Why a round has no `auditAccuracy`, as a sentence. */
function notAuditedWhy(round) {
  if (!round || round.auditAccuracy === undefined) {
    return round ? 'This round was trained before audit labels were measured.' : 'No training round yet.';
  }
  if (!round.accuracy) {
    return `${notMeasuredWhy(round)} The audit accuracy is measured the same way, so it is not either.`;
  }
  return 'None of the audit sample is labeled yet. In guided labeling, the cards marked "random check" are ' +
    'segments drawn at random rather than chosen by the model; labeled like any other, they measure the model on ' +
    'the slide as it is, without the bias of the cards it picked.';
}

/**
 * A round's accuracy on the audit sample (its `auditAccuracy`: {balancedAccuracy, low, high, labels, accuracy}), the
 * labels of segments drawn at random rather than by the acquisition function, as a pathologist reads it: `text`
 * "72 % (55–86 %, 14 random segments)" and `title`, what it is; without one, "no audit labels yet" and why.
 * `measured` tells which.
 */
export function auditOf(round) {
  const audit = round && round.auditAccuracy;
  if (!audit || typeof audit.balancedAccuracy !== 'number') {
    return { measured: false, text: 'no audit labels yet', title: notAuditedWhy(round) };
  }
  const { balancedAccuracy, low, high, labels, accuracy } = audit;
  const range = `${whole(low)}–${whole(high)} %`;
  return {
    measured: true,
    text: `${whole(balancedAccuracy)} % (${range}, ${randomSegments(labels)})`,
    title: `Balanced accuracy on the audit sample: ${labels} segment${labels === 1 ? '' : 's'} drawn at random (not ` +
      'chosen by the model) and labeled like any other, each predicted by a model that did not train on it. ' +
      'Unlike the cross-validated accuracy it is not biased by how the labels were chosen; 95 % interval ' +
      `${range}, which narrows as more random checks are labeled. ${whole(accuracy)} % of them were predicted ` +
      'right.',
  };
}

/** Minutes of labeling as words: 0.4 → "< 1 min", 75 → "1 h 15 min"; a missing value is "n/a". */
export function minutesText(minutes) {
  if (typeof minutes !== 'number') {
    return 'n/a';
  }
  if (minutes < 1) {
    return minutes > 0 ? '< 1 min' : '0 min';
  }
  const rounded = Math.round(minutes);
  return rounded < 60 ? `${rounded} min` : `${Math.floor(rounded / 60)} h ${rounded % 60} min`;
}

/**
 * A round's `labelingMinutes` (the labelers' active time up to it) as `{text, title}`: "n/a" for a round trained
 * before labeling time was recorded.
 */
export function labelingTimeOf(round) {
  const minutes = round && round.labelingMinutes;
  if (typeof minutes !== 'number') {
    return { text: 'n/a', title: round ? 'This round was trained before labeling time was recorded.' :
      'No training round yet.' };
  }
  return {
    text: minutesText(minutes),
    title: 'Active labeling time of all labelers up to this round: the time between each labeler\'s saved ' +
      'labels, pauses (over 2 minutes) not counted in full.',
  };
}

/**
 * The stopping signal of a round (its `predictionsChanged`): the share of segments whose predicted category it
 * changed, as `{text, title}`. When it stays near zero for a few rounds, more labels stop changing the model.
 */
export function changeOf(round) {
  const change = round && round.predictionsChanged;
  if (!change) {
    return { text: round ? 'first round' : 'n/a', title: 'Nothing to compare with: no earlier round.' };
  }
  const share = change.share * 100;
  const words = share > 0 && share < 1 ? '< 1' : String(Math.round(share));
  return {
    text: `${words} % of predictions`,
    title: `The last round changed the predicted category of ${change.changed.toLocaleString()} of ` +
      `${change.segments.toLocaleString()} segments. When this stays near 0 % for a few rounds, more labels stop ` +
      'changing the model.',
  };
}

/** A model's probability as a pathologist reads it: 0.874 → "87 %". */
export function chance(probability) {
  return typeof probability === 'number' ? `${Math.round(probability * 100)} %` : '';
}

/** Girder's own message in a failed request (RequestError reads "METHOD path failed (status): detail"). */
export function detailOf(error) {
  const text = (error && error.message) || String(error);
  const at = text.indexOf('): ');
  return at >= 0 ? text.slice(at + 3) : text;
}

/** What went wrong as a request's line: "PUT histomics_label/project/… (400)"; empty for no request. */
export function requestOf(error) {
  if (!error || !error.method) {
    return '';
  }
  return `${error.method} ${error.path} (${error.status || 'no response'})`;
}

let canvasContext = null;

/** Any CSS colour as `#rrggbb` for an `<input type="color">` (its alpha dropped); black if unreadable. */
export function toHex(color) {
  canvasContext ||= document.createElement('canvas').getContext('2d');
  canvasContext.fillStyle = '#000000';
  canvasContext.fillStyle = color || '#000000';
  const value = canvasContext.fillStyle;
  if (/^#[0-9a-f]{6}$/i.test(value)) {
    return value.toLowerCase();
  }
  const match = value.match(/rgba?\(\s*(\d+),\s*(\d+),\s*(\d+)/);
  if (!match) {
    return '#000000';
  }
  return `#${match.slice(1, 4).map((n) => Number(n).toString(16).padStart(2, '0')).join('')}`;
}

/** The swatch colour of a category by name among `categories` (transparent for an unknown one). */
export function categoryColor(categories, name) {
  const category = categories.find((c) => c.name === name);
  return (category && category.color) || 'transparent';
}

/** Input types that take typed text: a key pressed in one is typing, not a shortcut. */
const TEXT_INPUTS = new Set(['text', 'search', 'number', 'email', 'password', 'url', 'tel', 'date', 'time',
  'datetime-local', 'month', 'week']);

/**
 * Whether a key pressed with `target` focused is typing (a text field, a select, editable content), which the views'
 * shortcuts leave alone. A checkbox, slider or button clicked a moment ago keeps the focus but takes no typing, so
 * the shortcuts go on working after it.
 */
export function isTyping(target) {
  if (!target || !target.tagName) {
    return false;
  }
  if (target.isContentEditable || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') {
    return true;
  }
  return target.tagName === 'INPUT' && TEXT_INPUTS.has((target.type || 'text').toLowerCase());
}

/**
 * A view whose asynchronous work (requests, polling) may finish after the view is gone: `destroy` marks it
 * `_destroyed`, which callbacks check before touching the page. Views with more to release (timers, listeners,
 * a viewer) release it in their own `destroy` and then call this one.
 */
/** The notification type the server sends when a project's training changes (histomics_label/projects/notify.py). */
const TRAINING_EVENT = 'g:event.histomics_label.training';

/**
 * Call `handler(data)` with each training event of project `projectId` that Girder's notification stream brings
 * (a round started, done, failed or stopped, by anyone), for as long as `view` lives.
 */
export function onTraining(view, projectId, handler) {
  view.listenTo(girder.utilities.eventStream, TRAINING_EVENT, (event) => {
    if (event.data && event.data.project === projectId) {
      handler(event.data);
    }
  });
}

/** A training event (`onTraining`) as a sentence: "Round 7 trained on 64 labels; 212 predictions changed." */
export function trainingText(data) {
  if (data.state === 'running') {
    return 'A new round is training…';
  }
  if (data.state === 'failed') {
    return `The last round failed (${data.message}); the previous model stays.`;
  }
  if (data.state === 'stopped') {
    return 'The round was stopped; the previous model stays.';
  }
  const round = data.round || {};
  const changed = round.predictionsChanged;
  const change = changed ? `; ${changed.changed.toLocaleString()} prediction${changed.changed === 1 ? '' : 's'} ` +
    'changed' : '';
  return `Round ${round.number} trained on ${round.labelsUsed} labels${change}.`;
}

export const LiveView = View.extend({
  destroy(...args) {
    this._destroyed = true;
    return View.prototype.destroy.apply(this, args);
  },
});

/**
 * A view's `.hl-messages` box: messages the user dismisses. `add(text, kind)` shows one (an error unless `kind` says
 * otherwise); `failed(what, error)` one for a failed request.
 */
export const MessagesView = View.extend({
  events: {
    'click .close': '_dismiss',
  },

  add(text, kind = 'danger') {
    this.$el.append(messageTemplate({ text, kind }));
  },

  failed(what, error) {
    this.add(`${what}: ${error.message}`);
  },

  _dismiss(event) {
    $(event.currentTarget).closest('.hl-message').remove();
  },
});
