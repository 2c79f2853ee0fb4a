// The agreement section of the review page (GET .../agreement): between each two labelers, each labeler against the
// model and the labels in force against the model, as counts, agreement, Cohen's κ and confusion matrices. Each load
// triggers `labelers` with the [id, login] pairs it names (the labeler filter's options).
import { getJson } from '../../api.js';
import { LiveView, percent } from '../common.js';
import template from './agreement.pug';

function fixed(value, digits = 3) {
  return typeof value === 'number' ? value.toFixed(digits) : 'n/a';
}

const AgreementPanel = LiveView.extend({
  /** `base` is the project's API path, `messages` the page's MessagesView. */
  initialize({ base, messages }) {
    this.base = base;
    this.messages = messages;
    this.render('loading');
  },

  render(state, result = null) {
    this.$el.html(template({ state, result, percent, fixed }));
    return this;
  },

  async load() {
    let result;
    try {
      result = await getJson(`${this.base}/agreement`);
    } catch (error) {
      this.render('failed');
      this.messages.failed('Could not compute the agreement', error);
      return;
    }
    if (this._destroyed) {
      return;
    }
    const labelers = [];
    for (const pair of result.labelers) {
      pair.labelers.forEach((id, i) => labelers.push([id, pair.logins[i]]));
    }
    for (const row of result.labelersVsModel) {
      labelers.push([row.labeler, row.login]);
    }
    this.trigger('labelers', labelers);
    this.render('ready', result);
  },
});

export default AgreementPanel;
