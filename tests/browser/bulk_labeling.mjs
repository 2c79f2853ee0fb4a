// Drives Debian Chromium (npm playwright-core, through driver.mjs) through Histomics Label's bulk labeling view for
// test_bulk_labeling.py: logs in, opens the paint view of one slide, waits for geojs to draw the slide (WebGL through
// SwiftShader), samples the drawn map, chooses a category by key, paints one stroke across the middle of the slide,
// measures the segments' colour drawn under it (a pixelmap layer), undoes the stroke, paints and erases; then paints
// a second category, trains a round and switches the model's overlays (predictions, certainty, embedding map) and
// segment borders on, comparing what the map shows; last, a user with read access only looks at the slide. Prints
// one JSON object of observations on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, reader: {login, password}, projectId, itemId, key, otherKey, artifacts, chromium}
import { drag, greenness, login, openPage, pngChangedShare, pngStats, readInput, run, storedLabels } from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;
const MAP = '.hl-bulk-map';

const result = { consoleErrors: {}, timings: {} };
let phase = 'start';
let page;
let started; // once Chromium has started
const mark = (name) => { result.timings[name] = (Date.now() - started) / 1000; };

/** Distinct colours (quantized to 5 bits a channel) and the share of near-white pixels in a PNG (every 7th pixel). */
async function colours(png) {
  const { distinct, whiteShare, width, height } = await pngStats(page, png, { stride: 7 });
  return { distinct, whiteShare, width, height };
}

/** The share of sampled map pixels (every 5th) that differ (by more than 24 in a channel) between two screenshots. */
function changedShare(before, after) {
  return pngChangedShare(page, before, after, { stride: 5, threshold: 24 });
}

/** A screenshot of the map once the pointer is off it (no brush cursor) and geojs has drawn everything. */
async function mapShot() {
  await page.mouse.move(2, 2);
  await page.waitForTimeout(700);
  return page.locator(MAP).screenshot();
}

/** Switch an overlay button or checkbox and wait until the page shows it applied. */
async function toggle(selector, attribute, value) {
  await page.locator(selector).click();
  await page.waitForFunction(([name, expected]) => document.querySelector('.hl-bulk').getAttribute(name) === expected,
    [attribute, value]);
}

const labeled = () => page.locator('.hl-bulk').getAttribute('data-labeled').then(Number);
const waitLabeled = (count) => page.waitForFunction((expected) => !document.querySelector('.hl-bulk.hl-painting') &&
  document.querySelector('.hl-bulk').getAttribute('data-labeled') === String(expected), count);

/** One brush stroke, left to right, at height y (page pixels); answers the paint request's JSON. */
async function stroke(x0, x1, y) {
  const answer = page.waitForResponse((response) => response.url().includes('/labels/paint') &&
    response.request().method() === 'POST');
  await drag(page, x0, x1, y);
  const response = await answer;
  await page.waitForFunction(() => !document.querySelector('.hl-bulk.hl-painting'));
  return { request: response.request().postDataJSON(), answer: await response.json() };
}

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: () => ({ path: `${input.artifacts}/bulk_labeling_failure.png` }),
}, async (browser) => {
  started = Date.now();
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await openPage(context, TIMEOUT, result, () => phase);

  phase = 'login';
  await login(page, input.url, input.login, input.password);
  mark('login');

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/paint/${input.itemId}`);
  await page.locator('.hl-bulk.hl-map-idle').waitFor();
  await page.waitForTimeout(500);
  const mapBox = await page.locator(MAP).boundingBox();
  result.open = {
    hash: await page.evaluate(() => window.location.hash),
    title: (await page.locator('.hl-bulk-title').innerText()).trim(),
    categories: await page.locator('.hl-bulk-category .hl-category-name').allInnerTexts(),
    mode: await page.locator('.hl-bulk').getAttribute('data-mode'),
    mapCanvases: await page.locator('.hl-bulk-map canvas').count(),
    map: await colours(await page.locator(MAP).screenshot()),
    labeled: await labeled(),
    fills: await page.locator('.hl-fill').evaluateAll((buttons) => buttons.map((b) => ({
      fill: b.dataset.fill, disabled: b.disabled, title: b.title }))),
    bordersDisabled: await page.locator('.hl-show-borders').isDisabled(),
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
  await mapShot();
  const greenBefore = await greenness(page, MAP, y, x0, x1);
  const answer = page.waitForResponse((response) => response.url().includes('/labels/paint') &&
    response.request().method() === 'POST');
  await drag(page, x0, x1, y);
  const response = await answer;
  result.request = response.request().postDataJSON();
  result.paint = await response.json();
  const segments = result.paint.segments || [];
  await waitLabeled(segments.length);
  await mapShot();
  result.painted = {
    count: (await page.locator('.hl-paint-count').innerText()).trim(),
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    labeled: await labeled(),
    greenBefore,
    greenAfter: await greenness(page, MAP, y, x0, x1),
    messages: await page.locator('.hl-message-text').allInnerTexts(),
  };
  result.painted.stored = await storedLabels(page, input.projectId, { item: input.itemId });
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_painted.png` });
  mark('paint');

  phase = 'undo';
  await page.locator('.hl-undo').click();
  await page.waitForFunction(() => /Undid/.test(document.querySelector('.hl-paint-status').textContent) &&
    !document.querySelector('.hl-bulk.hl-painting'));
  await waitLabeled(0);
  await mapShot();
  result.undo = {
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    labeled: await labeled(),
    green: await greenness(page, MAP, y, x0, x1),
    undoDisabled: await page.locator('.hl-undo').isDisabled(),
    stored: await storedLabels(page, input.projectId, { item: input.itemId }),
  };
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_undone.png` });
  mark('undo');

  phase = 'erase';
  const again = await stroke(x0, x1, y);
  await waitLabeled(again.answer.segments.length);
  await page.locator('.hl-mode[data-mode="eraser"]').click();
  const erased = await stroke(x0, x1, y);
  await waitLabeled(0);
  result.erase = {
    repainted: again.answer,
    request: erased.request,
    answer: erased.answer,
    mode: await page.locator('.hl-bulk').getAttribute('data-mode'),
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    stored: await storedLabels(page, input.projectId, { item: input.itemId }),
    messages: await page.locator('.hl-message-text').allInnerTexts(),
  };
  mark('erase');

  phase = 'overlays';
  // label both trainable categories, train a round (the open page learns of it), and open the view again
  await page.locator('.hl-mode[data-mode="brush"]').click();
  await page.keyboard.press(input.key);
  const painted = await stroke(x0, x1, y);
  await page.keyboard.press(input.otherKey);
  const other = await stroke(x0, x1, overlayBox.y + overlayBox.height * 0.3);
  result.overlays = { painted: [painted.answer.segments.length, other.answer.segments.length] };
  result.overlays.trained = await page.evaluate(async (projectId) => {
    const response = await fetch(`api/v1/histomics_label/project/${projectId}/train?wait=true`,
      { method: 'POST', headers: { 'Girder-Token': girder.auth.getCurrentToken() } });
    return { status: response.status, round: response.ok ? (await response.json()).round.number : null };
  }, input.projectId);
  // Girder's notification stream tells the open page: the toolbar says so and the model's overlays are offered
  await page.waitForFunction((number) => document.querySelector('.hl-bulk').dataset.round === String(number),
    result.overlays.trained.round, { timeout: 15000 });
  result.overlays.live = {
    status: (await page.locator('.hl-paint-status').innerText()).trim(),
    predictionsDisabled: await page.locator('.hl-fill[data-fill="predictions"]').evaluate((b) => b.disabled),
  };
  await page.reload();
  await page.locator('.hl-bulk.hl-map-idle').waitFor();
  const plain = await mapShot();
  await toggle('.hl-show-labels', 'data-labels', 'false');
  const unlabeled = await mapShot();
  await toggle('.hl-fill[data-fill="predictions"]', 'data-fill', 'predictions');
  const predictions = await mapShot();
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_predictions.png` });
  await toggle('.hl-fill[data-fill="certainty"]', 'data-fill', 'certainty');
  const certainty = await mapShot();
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_certainty.png` });
  await toggle('.hl-fill[data-fill="embedding"]', 'data-fill', 'embedding');
  const embedding = await mapShot();
  await toggle('.hl-show-borders', 'data-borders', 'true');
  const borders = await mapShot();
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_embedding_borders.png` });
  await toggle('.hl-fill[data-fill="embedding"]', 'data-fill', '');
  const bordersOnly = await mapShot();
  // the shortcuts go on working with the Borders checkbox or the opacity slider just clicked (and focused)
  const active = () => page.locator('.hl-bulk-category.active .hl-category-name').innerText().then((t) => t.trim());
  await page.locator('.hl-show-borders').click();
  const focusedBox = await page.evaluate(() => document.activeElement.className);
  await page.keyboard.press(input.key);
  const afterBox = await active();
  await page.locator('.hl-opacity').click();
  const focusedSlider = await page.evaluate(() => document.activeElement.className);
  await page.keyboard.press(input.otherKey);
  result.overlays.shortcuts = { focusedBox, afterBox, focusedSlider, afterSlider: await active() };
  Object.assign(result.overlays, {
    fillsDisabled: await page.locator('.hl-fill').evaluateAll((buttons) => buttons.map((b) => b.disabled)),
    labelsOff: await changedShare(plain, unlabeled),
    predictions: await changedShare(unlabeled, predictions),
    certainty: await changedShare(predictions, certainty),
    embedding: await changedShare(certainty, embedding),
    borders: await changedShare(embedding, borders),
    bordersOnly: await changedShare(unlabeled, bordersOnly),
    messages: await page.locator('.hl-message-text').allInnerTexts(),
  });
  mark('overlays');

  phase = 'reader';
  // a user with read access only: sees the slide, its labels and the model's overlays, but cannot paint
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await openPage(readerContext, TIMEOUT, result, () => phase);
  let paintRequests = 0;
  page.on('request', (sent) => {
    paintRequests += sent.url().includes('/labels/paint') ? 1 : 0;
  });
  await login(page, input.url, input.reader.login, input.reader.password);
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/paint/${input.itemId}`);
  await page.locator('.hl-bulk.hl-map-idle').waitFor();
  const readerLabeled = await labeled();
  const readerBox = await page.locator('.hl-bulk-overlay').boundingBox();
  await drag(page, readerBox.x + readerBox.width * 0.3, readerBox.x + readerBox.width * 0.6,
    readerBox.y + readerBox.height * 0.6);
  await toggle('.hl-fill[data-fill="predictions"]', 'data-fill', 'predictions');
  await page.waitForTimeout(500);
  result.reader = {
    messages: await page.locator('.hl-message-text').allInnerTexts(),
    mode: await page.locator('.hl-bulk').getAttribute('data-mode'),
    modesDisabled: await page.locator('.hl-mode').evaluateAll((buttons) => buttons.map((b) => b.disabled)),
    labeled: readerLabeled,
    labeledAfterDrag: await labeled(),
    paintRequests,
    map: await colours(await page.locator(MAP).screenshot()),
  };
  await page.screenshot({ path: `${input.artifacts}/bulk_labeling_reader.png` });
  mark('reader');
});
