// Drives Debian Chromium (npm playwright-core) through Histomics Label's bulk labeling view for
// test_bulk_labeling.py: logs in, opens the paint view of one slide, waits for geojs to draw the slide (WebGL through
// SwiftShader), samples the drawn map, chooses a category by key, paints one stroke across the middle of the slide,
// looks at the labels overlay, and undoes the stroke. Prints one JSON object of observations on stdout; the pytest
// test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, itemId, key, artifacts, chromium}
import { chromium } from 'playwright-core';

const input = JSON.parse(process.env.HL_BROWSER_INPUT);
const TIMEOUT = 60000;

const browser = await chromium.launch({
  executablePath: input.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
});
const result = { consoleErrors: {}, timings: {} };
let phase = 'start';
let page;
const started = Date.now();
const mark = (name) => { result.timings[name] = (Date.now() - started) / 1000; };

/** Distinct colours (quantized to 5 bits a channel) and the share of near-white pixels in a PNG, read in the page. */
async function colours(png) {
  return page.evaluate(async (data) => {
    const image = new Image();
    image.src = `data:image/png;base64,${data}`;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(image, 0, 0);
    const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const seen = new Set();
    let white = 0;
    let count = 0;
    for (let i = 0; i < pixels.length; i += 4 * 7) {
      const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
      seen.add(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3));
      white += r > 245 && g > 245 && b > 245 ? 1 : 0;
      count += 1;
    }
    return { distinct: seen.size, whiteShare: white / count, width: canvas.width, height: canvas.height };
  }, png.toString('base64'));
}

/** The overlay canvas's pixels along a horizontal line (away from the brush cursor at the stroke's end). */
function overlayLine(y, x0, x1) {
  return page.locator('.hl-bulk-overlay').evaluate((canvas, [yy, a, b]) => {
    const ctx = canvas.getContext('2d');
    const row = ctx.getImageData(Math.round(a), Math.round(yy), Math.round(b - a), 1).data;
    const painted = [];
    for (let i = 0; i < row.length; i += 4) {
      if (row[i + 3] > 0) {
        painted.push([row[i], row[i + 1], row[i + 2], row[i + 3]]);
      }
    }
    return { pixels: row.length / 4, painted: painted.length, sample: painted.slice(0, 3) };
  }, [y, x0, x1]);
}

/** The server's labels of the slide (GET .../labels?item=...&limit=0), asked with the page's login token. */
function storedLabels() {
  return page.evaluate(async ([projectId, itemId]) => {
    const params = new URLSearchParams({ item: itemId, limit: 0 });
    const response = await fetch(`api/v1/histomics_label/project/${projectId}/labels?${params}`,
      { headers: { 'Girder-Token': girder.auth.getCurrentToken() } });
    const labels = await response.json();
    return labels.map((label) => ({ segment: label.segment, category: label.category, view: label.view }));
  }, [input.projectId, input.itemId]);
}

/** One brush stroke, left to right, at height y (page pixels); answers the paint request's JSON. */
async function stroke(x0, x1, y) {
  const answer = page.waitForResponse((response) => response.url().includes('/labels/paint') &&
    response.request().method() === 'POST');
  await drag(x0, x1, y);
  const response = await answer;
  await page.waitForFunction(() => !document.querySelector('.hl-bulk.hl-painting'));
  return { request: response.request().postDataJSON(), answer: await response.json() };
}

async function drag(x0, x1, y) {
  await page.mouse.move(x0, y);
  await page.mouse.down();
  await page.mouse.move(x1, y, { steps: 20 });
  await page.mouse.up();
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errorsOf = (name) => (result.consoleErrors[name] ||= []);
  page.on('console', (message) => {
    if (message.type() === 'error') {
      errorsOf(phase).push(message.text());
    }
  });
  page.on('pageerror', (error) => errorsOf(phase).push(`uncaught: ${error.message}`));

  phase = 'login';
  await page.goto(`${input.url}/`);
  await page.locator('.g-login').click();
  await page.locator('#g-login').fill(input.login);
  await page.locator('#g-password').fill(input.password);
  await page.locator('#g-login-button').click();
  await page.locator('.g-user-dropdown-link').waitFor();
  mark('login');

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/paint/${input.itemId}`);
  await page.locator('.hl-bulk.hl-map-idle').waitFor();
  await page.waitForTimeout(500);
  const mapBox = await page.locator('.hl-bulk-map').boundingBox();
  result.open = {
    hash: await page.evaluate(() => window.location.hash),
    title: (await page.locator('.hl-bulk-title').innerText()).trim(),
    categories: await page.locator('.hl-bulk-category .hl-category-name').allInnerTexts(),
    mode: await page.locator('.hl-bulk').getAttribute('data-mode'),
    mapCanvases: await page.locator('.hl-bulk-map canvas').count(),
    map: await colours(await page.locator('.hl-bulk-map').screenshot()),
    drawn: Number(await page.locator('.hl-bulk-overlay').getAttribute('data-drawn')),
    box: mapBox,
  };
  mark('open');

  phase = 'paint';
  await page.keyboard.press(input.key);
  result.chosen = await page.locator('.hl-bulk').getAttribute('data-category');
  const overlayBox = await page.locator('.hl-bulk-overlay').boundingBox();
  const y = overlayBox.y + overlayBox.height / 2;
  const x0 = overlayBox.x + overlayBox.width * 0.35;
  const x1 = overlayBox.x + overlayBox.width * 0.65;
  const answer = page.waitForResponse((response) => response.url().includes('/labels/paint') &&
    response.request().method() === 'POST');
  await drag(x0, x1, y);
  const response = await answer;
  result.request = response.request().postDataJSON();
  result.paint = await response.json();
  const segments = result.paint.segments || [];
  await page.waitForFunction((expected) => {
    const overlay = document.querySelector('.hl-bulk-overlay');
    const drawn = new Set((overlay.dataset.drawnSegments || '').split(',').filter(Boolean).map(Number));
    return !document.querySelector('.hl-bulk.hl-painting') && expected.every((segment) => drawn.has(segment));
  }, segments);
  // the stroke's middle (the brush cursor circle is at its end)
  const local = { y: y - overlayBox.y, x0: x0 - overlayBox.x + 5, x1: x0 - overlayBox.x + (x1 - x0) * 0.7 };
  result.painted = {
    count: (await page.locator('.hl-paint-count').innerText()).trim(),
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    drawn: Number(await page.locator('.hl-bulk-overlay').getAttribute('data-drawn')),
    drawnSegments: (await page.locator('.hl-bulk-overlay').getAttribute('data-drawn-segments'))
      .split(',').filter(Boolean).map(Number),
    line: await overlayLine(local.y, local.x0, local.x1),
    messages: await page.locator('.hl-message-text').allInnerTexts(),
  };
  result.painted.stored = await storedLabels();
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_painted.png` });
  mark('paint');

  phase = 'undo';
  await page.locator('.hl-undo').click();
  await page.waitForFunction(() => /Undid/.test(document.querySelector('.hl-paint-status').textContent) &&
    !document.querySelector('.hl-bulk.hl-painting'));
  await page.waitForFunction(() => document.querySelector('.hl-bulk-overlay').dataset.drawn === '0');
  result.undo = {
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    drawn: Number(await page.locator('.hl-bulk-overlay').getAttribute('data-drawn')),
    line: await overlayLine(local.y, local.x0, local.x1),
    undoDisabled: await page.locator('.hl-undo').isDisabled(),
    stored: await storedLabels(),
  };
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_undone.png` });
  mark('undo');

  phase = 'erase';
  const again = await stroke(x0, x1, y);
  await page.waitForFunction((count) => document.querySelector('.hl-bulk-overlay').dataset.drawn === String(count),
    again.answer.segments.length);
  await page.locator('.hl-mode[data-mode="eraser"]').click();
  const erased = await stroke(x0, x1, y);
  await page.waitForFunction(() => document.querySelector('.hl-bulk-overlay').dataset.drawn === '0');
  result.erase = {
    repainted: again.answer,
    request: erased.request,
    answer: erased.answer,
    mode: await page.locator('.hl-bulk').getAttribute('data-mode'),
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    stored: await storedLabels(),
    messages: await page.locator('.hl-message-text').allInnerTexts(),
  };
  mark('erase');
} catch (error) {
  result.failure = `${phase}: ${error.message}`;
  if (page) {
    await page.screenshot({ path: `${input.artifacts}/bulk_labeling_failure.png` }).catch(() => {});
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
