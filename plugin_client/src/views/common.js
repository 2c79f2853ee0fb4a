// What the views share: percentages, the parts of a failed request's message, colours for colour inputs, a
// category's colour, and MessagesView, the box of messages the user can dismiss (guided, painting and review views).
import messageTemplate from './message.pug';

const { $ } = girder;
const { View } = girder.views;

/** "0.912" → "91.2 %"; a missing value (a round without a held-out set) is "n/a". */
export function percent(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
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

/**
 * A view whose asynchronous work (requests, polling) may finish after the view is gone: `destroy` marks it
 * `_destroyed`, which callbacks check before touching the page. Views with more to release (timers, listeners,
 * a viewer) release it in their own `destroy` and then call this one.
 */
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
