// Drives Debian Chromium (npm playwright-core, through driver.mjs) through the project page's segment-job queue for
// test_segment_queue.py: as the admin, makes segments for a project of two slides on a server that runs one heavy job
// at a time, reads each slide's row beside the server's GET .../work (and, as a reader, sees the queue without
// Cancel buttons), then cancels the queued job and the running one from their rows. Prints one JSON object of observations on stdout; the pytest test makes the assertions.
// Screenshots go to `artifacts`.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, reader: {login, password}, projectId, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;
const STOP_TIMEOUT = 120000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;

/** The project's queue as the server answers it, requested in the page with the page's login. */
const work = () => page.evaluate((id) => new Promise((resolve, reject) => {
  window.girder.rest.restRequest({ url: `histomics_label/project/${id}/work`, error: null })
    .done((data) => resolve({ work: data.work.map(({ item, job, status, position }) => ({ item, job, status, position })),
      perProcess: data.perProcess }))
    .fail((xhr) => reject(new Error(`GET work failed (${xhr.status})`)));
}), input.projectId);

/** Each slide row's job by item id: its state, queue position, status text and the job its Cancel button names. */
const rows = () => page.locator('.hl-slide').evaluateAll((all) => Object.fromEntries(all.map((row) => {
  const job = row.querySelector('.hl-job');
  const cancel = row.querySelector('.hl-cancel-job');
  return [row.dataset.item, job && {
    state: job.dataset.state, position: job.dataset.position || null,
    status: job.querySelector('.hl-job-status').innerText.trim(), cancel: cancel ? cancel.dataset.job : null,
  }];
})));

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_queue_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(context, TIMEOUT, result, () => phase);

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-make-segments').waitFor();

  phase = 'make';
  await page.locator('.hl-make-segments').click();
  // one slide's job runs (the server's limit is one), the other waits next in line
  await page.locator('.hl-job[data-state="running"]').waitFor();
  await page.locator('.hl-job[data-state="queued"]').waitFor();
  result.queued = { work: await work(), rows: await rows() };
  result.queued.workAfter = await work();
  await page.screenshot({ path: `${input.artifacts}/segment_queue.png`, fullPage: true });

  phase = 'reader';
  // a user with read access sees the same queue, without Cancel buttons
  const adminPage = page;
  page = await openPage(await browser.newContext({ viewport: { width: 1280, height: 900 } }), TIMEOUT, result,
    () => phase);
  await login(page, input.url, input.reader.login, input.reader.password);
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-job[data-state="queued"]').waitFor();
  result.reader = { rows: await rows(), work: await work(), buttons: await page.locator('.hl-project button').count() };
  await page.close();
  page = adminPage;

  phase = 'cancelQueued';
  await page.locator('.hl-slide:has(.hl-job[data-state="queued"]) .hl-cancel-job').click();
  await page.locator('.hl-job[data-state="canceled"]').waitFor();
  result.cancelQueued = { rows: await rows(), work: await work() };
  await page.screenshot({ path: `${input.artifacts}/segment_queue_cancelled.png`, fullPage: true });

  phase = 'cancelRunning';
  await page.locator('.hl-slide:has(.hl-job[data-state="running"]) .hl-cancel-job').click();
  // the section's last word comes once the project has no work left (the child process was killed)
  await page.locator('.hl-slides-message.alert-warning, .hl-slides-message.alert-danger, '
    + '.hl-slides-message.alert-success').waitFor({ timeout: STOP_TIMEOUT });
  result.cancelRunning = {
    rows: await rows(), work: await work(),
    message: (await page.locator('.hl-slides-message').innerText()).trim(),
  };
  await page.screenshot({ path: `${input.artifacts}/segment_queue_stopped.png`, fullPage: true });
});
