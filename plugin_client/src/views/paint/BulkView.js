// The bulk labeling view (`#histomics_label/project/<folderId>/paint/<itemId>`): the slide in a geojs map over
// large_image's tiles, its segments coloured over it in their exact shapes (a pixelmap of the segment image: labels,
// and on request the model's predictions, its certainty as a heatmap, the embedding map and segment borders; see
// OverlayControls), and a brush (BrushLayer). A stroke is sent once to the server (POST .../labels/paint, in base
// pixels), which labels every segment under it with view "bulk" (or, in Eraser mode, removes the caller's labels of
// them) and answers the segments and a batch id; Undo reverts the newest stroke (POST .../labels/undo?batch=...).
// Pan mode, the right button in any mode, and the wheel move the view. This view holds the mode, the active category
// (ModeButtons, CategoryPicker and the keys), the requests and the page's data attributes that tests wait for.
//
// `?segment=K` (a card's "Show on slide") opens the slide at segment K, outlined with a thin line; `&mag=M` shows it
// at magnification M (else with its surroundings); `&from=review|label` adds a Back button. The overview map, the
// scale bar and a legend of the overlays shown sit in the corners of the slide.
import { getJson, projectRoute, request } from '../../api.js';
import { LiveView, MessagesView, isTyping, onTraining, trainingText } from '../common.js';
import SegmentOverlay from '../slide/SegmentOverlay.js';
import SlideViewer from '../slide/SlideViewer.js';
import BrushLayer from './BrushLayer.js';
import CategoryPicker from './CategoryPicker.js';
import loadError from './loadError.pug';
import ModeButtons from './ModeButtons.js';
import OverlayControls from './OverlayControls.js';
import OverlayLegend from './OverlayLegend.js';
import OverviewMap from '../slide/OverviewMap.js';
import template from './paint.pug';
import './paint.css';

/** A segment opened from a card is shown with this many times its size around it. */
const SEGMENT_CONTEXT = 6;

const BulkView = LiveView.extend({
  className: 'hl-bulk-view',

  events: {
    'input .hl-brush-size': '_brushSizeChanged',
    'click .hl-undo': '_undo',
    'click .hl-back': '_back',
  },

  /**
   * `folderId` is the project's folder and `itemId` the slide; `segment`, `magnification` and `from` as the route's
   * query gives them (see above). Where the view is embedded in another page (HistomicsUI), `href` turns a client
   * route into a link there and `target` names the window such links open in.
   */
  initialize(settings) {
    this.folderId = settings.folderId;
    this.itemId = settings.itemId;
    this.href = settings.href || ((route) => `#${route}`);
    this.target = settings.target;
    this.segment = Number.isInteger(Number(settings.segment)) && Number(settings.segment) > 0
      ? Number(settings.segment) : null;
    this.magnification = Number(settings.magnification) > 0 ? Number(settings.magnification) : null;
    this.from = ['review', 'label'].includes(settings.from) ? settings.from : null;
    this.base = `histomics_label/project/${this.folderId}`;
    this.categories = [];
    this.active = 0;
    this.mode = 'brush';
    this.batches = []; // newest last
    this.busy = false;
    this._onKey = (event) => this._key(event);
    document.addEventListener('keydown', this._onKey);
    this._onResize = () => this._resize();
    window.addEventListener('resize', this._onResize);
    this.render();
    onTraining(this, this.folderId, (data) => this._trainingEvent(data));
    this._load();
  },

  destroy(...args) {
    document.removeEventListener('keydown', this._onKey);
    window.removeEventListener('resize', this._onResize);
    if (this.overview) {
      this.overview.remove();
      this.overview = null;
    }
    if (this.viewer) {
      this.brush.detach();
      if (this.overlay) {
        this.overlay.exit();
      }
      this.viewer.exit();
      this.viewer = null;
      this.map = null;
    }
    return LiveView.prototype.destroy.apply(this, args);
  },

  render() {
    const brushSize = 12; // radius, screen pixels
    this.$el.html(template({
      projectLink: this.href(projectRoute(this.folderId)), target: this.target, brushSize, from: this.from,
    }));
    this.messages = new MessagesView({ el: this.$('.hl-messages'), parentView: this });
    this.modes = new ModeButtons({ el: this.$('.hl-modes'), parentView: this });
    this.listenTo(this.modes, 'mode', this._setMode);
    this.picker = new CategoryPicker({ el: this.$('.hl-bulk-categories'), parentView: this });
    this.listenTo(this.picker, 'choose', this._setCategory);
    this.controls = new OverlayControls({
      el: this.$('.hl-overlay-controls'), parentView: this, messages: this.messages,
    });
    this.legend = new OverlayLegend({ parentView: this });
    this.listenTo(this.controls, 'styled', (styled) => {
      const { fill, borders, showLabels } = styled;
      this.$('.hl-bulk').attr({
        'data-fill': fill || '', 'data-borders': String(borders), 'data-labels': String(showLabels),
      });
      this.legend.show(this.overlay, styled, this.segment);
    });
    this.listenTo(this.controls, 'status', this._status);
    this.brush = new BrushLayer({ el: this.$('.hl-bulk-overlay'), parentView: this, brushSize });
    this.listenTo(this.brush, 'stroke', this._paint);
    this._setMode(this.mode);
    return this;
  },

  _status(text) {
    this.$('.hl-paint-status').text(text);
  },

  _brushSizeChanged(event) {
    this.brush.brushSize = Number(event.currentTarget.value);
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
      this.$('.hl-bulk-stage').removeClass('hl-loading').html(loadError({ detail: error.message }));
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.categories = (project.config.categories || []).filter((category) => category.name);
    this.$('.hl-bulk-title').text(`Paint: ${item.name}`);
    this.picker.render(this.categories);
    this._setCategory(this.active);
    if (!(project.access && project.access.write)) {
      this.messages.add('You may see this project but not label it: painting needs write access to its folder.',
        'warning');
      this._setReadOnly();
      this.modes.disable();
    }
    try {
      await this._createMap(tiles);
    } catch (error) {
      this.$('.hl-bulk-stage').removeClass('hl-loading').html(loadError({ detail: error.message }));
      return;
    }
    if (this._destroyed) {
      return;
    }
    const slide = slides.find((entry) => entry._id === this.itemId);
    if (!slide || !slide.segmentImage) {
      this.messages.add('This slide has no segments yet: make segments on the project page before painting.',
        'warning');
      this.modes.disable();
      this.controls.disable();
      this._setReadOnly();
      this._whenIdle();
      return;
    }
    try {
      this.overlay = await new SegmentOverlay(this.viewer, this.base, this.itemId, slide.segmentImage).load();
    } catch (error) {
      this.messages.failed('Could not load the segments of this slide', error);
      this._whenIdle();
      return;
    }
    if (this._destroyed) {
      return;
    }
    this.controls.attach(this.overlay, slide.segmentImage, this.categories);
    this._labelsShown();
    if (this.segment !== null) {
      await this._showSegment();
    }
    this._whenIdle();
  },

  /** Open the slide at the segment of the page's address, outlined (a card's "Show on slide"). */
  async _showSegment() {
    let place;
    try {
      place = await getJson(`${this.base}/slide/${this.itemId}/segment/${this.segment}`);
    } catch (error) {
      this.messages.failed(`Could not show segment ${this.segment}`, error);
      this.segment = null;
      return;
    }
    if (this._destroyed || !this.viewer) {
      return;
    }
    this.viewer.showRegion(place.region, SEGMENT_CONTEXT, this.magnification);
    this.viewer.outline(place.outline);
    this.$('.hl-bulk').attr('data-segment', String(this.segment));
  },

  _back() {
    if (window.history.length > 1) {
      window.history.back();
    } else {
      girder.router.navigate(`${projectRoute(this.folderId)}/${this.from}`, { trigger: true });
    }
  },

  _setReadOnly() {
    this.brush.readOnly = true;
    this._setMode('pan');
  },

  /** The slide's map with the brush over it, the overview map and the legend in the corners of the stage. */
  async _createMap(tiles) {
    const stage = this.$('.hl-bulk-stage').removeClass('hl-loading');
    this.viewer = new SlideViewer(this.$('.hl-bulk-map')[0], this.itemId, tiles);
    this.map = this.viewer.map;
    this.brush.attach(this.map);
    this.overview = new OverviewMap(stage[0], this.viewer, tiles);
    stage.append(this.legend.el);
    stage.addClass('hl-map-ready');
    this._resize();
  },

  /** Mark the page once the map has drawn what it asked for (tests and screenshots wait for this). */
  _whenIdle() {
    this.viewer.onIdle(() => {
      if (!this._destroyed) {
        this.$('.hl-bulk').addClass('hl-map-idle');
      }
    });
  },

  /** Fit the map to its node after the page's layout changed (the brush follows the map's size). */
  _resize() {
    if (this.viewer) {
      this.viewer.resize();
    }
  },

  async _refreshLabels() {
    if (!this.overlay) {
      return;
    }
    try {
      await this.overlay.reload('labels');
    } catch (error) {
      this.messages.failed('Could not load the labels of this slide', error);
      return;
    }
    this._labelsShown();
  },

  /**
   * A training event of the project, from anyone (`onTraining`): said in the toolbar, and once a round is done the
   * model's overlays show it (the slide's entry says which it has now).
   */
  async _trainingEvent(data) {
    this._status(trainingText(data));
    if (data.state !== 'done' || !this.overlay) {
      return;
    }
    try {
      const slides = await getJson(`${this.base}/slides`);
      const slide = slides.find((entry) => entry._id === this.itemId);
      if (slide && slide.segmentImage && !this._destroyed) {
        await this.controls.modelChanged(slide.segmentImage);
        this.$('.hl-bulk').attr('data-round', String(data.round.number));
      }
    } catch (error) {
      this.messages.failed('Could not read the slide after the new round', error);
    }
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

  // ---- categories, modes and keys ----------------------------------------------------------------------------

  _setCategory(index) {
    if (index < 0 || index >= this.categories.length) {
      return;
    }
    this.active = index;
    const category = this.categories[index];
    this.picker.setActive(index);
    this.brush.color = category.color || '#999';
    this.$('.hl-bulk').attr('data-category', category.name);
  },

  _setMode(mode) {
    this.mode = mode;
    this.modes.show(mode);
    // in Pan mode geojs gets the mouse itself; otherwise the brush's canvas takes it
    this.brush.$el.toggleClass('hl-passive', mode === 'pan');
    this.brush.mode = mode;
    this.$('.hl-bulk').attr('data-mode', mode);
    this.brush.draw();
  },

  _key(event) {
    if (isTyping(event.target)) {
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

  // ---- painting ----------------------------------------------------------------------------------------------

  _setBusy(busy, stroke = null) {
    this.busy = busy;
    this.brush.busy = busy;
    this.brush.pendingStroke = stroke;
    this.$('.hl-bulk').toggleClass('hl-painting', busy);
  },

  async _paint(stroke) {
    const points = stroke.points.map((point) => {
      const gcs = this.map.displayToGcs(point);
      return [Math.round(gcs.x * 100) / 100, Math.round(gcs.y * 100) / 100];
    });
    // the brush radius in base pixels at the current zoom
    const radius = this.brush.brushSize * this.map.unitsPerPixel(this.map.zoom());
    const body = { item: this.itemId, points, radius: Math.max(1, radius) };
    const category = this.categories[this.active];
    if (stroke.erase) {
      body.erase = true;
    } else if (category) {
      body.category = category.name;
    } else {
      this.messages.add('Choose a category before painting.', 'warning');
      this.brush.draw();
      return;
    }
    this._setBusy(true, stroke);
    this._status(stroke.erase ? 'Erasing…' : 'Painting…');
    try {
      const { data } = await request('POST', `${this.base}/labels/paint`, { json: body });
      if (this._destroyed) {
        return;
      }
      if (data.batch) {
        this.batches.push(data.batch);
      }
      const waiting = data.training && data.training.status === 'waiting' ? ` ${data.training.message}` : '';
      const count = (data.segments || []).length;
      this.$('.hl-bulk').attr('data-last-segments', (data.segments || []).join(','));
      this._status(stroke.erase
        ? `Erased the labels of ${count} segment${count === 1 ? '' : 's'}.`
        : `Labeled ${count} segment${count === 1 ? '' : 's'} as ${category.name}.${waiting}`);
      this.$('.hl-paint-count').text(String(count));
      if (!stroke.erase && this.overlay) {
        const value = this.active + 1;
        this.overlay.setLabels(new Map((data.segments || []).map((segment) => [segment, value])));
        this._labelsShown();
      }
    } catch (error) {
      this._status('');
      this.messages.failed(stroke.erase ? 'Could not erase' : `Could not paint "${category.name}"`, error);
    } finally {
      this._setBusy(false);
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
    this._setBusy(true);
    try {
      const { data } = await request('POST', `${this.base}/labels/undo`, { params: { batch } });
      this._status(`Undid ${data.reverted} label change${data.reverted === 1 ? '' : 's'}.`);
    } catch (error) {
      this.batches.push(batch);
      this.messages.failed('Could not undo the last stroke', error);
    } finally {
      this._setBusy(false);
      this.$('.hl-undo').prop('disabled', !this.batches.length);
    }
    await this._refreshLabels();
  },
});

export default BulkView;
