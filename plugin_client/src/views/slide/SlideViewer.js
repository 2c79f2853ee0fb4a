// A slide in a geojs map drawn from large_image's tiles, in base-pixel coordinates (x right, y down), shared by
// the painting and guided views. Segment overlays (SegmentOverlay) are added on top of it.
import geo from 'geojs/geo.lean.min.js';

import { apiUrl } from '../../api.js';

/** How far past the slide's base resolution the map may zoom (levels). */
const ZOOM_PAST_BASE = 2;

export default class SlideViewer {
  /** `tiles` is large_image's tile metadata of the item (GET item/{id}/tiles). */
  constructor(node, itemId, tiles) {
    this.node = node;
    this.itemId = itemId;
    const { sizeX, sizeY, tileWidth, tileHeight } = tiles;
    const params = geo.util.pixelCoordinateParams(node, sizeX, sizeY, tileWidth, tileHeight);
    this.baseZoom = params.map.max; // one screen pixel per base pixel
    params.map.max += ZOOM_PAST_BASE;
    this.maxLevel = params.layer.maxLevel;
    this.map = geo.map(params.map);
    params.layer.url = apiUrl(`item/${itemId}/tiles/zxy/{z}/{x}/{y}`);
    params.layer.crossDomain = 'use-credentials';
    this.map.createLayer('osm', params.layer);
  }

  /** Resize the map to its node (after the page layout changed). */
  resize() {
    this.map.size({ width: this.node.clientWidth, height: this.node.clientHeight });
  }

  /**
   * Show a base-pixel box `[x0, y0, x1, y1]` with `context` times its size around it, centred, but never magnified
   * past the slide's own resolution: a small segment gets more of its surroundings rather than blurred, upsampled
   * tissue (the labeler may still zoom further in).
   */
  showRegion([x0, y0, x1, y1], context = 4) {
    const side = Math.max(x1 - x0, y1 - y0, 16) * context;
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    const view = this.map.zoomAndCenterFromBounds(
      { left: cx - side / 2, right: cx + side / 2, top: cy - side / 2, bottom: cy + side / 2 }, 0);
    this.map.zoom(Math.min(view.zoom, this.baseZoom));
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
    this.map.exit();
  }
}
