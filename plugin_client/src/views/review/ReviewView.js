// The review view (`#histomics_label/project/<folderId>/review`): a page of labeled segments as cards (LabelGrid),
// filtered and sorted by the server (Filters; GET .../labels with limit/offset, Girder-Total-Count for the total,
// Pager) and grouped on the client. Users with write access approve, override or relabel from a card. Below the grid:
// the agreement tables (AgreementPanel), the learning curve (LearningCurve) and the reliability figure (Reliability),
// the last two drawn from one read of the rounds. Every failed request is shown in the page's messages area
// (MessagesView) with what was asked and Girder's answer.
import { getJson, labelRoute, projectRoute, request } from '../../api.js';
import { LiveView, MessagesView } from '../common.js';
import AgreementPanel from './AgreementPanel.js';
import bodyTemplate from './body.pug';
import Filters, { PAGE_SIZES, SORTS } from './Filters.js';
import LabelGrid from './LabelGrid.js';
import LearningCurve from './LearningCurve.js';
import loadError from './loadError.pug';
import Pager from './Pager.js';
import Reliability from './Reliability.js';
import template from './review.pug';
import './review.css';

const ReviewView = LiveView.extend({
  className: 'hl-review-view',

  initialize(settings) {
    this.folderId = settings.folderId;
    this.base = `histomics_label/project/${this.folderId}`;
    this.project = null;
    this.labels = [];
    this.total = null; // null: not listed (yet)
    this.offset = 0;
    this.filters = { item: '', labeler: '', category: '', reviewed: '', disagree: '', sort: SORTS[0].value,
      group: '', limit: String(PAGE_SIZES[0]) };
    this.loadId = 0;
    this.render();
    this._load();
  },

  render() {
    this.$el.html(template({ projectRoute: projectRoute(this.folderId), labelRoute: labelRoute(this.folderId) }));
    this.messages = new MessagesView({ el: this.$('.hl-messages'), parentView: this });
    return this;
  },

  // ---- loading -----------------------------------------------------------------------------------------------

  _canWrite() {
    return Boolean(this.project && this.project.access && this.project.access.write);
  },

  async _load() {
    let slides;
    try {
      [this.project, slides] = await Promise.all([getJson(this.base), getJson(`${this.base}/slides`)]);
    } catch (error) {
      this.$('.hl-review-body').removeClass('hl-loading').html(loadError({ detail: error.message }));
      return;
    }
    if (this._destroyed) {
      return;
    }
    const categories = this.project.config.categories || [];
    this.$('.hl-review-title').text(`Review: ${this.project.name}`);
    this.$('.hl-review-access').text(this._canWrite() ? '' : 'Read only: reviewing needs write access to the folder.');
    this.$('.hl-review-body').removeClass('hl-loading').html(bodyTemplate());
    const { base, messages } = this;
    this.filtersView = new Filters({
      el: this.$('.hl-review-filters'), parentView: this, filters: this.filters, slides, categories,
    });
    this.listenTo(this.filtersView, 'change', this._filtersChanged);
    this.pager = new Pager({ el: this.$('.hl-review-pager'), parentView: this });
    this.listenTo(this.pager, 'previous', this._previous);
    this.listenTo(this.pager, 'next', this._next);
    this.grid = new LabelGrid({
      el: this.$('.hl-review-grid'), parentView: this, folderId: this.folderId, base, categories, slides, canWrite: this._canWrite(), messages,
      accepts: (label) => this._accepts(label),
    });
    this.listenTo(this.grid, 'reviewed', () => this.agreement.load());
    this.listenTo(this.grid, 'relabeled', () => this.agreement.load());
    this.agreement = new AgreementPanel({ el: this.$('.hl-review-agreement'), parentView: this, base, messages });
    this.listenTo(this.agreement, 'labelers', (labelers) => this.filtersView.noteLabelers(labelers));
    this.curve = new LearningCurve({ el: this.$('.hl-review-curve'), parentView: this });
    this.reliability = new Reliability({ el: this.$('.hl-review-reliability'), parentView: this });
    await Promise.all([this.agreement.load(), this._loadRounds(), this._loadLabels()]);
  },

  /** The rounds, for the learning curve and the reliability figure. */
  async _loadRounds() {
    try {
      const { rounds } = await getJson(`${this.base}/rounds`);
      if (!this._destroyed) {
        this.curve.show(rounds);
        this.reliability.show(rounds);
      }
    } catch (error) {
      this.curve.render('failed');
      this.reliability.failed();
      this.messages.failed('Could not read the training rounds', error);
    }
  },

  _filtersChanged(name) {
    if (name === 'group') {
      this._showLabels();
      return;
    }
    this.offset = 0;
    this._loadLabels();
  },

  _previous() {
    this.offset = Math.max(0, this.offset - Number(this.filters.limit));
    this._loadLabels();
  },

  _next() {
    this.offset += Number(this.filters.limit);
    this._loadLabels();
  },

  /**
   * Whether a label belongs on the page as listed: it passes every filter, and the page is not grouped (a card added
   * by hand could land in another group than its own).
   */
  _accepts(label) {
    const f = this.filters;
    const disagrees = Boolean(label.predicted) && label.predicted !== label.category;
    return !f.group && (!f.item || label.item === f.item) && (!f.labeler || label.labeler === f.labeler) &&
      (!f.category || label.category === f.category) &&
      (!f.reviewed || Boolean(label.review) === (f.reviewed === 'true')) &&
      (!f.disagree || disagrees === (f.disagree === 'true'));
  },

  _query() {
    const f = this.filters;
    const [sort, sortdir] = f.sort.split(':');
    const params = { limit: f.limit, offset: String(this.offset), sort, sortdir };
    for (const name of ['item', 'labeler', 'category', 'reviewed', 'disagree']) {
      if (f[name]) {
        params[name] = f[name];
      }
    }
    return params;
  },

  async _loadLabels() {
    this.loadId += 1;
    const id = this.loadId;
    this.grid.loading();
    this.pager.disable();
    try {
      const { data, xhr } = await request('GET', `${this.base}/labels`, { params: this._query() });
      if (this._destroyed || id !== this.loadId) {
        return;
      }
      this.labels = data;
      this.total = Number(xhr.getResponseHeader('Girder-Total-Count'));
      this.filtersView.noteLabelers(data.map((l) => [l.labeler, l.labelerLogin]));
    } catch (error) {
      if (id !== this.loadId) {
        return;
      }
      this.labels = [];
      this.total = null;
      this.messages.failed('Could not list the labels', error);
    }
    this._showLabels();
  },

  /** The page of labels in the pager and the grid. */
  _showLabels() {
    const { offset, total } = this;
    this.pager.show({ offset, count: this.labels.length, total, limit: Number(this.filters.limit) });
    this.grid.render(total === null ? null : this.labels, this.filters.group);
  },
});

export default ReviewView;
