// Painting in HistomicsUI: the painting view (BulkView: categories, brush, eraser, undo, the segment overlays and
// their controls) in the panel, working on HistomicsUI's viewer of the open slide. The segment overlays are layers
// of HistomicsUI's map and the brush's canvas lies over it; HistomicsUI's own overview and scale stay. When
// HistomicsUI has already closed its map (it makes one per image), there is nothing of ours left to remove from it.
import SlideViewer from '../views/slide/SlideViewer.js';
import BulkView from '../views/paint/BulkView.js';
import { showImage, stillDrawn } from './imageView.js';

const HistomicsUIPaintView = BulkView.extend({
  async _createMap(tiles) {
    const map = await showImage(this.itemId);
    this.$('.hl-bulk-stage').removeClass('hl-loading').addClass('hl-map-ready');
    this.viewer = new SlideViewer(this.$('.hl-bulk-map')[0], this.itemId, tiles, map);
    this.map = map;
    map.node().append(this.brush.el);
    this.brush.attach(map);
    this.$('.hl-bulk-toolbar').after(this.legend.el);
  },

  destroy(...args) {
    if (this.viewer && !stillDrawn(this.viewer)) {
      this.viewer = null; // HistomicsUI closed the map with our layers
    }
    this.brush.$el.remove();
    return BulkView.prototype.destroy.apply(this, args);
  },
});

export default HistomicsUIPaintView;
