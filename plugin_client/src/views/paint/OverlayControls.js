// What the segment overlay (SegmentOverlay) shows: its opacity, the labels, one of the model's overlays (predictions,
// certainty as a heatmap, the embedding map; fetched when first shown) and the segment borders. Each change restyles
// the overlay and then triggers `styled` with `{fill, borders, showLabels}`; `status` carries a line for the
// toolbar's status while an overlay loads, and `messages` (the page's MessagesView) its failures.
import template from './overlayControls.pug';
import { LiveView } from '../common.js';

const { $ } = girder;

const FILLS = [
  { id: 'predictions', name: 'Predictions', title: 'Colour unlabeled segments by the model\'s prediction' },
  { id: 'certainty', name: 'Certainty', title: 'Model certainty: red least certain, blue most' },
  { id: 'embedding', name: 'Embedding map', title: 'Alike colours: alike embeddings (needs the embeddingMap setting)' },
];

/** The fills that show the model's output, which each round changes. */
const MODEL_FILLS = ['predictions', 'certainty'];

const OverlayControls = LiveView.extend({
  events: {
    'input .hl-opacity': '_opacityChanged',
    'change .hl-show-labels': '_labelsChanged',
    'change .hl-show-borders': '_bordersChanged',
    'click .hl-fill': '_fillClicked',
  },

  initialize({ messages }) {
    this.messages = messages;
    this.categories = [];
    this.overlay = null;
    this.opacity = 0.45;
    this.showLabels = true;
    this.fill = null;
    this.borders = false;
    this.render();
  },

  render() {
    this.$el.html(template({ fills: FILLS, opacity: Math.round(this.opacity * 100) }));
    return this;
  },

  /** Style `overlay` (with the colours of `categories`), offering what its `segmentImage` has. */
  attach(overlay, segmentImage, categories) {
    this.overlay = overlay;
    this.categories = categories;
    this.$('.hl-show-borders').prop('disabled', !segmentImage.boundaries);
    this._offerFills(segmentImage);
    this._restyle();
  },

  /**
   * A new round was trained: offer what the slide's `segmentImage` has now, and show the model's overlay in view
   * (predictions or certainty) from the new round; the other model overlays are fetched anew when chosen.
   */
  async modelChanged(segmentImage) {
    if (!this.overlay) {
      return;
    }
    this._offerFills(segmentImage);
    this.overlay.forget(MODEL_FILLS.filter((fill) => fill !== this.fill));
    if (MODEL_FILLS.includes(this.fill)) {
      try {
        await this.overlay.reload(this.fill);
      } catch (error) {
        this.messages.failed('Could not show the new round\'s overlay', error);
      }
    }
  },

  /** Turn off every control but the opacity (a slide without segments). */
  disable() {
    this.$('.hl-fill, .hl-show-labels, .hl-show-borders').prop('disabled', true);
  },

  _opacityChanged(event) {
    this.opacity = Number(event.currentTarget.value) / 100;
    this._restyle();
  },

  _labelsChanged(event) {
    this.showLabels = event.currentTarget.checked;
    this._restyle();
  },

  _bordersChanged(event) {
    this.borders = event.currentTarget.checked;
    this._restyle();
  },

  _fillClicked(event) {
    event.currentTarget.blur();
    const fill = event.currentTarget.dataset.fill;
    this._setFill(this.fill === fill ? null : fill);
  },

  /** Apply the choices to the overlay (coalesced to one redraw per animation frame while a slider moves). */
  _restyle() {
    if (!this.overlay || this._restylePending) {
      return;
    }
    this._restylePending = true;
    window.requestAnimationFrame(() => {
      this._restylePending = false;
      if (this._destroyed) {
        return;
      }
      this.overlay.set({
        categories: this.categories, opacity: this.opacity, showLabels: this.showLabels, fill: this.fill,
        borders: this.borders,
      });
      this.trigger('styled', { fill: this.fill, borders: this.borders, showLabels: this.showLabels });
    });
  },

  /** Enable the model's overlays the slide has; the others say why they are off. */
  _offerFills(segmentImage) {
    const why = {
      predictions: segmentImage.predictions ? '' : 'No predictions yet: train a first round (Retrain while labeling)',
      certainty: segmentImage.predictions ? '' : 'No model yet: train a first round (Retrain while labeling)',
      embedding: segmentImage.embeddingMap ? '' :
        'No embedding map: an admin turns on "Embedding map" in the project settings and makes segments again',
    };
    this.$('.hl-fill').each((i, button) => {
      const reason = why[button.dataset.fill];
      $(button).prop('disabled', Boolean(reason))
        .attr('title', reason || FILLS.find((fill) => fill.id === button.dataset.fill).title);
    });
  },

  async _setFill(fill) {
    if (!this.overlay) {
      return;
    }
    if (fill && !this.overlay.has(fill)) {
      const name = FILLS.find((entry) => entry.id === fill).name;
      this.trigger('status', `Loading ${name.toLowerCase()}…`);
      try {
        await this.overlay.reload(fill);
      } catch (error) {
        this.trigger('status', '');
        this.messages.failed(`Could not show ${name.toLowerCase()}`, error);
        return;
      }
      this.trigger('status', '');
    }
    this.fill = fill;
    this.$('.hl-fill').each((i, button) => {
      const on = button.dataset.fill === fill;
      $(button).toggleClass('active btn-primary', on).attr('aria-pressed', String(on));
    });
    this._restyle();
  },
});

export default OverlayControls;
