// The review view (`#histomics_label/project/<folderId>/review`): a page of labeled segments as cards (thumbnail,
// category, labeler, date, the model's prediction and its certainty, review state), filtered and sorted by the server
// (GET .../labels with limit/offset; Girder-Total-Count for the total) and grouped on the client (the groups are of
// the page shown, not of every match). Users with write access approve, override (PUT .../labels/{id}/review) or
// relabel (PUT .../labels, view "review", which sets their own label of the segment) from a card. Below the grid:
// the agreement tables (GET .../agreement) and the learning curve (GET .../rounds) as an inline SVG chart.
// Every failed request is shown in the page's messages area with what was asked and Girder's answer.
import { apiUrl, getJson, labelRoute, projectRoute, request } from '../../api.js';
import { learningCurveSvg } from './learningCurve.js';
import { dismissibleMessages, esc } from '../project/common.js';
import './review.css';

const { $ } = girder;
const { View } = girder.views;

export const PAGE_SIZES = [24, 48, 96];

/** The sorts of the labels listing offered here: `value` is `field:direction` for GET .../labels. */
export const SORTS = [
  { value: 'updated:-1', text: 'Newest change first' },
  { value: 'updated:1', text: 'Oldest change first' },
  { value: 'segment:1', text: 'Segment number' },
  { value: 'category:1', text: 'Category (A–Z)' },
  { value: 'certainty:1', text: 'Certainty (least first)' },
  { value: 'certainty:-1', text: 'Certainty (most first)' },
];

export const GROUPS = [
  { value: '', text: 'No grouping' },
  { value: 'category', text: 'Category' },
  { value: 'item', text: 'Slide' },
  { value: 'predicted', text: 'Model prediction' },
];

export function reviewRoute(folderId) {
  return `${projectRoute(folderId)}/review`;
}

function fixed(value, digits = 3) {
  return typeof value === 'number' ? value.toFixed(digits) : 'n/a';
}

function percent(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

/** The model's certainty (its probability of the predicted category) as a whole percentage, e.g. "62 %". */
function certaintyText(certainty) {
  return typeof certainty === 'number' ? `${Math.round(certainty * 100)} %` : '';
}

function when(iso) {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function options(list, selected) {
  return list.map((o) => `<option value="${esc(o.value)}"${o.value === selected ? ' selected' : ''}>` +
    `${esc(o.text)}</option>`).join('');
}

/** A confusion matrix as a small table: rows the first labeling, columns the second. */
function confusionTable(matrix, names, rowsTitle, columnsTitle) {
  if (!matrix || !matrix.length) {
    return '';
  }
  const labels = names.slice(0, matrix.length);
  const head = labels.map((n) => `<th scope="col">${esc(n)}</th>`).join('');
  const body = matrix.map((row, i) => `<tr><th scope="row">${esc(labels[i])}</th>${
    row.map((v, j) => `<td class="${i === j ? 'hl-review-diagonal' : ''}">${v}</td>`).join('')}</tr>`).join('');
  return `<table class="hl-review-confusion table table-condensed">
      <caption>rows: ${esc(rowsTitle)}; columns: ${esc(columnsTitle)}</caption>
      <thead><tr><th></th>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

const ReviewView = View.extend({
  ...dismissibleMessages,

  className: 'hl-review-view',

  events: {
    'change .hl-review-filters select': '_filtersChanged',
    'click .hl-review-prev': '_previous',
    'click .hl-review-next': '_next',
    'click .hl-review-approve': '_approveClicked',
    'click .hl-review-override': '_overrideClicked',
    'click .hl-review-relabel': '_relabelClicked',
  },

  initialize(settings) {
    this.folderId = settings.folderId;
    this.base = `histomics_label/project/${this.folderId}`;
    this.project = null;
    this.categories = [];
    this.slides = [];
    this.labelers = new Map(); // user id -> login
    this.labels = [];
    this.total = null;
    this.offset = 0;
    this.filters = { item: '', labeler: '', category: '', reviewed: '', disagree: '', sort: SORTS[0].value,
      group: '', limit: String(PAGE_SIZES[0]) };
    this.loadId = 0;
    this.render();
    this._load();
  },

  destroy(...args) {
    this._destroyed = true;
    return View.prototype.destroy.apply(this, args);
  },

  render() {
    this.$el.html(`<div class="hl-review">
        <div class="hl-review-header">
          <h2 class="hl-review-title">Review</h2>
          <a class="hl-review-project-link" href="#${esc(projectRoute(this.folderId))}">Project page</a>
          <a class="hl-review-label-link" href="#${esc(labelRoute(this.folderId))}">Label</a>
          <span class="hl-review-access"></span>
        </div>
        <div class="hl-messages" aria-live="polite"></div>
        <div class="hl-review-body hl-loading">Loading the project…</div>
      </div>`);
    return this;
  },

  // ---- loading -----------------------------------------------------------------------------------------------

  _canWrite() {
    return Boolean(this.project && this.project.access && this.project.access.write);
  },

  async _load() {
    try {
      const [project, slides] = await Promise.all([getJson(this.base), getJson(`${this.base}/slides`)]);
      this.project = project;
      this.slides = slides;
    } catch (error) {
      this.$('.hl-review-body').removeClass('hl-loading').html(
        '<div class="hl-review-error alert alert-danger" role="alert"><strong>Could not load this Histomics ' +
        `Label project.</strong><div class="hl-review-error-detail">${esc(error.message)}</div></div>`);
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.categories = this.project.config.categories || [];
    this.$('.hl-review-title').text(`Review: ${this.project.name}`);
    this.$('.hl-review-access').text(this._canWrite() ? '' : 'Read only: reviewing needs write access to the folder.');
    this._renderBody();
    await Promise.all([this._loadAgreement(), this._loadRounds(), this._loadLabels()]);
  },

  _renderBody() {
    const f = this.filters;
    const slideOptions = [{ value: '', text: 'All slides' },
      ...this.slides.map((s) => ({ value: s._id, text: s.name }))];
    const categoryOptions = [{ value: '', text: 'All categories' },
      ...this.categories.map((c) => ({ value: c.name, text: c.name }))];
    this.$('.hl-review-body').removeClass('hl-loading').html(`
      <form class="hl-review-filters form-inline">
        <label>Slide <select class="form-control input-sm" name="item">${options(slideOptions, f.item)}</select></label>
        <label>Labeler <select class="form-control input-sm" name="labeler"></select></label>
        <label>Category <select class="form-control input-sm" name="category">
          ${options(categoryOptions, f.category)}</select></label>
        <label>Reviewed <select class="form-control input-sm" name="reviewed">${options([
    { value: '', text: 'Either' }, { value: 'true', text: 'Reviewed' }, { value: 'false', text: 'Not reviewed' }],
  f.reviewed)}</select></label>
        <label>Model <select class="form-control input-sm" name="disagree">${options([
    { value: '', text: 'Agrees or not' }, { value: 'true', text: 'Disagrees' }, { value: 'false', text: 'Agrees' }],
  f.disagree)}</select></label>
        <label>Sort <select class="form-control input-sm" name="sort">${options(SORTS, f.sort)}</select></label>
        <label>Group by <select class="form-control input-sm" name="group">${options(GROUPS, f.group)}</select></label>
        <label>Per page <select class="form-control input-sm" name="limit">${options(
    PAGE_SIZES.map((n) => ({ value: String(n), text: String(n) })), f.limit)}</select></label>
      </form>
      <p class="hl-review-note">Certainty is the latest round's probability of the category the model predicts;
        sorting by it puts labels without a prediction last. Grouping applies to the page shown.</p>
      <div class="hl-review-pager">
        <button type="button" class="hl-review-prev btn btn-sm btn-default" disabled>Previous</button>
        <span class="hl-review-range" role="status">…</span>
        <button type="button" class="hl-review-next btn btn-sm btn-default" disabled>Next</button>
      </div>
      <div class="hl-review-grid hl-loading">Loading the labels…</div>
      <div class="hl-review-panels">
        <section class="hl-review-agreement"><h3>Agreement</h3><div class="hl-loading">Loading…</div></section>
        <section class="hl-review-curve"><h3>Learning curve</h3><div class="hl-loading">Loading…</div></section>
      </div>`);
    this._renderLabelerOptions();
  },

  _renderLabelerOptions() {
    const list = [...this.labelers].map(([value, text]) => ({ value, text: text || value }))
      .sort((a, b) => a.text.localeCompare(b.text));
    this.$('select[name="labeler"]').html(options([{ value: '', text: 'All labelers' }, ...list],
      this.filters.labeler));
  },

  _noteLabeler(id, login) {
    if (id && !this.labelers.has(id)) {
      this.labelers.set(id, login);
      return true;
    }
    return false;
  },

  _filtersChanged(event) {
    const { name, value } = event.currentTarget;
    this.filters[name] = value;
    if (name === 'group') {
      this._renderGrid();
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
    this.$('.hl-review-grid').addClass('hl-loading');
    this.$('.hl-review-prev, .hl-review-next').prop('disabled', true);
    try {
      const { data, xhr } = await request('GET', `${this.base}/labels`, { params: this._query() });
      if (this._destroyed || id !== this.loadId) {
        return;
      }
      this.labels = data;
      this.total = Number(xhr.getResponseHeader('Girder-Total-Count'));
      if (data.map((l) => this._noteLabeler(l.labeler, l.labelerLogin)).some(Boolean)) {
        this._renderLabelerOptions();
      }
    } catch (error) {
      if (id !== this.loadId) {
        return;
      }
      this.labels = [];
      this.total = null;
      this._failed('Could not list the labels', error);
    }
    this._renderGrid();
  },

  // ---- the grid ----------------------------------------------------------------------------------------------

  _category(name) {
    return this.categories.find((c) => c.name === name) || { name, color: 'transparent' };
  },

  _slideName(itemId) {
    const slide = this.slides.find((s) => s._id === itemId);
    return slide ? slide.name : itemId;
  },

  _renderGrid() {
    const grid = this.$('.hl-review-grid').removeClass('hl-loading');
    const limit = Number(this.filters.limit);
    if (this.total === null) {
      this.$('.hl-review-range').text('The labels could not be listed.');
      grid.html('<div class="hl-empty">No labels to show.</div>');
      return;
    }
    const first = this.labels.length ? this.offset + 1 : 0;
    this.$('.hl-review-range').html(`Labels <span class="hl-review-first">${first}</span>–` +
      `<span class="hl-review-last">${this.offset + this.labels.length}</span> of ` +
      `<strong class="hl-review-total">${this.total}</strong>`);
    this.$('.hl-review-prev').prop('disabled', this.offset === 0);
    this.$('.hl-review-next').prop('disabled', this.offset + limit >= this.total);
    if (!this.labels.length) {
      grid.html('<div class="hl-empty">No labels match these filters.</div>');
      return;
    }
    const key = this.filters.group;
    if (!key) {
      grid.html(`<div class="hl-review-cards" role="list">${this.labels.map((l) => this._card(l)).join('')}</div>`);
      return;
    }
    const groups = new Map();
    for (const label of this.labels) {
      const value = label[key] || '';
      if (!groups.has(value)) {
        groups.set(value, []);
      }
      groups.get(value).push(label);
    }
    const title = (value) => {
      if (!value) {
        return key === 'predicted' ? 'No prediction' : '(none)';
      }
      return key === 'item' ? this._slideName(value) : value;
    };
    const sorted = [...groups].sort((a, b) => title(a[0]).localeCompare(title(b[0])));
    grid.html(sorted.map(([value, labels]) => `<section class="hl-review-group" data-group="${esc(value)}">
        <h4 class="hl-review-group-title"><span class="hl-review-group-name">${esc(title(value))}</span>
          <span class="hl-review-group-count">(${labels.length})</span></h4>
        <div class="hl-review-cards" role="list">${labels.map((l) => this._card(l)).join('')}</div>
      </section>`).join(''));
  },

  _swatch(name) {
    return `<span class="hl-swatch" style="background: ${esc(this._category(name).color || 'transparent')}"></span>`;
  },

  _reviewText(review) {
    if (!review) {
      return 'Not reviewed';
    }
    const by = review.reviewerLogin ? ` by ${review.reviewerLogin}` : '';
    return review.status === 'overridden' ? `Overridden → ${review.category}${by}` : `Approved${by}`;
  },

  _card(label) {
    const disagree = Boolean(label.predicted) && label.predicted !== label.category;
    const review = label.review;
    const classes = ['hl-review-card', disagree ? 'hl-review-disagree' : '',
      review ? `hl-review-${review.status}` : 'hl-review-unreviewed'].join(' ');
    const thumb = label.thumbnail
      ? `<img class="hl-review-thumbnail" alt="Segment ${label.segment}" loading="lazy"
          src="${esc(apiUrl(label.thumbnail))}">`
      : '<div class="hl-review-thumbnail hl-review-no-image">no image</div>';
    const predicted = label.predicted
      ? `${this._swatch(label.predicted)} <span class="hl-review-predicted">${esc(label.predicted)}</span>
        <span class="hl-review-certainty" title="The model's probability of this category">` +
        `${certaintyText(label.certainty)}</span>`
      : '<span class="hl-review-predicted hl-muted">none yet</span>';
    const actions = this._canWrite() ? `<div class="hl-review-actions">
        <button type="button" class="hl-review-approve btn btn-xs btn-success"
          title="Approve this label"${review && review.status === 'approved' ? ' disabled' : ''}>Approve</button>
        <select class="hl-review-choice form-control input-sm" aria-label="Category">${this.categories.map((c) =>
    `<option value="${esc(c.name)}"${c.name === label.category ? ' selected' : ''}>${esc(c.name)}</option>`)
    .join('')}</select>
        <button type="button" class="hl-review-override btn btn-xs btn-warning"
          title="Keep this label and override it with the chosen category">Override</button>
        <button type="button" class="hl-review-relabel btn btn-xs btn-default"
          title="Set your own label of this segment to the chosen category">Relabel</button>
      </div>` : '';
    return `<div class="${classes}" role="listitem" data-label-id="${esc(label._id)}" data-item="${esc(label.item)}"
        data-segment="${label.segment}" data-category="${esc(label.category)}"
        data-predicted="${esc(label.predicted || '')}" data-certainty="${label.certainty ?? ''}"
        data-labeler="${esc(label.labelerLogin || '')}">
        ${thumb}
        <div class="hl-review-fields">
          <div>${this._swatch(label.category)} <strong class="hl-review-category">${esc(label.category)}</strong></div>
          <div class="hl-muted">by
            <span class="hl-review-labeler">${esc(label.labelerLogin || label.labeler)}</span></div>
          <div class="hl-muted hl-review-date" title="Last changed">${esc(when(label.updated))}</div>
          <div class="hl-muted hl-review-where" title="${esc(this._slideName(label.item))}">segment ${label.segment}
            · ${esc(this._slideName(label.item))}</div>
          <div class="hl-review-model">Model: ${predicted}${disagree
    ? ' <span class="hl-review-flag" title="The model predicts another category">≠ disagrees</span>' : ''}</div>
          <div class="hl-review-state">${esc(this._reviewText(review))}</div>
        </div>
        ${actions}
      </div>`;
  },

  // ---- actions -----------------------------------------------------------------------------------------------

  _cardOf(event) {
    const card = $(event.currentTarget).closest('.hl-review-card');
    const label = this.labels.find((l) => l._id === card.attr('data-label-id'));
    return { card, label, choice: card.find('.hl-review-choice').val() };
  },

  _approveClicked(event) {
    const { card, label } = this._cardOf(event);
    this._review(card, label, null);
  },

  _overrideClicked(event) {
    const { card, label, choice } = this._cardOf(event);
    if (choice === label.category) {
      this._message(`Choose a category other than "${label.category}" to override this label, or approve it.`,
        'warning');
      return;
    }
    this._review(card, label, choice);
  },

  async _review(card, label, category) {
    card.addClass('hl-review-saving').find('button, select').prop('disabled', true);
    try {
      const params = category ? { category } : undefined;
      const { data } = await request('PUT', `${this.base}/labels/${label._id}/review`, { params });
      Object.assign(label, data);
      card.replaceWith(this._card(label));
      this._loadAgreement();
    } catch (error) {
      card.removeClass('hl-review-saving').find('button, select').prop('disabled', false);
      this._failed(category ? `Could not override the label with "${category}"` : 'Could not approve the label',
        error);
    }
  },

  async _relabelClicked(event) {
    const { card, label, choice } = this._cardOf(event);
    card.addClass('hl-review-saving').find('button, select').prop('disabled', true);
    try {
      await request('PUT', `${this.base}/labels`, {
        json: { labels: [{ item: label.item, segment: label.segment, category: choice }], view: 'review' },
      });
      this._message(`Segment ${label.segment} is now labeled "${choice}" by you.`, 'success');
      await this._loadLabels();
      this._loadAgreement();
    } catch (error) {
      card.removeClass('hl-review-saving').find('button, select').prop('disabled', false);
      this._failed(`Could not relabel segment ${label.segment} as "${choice}"`, error);
    }
  },

  // ---- agreement and learning curve --------------------------------------------------------------------------

  async _loadAgreement() {
    const box = this.$('.hl-review-agreement');
    let result;
    try {
      result = await getJson(`${this.base}/agreement`);
    } catch (error) {
      box.html('<h3>Agreement</h3><div class="hl-empty">Not available.</div>');
      this._failed('Could not compute the agreement', error);
      return;
    }
    if (this._destroyed) {
      return;
    }
    let added = false;
    for (const pair of result.labelers) {
      pair.labelers.forEach((id, i) => { added = this._noteLabeler(id, pair.logins[i]) || added; });
    }
    for (const row of result.labelersVsModel) {
      added = this._noteLabeler(row.labeler, row.login) || added;
    }
    if (added) {
      this._renderLabelerOptions();
    }
    const names = result.categories;
    const pairRows = result.labelers.map((p) => `<tr class="hl-review-pair"
        data-logins="${esc(p.logins.join(','))}">
        <td class="hl-review-pair-logins">${esc(p.logins.join(' · '))}</td><td class="hl-review-count">${p.count}</td>
        <td class="hl-review-agree">${percent(p.agreement)}</td><td class="hl-review-kappa">${fixed(p.kappa)}</td>
        <td><details><summary>matrix</summary>${confusionTable(p.confusion, names, p.logins[0], p.logins[1])}
        </details></td></tr>`).join('');
    const modelRows = result.labelersVsModel.map((m) => `<tr class="hl-review-vs-model"
        data-login="${esc(m.login || '')}">
        <td>${esc(m.login || m.labeler)}</td><td class="hl-review-count">${m.count}</td>
        <td class="hl-review-agree">${percent(m.agreement)}</td><td class="hl-review-kappa">${fixed(m.kappa)}</td>
        <td><details><summary>matrix</summary>${confusionTable(m.confusion, names, m.login, 'model')}</details>
        </td></tr>`).join('');
    const head = '<thead><tr><th>{who}</th><th>Shared segments</th><th>Agreement</th><th>Cohen\'s κ</th>' +
      '<th>Confusion</th></tr></thead>';
    const overall = result.labelsVsModel;
    box.html(`<h3>Agreement</h3>
      <h4>Between labelers</h4>
      ${pairRows ? `<table class="hl-review-pairs table table-condensed">${head.replace('{who}', 'Labelers')}
        <tbody>${pairRows}</tbody></table>` : '<p class="hl-empty">No two labelers labeled the same segment.</p>'}
      <h4>Each labeler vs the model</h4>
      ${modelRows ? `<table class="hl-review-labelers-model table table-condensed">${head.replace('{who}', 'Labeler')}
        <tbody>${modelRows}</tbody></table>` : '<p class="hl-empty">No predictions yet.</p>'}
      <h4>Labels in force vs the model</h4>
      ${overall ? `<div class="hl-review-overall">
          <p><span class="hl-review-count">${overall.count}</span> segments,
            agreement <span class="hl-review-agree">${percent(overall.agreement)}</span>,
            Cohen's κ <span class="hl-review-kappa">${fixed(overall.kappa)}</span></p>
          ${confusionTable(overall.confusion, names, 'labels', 'model')}
        </div>` : '<p class="hl-empty">No predictions yet.</p>'}`);
  },

  async _loadRounds() {
    const box = this.$('.hl-review-curve');
    try {
      const result = await getJson(`${this.base}/rounds`);
      if (this._destroyed) {
        return;
      }
      box.html(`<h3>Learning curve</h3>${learningCurveSvg(result.rounds)}`);
    } catch (error) {
      box.html('<h3>Learning curve</h3><div class="hl-empty">Not available.</div>');
      this._failed('Could not read the training rounds', error);
    }
  },
});

export default ReviewView;
