// What the colours over the slide mean, in a corner of the painting view: one row for each overlay shown (labels,
// the model's predictions, its certainty, the embedding map, segment borders, the outlined segment), in the colours
// and opacity the overlay draws them with. Redrawn on each change of what is shown.
import template from './overlayLegend.pug';
import { LiveView } from '../common.js';
import { certaintyGradient, parseColor, PREDICTION_ALPHA } from '../slide/SegmentOverlay.js';

/** A category's colour as the overlay draws it, with `alpha`. */
function withAlpha(color, alpha) {
  const { r, g, b } = parseColor(color);
  return `rgba(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)}, ${alpha})`;
}

const OverlayLegend = LiveView.extend({
  className: 'hl-legend',

  attributes: { role: 'note', 'aria-label': 'What the colours over the slide mean' },

  /** Show the legend of `overlay` as styled now; `outlined` names the outlined segment (or null). */
  show(overlay, { fill, borders, showLabels }, outlined = null) {
    const categories = overlay.categories;
    const rows = [];
    if (showLabels) {
      rows.push({ kind: 'labels', title: 'Labels',
        entries: categories.map((c) => ({ name: c.name, color: withAlpha(c.color, Math.max(overlay.opacity, 0.25)) })) });
    }
    if (fill === 'predictions') {
      const alpha = Math.max(overlay.opacity * PREDICTION_ALPHA, 0.15);
      rows.push({ kind: 'predictions', title: 'Predicted (paler, unlabeled segments)',
        entries: categories.filter((c) => !c.excluded).map((c) => ({ name: c.name, color: withAlpha(c.color, alpha) })) });
    } else if (fill === 'certainty') {
      const floor = overlay.certaintyFloor;
      const low = floor < 255 ? Math.round(((floor - 1) / 254) * 100) : 100;
      rows.push({ kind: 'certainty', title: 'Model certainty (probability of its prediction)',
        gradient: certaintyGradient(), low: `${low} %`, high: '100 %' });
    } else if (fill === 'embedding') {
      rows.push({ kind: 'embedding', title: 'Embedding map',
        text: 'Alike colours: segments the network finds alike' });
    }
    if (borders) {
      rows.push({ kind: 'borders', title: 'Borders', entries: [{ name: 'segment borders', color: 'rgba(26, 26, 26, 0.65)' }] });
    }
    if (outlined !== null) {
      rows.push({ kind: 'outline', title: 'Outlined', entries: [{ name: `segment ${outlined}`, color: '#ffeb00' }] });
    }
    this.$el.html(template({ rows })).toggleClass('hidden', !rows.length);
    return this;
  },
});

export default OverlayLegend;
