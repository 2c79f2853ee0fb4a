// Which category colours look alike, to normal eyes and to colour-blind ones: each colour is seen as a protanope,
// deuteranope and tritanope would see it (Machado, Oliveira and Fernandes 2009, full severity, on linear RGB) and
// two colours "look alike" when their CIELAB distance (ΔE*76) is under LOOK_ALIKE. The red and green of a classic
// palette are 8.9 apart to deuteranopes; Okabe and Ito's colours, the default palette, stay 16 or more apart.
import { toHex } from '../common.js';

/** ΔE*76 under which two colours count as looking alike. */
const LOOK_ALIKE = 12;

const VISIONS = [
  { name: 'normal vision', matrix: null },
  { name: 'red-green colour blindness (protanopia)',
    matrix: [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]] },
  { name: 'red-green colour blindness (deuteranopia)',
    matrix: [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]] },
  { name: 'blue-yellow colour blindness (tritanopia)',
    matrix: [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]] },
];

function linear(hex) {
  return [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
}

function seen(rgb, matrix) {
  if (!matrix) {
    return rgb;
  }
  return matrix.map((row) => Math.min(1, Math.max(0, row[0] * rgb[0] + row[1] * rgb[1] + row[2] * rgb[2])));
}

function lab([r, g, b]) {
  const xyz = [
    (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
    0.2126 * r + 0.7152 * g + 0.0722 * b,
    (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
  ];
  const [fx, fy, fz] = xyz.map((v) => (v > 0.008856 ? Math.cbrt(v) : 7.787 * v + 16 / 116));
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/**
 * The pairs of categories whose colours look alike, each `{first, second, vision}` naming the first way of seeing
 * (normal first) under which they do.
 */
export function lookAlike(categories) {
  const colours = categories.map((category) => linear(toHex(category.color)));
  const pairs = [];
  for (let i = 0; i < categories.length; i += 1) {
    for (let j = i + 1; j < categories.length; j += 1) {
      const vision = VISIONS.find(({ matrix }) => {
        const [a, b] = [lab(seen(colours[i], matrix)), lab(seen(colours[j], matrix))];
        return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]) < LOOK_ALIKE;
      });
      if (vision) {
        pairs.push({ first: categories[i].name, second: categories[j].name, vision: vision.name });
      }
    }
  }
  return pairs;
}
