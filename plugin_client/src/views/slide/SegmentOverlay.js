// A slide's segments coloured over the slide: a geojs pixelmap layer reading the slide's segment image (each
// pixel's RGB names a segment) and colouring every segment from per-segment values the server sends as bytes
// (GET .../overlay: labels, predictions, certainty, embedding map). Colours live in a lookup table on the GPU,
// so a million segments pan and zoom as fast as the slide itself; changing what is shown recomputes the table,
// and a few changed labels update only their entries.
//
// With `boundaries` the segment image holds segment k as index 2k inside and 2k + 1 on its outline, so segment
// borders are colours of the same table. (One segment is outlined with a thin vector line instead: SlideViewer.)
import { getBytes, getJson, apiUrl } from '../../api.js';
import { NO_AUTOSHARE } from './SlideViewer.js';

const TRANSPARENT = { r: 0, g: 0, b: 0, a: 0 };
const BORDER = { r: 0.1, g: 0.1, b: 0.1, a: 0.65 };
/** Model certainty from least (red) through yellow to most (blue), ColorBrewer's RdYlBu ends and middle. */
const CERTAINTY_STOPS = [[0.843, 0.098, 0.11], [1, 1, 0.749], [0.173, 0.482, 0.714]];
/** Predictions are drawn paler than labels, so that the two read apart when both are shown. */
export const PREDICTION_ALPHA = 0.55;

/** The certainty ramp as a CSS gradient, least certain on the left (for legends). */
export function certaintyGradient() {
  const stops = CERTAINTY_STOPS.map(([r, g, b]) => `rgb(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)})`);
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** A category's `#rrggbb` colour as 0–1 channels (mid grey for anything else), as the overlay draws it. */
export function parseColor(color) {
  const match = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})/i.exec(color || '');
  if (!match) {
    return { r: 0.6, g: 0.6, b: 0.6 };
  }
  return { r: parseInt(match[1], 16) / 255, g: parseInt(match[2], 16) / 255, b: parseInt(match[3], 16) / 255 };
}

function ramp(t) {
  const scaled = Math.min(Math.max(t, 0), 1) * (CERTAINTY_STOPS.length - 1);
  const low = Math.min(Math.floor(scaled), CERTAINTY_STOPS.length - 2);
  const f = scaled - low;
  const [a, b] = [CERTAINTY_STOPS[low], CERTAINTY_STOPS[low + 1]];
  return { r: a[0] + (b[0] - a[0]) * f, g: a[1] + (b[1] - a[1]) * f, b: a[2] + (b[2] - a[2]) * f };
}

export default class SegmentOverlay {
  /**
   * `segmentImage` is a slide's `segmentImage` from GET .../slides ({id, boundaries, offset, scale}); `base` the
   * project's API path. Call `load()` before use.
   */
  constructor(viewer, base, itemId, segmentImage) {
    this.viewer = viewer;
    this.base = base;
    this.itemId = itemId;
    this.image = segmentImage;
    this.values = {};
    this.categories = [];
    this.opacity = 0.45;
    this.showLabels = true;
    this.fill = null;
    this.borders = false;
    this.certaintyFloor = 1;
  }

  /** Fetch the segment image's tiles and the labels, and add the pixelmap layer to the map. */
  async load() {
    const [imageTiles, labels] = await Promise.all([
      getJson(`item/${this.image.id}/tiles`), this._fetch('labels'),
    ]);
    this.values.labels = labels;
    this.count = labels.length;
    const params = this._layerParams(imageTiles);
    params.data = new Uint8Array(this.count * (this.image.boundaries ? 2 : 1));
    params.style = { color: (d, i) => this._color(i) };
    this.layer = this.viewer.map.createLayer('pixelmap', params);
    this.layer.node().addClass('hl-segment-layer');
    this.layer.draw();
    return this;
  }

  /**
   * Tile-layer settings that place the segment image's tiles on the slide's base-pixel coordinates, each image level
   * at the map level of its own resolution: the segment image has one pixel per `scale` base pixels, so its full
   * resolution is map level `slideMax − k` (k = log2 scale, rounded) with its pixels `scale / 2^k` level pixels
   * wide. Each zoom then draws the image level that has about one pixel per screen pixel (or finer), never a
   * coarser one stretched; lower levels are not kept under the drawn ones (`keepLower`), where the transparent
   * inside of a segment would show their coarser outlines through.
   */
  _layerParams(imageTiles) {
    const scale = this.image.scale || 1;
    const { sizeX, sizeY, tileWidth, tileHeight, levels } = imageTiles;
    const imageMax = levels - 1;
    const steps = Math.max(0, Math.round(Math.log2(scale)));
    const stretch = scale / 2 ** steps;
    const top = this.viewer.maxLevel - steps;
    const shift = top - imageMax; // image level j is map level j + shift
    const url = apiUrl(`item/${this.image.id}/tiles/zxy/`);
    return {
      minLevel: Math.max(0, shift),
      maxLevel: top,
      wrapX: false,
      wrapY: false,
      keepLower: false,
      tileOffset: () => ({ x: 0, y: 0 }),
      attribution: '',
      tileWidth: tileWidth * stretch,
      tileHeight: tileHeight * stretch,
      tileRounding: Math.ceil,
      ...NO_AUTOSHARE,
      crossDomain: 'use-credentials',
      url: (x, y, level) => `${url}${level - shift}/${x}/${y}?encoding=PNG`,
      tilesAtZoom: (level) => {
        const factor = 2 ** (imageMax - (level - shift));
        return { x: Math.ceil(sizeX / tileWidth / factor), y: Math.ceil(sizeY / tileHeight / factor) };
      },
      tilesMaxBounds: (level) => {
        const factor = 2 ** (this.viewer.maxLevel - level);
        return { x: Math.floor((sizeX * scale) / factor), y: Math.floor((sizeY * scale) / factor) };
      },
    };
  }

  async _fetch(kind) {
    const params = new URLSearchParams({ item: this.itemId, kind });
    return new Uint8Array(await getBytes(`${this.base}/overlay?${params}`));
  }

  /** Fetch (again) the values of one kind: 'labels', 'predictions', 'certainty' or 'embedding'. */
  async reload(kind) {
    this.values[kind] = await this._fetch(kind);
    if (kind === 'certainty') {
      this.certaintyFloor = this.values.certainty.reduce((low, v) => (v && v < low ? v : low), 255);
    }
    this.redraw();
  }

  /** Drop the loaded values of these kinds (a new round made them old); they are fetched when next shown. */
  forget(kinds) {
    kinds.forEach((kind) => delete this.values[kind]);
  }

  /** Whether values of this kind are loaded. */
  has(kind) {
    return Boolean(this.values[kind]);
  }

  /** Change what is shown: any of {categories, opacity, showLabels, fill, borders}; redraws everything. */
  set(options) {
    Object.assign(this, options);
    this._palette = null;
    this.redraw();
  }

  /** Set the labels of some segments (segment id → 1-based category index, 0 for none) and redraw only those. */
  setLabels(changes) {
    const spread = this.image.boundaries ? 2 : 1;
    let low = Infinity;
    let high = -1;
    changes.forEach((value, segment) => {
      const index = segment - (this.image.offset || 0);
      if (index >= 0 && index < this.count) {
        this.values.labels[index] = value;
        low = Math.min(low, index * spread);
        high = Math.max(high, index * spread + spread - 1);
      }
    });
    if (high >= 0 && this.layer) {
      this.layer.indexModified(low, high);
      this.layer.draw();
    }
  }

  redraw() {
    if (this.layer) {
      this.layer.modified();
      this.layer.draw();
    }
  }

  _colors() {
    if (!this._palette) {
      const label = this.categories.map((c) => ({ ...parseColor(c.color), a: this.opacity }));
      const predicted = this.categories.map((c) => ({ ...parseColor(c.color), a: this.opacity * PREDICTION_ALPHA }));
      const certainty = [];
      for (let v = 0; v < 256; v += 1) {
        const t = (v - this.certaintyFloor) / Math.max(1, 255 - this.certaintyFloor);
        certainty.push({ ...ramp(t), a: this.opacity });
      }
      this._palette = { label, predicted, certainty };
    }
    return this._palette;
  }

  /** The colour of pixelmap index `i`. */
  _color(i) {
    const boundaries = this.image.boundaries;
    const k = boundaries ? i >> 1 : i;
    const outline = boundaries && (i & 1) === 1;
    if (k === 0 && !this.image.offset) {
      return TRANSPARENT; // background
    }
    if (outline && this.borders) {
      return BORDER;
    }
    const palette = this._colors();
    const label = this.showLabels && this.values.labels ? this.values.labels[k] : 0;
    if (label) {
      return palette.label[label - 1] || TRANSPARENT;
    }
    const values = this.fill && this.values[this.fill];
    if (!values) {
      return TRANSPARENT;
    }
    if (this.fill === 'embedding') {
      return { r: values[3 * k] / 255, g: values[3 * k + 1] / 255, b: values[3 * k + 2] / 255, a: this.opacity };
    }
    const value = values[k];
    if (!value) {
      return TRANSPARENT;
    }
    return this.fill === 'certainty' ? palette.certainty[value] : (palette.predicted[value - 1] || TRANSPARENT);
  }

  exit() {
    if (this.layer) {
      this.viewer.map.deleteLayer(this.layer);
      this.layer = null;
    }
  }
}
