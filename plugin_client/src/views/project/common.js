// Small helpers shared by the views: messages of failed requests, dismissible messages and colours for colour inputs.
const { $, _ } = girder;

export const esc = _.escape;

/** Girder's own message in a failed request (RequestError reads "METHOD path failed (status): detail"). */
export function detailOf(error) {
  const text = (error && error.message) || String(error);
  const at = text.indexOf('): ');
  return at >= 0 ? text.slice(at + 3) : text;
}

/** What went wrong as a request's line: "PUT histomics_label/project/… (400)". */
function requestOf(error) {
  if (!error || !error.method) {
    return '';
  }
  return `${error.method} ${error.path} (${error.status || 'no response'})`;
}

/**
 * A section's message: `{kind: 'success' | 'danger', title, error?}`. A failure shows its title, Girder's message in
 * bold, and the request that failed.
 */
export function messageHtml(message, className) {
  if (!message) {
    return '';
  }
  if (message.kind === 'danger') {
    const request = requestOf(message.error);
    return `<div class="${className} hl-section-message alert alert-danger" role="alert">
        <div class="hl-message-title">${esc(message.title)}</div>
        <strong class="hl-message-detail">${esc(detailOf(message.error))}</strong>
        ${request ? `<div class="hl-message-request">${esc(request)}</div>` : ''}
      </div>`;
  }
  return `<div class="${className} hl-section-message alert alert-${esc(message.kind)}" role="status">
      ${esc(message.title)}</div>`;
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

/**
 * Methods a view mixes in to show messages the user can dismiss, in its `.hl-messages` box: `_message(text, kind)`
 * (an error unless `kind` says otherwise) and `_failed(what, error)` for a failed request.
 */
export const dismissibleMessages = {
  _message(text, kind = 'danger') {
    const box = $(`<div class="hl-message alert alert-${kind} alert-dismissible" role="alert">
        <button type="button" class="close" aria-label="Dismiss">&times;</button>
        <span class="hl-message-text"></span>
      </div>`);
    box.find('.hl-message-text').text(text);
    box.find('.close').on('click', () => box.remove());
    this.$('.hl-messages').append(box);
  },

  _failed(what, error) {
    this._message(`${what}: ${error.message}`);
  },
};
