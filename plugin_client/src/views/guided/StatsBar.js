// The guided page's stats bar: how many labels the project has, the latest round, its accuracy on the audit sample
// (random checks: the unbiased estimate, shown first) and its cross-validated accuracy on the labels, each with its
// interval (the tooltips say what they are, or why they were not measured), the stopping signal, and the Retrain
// button, which saves
// what is in flight, asks for a round (POST .../train) and polls the rounds until a newer one appears or training
// stops without one. Rounds started by anyone else (automatic retraining, another labeler's Retrain) reach it through
// Girder's notification stream: it says what is training and, once a round is done, shows it at once; the row of
// cards stays until it is done (GuidedView fetches the next row with the latest round).
import { getJson, request } from '../../api.js';
import { LiveView, accuracyOf, auditOf, changeOf, onTraining, trainingText } from '../common.js';
import template from './statsBar.pug';

/** How often the rounds are polled while a retrain runs (ms). */
const POLL_MS = 1500;

const StatsBar = LiveView.extend({
  events: {
    'click .hl-retrain': '_retrainClicked',
  },

  /**
   * `base` is the project's API path, `messages` the page's MessagesView; before a retrain `saved()` resolves once
   * the labels in flight are saved, and after one `newRound()` shows the next row (both Promises).
   */
  initialize({ projectId, base, messages, saved, newRound }) {
    Object.assign(this, { base, messages, saved, newRound });
    this.rounds = [];
    this.training = false;
    this.render();
    onTraining(this, projectId, (data) => this._trainingEvent(data));
  },

  destroy(...args) {
    clearTimeout(this._pollTimer);
    return LiveView.prototype.destroy.apply(this, args);
  },

  render() {
    this.$el.html(template());
    return this;
  },

  enable() {
    this.$('.hl-retrain').prop('disabled', false);
  },

  /**
   * Count the project's labels again. Counts asked for in quick succession (one per saved label) may be answered
   * out of order, so only the newest one's answer is shown; the count carries `hl-counting` until it arrives.
   */
  async refreshCount() {
    this._countAsked = (this._countAsked || 0) + 1;
    const asked = this._countAsked;
    const counter = this.$('.hl-label-count').addClass('hl-counting');
    let text;
    try {
      const { xhr } = await request('GET', `${this.base}/labels`, { params: { limit: 1 } });
      text = Number(xhr.getResponseHeader('Girder-Total-Count')).toLocaleString();
    } catch (error) {
      if (asked === this._countAsked) {
        text = '?';
        this.messages.failed('Could not count the labels', error);
      }
    }
    if (asked === this._countAsked) {
      counter.text(text).removeClass('hl-counting');
    }
  },

  /** Fetch the rounds and show the latest; returns the rounds document or null when the request failed. */
  async refreshRounds() {
    try {
      const result = await getJson(`${this.base}/rounds`);
      this.rounds = result.rounds;
      const latest = this.rounds[this.rounds.length - 1];
      this.$('.hl-round-number').text(latest ? latest.number : 'none yet');
      const accuracy = accuracyOf(latest);
      this.$('.hl-accuracy').text(accuracy.text);
      this.$('.hl-accuracy-stat').attr('title', accuracy.title);
      const audit = auditOf(latest);
      this.$('.hl-audit').text(audit.text);
      this.$('.hl-audit-stat').attr('title', audit.title);
      const change = changeOf(latest);
      this.$('.hl-changed').text(change.text);
      this.$('.hl-changed-stat').attr('title', change.title);
      return result;
    } catch (error) {
      this.messages.failed('Could not read the training rounds', error);
      return null;
    }
  },

  /** Say `text` where the bar says what training does. */
  say(text) {
    this.$('.hl-train-status').text(text);
  },

  /** A training event of the project, from anyone (`onTraining`): said, and a finished round shown at once. */
  _trainingEvent(data) {
    if (this.training) {
      return; // this labeler's own Retrain: its poll says what happens
    }
    this.say(trainingText(data));
    if (data.state === 'done') {
      this.refreshRounds();
    }
  },

  _retrainClicked(event) {
    event.currentTarget.blur(); // Enter and Space stay the page's keys
    this._retrain();
  },

  async _retrain() {
    if (this.training) {
      return;
    }
    this.training = true;
    const button = this.$('.hl-retrain').prop('disabled', true);
    const status = this.$('.hl-train-status').text('Saving labels…');
    await this.saved();
    const before = this.rounds.length ? this.rounds[this.rounds.length - 1].number : 0;
    try {
      status.text('Training…');
      await request('POST', `${this.base}/train`);
      const round = await this._waitForRound(before);
      if (round) {
        // the sentence a training event says, so that the event arriving after this poll changes nothing
        status.text(trainingText({ state: 'done', round }));
        await this.newRound();
      } else {
        status.text('');
        this.messages.add('Training finished without a new round (for instance, fewer than two trainable ' +
          'categories have labels); the previous model is kept. The job list has its log.', 'warning');
      }
    } catch (error) {
      status.text('');
      this.messages.failed('Could not retrain', error);
    } finally {
      this.training = false;
      if (!this._destroyed) {
        button.prop('disabled', false);
      }
    }
  },

  /** Poll the rounds until one newer than `before` appears (returned) or training stops without one (null). */
  _waitForRound(before) {
    return new Promise((resolve, reject) => {
      const poll = async () => {
        if (this._destroyed) {
          resolve(null);
          return;
        }
        const result = await this.refreshRounds();
        if (!result) {
          reject(new Error('the training rounds could not be read'));
          return;
        }
        const latest = result.rounds[result.rounds.length - 1];
        if (latest && latest.number > before && !result.state.running && !result.state.pending) {
          resolve(latest);
        } else if (!result.state.running && !result.state.pending) {
          resolve(latest && latest.number > before ? latest : null);
        } else {
          this._pollTimer = setTimeout(poll, POLL_MS);
        }
      };
      this._pollTimer = setTimeout(poll, POLL_MS);
    });
  },
});

export default StatsBar;
