// The whole slide in a small map in a corner of a viewer, with the part the viewer shows drawn as a rectangle; a click
// (or a drag) in it centres the viewer there. Its node holds `data-rect`, the rectangle in base pixels (left, top,
// right, bottom), for tests and screenshots.
import geo from 'geojs/geo.lean.min.js';

import { apiUrl } from '../../api.js';
import { OUTLINE_STYLES } from './SlideViewer.js';

export default class OverviewMap {
  /** Add the overview of `viewer`'s slide (`tiles`: its large_image tile metadata) to `container`. */
  constructor(container, viewer, tiles) {
    this.viewer = viewer;
    this.el = document.createElement('div');
    this.el.className = 'hl-overview';
    this.el.title = 'The whole slide: the rectangle is the part shown; click to go there';
    this.el.setAttribute('role', 'img');
    this.el.setAttribute('aria-label', 'Overview of the whole slide with the part shown outlined');
    const mapNode = document.createElement('div');
    mapNode.className = 'hl-overview-map';
    this.el.appendChild(mapNode);
    container.appendChild(this.el);

    const { sizeX, sizeY, tileWidth, tileHeight } = tiles;
    const params = geo.util.pixelCoordinateParams(mapNode, sizeX, sizeY, tileWidth, tileHeight);
    params.map.interactor = geo.mapInteractor({ actions: [] }); // it moves with the viewer, not by itself
    params.map.max = params.map.min + 8;
    this.map = geo.map(params.map);
    params.layer.url = apiUrl(`item/${viewer.itemId}/tiles/zxy/{z}/{x}/{y}`);
    params.layer.crossDomain = 'use-credentials';
    this.map.createLayer('osm', params.layer);
    const fit = this.map.zoomAndCenterFromBounds({ left: 0, top: 0, right: sizeX, bottom: sizeY }, 0);
    this.map.zoom(fit.zoom);
    this.map.center(fit.center);
    const layer = this.map.createLayer('feature', { features: ['line'] });
    this.lines = OUTLINE_STYLES.map((style) => layer.createFeature('line')
      .position((point) => ({ x: point[0], y: point[1] })).style({ ...style, closed: true }));
    this.layer = layer;

    this._follow = () => this.update();
    viewer.map.geoOn(geo.event.pan, this._follow);
    viewer.map.geoOn(geo.event.zoom, this._follow);
    this._onPointer = (event) => this._goTo(event);
    this.el.addEventListener('mousedown', this._onPointer);
    this.el.addEventListener('mousemove', (event) => {
      if (event.buttons === 1) {
        this._goTo(event);
      }
    });
    this.update();
  }

  /** Draw the viewer's view as the rectangle. */
  update() {
    const { left, top, right, bottom } = this.viewer.map.bounds();
    const ring = [[left, top], [right, top], [right, bottom], [left, bottom]];
    this.lines.forEach((line) => line.data([ring]));
    this.layer.draw();
    this.el.dataset.rect = [left, top, right, bottom].map((v) => Math.round(v)).join(',');
  }

  /** Centre the viewer on the slide point under the pointer. */
  _goTo(event) {
    event.preventDefault();
    event.stopPropagation();
    const box = this.el.getBoundingClientRect();
    const point = this.map.displayToGcs({ x: event.clientX - box.left, y: event.clientY - box.top });
    this.viewer.map.center({ x: point.x, y: point.y });
  }

  remove() {
    this.viewer.map.geoOff(geo.event.pan, this._follow);
    this.viewer.map.geoOff(geo.event.zoom, this._follow);
    this.map.exit();
    this.el.remove();
  }
}
