// Drives Debian Chromium (npm playwright-core, through driver.mjs) for test_new_project.py: the whole path of a new
// project in the browser, with no API call. A folder admin opens a plain folder holding two slides and a text file,
// presses the Histomics Label button, reads the set-up (thumbnails, the segments each slide is expected to get),
// names three categories, sets the magnification and radius, creates the project and waits on the project page for
// the segments; then a pathologist (write access) labels four suggestions by key in the guided view, paints one stroke
// on a slide, and opens the review. Prints one JSON object; the pytest test checks it against the server.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, admin: {login, password}, labeler: {login, password}, folderId, categories, magnification, radius,
//    artifacts, chromium}
import { login, openPage, readInput, run, storedLabels } from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;
const SEGMENTS_TIMEOUT = 600000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;

const text = async (selector) => (await page.locator(selector).innerText()).trim().replace(/\s+/g, ' ');

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/new_project_failure_${failed}.png`, fullPage: true }),
}, async (browser) => {
  page = await openPage(await browser.newContext({ viewport: { width: 1280, height: 1000 } }), TIMEOUT, result,
    () => phase);

  phase = 'setUp';
  await login(page, input.url, input.admin.login, input.admin.password);
  await page.goto(`${input.url}/#folder/${input.folderId}`);
  await page.locator('.hl-open-project').click();
  await page.locator('.hl-new-slide').first().waitFor();
  await page.waitForFunction(() => [...document.querySelectorAll('.hl-new-estimate')]
    .every((node) => node.dataset.segments));
  const estimates = () => page.locator('.hl-new-slide').evaluateAll((all) => all.map((slide) => ({
    item: slide.dataset.item, name: slide.querySelector('.hl-new-slide-name').textContent,
    segments: Number(slide.querySelector('.hl-new-estimate').dataset.segments),
    thumbnail: slide.querySelector('img').naturalWidth })));
  result.setUp = { hash: await page.evaluate(() => window.location.hash), atDefaults: await estimates(),
    others: await text('.hl-new-others') };
  await page.locator('.hl-new-setting[name="magnification"]').fill(String(input.magnification));
  await page.locator('.hl-new-setting[name="radius"]').fill(String(input.radius));
  result.setUp.estimates = await estimates();
  await page.locator('.hl-new-add-category').click();
  for (const [index, category] of input.categories.entries()) {
    await page.locator('.hl-new-category-name').nth(index).fill(category);
  }
  await page.screenshot({ path: `${input.artifacts}/new_project_setup.png`, fullPage: true });
  await page.locator('.hl-new-create').click();

  phase = 'segments';
  await page.locator('.hl-project-name').waitFor();
  result.segments = { hash: await page.evaluate(() => window.location.hash) };
  const deadline = Date.now() + SEGMENTS_TIMEOUT;
  while (Date.now() < deadline && !(await page.locator(
    '.hl-slides-message.alert-success, .hl-slides-message.alert-danger').count())) {
    await page.waitForTimeout(500);
  }
  result.segments.message = await text('.hl-slides-message');
  result.segments.counts = await page.locator('.hl-slide').evaluateAll((rows) => rows.map((row) => ({
    item: row.dataset.item, segments: row.querySelector('.hl-segments').textContent.trim() })));
  result.segments.notSlides = await page.locator('.hl-not-slide a').allInnerTexts();
  await page.screenshot({ path: `${input.artifacts}/new_project_ready.png`, fullPage: true });

  phase = 'label';
  page = await openPage(await browser.newContext({ viewport: { width: 1280, height: 1000 } }), TIMEOUT, result,
    () => phase);
  await login(page, input.url, input.labeler.login, input.labeler.password);
  await page.goto(`${input.url}/#histomics_label/project/${input.folderId}`);
  await page.locator('.hl-label-link').click();
  await page.locator('.hl-card.hl-current').waitFor();
  result.labeled = [];
  for (const key of ['1', '2', '1', '2']) {
    const card = page.locator('.hl-card.hl-current');
    const segment = Number(await card.getAttribute('data-segment'));
    const item = await card.getAttribute('data-item');
    await page.keyboard.press(key);
    await page.waitForFunction((previous) => {
      const now = document.querySelector('.hl-card.hl-current');
      return now && now.dataset.segment !== String(previous);
    }, segment);
    result.labeled.push({ item, segment, key });
  }
  // what the keys stored, once the last label is saved and before the stroke below may repaint a keyed segment
  result.storedAfterKeys = await storedLabels(page, input.folderId);
  while (result.storedAfterKeys.length < result.labeled.length) {
    await page.waitForTimeout(200);
    result.storedAfterKeys = await storedLabels(page, input.folderId);
  }
  await page.screenshot({ path: `${input.artifacts}/new_project_guided.png`, fullPage: true });

  phase = 'paint';
  await page.goto(`${input.url}/#histomics_label/project/${input.folderId}`);
  await page.locator('.hl-paint-link').first().click();
  await page.locator('.hl-bulk.hl-map-idle').waitFor();
  await page.keyboard.press('2');
  const box = await page.locator('.hl-bulk-overlay').boundingBox();
  const answer = page.waitForResponse((response) => response.url().includes('/labels/paint'));
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.4, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, y, { steps: 20 });
  await page.mouse.up();
  result.painted = { item: await page.locator('.hl-bulk').evaluate(() => window.location.hash.split('/paint/')[1]),
    answer: await (await answer).json() };
  await page.waitForFunction(() => !document.querySelector('.hl-bulk.hl-painting'));
  result.painted.shown = await page.locator('.hl-bulk').getAttribute('data-last-segments');

  phase = 'review';
  await page.goto(`${input.url}/#histomics_label/project/${input.folderId}/review`);
  await page.locator('.hl-review-card').first().waitFor();
  result.review = { total: await text('.hl-review-total'),
    cards: await page.locator('.hl-review-card').count() };
  await page.screenshot({ path: `${input.artifacts}/new_project_review.png`, fullPage: true });
});
