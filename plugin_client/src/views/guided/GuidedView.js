// The guided labeling view (`#histomics_label/project/<folderId>/label`): a row of the next suggestions as cards
// (CardStrip), the current card in focus (FocusPanel: the slide around it in a geojs viewer, with the segment
// outlined in yellow and the labeled segments tinted, and the categories as buttons) and the label count, latest
// round and Retrain button (StatsBar). This view holds the row and the keys: each choice is saved at once (PUT
// .../labels, view "guided"); Backspace undoes the newest choice with the batch id its PUT returned. When the row is
// done, or a retrain has finished, the next row is fetched in place; while the labeler answers a row's last card it is
// already being fetched (the last card named as pending, which the server ranks as labeled), unless a round
// finishes meanwhile. Every failed request is shown on the page, in the messages area (MessagesView), with what was
// asked and Girder's answer.
import { getJson, projectRoute, request } from '../../api.js';
import { LiveView, MessagesView, isTyping, onTraining } from '../common.js';
import bodyNotice from './bodyNotice.pug';
import CardStrip from './CardStrip.js';
import { unclassifiableKey } from './CategoryButtons.js';
import FocusPanel from './FocusPanel.js';
import template from './guided.pug';
import StatsBar from './StatsBar.js';
import './guided.css';

/** The excluded category the server labels a segment marked "not classifiable / artifact" with. */
const UNCLASSIFIABLE = 'not classifiable';

const GuidedView = LiveView.extend({
  className: 'hl-guided-view',

  /**
   * `folderId` is the project's folder. Where the view is embedded in another page (HistomicsUI), `Viewer` is the
   * FocusViewer kind that shows the slide there, `href` turns a client route into a link to Girder's pages and
   * `target` names the window such links open in.
   */
  initialize(settings) {
    this.folderId = settings.folderId;
    this.Viewer = settings.Viewer;
    this.href = settings.href || ((route) => `#${route}`);
    this.target = settings.target;
    this.base = `histomics_label/project/${this.folderId}`;
    this.project = null;
    this.categories = [];
    this.cards = [];
    this.current = 0;
    this.history = []; // newest last: {card, saved: Promise of the PUT's batch id}
    this.pending = new Set(); // the saves in flight, awaited before the next row is fetched
    this.loadingRow = false;
    this.prefetched = null; // the next row asked for early: {row, answer}
    this._onKey = (event) => this._key(event);
    document.addEventListener('keydown', this._onKey);
    this.render();
    onTraining(this, this.folderId, (data) => {
      if (data.state === 'done') {
        this.prefetched = null; // a new round ranks the next row differently
      }
    });
    this._load();
  },

  destroy(...args) {
    document.removeEventListener('keydown', this._onKey);
    return LiveView.prototype.destroy.apply(this, args);
  },

  render() {
    this.$el.html(template({ projectLink: this.href(projectRoute(this.folderId)), target: this.target }));
    this.messages = new MessagesView({ el: this.$('.hl-messages'), parentView: this });
    this.stats = new StatsBar({
      el: this.$('.hl-guided-stats'), parentView: this, projectId: this.folderId, base: this.base,
      messages: this.messages,
      saved: () => Promise.allSettled([...this.pending]), newRound: () => this._nextRow(),
    });
    return this;
  },

  // ---- loading -----------------------------------------------------------------------------------------------

  async _load() {
    try {
      this.project = await getJson(this.base);
    } catch (error) {
      this._notice('failed', error.message);
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.categories = this.project.config.categories || [];
    this.$('.hl-guided-title').text(`Label: ${this.project.name}`);
    if (!(this.project.access && this.project.access.write)) {
      this._notice('readOnly');
      return;
    }
    this.stats.enable();
    try {
      this.slides = Object.fromEntries((await getJson(`${this.base}/slides`)).map((slide) => [slide._id, slide]));
    } catch (error) {
      this.slides = {};
      this.messages.failed('Could not read the slides of the project (the viewer cannot show segments)', error);
    }
    this.cardStrip = new CardStrip({
      el: this.$('.hl-cards'), parentView: this, categories: this.categories,
    });
    this.listenTo(this.cardStrip, 'select', (index) => {
      this.current = index;
      this._update();
    });
    this.stats.refreshCount();
    await this._nextRow();
  },

  /**
   * Wait for the saves in flight, then fetch and show a new row of suggestions, and the latest round beside it:
   * rounds started meanwhile (automatic retraining, another labeler's Retrain) ranked the row, so the stats bar
   * names the round whose predictions the cards show.
   */
  async _nextRow() {
    if (this.loadingRow) {
      return;
    }
    this.loadingRow = true;
    this.$('.hl-guided-body').addClass('hl-loading');
    const prefetched = this.prefetched && this.prefetched.row === this.cards ? this.prefetched : null;
    this.prefetched = null;
    await Promise.allSettled([...this.pending]);
    try {
      const limit = this.project.config.batchSize || 8;
      const [suggestions] = await Promise.all([this._rowFrom(prefetched, limit), this.stats.refreshRounds()]);
      if (this._destroyed) {
        return;
      }
      this.cards = suggestions.map((s) => ({ ...s, labels: [], saving: 0 }));
      this.current = 0;
      this._renderRow();
    } catch (error) {
      this._notice('noSuggestions');
      this.messages.failed('Could not fetch the next suggestions', error);
    } finally {
      this.loadingRow = false;
    }
  },

  /**
   * Ask for the next row while the labeler answers the last card of this one, once the row's other labels are saved
   * (so that the server leaves them out), naming the unanswered card as pending: the server ranks it as labeled, so
   * the row is the one it gives once that label is saved, the audit sample's picks included.
   */
  _prefetchRow() {
    if (this.prefetched || this.loadingRow) {
      return;
    }
    const limit = this.project.config.batchSize || 8;
    const pending = this.cards.filter((c) => !c.labels.length).map((c) => ({ item: c.item, segment: c.segment }));
    const query = `limit=${limit}&pending=${encodeURIComponent(JSON.stringify(pending))}`;
    const answer = Promise.allSettled([...this.pending])
      .then(() => getJson(`${this.base}/suggestions?${query}`));
    answer.catch(() => {}); // a failed early ask: the row is asked for again when needed
    this.prefetched = { row: this.cards, answer };
    answer.then((suggestions) => {
      // the next row's first card, whose tiles are fetched ahead like a row's next card
      const first = suggestions.find((s) => !this.cards.some((c) => c.item === s.item && c.segment === s.segment));
      if (first && this.focusPanel && this.prefetched && this.prefetched.answer === answer) {
        this.focusPanel.viewer.prefetch(first);
      }
    }, () => {});
  },

  /** The next row: the early answer without the segments this row labeled, else asked for now. */
  async _rowFrom(prefetched, limit) {
    if (prefetched) {
      try {
        const labeled = new Set(this.cards.filter((c) => c.labels.length).map((c) => `${c.item}/${c.segment}`));
        const answer = await prefetched.answer;
        const row = answer.filter((s) => !labeled.has(`${s.item}/${s.segment}`));
        if (row.length >= Math.min(limit, answer.length)) {
          return row.slice(0, limit);
        }
      } catch (error) {
        // asked for again below
      }
    }
    return getJson(`${this.base}/suggestions?limit=${limit}`);
  },

  // ---- rendering ---------------------------------------------------------------------------------------------

  /** Say `notice` (bodyNotice.pug) in the body instead of the focus panel. */
  _notice(notice, detail) {
    if (this.focusPanel) {
      this.focusPanel.destroy();
      this.focusPanel = null;
    }
    this.$('.hl-guided-body').removeClass('hl-loading').html(bodyNotice({ notice, detail }));
  },

  /** The card row and the focus panel, drawn anew for each row (the panel and its viewer are kept). */
  _renderRow() {
    if (!this.cards.length) {
      this._notice('done');
      this.cardStrip.render();
      return;
    }
    const body = this.$('.hl-guided-body').removeClass('hl-loading');
    if (!this.focusPanel) {
      this.focusPanel = new FocusPanel({
        parentView: this, folderId: this.folderId, base: this.base, slides: this.slides,
        categories: this.categories, messages: this.messages, Viewer: this.Viewer, href: this.href,
        target: this.target,
      });
      this.listenTo(this.focusPanel.buttons, 'choose', this._choose);
      this.listenTo(this.focusPanel.buttons, 'unclassifiable', this._unclassifiable);
      body.empty().append(this.focusPanel.el);
    }
    this.cardStrip.render(this.cards);
    this._update();
  },

  /** Reflect the cards' labels and the current card without redrawing the images of the row. */
  _update() {
    this.cardStrip.update(this.cards, this.current);
    const card = this.cards[this.current];
    if (card && this.focusPanel) {
      this.focusPanel.show(card, this.current, this.cards.length, this._upcoming());
    }
  },

  /** Tint a segment in the viewer with its new label (none: untinted). */
  _showLabel(card, name) {
    if (this.focusPanel) {
      this.focusPanel.viewer.showLabel(card, name);
    }
  },

  // ---- keys and choices --------------------------------------------------------------------------------------

  _key(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !this.cards.length || this.loadingRow) {
      return;
    }
    if (isTyping(event.target)) {
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
    } else if (key.toLowerCase() === unclassifiableKey(this.categories)) {
      this._unclassifiable();
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

  /** Label the current card with a category (PUT .../labels), and go on. */
  _choose(name) {
    const card = this.cards[this.current];
    if (!card || !name) {
      return;
    }
    this._record(card, name, () => request('PUT', `${this.base}/labels`, {
      json: { labels: [{ item: card.item, segment: card.segment, category: name }], view: 'guided' },
    }));
  },

  /**
   * Mark the current card "not classifiable / artifact" (POST .../unclassifiable): the server labels it with the
   * project's excluded category of that name, adding the category when missing, and keeps it and its
   * near-duplicates out of later suggestions. Undone and advanced past like any label.
   */
  _unclassifiable() {
    const card = this.cards[this.current];
    if (!card) {
      return;
    }
    this._record(card, UNCLASSIFIABLE, () => request('POST', `${this.base}/unclassifiable`, {
      json: { item: card.item, segment: card.segment },
    }));
  },

  /**
   * Show `name` as the card's label, save it with `send()` (a request whose answer has the batch that undo
   * reverts), and go on to the next unlabeled card (or the next row when none is left). A failed save takes the
   * label back and says so.
   */
  _record(card, name, send) {
    card.labels.push(name);
    card.saving += 1;
    this._showLabel(card, name);
    const saved = send().then(({ data }) => {
      if (data.training && data.training.status === 'waiting') {
        this.stats.say(data.training.message); // labels written while segments are made: the round waits
      }
      return data.batch;
    });
    const entry = { card, saved, name };
    this.history.push(entry);
    this.pending.add(saved);
    saved.then(
      async () => {
        this.stats.refreshCount();
        if (!this.categories.some((category) => category.name === name)) {
          await this._refreshCategories(); // the server added the category (the first "not classifiable")
          this._showLabel(card, card.labels[card.labels.length - 1]);
        }
      },
      (error) => {
        // the label was not stored: take it back from the card and from the undo history
        const at = card.labels.lastIndexOf(name);
        if (at >= 0) {
          card.labels.splice(at, 1);
        }
        this._showLabel(card, card.labels[card.labels.length - 1]);
        this.history = this.history.filter((h) => h !== entry);
        this.messages.failed(`Could not save the label "${name}" of segment ${card.segment}`, error);
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
    if (this.cards.filter((c) => !c.labels.length).length === 1) {
      this._prefetchRow(); // the labeler is on the row's last card
    }
    this.current = next;
    this._update();
  },

  /** Read the project's categories again (in place: the views share the list) and redraw what shows them. */
  async _refreshCategories() {
    try {
      const project = await getJson(this.base);
      this.categories.splice(0, this.categories.length, ...(project.config.categories || []));
    } catch (error) {
      this.messages.failed('Could not read the project\'s categories again', error);
      return;
    }
    if (this.focusPanel && !this._destroyed) {
      this.focusPanel.categoriesChanged();
    }
  },

  /** The card shown once the current one is answered: the next unlabeled one of the row, if any. */
  _upcoming() {
    const next = this._nextUnlabeled();
    return next === null || next === this.current ? null : this.cards[next];
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
      this.messages.add('Nothing to undo.', 'info');
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
      this.messages.failed(`Could not undo the label of segment ${entry.card.segment}`, error);
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
    this.stats.refreshCount();
  },
});

export default GuidedView;
