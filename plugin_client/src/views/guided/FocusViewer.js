// The slide around the current card in a geojs viewer: large_image's tiles, the card's segment outlined with a thin
// yellow line (its outline from the server, which leaves the tissue inside visible) and the labeled segments tinted
// (SegmentOverlay over the slide's segment image). The viewer is kept while the cards are of the same slide; the
// map node gets `data-item`, `data-segment`, `data-scale` (screen pixels per slide pixel)
// and, once the card's view is drawn (its tiles loaded), the class hl-map-idle.
import { getJson } from '../../api.js';
import SegmentOverlay from '../slide/SegmentOverlay.js';
import SlideViewer from '../slide/SlideViewer.js';
import { LiveView } from '../common.js';

/** The viewer shows this many segment sizes around the current segment. */
const FOCUS_CONTEXT = 4;
/** Labeled segments are tinted this much in the viewer (the current one is outlined whatever its label). */
const FOCUS_OPACITY = 0.3;

const FocusViewer = LiveView.extend({
  /**
   * `base` is the project's API path, `slides` its slides by id (their segment images), `categories` its
   * categories, `messages` the page's MessagesView.
   */
  initialize({ base, slides, categories, messages }) {
    Object.assign(this, { base, slides, categories, messages });
    this.tileCache = {};
  },

  destroy(...args) {
    this._close();
    return LiveView.prototype.destroy.apply(this, args);
  },

  /**
   * Show the card's segment: open its slide (when another slide's card was shown), pan, outline. Once drawn, the
   * tiles around `upcoming` (the card likely shown next, if any) are fetched ahead.
   */
  async focus(card, upcoming = null) {
    const token = {};
    this._focusToken = token;
    const node = this.$el;
    node.removeClass('hl-map-idle').removeAttr('data-prefetched');
    if (!this._showing(card.item)) {
      this._close();
      let viewer;
      try {
        viewer = await this._open(card.item, await this._tiles(card.item));
      } catch (error) {
        this.messages.failed(`Could not open the slide ${card.itemName || card.item}`, error);
        return;
      }
      if (this._focusToken !== token || this._destroyed) {
        viewer.exit();
        return;
      }
      this.viewer = viewer;
      const slide = this.slides[card.item];
      if (slide && slide.segmentImage) {
        const overlay = new SegmentOverlay(this.viewer, this.base, card.item, slide.segmentImage);
        this.segmentOverlay = overlay;
        this.overlayLoading = overlay.load().then(() => {
          overlay.set({ categories: this.categories, opacity: FOCUS_OPACITY });
          this.overlay = overlay;
        }, (error) => this.messages.failed('Could not draw the segments in the viewer', error));
      }
    }
    this.viewer.showRegion(card.region, FOCUS_CONTEXT);
    this.viewer.outline(card.outline || null);
    await this.overlayLoading;
    if (this._focusToken !== token || !this.viewer) {
      return;
    }
    node.attr({ 'data-item': card.item, 'data-segment': String(card.segment),
      'data-scale': this.viewer.scale().toFixed(3) });
    this.viewer.onIdle(() => {
      if (this._focusToken === token) {
        node.addClass('hl-map-idle');
        if (upcoming) {
          this.prefetch(upcoming);
        }
      }
    });
  },

  /**
   * Fetch ahead the slide's and the overlay's tiles around a card shown later, when it is on the slide shown now,
   * so that a key press draws it from the cache (other slides' tiles are fetched when opened). Once fetched, the
   * map node's `data-prefetched` names the card's segment (until the next card is shown).
   */
  prefetch(card) {
    if (this.viewer && this.viewer.itemId === card.item && card.region) {
      const token = this._focusToken;
      this.viewer.prefetchRegion(card.region, FOCUS_CONTEXT).then(() => {
        if (this._focusToken === token) {
          this.$el.attr('data-prefetched', String(card.segment));
        }
      }, () => {}); // a tile that failed is asked for again when shown
    }
  },

  /** Tint a segment with its new label (none: untinted) when its slide is the one shown. */
  showLabel(card, name) {
    if (this.overlay && this.viewer && this.viewer.itemId === card.item) {
      const index = this.categories.findIndex((category) => category.name === name);
      this.overlay.setLabels(new Map([[card.segment, index + 1]]));
    }
  },

  /** Take up a change of the (shared) categories in the segments' colours. */
  categoriesChanged() {
    if (this.overlay) {
      this.overlay.set({ categories: this.categories });
    }
  },

  /** A viewer of the slide `itemId` whose tile metadata is `tiles`, in this view's node. */
  async _open(itemId, tiles) {
    return new SlideViewer(this.el, itemId, tiles);
  },

  /** Whether the viewer open now shows the slide `itemId`. */
  _showing(itemId) {
    return Boolean(this.viewer) && this.viewer.itemId === itemId;
  },

  /** Whether the viewer's map is still drawn (a viewer whose map another view closed has nothing to remove). */
  _alive() {
    return true;
  },

  _tiles(itemId) {
    if (!this.tileCache[itemId]) {
      this.tileCache[itemId] = getJson(`item/${itemId}/tiles`).catch((error) => {
        delete this.tileCache[itemId];
        throw error;
      });
    }
    return this.tileCache[itemId];
  },

  _close() {
    if (this.viewer && this._alive()) {
      if (this.segmentOverlay) {
        this.segmentOverlay.exit();
      }
      this.viewer.exit();
    }
    this.viewer = null;
    this.overlay = null;
    this.segmentOverlay = null;
    this.overlayLoading = null;
  },
});

export default FocusViewer;
