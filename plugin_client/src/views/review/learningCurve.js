// The learning curve as a small inline SVG line chart: each finished round's held-out balanced accuracy (y, 0 to 1)
// against the labels it used (x). Rounds without a held-out accuracy are left out of the line and counted below it.

const WIDTH = 460;
const HEIGHT = 240;
const MARGIN = { left: 56, right: 16, top: 14, bottom: 44 };

function niceTicks(min, max, count = 5) {
  if (min === max) {
    return [min];
  }
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) {
    ticks.push(Math.round(v * 1e6) / 1e6);
  }
  return ticks;
}

/** The chart's markup for GET .../rounds' `rounds` (oldest first). */
export function learningCurveSvg(rounds) {
  const points = rounds.filter((r) => typeof r.heldOutBalancedAccuracy === 'number' &&
    typeof r.labelsUsed === 'number');
  if (!points.length) {
    return '<p class="hl-empty hl-review-no-curve">No round with a held-out accuracy yet.</p>';
  }
  const xs = points.map((r) => r.labelsUsed);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  if (x0 === x1) {
    [x0, x1] = [Math.max(0, x0 - 1), x1 + 1];
  }
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const sx = (v) => MARGIN.left + ((v - x0) / (x1 - x0)) * plotW;
  const sy = (v) => MARGIN.top + (1 - v) * plotH;
  const bottom = MARGIN.top + plotH;
  const xTicks = niceTicks(x0, x1).map((v) => `<g class="hl-curve-tick">
      <line x1="${sx(v)}" x2="${sx(v)}" y1="${bottom}" y2="${bottom + 4}"></line>
      <text x="${sx(v)}" y="${bottom + 16}" text-anchor="middle">${v}</text></g>`).join('');
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((v) => `<g class="hl-curve-tick">
      <line x1="${MARGIN.left - 4}" x2="${MARGIN.left + plotW}" y1="${sy(v)}" y2="${sy(v)}"
        class="${v ? 'hl-curve-grid' : ''}"></line>
      <text x="${MARGIN.left - 7}" y="${sy(v) + 4}" text-anchor="end">${v.toFixed(2)}</text></g>`).join('');
  const path = points.map((r, i) => `${i ? 'L' : 'M'}${sx(r.labelsUsed).toFixed(1)},` +
    `${sy(r.heldOutBalancedAccuracy).toFixed(1)}`).join(' ');
  const dots = points.map((r) => `<circle class="hl-curve-point" r="4" cx="${sx(r.labelsUsed).toFixed(1)}"
      cy="${sy(r.heldOutBalancedAccuracy).toFixed(1)}" data-round="${r.number}" data-labels="${r.labelsUsed}"
      data-accuracy="${r.heldOutBalancedAccuracy}"><title>Round ${r.number}: ${r.labelsUsed} labels, balanced
      accuracy ${(r.heldOutBalancedAccuracy * 100).toFixed(1)} %</title></circle>`).join('');
  const skipped = rounds.length - points.length;
  return `<svg class="hl-review-curve-chart" role="img" width="${WIDTH}" height="${HEIGHT}"
      viewBox="0 0 ${WIDTH} ${HEIGHT}" aria-label="Held-out balanced accuracy against labels used, per round">
      <g class="hl-curve-axes">
        <line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${bottom}" y2="${bottom}"></line>
        <line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${bottom}"></line>
      </g>
      ${yTicks}${xTicks}
      <path class="hl-curve-line" d="${path}"></path>
      ${dots}
      <text class="hl-curve-axis-label hl-curve-x-label" x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 6}"
        text-anchor="middle">Labels used</text>
      <text class="hl-curve-axis-label hl-curve-y-label" text-anchor="middle"
        transform="translate(14 ${MARGIN.top + plotH / 2}) rotate(-90)">Held-out balanced accuracy</text>
    </svg>
    <p class="hl-muted hl-review-curve-note">${points.length} round${points.length === 1 ? '' : 's'}${skipped
    ? `; ${skipped} without a held-out accuracy left out` : ''}.</p>`;
}

