// Drives Debian Chromium (npm playwright-core, through driver.mjs) through the guided labeling view for
// test_guided_rounds.py: opens it, has a round trained outside the view (as another labeler's Retrain or automatic
// retraining would: POST .../train?wait=true with the page's login), waits for the stats bar to name it (Girder's
// notification stream; nothing on the page is touched), then accepts every card of the row by keyboard; reads the
// stats bar before, meanwhile and after the next row arrives. Prints one JSON object of observations on stdout; the
// pytest test makes the assertions. Screenshots go to `artifacts`.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;

const text = async (selector) => (await page.locator(selector).first().innerText()).trim();
/** No save in flight, no row loading, and the label count answered. */
const idle = () => page.waitForFunction(() => !document.querySelector('.hl-card.hl-saving') &&
  !document.querySelector('.hl-label-count.hl-counting') && !document.querySelector('.hl-guided-body.hl-loading'));
const segments = () => page.locator('.hl-card').evaluateAll((cards) => cards.map((card) => Number(card.dataset.segment)));
const stats = async () => ({ round: await text('.hl-round-number'), changed: await text('.hl-changed'),
  accuracy: await text('.hl-accuracy'), row: await segments() });

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_guided_rounds_${failed}.png`, fullPage: true }),
}, async (browser) => {
  page = await openPage(await browser.newContext({ viewport: { width: 1280, height: 1000 } }), TIMEOUT, result,
    () => phase);

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/label`);
  await page.locator('.hl-card').first().waitFor();
  await idle();
  result.before = await stats();

  phase = 'elsewhere';
  result.trained = await page.evaluate((id) => new Promise((resolve, reject) => {
    window.girder.rest.restRequest({ url: `histomics_label/project/${id}/train?wait=true`, method: 'POST', error: null })
      .done((data) => resolve(data.round.number))
      .fail((xhr) => reject(new Error(`POST train failed (${xhr.status})`)));
  }), input.projectId);
  const answered = Date.now();
  // Girder's notification stream tells the open view: the stats bar names the new round, the row stays
  await page.waitForFunction((number) => document.querySelector('.hl-round-number').innerText.trim() === String(number),
    result.trained, { timeout: 15000 });
  result.shownAfterMs = Date.now() - answered;
  result.meanwhile = { ...await stats(), status: await text('.hl-train-status') };

  phase = 'label';
  for (let index = 0; index < result.before.row.length; index += 1) {
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => !document.querySelector('.hl-card.hl-saving'));
  }
  await page.waitForFunction((first) => {
    const card = document.querySelector('.hl-card');
    return card && Number(card.dataset.segment) !== first && !document.querySelector('.hl-guided-body.hl-loading');
  }, result.before.row[0]);
  await idle();
  result.after = await stats();
  await page.screenshot({ path: `${input.artifacts}/guided_rounds.png`, fullPage: true });
});
