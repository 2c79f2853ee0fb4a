// A slide in a geojs map drawn from large_image's tiles, in base-pixel coordinates (x right, y down), shared by
// the painting and guided views. Segment overlays (SegmentOverlay) are added on top of it; one segment can be
// outlined with a thin vector line (its outline from the server), which leaves its tissue visible at any zoom. A
// scale bar with the magnification shown sits in a corner (ScaleBar), and the map node's `data-view` holds the
// base-pixel box in view (left, top, right, bottom) and `data-magnification` the magnification shown.
//
// It may instead adopt a map another viewer drew from the same tiles (HistomicsUI's, through large_image's geojs
// widget, which lays out the same pixel coordinates): it then adds its layers to that map and removes only them on
// exit, and `node` is just where it publishes its view.
import geo from 'geojs/geo.lean.min.js';

import { apiUrl } from '../../api.js';
import ScaleBar from './ScaleBar.js';
import './slide.css';

/**
 * Layers this plugin adds to a map keep a WebGL renderer of their own: geojs otherwise regroups the shared renderers
 * of adjacent layers when one is added or removed, and a tile layer whose renderer changed shows no tiles until the
 * view next moves (HistomicsUI's slide went blank when the painting panel added the segments' layer).
 */
export const NO_AUTOSHARE = { autoshareRenderer: false };
/** How far past the slide's base resolution the map may zoom (levels). */
const ZOOM_PAST_BASE = 2;
/** A dark line under the yellow one, so that the outline reads on pale and on yellow-ish tissue alike. */
export const OUTLINE_STYLES = [
  { strokeColor: '#000000', strokeWidth: 3.5, strokeOpacity: 0.55 },
  { strokeColor: '#ffeb00', strokeWidth: 1.5, strokeOpacity: 1 },
];

/**
 * The span `center ± half` moved to lie within `[low, high]` as geojs keeps a view within a map's bounds: centred
 * on them when it is wider, else shifted in from the edge it crosses.
 */
function clampSpan(center, half, low, high) {
  if (2 * half >= high - low) {
    const middle = (low + high) / 2;
    return [middle - half, middle + half];
  }
  const shift = Math.max(low - (center - half), 0) + Math.min(high - (center + half), 0);
  return [center - half + shift, center + half + shift];
}

export default class SlideViewer {
  /**
   * `tiles` is large_image's tile metadata of the item (GET item/{id}/tiles); `map`, when given, is a geojs map of
   * the same slide that another viewer drew (see above), adopted instead of a new one.
   */
  constructor(node, itemId, tiles, map = null) {
    this.node = node;
    this.itemId = itemId;
    const { sizeX, sizeY, tileWidth, tileHeight } = tiles;
    const params = geo.util.pixelCoordinateParams(node, sizeX, sizeY, tileWidth, tileHeight);
    this.baseZoom = params.map.max; // one screen pixel per base pixel
    this.magnification = tiles.magnification || null;
    this.maxLevel = params.layer.maxLevel;
    this.adopted = Boolean(map);
    if (map) {
      this.map = map;
    } else {
      params.map.max += ZOOM_PAST_BASE;
      this.map = geo.map(params.map);
      params.layer.url = apiUrl(`item/${itemId}/tiles/zxy/{z}/{x}/{y}`);
      params.layer.crossDomain = 'use-credentials';
      this.map.createLayer('osm', params.layer);
      this.scaleBar = new ScaleBar(node, tiles);
    }
    this._viewChanged = () => this._publishView();
    this.map.geoOn(geo.event.pan, this._viewChanged);
    this.map.geoOn(geo.event.zoom, this._viewChanged);
    this._publishView();
  }

  /** Outline a segment with a thin line: `ring` is its outline in base pixels ([[x, y], ...]); null removes it. */
  outline(ring) {
    if (!this.outlineLayer) {
      this.outlineLayer = this.map.createLayer('feature', { features: ['line'], ...NO_AUTOSHARE });
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
    if (this.scaleBar) {
      this.node.dataset.magnification = this.scaleBar.update(this.scale());
    }
  }

  /** Resize the map to its node (after the page layout changed); an adopted map is its owner's to resize. */
  resize() {
    if (!this.adopted) {
      this.map.size({ width: this.node.clientWidth, height: this.node.clientHeight });
    }
  }

  /**
   * Show a base-pixel box `[x0, y0, x1, y1]` with `context` times its size around it, centred, but never magnified
   * past the slide's own resolution: a small segment gets more of its surroundings rather than blurred, upsampled
   * tissue (the labeler may still zoom further in). With `magnification` (and a slide that records its own), the
   * box is centred at that magnification instead.
   */
  showRegion(box, context = 4, magnification = null) {
    const { zoom, center } = this._regionView(box, context, magnification);
    // in one step: a zoom about the old centre would first ask for the tiles of a view never shown
    this.map.zoomAndCenter(zoom, center);
  }

  /**
   * Fetch ahead the tiles of every tile layer (the slide's and the segment overlay's) that `showRegion(box, context)`
   * would draw, so that showing that box next draws from the layers' caches instead of waiting for the server.
   * Resolves once they are fetched; a tile that failed is simply asked for again when shown.
   */
  prefetchRegion(box, context = 4) {
    const view = this._regionView(box, context, null);
    const range = this.map.zoomRange();
    const zoom = Math.min(Math.max(view.zoom, range.min), range.max);
    const size = this.map.size();
    const units = this.map.unitsPerPixel(zoom);
    // the map keeps its view inside the slide (geojs's clampBounds): the same box, moved as it would be
    const max = this.map.maxBounds();
    const [x0, x1] = clampSpan(view.center.x, (size.width / 2) * units, max.left, max.right);
    const [y0, y1] = clampSpan(view.center.y, (size.height / 2) * units, max.top, max.bottom);
    // tile layers take bounds in the map's own coordinates (y up), not in base pixels (y down)
    const corners = geo.transform.transformCoordinates(this.map.ingcs(), this.map.gcs(), [
      { x: x0, y: y0 }, { x: x1, y: y1 }]);
    const bounds = {
      left: corners[0].x, right: corners[1].x, top: Math.max(corners[0].y, corners[1].y),
      bottom: Math.min(corners[0].y, corners[1].y),
    };
    const layers = this.map.layers().filter((layer) => typeof layer.prefetch === 'function');
    // each tile layer draws the level its own rounding of the map's zoom picks (geojs keeps it in its options)
    return Promise.all(layers.map((layer) => Promise.resolve(
      layer.prefetch((layer._options.tileRounding || Math.round)(zoom), bounds))));
  }

  /** The zoom and centre at which `showRegion` shows a box (see there). */
  _regionView([x0, y0, x1, y1], context, magnification) {
    const side = Math.max(x1 - x0, y1 - y0, 16) * context;
    const center = { x: (x0 + x1) / 2, y: (y0 + y1) / 2 };
    if (magnification && this.magnification) {
      return { zoom: this.baseZoom + Math.log2(magnification / this.magnification), center };
    }
    const view = this.map.zoomAndCenterFromBounds({
      left: center.x - side / 2, right: center.x + side / 2, top: center.y - side / 2, bottom: center.y + side / 2,
    }, 0);
    return { zoom: Math.min(view.zoom, this.baseZoom), center };
  }

  /** Screen pixels per base pixel at the map's zoom now (1: the slide's own resolution). */
  scale() {
    return 2 ** (this.map.zoom() - this.baseZoom);
  }

  /** Call `callback` once the map has drawn everything it asked for. */
  onIdle(callback) {
    this.map.onIdle(callback);
  }

  /** Close the map, or for an adopted map take away what this viewer added to it (the overlays remove theirs). */
  exit() {
    this.map.geoOff(geo.event.pan, this._viewChanged);
    this.map.geoOff(geo.event.zoom, this._viewChanged);
    if (!this.adopted) {
      this.scaleBar.remove();
      this.map.exit();
    } else if (this.outlineLayer) {
      this.map.deleteLayer(this.outlineLayer);
    }
  }
}
