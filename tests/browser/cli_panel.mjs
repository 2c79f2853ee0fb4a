// Drives Debian Chromium (npm playwright-core, through driver.mjs) for test_cli_panel.py: a DSA admin runs
// SuperpixelClassification from slicer_cli_web's own panel on the CLI's item page in Girder, picking the slide, the
// label file and the output folder through its file choosers, then watches the job's page until the job ends.
// Prints one JSON object of observations on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, userName, cliId, inputsFolder, slideName, labelsName, outputs, settings,
//    artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;
const JOB_TIMEOUT = 600000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;
await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/cli_panel_failure_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(context, TIMEOUT, result, () => phase);
  const chooser = page.locator('.modal-dialog:has(.g-browser-widget)');

  // girder-large-image's folder view asks for each folder's .large_image_config.yaml; opening another folder while
  // that request is out makes it call the request's cancel(), which Girder 5's requests lack: the page throws and
  // the breadcrumb stays on the folder before (its upstream fault, not this plugin's). A person waits for a folder
  // to show before opening the next; so does the driver, until no such request is out.
  const configRequests = new Set();
  page.on('request', (r) => r.url().includes('/yaml_config/.large_image_config.yaml') && configRequests.add(r));
  page.on('requestfinished', (r) => configRequests.delete(r));
  page.on('requestfailed', (r) => configRequests.delete(r));
  async function folderShown() {
    while (configRequests.size) {
      await page.waitForTimeout(50);
    }
  }

  /** Opens the chooser of control `id` in `folders` (a path from the user's home). The chooser opens where the last
   * one was left, as a user sees; from elsewhere it walks there from the home folder. */
  async function browse(id, folders) {
    await page.locator(`[data-control-id="${id}"] .s-select-file-button`).click();
    const here = chooser.locator('.g-hierarchy-breadcrumb-bar li.active');
    await here.waitFor();
    if ((await here.textContent()).trim() === folders.at(-1)) {
      return;
    }
    await folderShown();
    await chooser.locator('#g-root-selector').selectOption({ label: 'Home' });
    await here.filter({ hasText: input.userName }).waitFor();
    for (const name of folders) {
      await folderShown();
      await chooser.locator('.g-folder-list-link', { hasText: name }).click();
      await here.filter({ hasText: name }).waitFor();
    }
  }

  /** Picks an existing item for an input control: a click on the item sets the control and closes the chooser. */
  async function pickInput(id, folders, itemName) {
    await browse(id, folders);
    await chooser.locator('.g-item-list-entry .li-column-record-name', { hasText: itemName }).click();
    await page.waitForFunction((control) => document.getElementById(control).value !== '', id);
    await chooser.waitFor({ state: 'hidden' });
    return page.locator(`#${id}`).inputValue();
  }

  /** Names an output file in a folder: the chooser's item name, then Confirm. */
  async function pickOutput(id, folders, fileName) {
    await browse(id, folders);
    await chooser.locator('#g-input-element').fill(fileName);
    await chooser.locator('.g-submit-button').click();
    await chooser.waitFor({ state: 'hidden' });
    return page.locator(`#${id}`).inputValue();
  }

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'panel';
  await page.goto(`${input.url}/#item/${input.cliId}`);
  await page.locator('.s-info-panel-submit').waitFor();
  result.panelTitles = await page.locator('.s-panel-title').allTextContents();

  phase = 'choose';
  result.chosen = {
    image: await pickInput('image', input.inputsFolder, input.slideName),
    labelFile: await pickInput('labelFile', input.inputsFolder, input.labelsName),
  };
  for (const [id, fileName] of Object.entries(input.outputs)) {
    result.chosen[id] = await pickOutput(id, input.inputsFolder, fileName);
  }
  for (const [id, value] of Object.entries(input.settings)) {
    await page.locator(`#${id}`).fill(value);
    await page.locator(`#${id}`).dispatchEvent('change');
  }
  await page.screenshot({ path: `${input.artifacts}/cli_panel_form.png` });

  phase = 'run';
  const submitted = page.waitForResponse((response) => response.request().method() === 'POST'
    && response.url().includes(`/slicer_cli_web/cli/${input.cliId}/run`));
  await page.locator('.s-info-panel-submit').click();
  const answer = await submitted;
  result.runStatus = answer.status();
  const job = await answer.json();
  result.jobId = job._id;

  phase = 'job';
  await page.goto(`${input.url}/#job/${job._id}`);
  const badge = page.locator('.g-job-status-badge');
  await badge.waitFor();
  result.statusesSeen = [(await badge.textContent()).trim()];
  const deadline = Date.now() + JOB_TIMEOUT;
  while (!['Success', 'Error', 'Canceled'].includes(result.statusesSeen.at(-1)) && Date.now() < deadline) {
    await page.waitForTimeout(500);
    const status = (await badge.textContent()).trim();
    if (status !== result.statusesSeen.at(-1)) {
      result.statusesSeen.push(status);
    }
  }
  await page.screenshot({ path: `${input.artifacts}/cli_panel_job.png`, fullPage: true });
});
