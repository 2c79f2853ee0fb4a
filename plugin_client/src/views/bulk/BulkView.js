// The bulk labeling view (`#histomics_label/project/<folderId>/paint/<itemId>`): the slide in a geojs map over
// large_image's tiles, its segments coloured over it in their exact shapes (a pixelmap of the segment image: labels,
// and on request the model's predictions, its certainty as a heatmap, the embedding map and segment borders), and a
// brush. A stroke (mouse down, drag, up) is sent once to the server (POST .../labels/paint, in base pixels), which
// labels every segment under it with view "bulk" (or, in Eraser mode, removes the caller's labels of them) and
// answers the segments and a batch id; Undo reverts the newest stroke (POST .../labels/undo?batch=...). Pan mode,
// the right button in any mode, and the wheel move the view.
import { getJson, projectRoute, request } from '../../api.js';
import SegmentOverlay from '../slide/SegmentOverlay.js';
import SlideViewer from '../slide/SlideViewer.js';
import { dismissibleMessages, esc } from '../project/common.js';
import './bulk.css';

const { $ } = girder;
const { View } = girder.views;

const FILL_BUTTONS = [
  { id: 'predictions', name: 'Predictions', title: 'Colour unlabeled segments by the model\'s prediction' },
  { id: 'certainty', name: 'Certainty', title: 'Model certainty: red least certain, blue most' },
  { id: 'embedding', name: 'Embedding map', title: 'Alike colours: alike embeddings (needs the embeddingMap setting)' },
];

const MODES = [
  { id: 'brush', name: 'Brush' },
  { id: 'eraser', name: 'Eraser' },
  { id: 'pan', name: 'Pan' },
];

/** The client route of a slide's bulk labeling view. */
export function paintRoute(folderId, itemId) {
  return `${projectRoute(folderId)}/paint/${itemId}`;
}

const BulkView = View.extend({
  ...dismissibleMessages,

  className: 'hl-bulk-view',

  initialize(settings) {
    this.folderId = settings.folderId;
    this.itemId = settings.itemId;
    this.base = `histomics_label/project/${this.folderId}`;
    this.categories = [];
    this.active = 0;
    this.mode = 'brush';
    this.brushSize = 12; // radius, screen pixels
    this.opacity = 0.45;
    this.showLabels = true;
    this.fill = null;
    this.borders = false;
    this.batches = []; // newest last
    this.stroke = null;
    this.busy = false;
    this._onKey = (event) => this._key(event);
    document.addEventListener('keydown', this._onKey);
    this._onResize = () => this._resize();
    window.addEventListener('resize', this._onResize);
    this.render();
    this._load();
  },

  destroy(...args) {
    document.removeEventListener('keydown', this._onKey);
    window.removeEventListener('resize', this._onResize);
    this._destroyed = true;
    if (this.viewer) {
      this.viewer.exit();
      this.viewer = null;
      this.map = null;
    }
    return View.prototype.destroy.apply(this, args);
  },

  render() {
    const modes = MODES.map((mode) => `<button type="button" class="btn btn-sm btn-default hl-mode"
        data-mode="${mode.id}">${mode.name}</button>`).join('');
    const fills = FILL_BUTTONS.map((fill) => `<button type="button" class="btn btn-sm btn-default hl-fill"
        data-fill="${fill.id}" title="${esc(fill.title)}" aria-pressed="false">${fill.name}</button>`).join('');
    this.$el.html(`<div class="hl-bulk">
        <div class="hl-bulk-header">
          <h2 class="hl-bulk-title">Paint</h2>
          <a class="hl-project-link" href="#${esc(projectRoute(this.folderId))}">Project page</a>
        </div>
        <div class="hl-bulk-toolbar">
          <span class="hl-modes btn-group">${modes}</span>
          <span class="hl-bulk-categories"></span>
          <label>Brush <input type="range" class="hl-brush-size" min="2" max="60" value="${this.brushSize}"></label>
          <label>Opacity <input type="range" class="hl-opacity" min="0" max="100"
            value="${Math.round(this.opacity * 100)}"></label>
          <label><input type="checkbox" class="hl-show-labels" checked> Labels</label>
          <span class="hl-fills btn-group">${fills}</span>
          <label><input type="checkbox" class="hl-show-borders"> Borders</label>
          <button type="button" class="btn btn-sm btn-default hl-undo" disabled>Undo</button>
          <span>Last stroke: <strong class="hl-paint-count">–</strong> segments</span>
          <span class="hl-paint-status" role="status"></span>
        </div>
        <div class="hl-messages" aria-live="polite"></div>
        <div class="hl-bulk-stage hl-loading">
          <div class="hl-bulk-map"></div>
          <canvas class="hl-bulk-overlay"></canvas>
        </div>
        <p class="hl-keys-help">Keys: <kbd>1</kbd>–<kbd>9</kbd> or a category's letter choose it; drag to paint;
          the right button or Pan mode moves the view, the wheel zooms; <kbd>Ctrl</kbd>+<kbd>Z</kbd> undoes.</p>
      </div>`);
    this.$('.hl-mode').on('click', (event) => this._setMode(event.currentTarget.dataset.mode));
    this.$('.hl-brush-size').on('input', (event) => {
      this.brushSize = Number(event.currentTarget.value);
    });
    this.$('.hl-opacity').on('input', (event) => {
      this.opacity = Number(event.currentTarget.value) / 100;
      this._restyle();
    });
    this.$('.hl-show-labels').on('change', (event) => {
      this.showLabels = event.currentTarget.checked;
      this._restyle();
    });
    this.$('.hl-show-borders').on('change', (event) => {
      this.borders = event.currentTarget.checked;
      this._restyle();
    });
    this.$('.hl-fill').on('click', (event) => {
      event.currentTarget.blur();
      const fill = event.currentTarget.dataset.fill;
      this._setFill(this.fill === fill ? null : fill);
    });
    this.$('.hl-undo').on('click', () => this._undo());
    const overlay = this.$('.hl-bulk-overlay')[0];
    overlay.addEventListener('pointerdown', (event) => this._down(event));
    overlay.addEventListener('pointermove', (event) => this._move(event));
    overlay.addEventListener('pointerup', (event) => this._up(event));
    overlay.addEventListener('pointercancel', () => this._cancel());
    overlay.addEventListener('pointerleave', () => {
      this.cursor = null;
      this._draw();
    });
    overlay.addEventListener('wheel', (event) => this._wheel(event), { passive: false });
    overlay.addEventListener('contextmenu', (event) => event.preventDefault());
    this._setMode(this.mode);
    return this;
  },

  _status(text) {
    this.$('.hl-paint-status').text(text);
  },

  // ---- loading -----------------------------------------------------------------------------------------------

  async _load() {
    let project;
    let tiles;
    let item;
    let slides;
    try {
      [project, tiles, item, slides] = await Promise.all([
        getJson(this.base), getJson(`item/${this.itemId}/tiles`), getJson(`item/${this.itemId}`),
        getJson(`${this.base}/slides`),
      ]);
    } catch (error) {
      this.$('.hl-bulk-stage').removeClass('hl-loading').html(
        '<div class="hl-error alert alert-danger" role="alert"><strong>Could not load this slide of the ' +
        `project.</strong><div class="hl-error-detail">${esc(error.message)}</div></div>`);
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.project = project;
    this.tiles = tiles;
    this.categories = (project.config.categories || []).filter((category) => category.name);
    this.$('.hl-bulk-title').text(`Paint: ${item.name}`);
    this._renderCategories();
    if (!(project.access && project.access.write)) {
      this._message('You may see this project but not label it: painting needs write access to its folder.',
        'warning');
      this.readOnly = true;
      this._setMode('pan');
      this.$('.hl-mode').prop('disabled', true);
    }
    this._createMap();
    const slide = slides.find((entry) => entry._id === this.itemId);
    if (!slide || !slide.segmentImage) {
      this._message('This slide has no segments yet: make segments on the project page before painting.',
        'warning');
      this.$('.hl-mode, .hl-fill, .hl-show-labels, .hl-show-borders').prop('disabled', true);
      this.readOnly = true;
      this._setMode('pan');
      this._whenIdle();
      return;
    }
    try {
      this.overlay = await new SegmentOverlay(this.viewer, this.base, this.itemId, slide.segmentImage).load();
    } catch (error) {
      this._failed('Could not load the segments of this slide', error);
      this._whenIdle();
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.$('.hl-show-borders').prop('disabled', !slide.segmentImage.boundaries);
    this._offerFills(slide.segmentImage);
    this._labelsShown();
    this._restyle();
    this._whenIdle();
  },

  _createMap() {
    const stage = this.$('.hl-bulk-stage').removeClass('hl-loading');
    this.viewer = new SlideViewer(this.$('.hl-bulk-map')[0], this.itemId, this.tiles);
    this.map = this.viewer.map;
    const redraw = () => this._draw();
    this.map.geoOn('geo_pan', redraw);
    this.map.geoOn('geo_zoom', redraw);
    this.map.geoOn('geo_resize', redraw);
    stage.addClass('hl-map-ready');
    this._resize();
  },

  /** Mark the page once the map has drawn what it asked for (tests and screenshots wait for this). */
  _whenIdle() {
    this.viewer.onIdle(() => {
      if (!this._destroyed) {
        this.$el.find('.hl-bulk').addClass('hl-map-idle');
      }
    });
  },

  _resize() {
    if (!this.map) {
      return;
    }
    const node = this.$('.hl-bulk-map')[0];
    const overlay = this.$('.hl-bulk-overlay')[0];
    overlay.width = node.clientWidth;
    overlay.height = node.clientHeight;
    this.map.size({ width: node.clientWidth, height: node.clientHeight });
    this._draw();
  },

  async _refreshLabels() {
    if (!this.overlay) {
      return;
    }
    try {
      await this.overlay.reload('labels');
    } catch (error) {
      this._failed('Could not load the labels of this slide', error);
      return;
    }
    this._labelsShown();
  },

  /** Record how many segments the overlay shows as labeled (for the page's tests and the status line). */
  _labelsShown() {
    const labels = this.overlay.values.labels;
    let count = 0;
    for (let i = 0; i < labels.length; i += 1) {
      count += labels[i] ? 1 : 0;
    }
    this.$('.hl-bulk').attr('data-labeled', String(count));
  },

  // ---- overlay choices ---------------------------------------------------------------------------------------

  /** Apply the toolbar's overlay choices (coalesced to one redraw per animation frame while a slider moves). */
  _restyle() {
    if (!this.overlay || this._restylePending) {
      return;
    }
    this._restylePending = true;
    window.requestAnimationFrame(() => {
      this._restylePending = false;
      if (!this.overlay || this._destroyed) {
        return;
      }
      this.overlay.set({
        categories: this.categories, opacity: this.opacity, showLabels: this.showLabels, fill: this.fill,
        borders: this.borders,
      });
      this.$('.hl-bulk').attr({
        'data-fill': this.fill || '', 'data-borders': String(this.borders), 'data-labels': String(this.showLabels),
      });
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
        .attr('title', reason || FILL_BUTTONS.find((fill) => fill.id === button.dataset.fill).title);
    });
  },

  async _setFill(fill) {
    if (!this.overlay) {
      return;
    }
    if (fill && !this.overlay.has(fill)) {
      const name = FILL_BUTTONS.find((entry) => entry.id === fill).name;
      this._status(`Loading ${name.toLowerCase()}…`);
      try {
        await this.overlay.reload(fill);
      } catch (error) {
        this._status('');
        this._failed(`Could not show ${name.toLowerCase()}`, error);
        return;
      }
      this._status('');
    }
    this.fill = fill;
    this.$('.hl-fill').each((i, button) => {
      const on = button.dataset.fill === fill;
      $(button).toggleClass('active btn-primary', on).attr('aria-pressed', String(on));
    });
    this._restyle();
  },

  // ---- categories and modes ----------------------------------------------------------------------------------

  _renderCategories() {
    const buttons = this.categories.map((category, index) => `<button type="button"
        class="btn btn-sm btn-default hl-bulk-category" data-index="${index}" data-name="${esc(category.name)}"
        title="Key ${index + 1}${category.hotkey ? ` or ${esc(category.hotkey)}` : ''}">
        <span class="hl-swatch" style="background:${esc(category.color || '#999')}"></span>
        <span class="hl-category-name">${esc(category.name)}</span></button>`).join('');
    this.$('.hl-bulk-categories').html(buttons);
    this.$('.hl-bulk-category').on('click', (event) => {
      event.currentTarget.blur();
      this._setCategory(Number(event.currentTarget.dataset.index));
    });
    this._setCategory(this.active);
  },

  _setCategory(index) {
    if (index < 0 || index >= this.categories.length) {
      return;
    }
    this.active = index;
    this.$('.hl-bulk-category').each((i, button) => {
      $(button).toggleClass('active btn-primary', i === index);
    });
    this.$('.hl-bulk').attr('data-category', this.categories[index].name);
  },

  _setMode(mode) {
    this.mode = mode;
    this.$('.hl-mode').each((i, button) => $(button).toggleClass('active btn-primary', button.dataset.mode === mode));
    // in Pan mode geojs gets the mouse itself; otherwise the overlay takes it
    this.$('.hl-bulk-overlay').toggleClass('hl-passive', mode === 'pan');
    this.$('.hl-bulk').attr('data-mode', mode);
    this._draw();
  },

  _key(event) {
    if (event.target.closest && event.target.closest('input, textarea, select')) {
      return;
    }
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'z') {
      event.preventDefault();
      this._undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (/^[1-9]$/.test(event.key)) {
      this._setCategory(Number(event.key) - 1);
      return;
    }
    const index = this.categories.findIndex((category) => category.hotkey && category.hotkey === event.key);
    if (index >= 0) {
      this._setCategory(index);
    }
  },

  // ---- pointer -----------------------------------------------------------------------------------------------

  _local(event) {
    const rect = event.currentTarget.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  },

  _down(event) {
    if (!this.map) {
      return;
    }
    event.preventDefault();
    event.currentTarget.setPointerCapture(event.pointerId);
    const at = this._local(event);
    if (event.button === 2 || this.mode === 'pan' || this.readOnly) {
      this.panning = at;
      return;
    }
    if (event.button !== 0 || this.busy) {
      return;
    }
    this.stroke = { points: [at], erase: this.mode === 'eraser' };
    this._draw();
  },

  _move(event) {
    const at = this._local(event);
    this.cursor = at;
    if (this.panning) {
      this.map.pan({ x: at.x - this.panning.x, y: at.y - this.panning.y });
      this.panning = at;
      return;
    }
    if (this.stroke) {
      const last = this.stroke.points[this.stroke.points.length - 1];
      if (Math.hypot(at.x - last.x, at.y - last.y) >= 2) {
        this.stroke.points.push(at);
      }
    }
    this._draw();
  },

  _up(event) {
    if (this.panning) {
      this.panning = null;
      return;
    }
    if (!this.stroke) {
      return;
    }
    const stroke = this.stroke;
    this.stroke = null;
    const at = this._local(event);
    const last = stroke.points[stroke.points.length - 1];
    if (at.x !== last.x || at.y !== last.y) {
      stroke.points.push(at);
    }
    this._paint(stroke);
  },

  _cancel() {
    this.panning = null;
    this.stroke = null;
    this._draw();
  },

  _wheel(event) {
    if (!this.map) {
      return;
    }
    event.preventDefault();
    const at = this._local(event);
    const before = this.map.displayToGcs(at);
    const zoom = this.map.zoom() - Math.sign(event.deltaY) * 0.5;
    this.map.zoom(zoom);
    const after = this.map.gcsToDisplay(before);
    this.map.pan({ x: at.x - after.x, y: at.y - after.y });
  },

  // ---- painting ----------------------------------------------------------------------------------------------

  /** The brush radius in base pixels at the current zoom. */
  _radius() {
    return this.brushSize * this.map.unitsPerPixel(this.map.zoom());
  },

  async _paint(stroke) {
    const points = stroke.points.map((point) => {
      const gcs = this.map.displayToGcs(point);
      return [Math.round(gcs.x * 100) / 100, Math.round(gcs.y * 100) / 100];
    });
    const body = { item: this.itemId, points, radius: Math.max(1, this._radius()) };
    const category = this.categories[this.active];
    if (stroke.erase) {
      body.erase = true;
    } else if (category) {
      body.category = category.name;
    } else {
      this._message('Choose a category before painting.', 'warning');
      this._draw();
      return;
    }
    this.busy = true;
    this.pendingStroke = stroke;
    this.$('.hl-bulk').addClass('hl-painting');
    this._status(stroke.erase ? 'Erasing…' : 'Painting…');
    try {
      const { data } = await request('POST', `${this.base}/labels/paint`, { json: body });
      if (this._destroyed) {
        return;
      }
      if (data.batch) {
        this.batches.push(data.batch);
      }
      const count = (data.segments || []).length;
      this.lastPaint = data;
      this.$('.hl-bulk').attr('data-last-segments', (data.segments || []).join(','));
      this._status(stroke.erase
        ? `Erased the labels of ${count} segment${count === 1 ? '' : 's'}.`
        : `Labeled ${count} segment${count === 1 ? '' : 's'} as ${category.name}.`);
      this.$('.hl-paint-count').text(String(count));
      if (!stroke.erase && this.overlay) {
        const value = this.active + 1;
        this.overlay.setLabels(new Map((data.segments || []).map((segment) => [segment, value])));
        this._labelsShown();
      }
    } catch (error) {
      this._status('');
      this._failed(stroke.erase ? 'Could not erase' : `Could not paint "${category.name}"`, error);
    } finally {
      this.busy = false;
      this.pendingStroke = null;
      this.$('.hl-bulk').removeClass('hl-painting');
      this.$('.hl-undo').prop('disabled', !this.batches.length);
    }
    if (stroke.erase) {
      await this._refreshLabels(); // another labeler's label of an erased segment shows again
    }
  },

  async _undo() {
    if (this.busy || !this.batches.length) {
      return;
    }
    const batch = this.batches.pop();
    this.busy = true;
    this.$('.hl-bulk').addClass('hl-painting');
    try {
      const { data } = await request('POST', `${this.base}/labels/undo`, { params: { batch } });
      this._status(`Undid ${data.reverted} label change${data.reverted === 1 ? '' : 's'}.`);
    } catch (error) {
      this.batches.push(batch);
      this._failed('Could not undo the last stroke', error);
    } finally {
      this.busy = false;
      this.$('.hl-bulk').removeClass('hl-painting');
      this.$('.hl-undo').prop('disabled', !this.batches.length);
    }
    await this._refreshLabels();
  },

  // ---- brush -------------------------------------------------------------------------------------------------

  /** Draw the brush cursor and the stroke being painted (the segments themselves are the pixelmap layer). */
  _draw() {
    const overlay = this.$('.hl-bulk-overlay')[0];
    if (!overlay || !this.map) {
      return;
    }
    const ctx = overlay.getContext('2d');
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const colors = Object.fromEntries(this.categories.map((category) => [category.name, category.color || '#999']));
    const stroke = this.stroke || this.pendingStroke;
    const color = this.mode === 'eraser' ? '#ffffff' : (colors[(this.categories[this.active] || {}).name] || '#fff');
    if (stroke && stroke.points.length) {
      ctx.globalAlpha = 0.5;
      ctx.strokeStyle = stroke.erase ? '#ffffff' : color;
      ctx.lineWidth = this.brushSize * 2;
      ctx.lineCap = 'round';
      ctx.lineJoin = 'round';
      ctx.beginPath();
      ctx.moveTo(stroke.points[0].x, stroke.points[0].y);
      stroke.points.slice(1).forEach((point) => ctx.lineTo(point.x, point.y));
      if (stroke.points.length === 1) {
        ctx.lineTo(stroke.points[0].x + 0.01, stroke.points[0].y);
      }
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    if (this.cursor && this.mode !== 'pan' && !this.readOnly) {
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(this.cursor.x, this.cursor.y, this.brushSize, 0, Math.PI * 2);
      ctx.stroke();
    }
  },
});

export default BulkView;
