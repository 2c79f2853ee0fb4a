// Chromium side of bench_overlay.py: opens a slide's painting view, times how long the segment overlay takes to
// appear and to switch to predictions, then pans the map by dragging in Pan mode while counting animation frames.
// Then opens the guided view beside it and times `keypresses` category keys, each from the key to the next card's
// slide view drawn (its segment outlined, the map idle); last, trains a round through the REST API from the page and
// times, from the answer, how long each open view takes to name the new round (Girder's notification stream).
// With `bare`, the item has no segments: only the opening and the panning are measured (the slide alone, the bound).
// Input (HL_BENCH_INPUT, JSON): {url, login, password, projectId, itemId, chromium, nodeModules, seconds,
// keypresses, bare}.
// Prints one JSON object of figures.
import { createRequire } from 'node:module';

const input = JSON.parse(process.env.HL_BENCH_INPUT);
const require = createRequire(`${input.nodeModules}/`);
const { chromium } = require('playwright-core');

/** Pan the painting view back and forth by dragging for `seconds`, counting the page's animation frames. */
async function panFrames(page, seconds) {
  await page.waitForTimeout(1000);
  await page.evaluate(() => {
    window.hlFrames = [];
    window.hlStop = false;
    const tick = (time) => {
      window.hlFrames.push(time);
      if (!window.hlStop) {
        requestAnimationFrame(tick);
      }
    };
    requestAnimationFrame(tick);
  });
  const box = await page.locator('.hl-bulk-map').boundingBox();
  const y = box.y + box.height / 2;
  const end = Date.now() + seconds * 1000;
  let direction = 1;
  while (Date.now() < end) {
    const x0 = box.x + box.width * (direction > 0 ? 0.3 : 0.7);
    await page.mouse.move(x0, y);
    await page.mouse.down();
    await page.mouse.move(x0 + direction * box.width * 0.4, y + direction * 40, { steps: 25 });
    await page.mouse.up();
    direction = -direction;
  }
  const frames = await page.evaluate(() => {
    window.hlStop = true;
    return window.hlFrames;
  });
  const gaps = frames.slice(1).map((time, i) => time - frames[i]).sort((a, b) => a - b);
  const at = (q) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))];
  return {
    frames: gaps.length,
    fps: gaps.length / ((frames[frames.length - 1] - frames[0]) / 1000),
    frame_ms_median: at(0.5),
    frame_ms_p95: at(0.95),
  };
}

/**
 * The overlay's figures on a segmented slide: predictions switched on, panning with labels, predictions and
 * borders, the guided view's next card, and a round reaching both views.
 */
async function overlayFigures(page, result) {
  const started = Date.now();
  await page.locator('.hl-fill[data-fill="predictions"]').click();
  await page.waitForFunction(() => document.querySelector('.hl-bulk').getAttribute('data-fill') === 'predictions');
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  result.predictions_s = (Date.now() - started) / 1000;
  // of which the predictions' bytes, from the request to the last byte
  result.predictions_fetch_s = await page.evaluate(() => {
    const entry = performance.getEntriesByType('resource').filter((e) => e.name.includes('kind=predictions')).pop();
    return entry ? (entry.responseEnd - entry.startTime) / 1000 : null;
  });
  await page.locator('.hl-show-borders').check();
  await page.locator('.hl-mode[data-mode="pan"]').click();
  Object.assign(result, await panFrames(page, input.seconds));
  result.messages = await page.locator('.hl-message-text').allInnerTexts();

  // the guided view beside it: from a category key to the next card's slide view drawn with its outline
  const guided = await page.context().newPage();
  guided.setDefaultTimeout(300000);
  await guided.goto(`${input.url}/#histomics_label/project/${input.projectId}/label`);
  await guided.locator('.hl-card.hl-current').waitFor();
  const current = () => guided.locator('.hl-card.hl-current').getAttribute('data-segment');
  await guided.locator(`.hl-focus-map.hl-map-idle[data-segment="${await current()}"]`).waitFor();
  const keys = [];
  for (let i = 0; i < input.keypresses; i += 1) {
    // a labeler looks at a card for seconds: long enough for the view to fetch the tiles around the next card (it
    // names it in data-prefetched), which is waited for, up to 2 s
    await guided.locator('.hl-focus-map[data-prefetched]').waitFor({ timeout: 2000 }).catch(() => {});
    const before = await current();
    const pressed = Date.now();
    await guided.keyboard.press(i % 2 ? '2' : '1');
    const handle = await guided.waitForFunction((previous) => {
      const card = document.querySelector('.hl-card.hl-current');
      const next = card && card.dataset.segment;
      return next && next !== previous && document.querySelector(
        `.hl-focus-map.hl-map-idle[data-segment="${next}"]`) ? next : false;
    }, before, { polling: 'raf' });
    await handle.dispose();
    keys.push(Date.now() - pressed);
    await guided.waitForTimeout(200);
  }
  const sorted = [...keys].sort((a, b) => a - b);
  result.next_card_ms = keys;
  result.next_card_ms_median = sorted[Math.floor(sorted.length / 2)];
  result.next_card_ms_p95 = sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)];

  // a round trained by someone else: from the train request's answer to each open view naming the new round
  const number = Number(await page.locator('.hl-bulk').getAttribute('data-round')) || null;
  const trained = await page.evaluate(async (projectId) => {
    const response = await fetch(`api/v1/histomics_label/project/${projectId}/train?wait=true`,
      { method: 'POST', headers: { 'Girder-Token': girder.auth.getCurrentToken() } });
    return { answered: Date.now(), body: await response.json() };
  }, input.projectId);
  const round = trained.body.round && trained.body.round.number;
  if (!round || round === number) {
    throw new Error(`no new round: ${JSON.stringify(trained.body)}`);
  }
  const shown = async (view, check) => {
    await view.waitForFunction(check, round, { polling: 'raf' });
    return (Date.now() - trained.answered) / 1000;
  };
  [result.round_to_paint_s, result.round_to_guided_s] = await Promise.all([
    shown(page, (n) => document.querySelector('.hl-bulk').getAttribute('data-round') === String(n)),
    shown(guided, (n) => (document.querySelector('.hl-round-number') || {}).textContent === String(n)),
  ]);
}

const browser = await chromium.launch({
  executablePath: input.chromium,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
});
const result = {};
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 1000 } })).newPage();
  page.setDefaultTimeout(300000);
  await page.goto(`${input.url}/`);
  await page.locator('.g-login').click();
  await page.locator('#g-login').fill(input.login);
  await page.locator('#g-password').fill(input.password);
  await page.locator('#g-login-button').click();
  await page.locator('.g-user-dropdown-link').waitFor();

  const started = Date.now();
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/paint/${input.itemId}`);
  await page.locator('.hl-bulk.hl-map-idle').waitFor();
  result.open_s = (Date.now() - started) / 1000;

  // the slide alone (no segments, so no overlay; the view is read-only, in Pan mode) is only opened and panned
  if (input.bare) {
    Object.assign(result, await panFrames(page, input.seconds));
  } else {
    await overlayFigures(page, result);
  }
} catch (error) {
  result.failure = error.message;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result));
