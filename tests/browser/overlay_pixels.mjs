// Drives Debian Chromium (npm playwright-core, through driver.mjs) for test_overlay_pixels.py: opens the painting view
// at one segment (`?segment=K&mag=M`, as a card's "Show on slide" does) at each magnification asked, and saves what
// the map draws: with the segment outlined and no borders, then with the segment borders on. The pytest test compares
// those pixels with the server's segment raster. Also records what the page says about the view (the base-pixel box
// in view, the magnification and scale bar shown, the overview's rectangle, the legend's rows) and where the corner
// widgets sit over the map (their pixels are not the slide's). Prints one JSON object; the test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, itemId, segment, magnifications, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;

const result = { consoleErrors: {}, views: [] };
let phase = 'start';
let page;

/** The map's pixels once the pointer is off it and geojs has drawn everything it asked for. */
async function mapShot(name) {
  await page.mouse.move(2, 2);
  await page.waitForTimeout(500);
  await page.waitForFunction(() => document.querySelector('.hl-bulk-stage .hl-map-idle, .hl-bulk.hl-map-idle'));
  await page.evaluate(() => new Promise((resolve) => { requestAnimationFrame(() => requestAnimationFrame(resolve)); }));
  const path = `${input.artifacts}/overlay_pixels_${name}.png`;
  await page.locator('.hl-bulk-map').screenshot({ path });
  return path;
}

/** Boxes of the widgets drawn over the map, relative to it: [x, y, width, height]. */
const covered = () => page.evaluate(() => {
  const map = document.querySelector('.hl-bulk-map').getBoundingClientRect();
  return [...document.querySelectorAll('.hl-scale, .hl-overview, .hl-legend:not(.hidden)')].map((node) => {
    const box = node.getBoundingClientRect();
    return [box.left - map.left, box.top - map.top, box.width, box.height].map(Math.round);
  });
});

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (name) => ({ path: `${input.artifacts}/overlay_pixels_failure_${name}.png` }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await openPage(context, TIMEOUT, result, () => phase);
  phase = 'login';
  await login(page, input.url, input.login, input.password);
  for (const magnification of input.magnifications) {
    phase = `mag ${magnification}`;
    await page.evaluate(() => document.querySelector('.hl-bulk')?.removeAttribute('data-segment'));
    await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/paint/${input.itemId}`
      + `?segment=${input.segment}&mag=${magnification}&from=review`);
    await page.locator(`.hl-bulk.hl-map-idle[data-segment="${input.segment}"]`).waitFor();
    const outlined = await mapShot(`outline_${magnification}`);
    const node = page.locator('.hl-bulk-map');
    const view = {
      magnification, outlined,
      box: (await node.getAttribute('data-view')).split(',').map(Number),
      magnificationText: await node.getAttribute('data-magnification'),
      shownMagnification: await page.locator('.hl-bulk-map .hl-scale-magnification').textContent(),
      scaleBar: await page.evaluate(() => {
        const bar = document.querySelector('.hl-bulk-map .hl-scale-bar');
        return { width: bar.getBoundingClientRect().width, micrometres: Number(bar.dataset.micrometres),
          text: document.querySelector('.hl-bulk-map .hl-scale-length').textContent };
      }),
      overviewRect: (await page.locator('.hl-overview').getAttribute('data-rect')).split(',').map(Number),
      legend: await page.locator('.hl-legend .hl-legend-row').evaluateAll(
        (rows) => rows.map((row) => ({ kind: row.dataset.kind, text: row.textContent.trim() }))),
      back: await page.locator('.hl-back').count(),
      covered: await covered(),
    };
    await page.locator('.hl-show-borders').click();
    await page.waitForFunction(() => document.querySelector('.hl-bulk').getAttribute('data-borders') === 'true');
    view.bordered = await mapShot(`borders_${magnification}`);
    view.legendWithBorders = await page.locator('.hl-legend .hl-legend-row').evaluateAll(
      (rows) => rows.map((row) => row.dataset.kind));
    await page.screenshot({ path: `${input.artifacts}/overlay_pixels_page_${magnification}.png` });
    result.views.push(view);
  }
  // a click in the overview map centres the view there
  phase = 'overview';
  const overview = await page.locator('.hl-overview').boundingBox();
  const before = (await page.locator('.hl-bulk-map').getAttribute('data-view')).split(',').map(Number);
  await page.mouse.click(overview.x + overview.width * 0.5, overview.y + overview.height * 0.5);
  await page.waitForFunction((old) => document.querySelector('.hl-bulk-map').getAttribute('data-view') !== old,
    before.join(','));
  result.overviewClick = {
    before, after: (await page.locator('.hl-bulk-map').getAttribute('data-view')).split(',').map(Number),
    rect: (await page.locator('.hl-overview').getAttribute('data-rect')).split(',').map(Number),
  };
});
