// Drives Debian Chromium (npm playwright-core, through driver.mjs) through the project page's carry-over report for
// test_resegmentation_view.py: as the admin, reads the report of a slide whose new segments wait to be applied (its
// counts and every label's row), asks to apply it keeping the unmatched labels detached, cancels, asks again and
// confirms; reads the page's message and the stale labels it then lists, and deletes them. A reader opens the same
// page while the report waits and is shown none. Prints one JSON object of observations on stdout; the pytest test makes the assertions.
// Screenshots go to `artifacts`.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, reader: {login, password}, projectId, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;

/** The report as drawn: its title, counts by fate and every label's row. */
const report = () => page.locator('.hl-carry-report').evaluate((box) => ({
  item: box.dataset.item,
  title: box.querySelector('.hl-carry-title').innerText.trim(),
  counts: Object.fromEntries([...box.querySelectorAll('.hl-carry-count')].map(
    (span) => [span.dataset.fate, Number.parseInt(span.innerText, 10)])),
  rows: [...box.querySelectorAll('.hl-carry-label')].map((row) => {
    const cells = [...row.querySelectorAll('td')].map((cell) => cell.innerText.trim());
    return { label: row.dataset.label, fate: row.dataset.fate, segment: cells[0], category: cells[1],
      fateText: cells[2], target: cells[3], share: cells[4], coverage: cells[5] };
  }),
}));

const text = (selector) => page.locator(selector).innerText().then((value) => value.trim());

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_resegmentation_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(context, TIMEOUT, result, () => phase);

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-carry-report').waitFor();
  result.report = await report();
  result.actions = await page.locator('.hl-carry-actions button').allInnerTexts();
  await page.screenshot({ path: `${input.artifacts}/resegmentation_report.png`, fullPage: true });

  phase = 'reader';
  const adminPage = page;
  page = await openPage(await browser.newContext({ viewport: { width: 1280, height: 900 } }), TIMEOUT, result,
    () => phase);
  await login(page, input.url, input.reader.login, input.reader.password);
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-slide').first().waitFor();
  result.reader = {
    sections: await page.locator('.hl-resegmentation-body').count(),
    reports: await page.locator('.hl-carry-report').count(),
  };
  await page.close();
  page = adminPage;

  phase = 'ask';
  // the choice is confirmed before anything changes; Cancel goes back to the three buttons
  await page.locator('.hl-carry-apply[data-unmatched="keep"]').click();
  await page.locator('.hl-carry-confirm-box').waitFor();
  result.question = (await text('.hl-carry-confirm-box p')).replace(/\s+/g, ' ');
  await page.locator('.hl-carry-cancel').click();
  await page.locator('.hl-carry-actions').waitFor();
  result.afterCancel = { boxes: await page.locator('.hl-carry-confirm-box').count(), report: await report() };

  phase = 'apply';
  const counted = await text('.hl-slide .hl-segments');
  await page.locator('.hl-carry-apply[data-unmatched="keep"]').click();
  await page.locator('.hl-carry-confirm').click();
  await page.locator('.hl-carry-message').waitFor();
  await page.locator('.hl-stale').waitFor();
  // the slides table counts the new segments once they are applied
  await page.waitForFunction((before) => document.querySelector('.hl-slide .hl-segments').innerText.trim() !== before,
    counted);
  result.applied = {
    message: await text('.hl-carry-message'),
    kind: (await page.locator('.hl-carry-message').getAttribute('class')).match(/alert-(\w+)/)[1],
    reports: await page.locator('.hl-carry-report').count(),
    stale: (await text('.hl-stale-summary')).replace(/\s+/g, ' '),
    segmentsBefore: counted,
    segments: await text('.hl-slide .hl-segments'),
  };
  await page.screenshot({ path: `${input.artifacts}/resegmentation_applied.png`, fullPage: true });

  phase = 'deleteStale';
  await page.locator('.hl-stale-delete').click();
  await page.locator('.hl-carry-message:has-text("stale label(s) deleted")').waitFor();
  result.deleted = { message: await text('.hl-carry-message'), stale: await page.locator('.hl-stale').count() };
});
