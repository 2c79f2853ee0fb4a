// The brush over the map: a canvas that takes the pointer (except in Pan mode, when geojs gets it) and draws the
// brush cursor and the stroke being painted (the segments themselves are the overlay's pixelmap layer). A stroke
// (down, drag, up with the left button) triggers `stroke` with `{points, erase}` in canvas pixels; the right button,
// Pan mode and a read-only page pan the map instead, and the wheel zooms about the pointer. The page sets `mode`,
// `color` (the active category's), `brushSize` (radius, screen pixels), `readOnly`, `busy` (no new stroke while a
// request runs) and `pendingStroke` (the stroke being saved, still drawn).
const { View } = girder.views;

const BrushLayer = View.extend({
  initialize({ brushSize }) {
    this.brushSize = brushSize;
    this.mode = 'brush';
    this.color = '#fff';
    this.readOnly = false;
    this.busy = false;
    this.map = null;
    this.stroke = null;
    this.pendingStroke = null;
    this.panning = null;
    this.cursor = null;
    const canvas = this.el;
    canvas.addEventListener('pointerdown', (event) => this._down(event));
    canvas.addEventListener('pointermove', (event) => this._move(event));
    canvas.addEventListener('pointerup', (event) => this._up(event));
    canvas.addEventListener('pointercancel', () => this._cancel());
    canvas.addEventListener('pointerleave', () => {
      this.cursor = null;
      this.draw();
    });
    canvas.addEventListener('wheel', (event) => this._wheel(event), { passive: false });
    canvas.addEventListener('contextmenu', (event) => event.preventDefault());
  },

  /** Work over `map` (a geojs map), sized as it is and redrawn as it pans, zooms and resizes. */
  attach(map) {
    this.map = map;
    this._redraw = () => this.draw();
    this._resized = () => this._fit();
    map.geoOn('geo_pan', this._redraw);
    map.geoOn('geo_zoom', this._redraw);
    map.geoOn('geo_resize', this._resized);
    this._fit();
  },

  /** Stop following the map (which another view may keep drawing). */
  detach() {
    if (this.map) {
      this.map.geoOff('geo_pan', this._redraw);
      this.map.geoOff('geo_zoom', this._redraw);
      this.map.geoOff('geo_resize', this._resized);
      this.map = null;
    }
  },

  /** Size the canvas as the map, and redraw. */
  _fit() {
    const { width, height } = this.map.size();
    this.el.width = width;
    this.el.height = height;
    this.draw();
  },

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
    this.draw();
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
    this.draw();
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
    this.trigger('stroke', stroke);
  },

  _cancel() {
    this.panning = null;
    this.stroke = null;
    this.draw();
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

  /** Draw the brush cursor and the stroke being painted or saved. */
  draw() {
    const canvas = this.el;
    if (!this.map) {
      return;
    }
    const ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const stroke = this.stroke || this.pendingStroke;
    const color = this.mode === 'eraser' ? '#ffffff' : this.color;
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

export default BrushLayer;
