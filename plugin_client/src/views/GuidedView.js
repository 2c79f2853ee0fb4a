// The guided labeling view (`#histomics_label/project/<folderId>/label`): a row of the next suggestions as cards,
// the slide around the current card in a geojs viewer (large_image's tiles, the segment outlined in yellow and the
// labeled segments tinted, from the slide's segment image), and the categories as buttons and keys. Each choice is
// saved at once (PUT .../labels, view "guided"); Backspace undoes the newest choice with the batch id its PUT
// returned. When the row is done, or a retrain has finished, the next row is fetched in place. Every failed request
// is shown on the page, in the messages area, with what was asked and Girder's answer.
import { apiUrl, getJson, projectRoute, request } from '../api.js';
import SegmentOverlay from './slide/SegmentOverlay.js';
import SlideViewer from './slide/SlideViewer.js';
import { dismissibleMessages, esc } from './project/common.js';

const { $ } = girder;
const { View } = girder.views;

/** How often the rounds are polled while a retrain runs (ms). */
const POLL_MS = 1500;
/** The viewer shows this many segment sizes around the current segment. */
const FOCUS_CONTEXT = 4;
/** Labeled segments are tinted this much in the viewer (the current one is outlined whatever its label). */
const FOCUS_OPACITY = 0.3;

function percent(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

const GuidedView = View.extend({
  ...dismissibleMessages,

  className: 'hl-guided-view',

  initialize(settings) {
    this.folderId = settings.folderId;
    this.base = `histomics_label/project/${this.folderId}`;
    this.project = null;
    this.categories = [];
    this.cards = [];
    this.current = 0;
    this.history = []; // newest last: {card, saved: Promise of the PUT's batch id}
    this.pending = new Set(); // the saves in flight, awaited before the next row is fetched
    this.rounds = [];
    this.labelCount = null;
    this.training = false;
    this.loadingRow = false;
    this._onKey = (event) => this._key(event);
    document.addEventListener('keydown', this._onKey);
    this.render();
    this._load();
  },

  destroy(...args) {
    document.removeEventListener('keydown', this._onKey);
    clearTimeout(this._pollTimer);
    this._destroyed = true;
    this._closeViewer();
    return View.prototype.destroy.apply(this, args);
  },

  render() {
    this.$el.html(`<div class="hl-guided">
        <div class="hl-guided-header">
          <h2 class="hl-guided-title">Label</h2>
          <a class="hl-project-link" href="#${esc(projectRoute(this.folderId))}">Project page</a>
          <div class="hl-guided-stats">
            <span>Labels: <strong class="hl-label-count">…</strong></span>
            <span>Round: <strong class="hl-round-number">…</strong></span>
            <span>Held-out balanced accuracy: <strong class="hl-accuracy">…</strong></span>
            <button type="button" class="hl-retrain btn btn-sm btn-default" disabled>Retrain</button>
            <span class="hl-train-status" role="status"></span>
          </div>
        </div>
        <div class="hl-messages" aria-live="polite"></div>
        <div class="hl-guided-body hl-loading">Loading the project…</div>
        <div class="hl-cards" role="list"></div>
        <p class="hl-keys-help">Keys: <kbd>1</kbd>–<kbd>9</kbd> or a category's letter choose it,
          <kbd>Enter</kbd> or <kbd>Space</kbd> accept the prediction, <kbd>←</kbd> <kbd>→</kbd> move between cards,
          <kbd>Backspace</kbd> undoes the last label.</p>
      </div>`);
    this.$('.hl-retrain').on('click', (event) => {
      event.currentTarget.blur(); // Enter and Space stay the view's keys
      this._retrain();
    });
    return this;
  },

  // ---- loading -----------------------------------------------------------------------------------------------

  async _load() {
    try {
      this.project = await getJson(this.base);
    } catch (error) {
      this.$('.hl-guided-body').removeClass('hl-loading').html(
        '<div class="hl-error alert alert-danger" role="alert"><strong>Could not load this Histomics Label ' +
        `project.</strong><div class="hl-error-detail">${esc(error.message)}</div></div>`);
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.categories = this.project.config.categories || [];
    this.$('.hl-guided-title').text(`Label: ${this.project.name}`);
    if (!(this.project.access && this.project.access.write)) {
      this.$('.hl-guided-body').removeClass('hl-loading').html(
        '<div class="hl-error alert alert-warning" role="alert">You may see this project but not label it: ' +
        'labeling needs write access to its folder.</div>');
      return;
    }
    this.$('.hl-retrain').prop('disabled', false);
    try {
      this.slides = Object.fromEntries((await getJson(`${this.base}/slides`)).map((slide) => [slide._id, slide]));
    } catch (error) {
      this.slides = {};
      this._failed('Could not read the slides of the project (the viewer cannot show segments)', error);
    }
    this._refreshCount();
    await this._refreshRounds();
    await this._nextRow();
  },

  async _refreshCount() {
    try {
      const { xhr } = await request('GET', `${this.base}/labels`, { params: { limit: 1 } });
      this.labelCount = Number(xhr.getResponseHeader('Girder-Total-Count'));
      this.$('.hl-label-count').text(this.labelCount.toLocaleString());
    } catch (error) {
      this.$('.hl-label-count').text('?');
      this._failed('Could not count the labels', error);
    }
  },

  /** Fetch the rounds and show the latest; returns the rounds document or null when the request failed. */
  async _refreshRounds() {
    try {
      const result = await getJson(`${this.base}/rounds`);
      this.rounds = result.rounds;
      const latest = this.rounds[this.rounds.length - 1];
      this.$('.hl-round-number').text(latest ? latest.number : 'none yet');
      this.$('.hl-accuracy').text(latest ? percent(latest.heldOutBalancedAccuracy) : 'n/a');
      return result;
    } catch (error) {
      this._failed('Could not read the training rounds', error);
      return null;
    }
  },

  /** Wait for the saves in flight, then fetch and show a new row of suggestions. */
  async _nextRow() {
    if (this.loadingRow) {
      return;
    }
    this.loadingRow = true;
    this.$('.hl-guided-body').addClass('hl-loading');
    await Promise.allSettled([...this.pending]);
    try {
      const limit = this.project.config.batchSize || 8;
      const suggestions = await getJson(`${this.base}/suggestions?limit=${limit}`);
      if (this._destroyed) {
        return;
      }
      this.cards = suggestions.map((s) => ({ ...s, labels: [], saving: 0 }));
      this.current = 0;
      this._renderRow();
    } catch (error) {
      this.$('.hl-guided-body').removeClass('hl-loading').html(
        '<div class="hl-empty">No suggestions to show.</div>');
      this._failed('Could not fetch the next suggestions', error);
    } finally {
      this.loadingRow = false;
    }
  },

  // ---- rendering ---------------------------------------------------------------------------------------------

  _category(name) {
    return this.categories.find((c) => c.name === name) || { name, color: 'transparent' };
  },

  _swatch(name) {
    return `<span class="hl-swatch" style="background-color: ${esc(this._category(name).color || 'transparent')}">` +
      '</span>';
  },

  /** The card row and the focus area, drawn anew for each row. */
  _renderRow() {
    const body = this.$('.hl-guided-body').removeClass('hl-loading');
    if (!this.cards.length) {
      this._closeViewer();
      body.html('<div class="hl-empty">Nothing left to label: every segment has a label.</div>');
      this.$('.hl-cards').empty();
      return;
    }
    const buttons = this.categories.map((category, index) => `
      <button type="button" class="hl-choose btn btn-default${category.excluded ? ' hl-excluded' : ''}"
              data-category="${esc(category.name)}"
              title="${index < 9 ? `Key ${index + 1}` : ''}${category.hotkey ? ` or ${esc(category.hotkey)}` : ''}">
        ${this._swatch(category.name)}
        <span class="hl-category-name">${esc(category.name)}</span>
        <kbd>${index < 9 ? index + 1 : ''}${category.hotkey ? ` ${esc(category.hotkey)}` : ''}</kbd>
      </button>`);
    if (!body.find('.hl-focus').length) {
      body.html(`<div class="hl-focus">
          <div class="hl-focus-frame"><div class="hl-focus-map" role="img"
            aria-label="The slide around the current segment, outlined in yellow"></div></div>
          <div class="hl-focus-side">
            <div class="hl-focus-info"></div>
            <div class="hl-choices"></div>
          </div>
        </div>`);
    }
    body.find('.hl-choices').html(buttons.join(''));
    body.find('.hl-choose').on('click', (event) => {
      this._choose($(event.currentTarget).attr('data-category'));
      event.currentTarget.blur(); // so that Space and Enter stay the view's keys, not a click of this button
    });
    const cards = this.cards.map((card, index) => `
      <div class="hl-card" role="listitem" data-index="${index}" data-item="${esc(card.item)}"
           data-segment="${esc(card.segment)}">
        <img class="hl-thumbnail" src="${esc(apiUrl(card.thumbnail))}" alt="Segment ${esc(card.segment)}"
             width="128">
        <div class="hl-card-prediction">${this._swatch(card.predicted)}
          <span class="hl-predicted">${esc(card.predicted)}</span></div>
        <div class="hl-card-score" title="Certainty score (${esc(this.project.config.certainty || '')})">
          certainty <span class="hl-score">${Number(card.score).toFixed(3)}</span></div>
        <div class="hl-card-label"></div>
      </div>`);
    this.$('.hl-cards').html(cards.join(''));
    this.$('.hl-card').on('click', (event) => {
      this.current = Number($(event.currentTarget).attr('data-index'));
      this._update();
    });
    this._update();
  },

  /** Reflect the cards' labels and the current card without redrawing the images of the row. */
  _update() {
    this.cards.forEach((card, index) => {
      const el = this.$(`.hl-card[data-index="${index}"]`);
      const label = card.labels[card.labels.length - 1];
      el.toggleClass('hl-current', index === this.current);
      el.toggleClass('hl-labeled', Boolean(label));
      el.toggleClass('hl-saving', card.saving > 0);
      el.find('.hl-card-label').html(label ? `${this._swatch(label)}<span class="hl-chosen">${esc(label)}</span>` : '');
    });
    const card = this.cards[this.current];
    if (!card) {
      return;
    }
    this._focus(card);
    const label = card.labels[card.labels.length - 1];
    this.$('.hl-focus-info').html(`
      <div class="hl-focus-where">${esc(card.itemName || '')}, segment ${esc(card.segment)}
        <span class="hl-focus-position">(${this.current + 1} of ${this.cards.length})</span></div>
      <div>Predicted: ${this._swatch(card.predicted)} <strong class="hl-focus-predicted">${esc(card.predicted)}</strong>
        <span class="hl-muted">certainty score ${Number(card.score).toFixed(3)}</span></div>
      <div class="hl-focus-label">${label ? `Labeled: ${this._swatch(label)} <strong>${esc(label)}</strong>` :
    '<span class="hl-muted">Not labeled yet</span>'}</div>`);
    this.$('.hl-choose').each((_index, el) => {
      $(el).toggleClass('active', $(el).attr('data-category') === label);
    });
  },

  // ---- slide viewer ------------------------------------------------------------------------------------------

  /** Show the card's segment in the viewer: open its slide (when another slide's card was shown), pan, outline. */
  async _focus(card) {
    const token = {};
    this._focusToken = token;
    const node = this.$('.hl-focus-map');
    if (!node.length) {
      return;
    }
    if (!this.viewer || this.viewer.itemId !== card.item || this.viewer.node !== node[0]) {
      this._closeViewer();
      node.removeClass('hl-map-idle');
      let tiles;
      try {
        tiles = await this._tiles(card.item);
      } catch (error) {
        this._failed(`Could not open the slide ${card.itemName || card.item}`, error);
        return;
      }
      if (this._focusToken !== token || this._destroyed) {
        return;
      }
      this.viewer = new SlideViewer(node[0], card.item, tiles);
      const slide = (this.slides || {})[card.item];
      if (slide && slide.segmentImage) {
        const overlay = new SegmentOverlay(this.viewer, this.base, card.item, slide.segmentImage);
        this.overlayLoading = overlay.load().then(() => {
          overlay.set({ categories: this.categories, opacity: FOCUS_OPACITY });
          this.overlay = overlay;
        }, (error) => this._failed('Could not draw the segments in the viewer', error));
      }
    }
    this.viewer.showRegion(card.region, FOCUS_CONTEXT);
    await this.overlayLoading;
    if (this._focusToken !== token || !this.viewer) {
      return;
    }
    if (this.overlay) {
      this.overlay.highlight(card.segment);
    }
    node.attr({ 'data-item': card.item, 'data-segment': String(card.segment) });
    this.viewer.onIdle(() => {
      if (this._focusToken === token) {
        node.addClass('hl-map-idle');
      }
    });
  },

  _tiles(itemId) {
    this.tileCache = this.tileCache || {};
    if (!this.tileCache[itemId]) {
      this.tileCache[itemId] = getJson(`item/${itemId}/tiles`).catch((error) => {
        delete this.tileCache[itemId];
        throw error;
      });
    }
    return this.tileCache[itemId];
  },

  _closeViewer() {
    if (this.viewer) {
      this.viewer.exit();
    }
    this.viewer = null;
    this.overlay = null;
    this.overlayLoading = null;
  },

  /** Tint a segment in the viewer with its new label (0: none). */
  _showLabel(card, name) {
    if (this.overlay && this.viewer && this.viewer.itemId === card.item) {
      const index = this.categories.findIndex((category) => category.name === name);
      this.overlay.setLabels(new Map([[card.segment, index + 1]]));
    }
  },

  // ---- keys and choices --------------------------------------------------------------------------------------

  _key(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !this.cards.length || this.loadingRow) {
      return;
    }
    const target = event.target;
    if (target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) {
      return;
    }
    const key = event.key;
    let handled = true;
    if (/^[1-9]$/.test(key) && this.categories[Number(key) - 1]) {
      this._choose(this.categories[Number(key) - 1].name);
    } else if (key === 'Enter' || key === ' ') {
      this._choose(this.cards[this.current].predicted);
    } else if (key === 'ArrowLeft') {
      this._move(-1);
    } else if (key === 'ArrowRight') {
      this._move(1);
    } else if (key === 'Backspace') {
      this._undo();
    } else {
      const category = key.length === 1 &&
        this.categories.find((c) => c.hotkey && c.hotkey.toLowerCase() === key.toLowerCase());
      if (category) {
        this._choose(category.name);
      } else {
        handled = false;
      }
    }
    if (handled) {
      event.preventDefault();
    }
  },

  _move(step) {
    this.current = Math.min(this.cards.length - 1, Math.max(0, this.current + step));
    this._update();
  },

  /** Label the current card, save it, and go on to the next unlabeled card (or the next row when none is left). */
  _choose(name) {
    const card = this.cards[this.current];
    if (!card || !name) {
      return;
    }
    card.labels.push(name);
    card.saving += 1;
    this._showLabel(card, name);
    const saved = request('PUT', `${this.base}/labels`, {
      json: { labels: [{ item: card.item, segment: card.segment, category: name }], view: 'guided' },
    }).then(({ data }) => data.batch);
    const entry = { card, saved, name };
    this.history.push(entry);
    this.pending.add(saved);
    saved.then(
      () => this._refreshCount(),
      (error) => {
        // the label was not stored: take it back from the card and from the undo history
        const at = card.labels.lastIndexOf(name);
        if (at >= 0) {
          card.labels.splice(at, 1);
        }
        this._showLabel(card, card.labels[card.labels.length - 1]);
        this.history = this.history.filter((h) => h !== entry);
        this._failed(`Could not save the label "${name}" of segment ${card.segment}`, error);
      },
    ).finally(() => {
      card.saving -= 1;
      this.pending.delete(saved);
      this._update();
    });
    const next = this._nextUnlabeled();
    if (next === null) {
      this._update();
      this._nextRow();
      return;
    }
    this.current = next;
    this._update();
  },

  /** The index of the next card without a label after the current one (wrapping round), or null. */
  _nextUnlabeled() {
    for (let step = 1; step <= this.cards.length; step += 1) {
      const index = (this.current + step) % this.cards.length;
      if (!this.cards[index].labels.length) {
        return index;
      }
    }
    return null;
  },

  /** Undo the newest label: its card (back in the row if the row changed since) becomes the current card. */
  async _undo() {
    const entry = this.history.pop();
    if (!entry) {
      this._message('Nothing to undo.', 'info');
      return;
    }
    let batch;
    try {
      batch = await entry.saved;
    } catch (error) {
      return; // its save failed and was reported: nothing was stored
    }
    try {
      await request('POST', `${this.base}/labels/undo`, { params: { batch } });
    } catch (error) {
      this.history.push(entry);
      this._failed(`Could not undo the label of segment ${entry.card.segment}`, error);
      return;
    }
    const { card } = entry;
    const at = card.labels.lastIndexOf(entry.name);
    if (at >= 0) {
      card.labels.splice(at, 1);
    }
    this._showLabel(card, card.labels[card.labels.length - 1]);
    let index = this.cards.indexOf(card);
    if (index < 0) {
      this.cards.unshift(card);
      index = 0;
      this.current = 0;
      this._renderRow();
    }
    this.current = index;
    this._update();
    this._refreshCount();
  },

  // ---- retraining --------------------------------------------------------------------------------------------

  async _retrain() {
    if (this.training) {
      return;
    }
    this.training = true;
    const button = this.$('.hl-retrain').prop('disabled', true);
    const status = this.$('.hl-train-status').text('Saving labels…');
    await Promise.allSettled([...this.pending]);
    const before = this.rounds.length ? this.rounds[this.rounds.length - 1].number : 0;
    try {
      status.text('Training…');
      await request('POST', `${this.base}/train`);
      const round = await this._waitForRound(before);
      if (round) {
        status.text(`Round ${round.number} done.`);
        await this._nextRow();
      } else {
        status.text('');
        this._message('Training finished without a new round (for instance, fewer than two trainable categories ' +
          'have labels); the previous model is kept. The job list has its log.', 'warning');
      }
    } catch (error) {
      status.text('');
      this._failed('Could not retrain', error);
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
        const result = await this._refreshRounds();
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

export default GuidedView;
