// The carry-over reports of the project page (for admins): each slide whose new segmentation waits to be applied
// (GET .../resegmentation), with how many of its labels move to a matching new segment, are ambiguous or are
// dropped, and the labels one by one; Apply keeps the unmatched labels detached or deletes them (the admin's
// explicit choice, confirmed; the slides table then counts the new segments), Discard keeps the slide's segments.
// Below, the project's stale labels (labels that name no current segment, GET .../stale_labels) with a button that
// deletes them.
import { request } from '../../api.js';
import { LiveView, detailOf, requestOf } from '../common.js';
import template from './resegmentation.pug';

/** Fates as the report names them, in the order shown. */
const FATES = ['moved', 'ambiguous', 'dropped'];

const ResegmentationView = LiveView.extend({
  events: {
    'click .hl-carry-apply': '_askApply',
    'click .hl-carry-confirm': '_apply',
    'click .hl-carry-cancel': '_cancel',
    'click .hl-carry-discard': '_discard',
    'click .hl-stale-delete': '_deleteStale',
  },

  /** `folderId` is the project's. */
  initialize({ folderId }) {
    this.folderId = folderId;
    this.reports = [];
    this.stale = [];
    this.asking = null; // {item, unmatched} awaiting confirmation
    this.message = null;
    this.reload();
  },

  /** Fetch the reports and stale labels again (after segment jobs end, or a change). */
  reload() {
    const base = `histomics_label/project/${this.folderId}`;
    return Promise.all([request('GET', `${base}/resegmentation`), request('GET', `${base}/stale_labels`)])
      .then(([{ data: reports }, { data: stale }]) => {
        if (this._destroyed) {
          return;
        }
        Object.assign(this, { reports, stale });
        this.render();
      }, (error) => this._failed('Could not load the carry-over reports.', error));
  },

  render() {
    this.$el.html(template({
      reports: this.reports, stale: this.stale, asking: this.asking, message: this.message, fates: FATES,
      detailOf, requestOf,
    }));
    return this;
  },

  _askApply(event) {
    const button = this.$(event.currentTarget);
    this.asking = { item: button.attr('data-item'), unmatched: button.attr('data-unmatched') };
    this.render();
  },

  _cancel() {
    this.asking = null;
    this.render();
  },

  _apply() {
    const { item, unmatched } = this.asking;
    this.asking = null;
    this._change('POST', item, { unmatched }, (result) => `Applied: ${result.moved} label(s) moved, `
      + `${result.detached || 0} kept detached, ${result.deleted || 0} deleted. `
      + (result.training ? 'A training round was started to predict the new segments.'
        : 'Label two categories to train a model on the new segments.'), true);
  },

  _discard(event) {
    const item = this.$(event.currentTarget).attr('data-item');
    this._change('DELETE', item, {}, () => 'The new segmentation was discarded; the slide keeps its segments.');
  },

  /** `segmentsChanged`: the slide now has its new segments, which the slides table counts (`hl:segmentsChanged`). */
  _change(method, item, params, success, segmentsChanged = false) {
    request(method, `histomics_label/project/${this.folderId}/slide/${item}/resegmentation`, { params })
      .then(({ data }) => {
        this.message = { kind: 'success', title: success(data) };
        if (segmentsChanged) {
          this.trigger('hl:segmentsChanged');
        }
        return this.reload();
      }, (error) => this._failed('The new segmentation could not be applied or discarded.', error));
  },

  _deleteStale() {
    request('DELETE', `histomics_label/project/${this.folderId}/stale_labels`).then(({ data }) => {
      this.message = { kind: 'success', title: `${data.deleted} stale label(s) deleted.` };
      return this.reload();
    }, (error) => this._failed('The stale labels could not be deleted.', error));
  },

  _failed(title, error) {
    if (this._destroyed) {
      return;
    }
    this.message = { kind: 'danger', title, error };
    this.render();
  },
});

export default ResegmentationView;
