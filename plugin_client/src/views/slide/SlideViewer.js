// A slide in a geojs map drawn from large_image's tiles, in base-pixel coordinates (x right, y down), shared by
// the painting and guided views. Segment overlays (SegmentOverlay) are added on top of it; one segment can be
// outlined with a thin vector line (its outline from the server), which leaves its tissue visible at any zoom. A
// scale bar with the magnification shown sits in a corner (ScaleBar), and the map node's `data-view` holds the
// base-pixel box in view (left, top, right, bottom) and `data-magnification` the magnification shown.
import geo from 'geojs/geo.lean.min.js';

import { apiUrl } from '../../api.js';
import ScaleBar from './ScaleBar.js';
import './slide.css';

/** How far past the slide's base resolution the map may zoom (levels). */
const ZOOM_PAST_BASE = 2;
/** A dark line under the yellow one, so that the outline reads on pale and on yellow-ish tissue alike. */
export const OUTLINE_STYLES = [
  { strokeColor: '#000000', strokeWidth: 3.5, strokeOpacity: 0.55 },
  { strokeColor: '#ffeb00', strokeWidth: 1.5, strokeOpacity: 1 },
];

export default class SlideViewer {
  /** `tiles` is large_image's tile metadata of the item (GET item/{id}/tiles). */
  constructor(node, itemId, tiles) {
    this.node = node;
    this.itemId = itemId;
    const { sizeX, sizeY, tileWidth, tileHeight } = tiles;
    const params = geo.util.pixelCoordinateParams(node, sizeX, sizeY, tileWidth, tileHeight);
    this.baseZoom = params.map.max; // one screen pixel per base pixel
    this.magnification = tiles.magnification || null;
    params.map.max += ZOOM_PAST_BASE;
    this.maxLevel = params.layer.maxLevel;
    this.map = geo.map(params.map);
    params.layer.url = apiUrl(`item/${itemId}/tiles/zxy/{z}/{x}/{y}`);
    params.layer.crossDomain = 'use-credentials';
    this.map.createLayer('osm', params.layer);
    this.scaleBar = new ScaleBar(node, tiles);
    this._viewChanged = () => this._publishView();
    this.map.geoOn(geo.event.pan, this._viewChanged);
    this.map.geoOn(geo.event.zoom, this._viewChanged);
    this._publishView();
  }

  /** Outline a segment with a thin line: `ring` is its outline in base pixels ([[x, y], ...]); null removes it. */
  outline(ring) {
    if (!this.outlineLayer) {
      this.outlineLayer = this.map.createLayer('feature', { features: ['line'] });
      this.outlineLines = OUTLINE_STYLES.map((style) => this.outlineLayer.createFeature('line')
        .position((point) => ({ x: point[0], y: point[1] })).style({ ...style, closed: true }));
    }
    this.outlineLines.forEach((line) => line.data(ring ? [ring] : []));
    this.outlineLayer.draw();
  }

  /** The base-pixel box in view, the scale bar and the magnification, kept on the map node as data attributes. */
  _publishView() {
    const bounds = this.map.bounds();
    const box = [bounds.left, bounds.top, bounds.right, bounds.bottom].map((v) => Math.round(v * 100) / 100);
    this.node.dataset.view = box.join(',');
    this.node.dataset.magnification = this.scaleBar.update(this.scale());
  }

  /** Resize the map to its node (after the page layout changed). */
  resize() {
    this.map.size({ width: this.node.clientWidth, height: this.node.clientHeight });
  }

  /**
   * Show a base-pixel box `[x0, y0, x1, y1]` with `context` times its size around it, centred, but never magnified
   * past the slide's own resolution: a small segment gets more of its surroundings rather than blurred, upsampled
   * tissue (the labeler may still zoom further in). With `magnification` (and a slide that records its own), the
   * box is centred at that magnification instead.
   */
  showRegion([x0, y0, x1, y1], context = 4, magnification = null) {
    const side = Math.max(x1 - x0, y1 - y0, 16) * context;
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    if (magnification && this.magnification) {
      this.map.zoom(this.baseZoom + Math.log2(magnification / this.magnification));
    } else {
      const view = this.map.zoomAndCenterFromBounds(
        { left: cx - side / 2, right: cx + side / 2, top: cy - side / 2, bottom: cy + side / 2 }, 0);
      this.map.zoom(Math.min(view.zoom, this.baseZoom));
    }
    this.map.center({ x: cx, y: cy });
  }

  /** Screen pixels per base pixel at the map's zoom now (1: the slide's own resolution). */
  scale() {
    return 2 ** (this.map.zoom() - this.baseZoom);
  }

  /** Call `callback` once the map has drawn everything it asked for. */
  onIdle(callback) {
    this.map.onIdle(callback);
  }

  exit() {
    this.map.geoOff(geo.event.pan, this._viewChanged);
    this.map.geoOff(geo.event.zoom, this._viewChanged);
    this.scaleBar.remove();
    this.map.exit();
  }
}
