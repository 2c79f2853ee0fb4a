// The guided panel's viewer in HistomicsUI: instead of a viewer of its own, HistomicsUI's viewer (opened at the
// card's slide when another is shown) pans to each card, and the outline and the labeled segments' tint are layers
// added to HistomicsUI's map, removed when the panel closes. Everything else is FocusViewer's.
import FocusViewer from '../views/guided/FocusViewer.js';
import SlideViewer from '../views/slide/SlideViewer.js';
import { showImage, stillDrawn } from './imageView.js';

const HistomicsUIFocusViewer = FocusViewer.extend({
  async _open(itemId, tiles) {
    return new SlideViewer(this.el, itemId, tiles, await showImage(itemId));
  },

  _alive() {
    return stillDrawn(this.viewer);
  },

  _showing(itemId) {
    return FocusViewer.prototype._showing.call(this, itemId) && this._alive();
  },
});

export default HistomicsUIFocusViewer;
