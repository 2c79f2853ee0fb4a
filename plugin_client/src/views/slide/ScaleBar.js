// A scale bar and the magnification shown, in a corner of a slide viewer: the bar is a round length (1, 2 or 5 times
// a power of ten, in µm or mm) close to SCALE_WIDTH screen pixels at the zoom shown, from the slide's pixel size
// (large_image's `mm_x`); the magnification is the slide's scanned one (`magnification`) times screen pixels per
// base pixel. A slide that records neither gets neither, and says so on hover.

/** About how wide the bar is drawn (screen pixels). */
const SCALE_WIDTH = 110;

/** The round length (µm) nearest below `micrometres`: 1, 2 or 5 times a power of ten. */
function roundLength(micrometres) {
  const power = 10 ** Math.floor(Math.log10(micrometres));
  return [5, 2, 1].map((step) => step * power).find((length) => length <= micrometres) || power;
}

function lengthText(micrometres) {
  return micrometres >= 1000 ? `${micrometres / 1000} mm` : `${micrometres} µm`;
}

/** "20×", "2.5×", "0.31×": what a pathologist reads off a microscope. */
function magnificationText(magnification) {
  const digits = magnification >= 10 ? 0 : magnification >= 1 ? 1 : 2;
  return `${Number(magnification.toFixed(digits))}×`;
}

export default class ScaleBar {
  /** Add the bar to a viewer's `node`; `tiles` is the slide's large_image tile metadata. */
  constructor(node, tiles) {
    this.micronsPerPixel = tiles.mm_x ? tiles.mm_x * 1000 : null;
    this.magnification = tiles.magnification || null;
    this.el = document.createElement('div');
    this.el.className = 'hl-scale';
    this.el.innerHTML = '<span class="hl-scale-magnification"></span><span class="hl-scale-length"></span>'
      + '<span class="hl-scale-bar"></span>';
    if (!this.micronsPerPixel || !this.magnification) {
      this.el.title = 'The slide does not record its pixel size or magnification; what it records is shown.';
    }
    node.appendChild(this.el);
  }

  /** Redraw for `scale` screen pixels per base pixel; answers the magnification text ('' when unknown). */
  update(scale) {
    const magnification = this.magnification ? magnificationText(this.magnification * scale) : '';
    this.el.querySelector('.hl-scale-magnification').textContent = magnification;
    const bar = this.el.querySelector('.hl-scale-bar');
    const label = this.el.querySelector('.hl-scale-length');
    if (this.micronsPerPixel) {
      const perScreenPixel = this.micronsPerPixel / scale;
      const length = roundLength(perScreenPixel * SCALE_WIDTH);
      bar.style.width = `${length / perScreenPixel}px`;
      bar.dataset.micrometres = String(length);
      label.textContent = lengthText(length);
    } else {
      bar.style.display = 'none';
    }
    return magnification;
  }

  remove() {
    this.el.remove();
  }
}
