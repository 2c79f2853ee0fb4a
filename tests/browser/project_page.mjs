// Drives Debian Chromium (npm playwright-core, through driver.mjs) through Histomics Label's project page for
// test_project_page.py: logs in through Girder's login dialog, opens the pages, reads what they show, saves
// screenshots, and prints one JSON object of observations on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, plainFolderId, missingId, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;
await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(context, TIMEOUT, result, () => phase);

  const texts = (selector) => page.locator(selector).allInnerTexts().then((all) => all.map((t) => t.trim()));

  phase = 'login';
  await login(page, input.url, input.login, input.password);
  result.loggedInAs = (await page.locator('.g-user-dropdown-link').innerText()).trim();

  phase = 'project';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-project-name').waitFor();
  result.project = {
    name: (await page.locator('.hl-project-name').innerText()).trim(),
    categories: await texts('.hl-category .hl-category-name'),
    excluded: await texts('.hl-category.hl-excluded .hl-category-name'),
    swatches: await page.locator('.hl-swatch').evaluateAll((all) => all.map((el) => getComputedStyle(el).backgroundColor)),
    slides: await texts('.hl-slide td:first-child'),
    segments: await texts('.hl-slide .hl-segments'),
    round: (await page.locator('.hl-round').innerText()).trim(),
    review: await page.locator('.hl-review-link').getAttribute('href'),
  };
  await page.screenshot({ path: `${input.artifacts}/project_page.png`, fullPage: true });

  phase = 'folderButton';
  await page.goto(`${input.url}/#folder/${input.projectId}`);
  await page.locator('.hl-open-project').click();
  await page.locator('.hl-project-name').waitFor();
  result.folderButton = { hash: await page.evaluate(() => window.location.hash) };

  phase = 'setUp';
  // the folder's admin is offered the set-up of a new project
  await page.goto(`${input.url}/#folder/${input.plainFolderId}`);
  await page.locator('.hl-open-project').click();
  await page.locator('.hl-new-project h2').waitFor();
  result.setUp = {
    hash: await page.evaluate(() => window.location.hash),
    heading: (await page.locator('.hl-new-project h2').innerText()).trim(),
  };

  phase = 'notProject';
  // a user who may only read the folder is told what the button would do for its admins
  const readerPage = await openPage(await browser.newContext({ viewport: { width: 1280, height: 900 } }), TIMEOUT,
    result, () => phase);
  await login(readerPage, input.url, input.reader.login, input.reader.password);
  await readerPage.goto(`${input.url}/#folder/${input.plainFolderId}`);
  await readerPage.locator('.hl-open-project').click();
  await readerPage.locator('.hl-not-project').waitFor();
  result.notProject = {
    message: (await readerPage.locator('.hl-not-project').innerText()).trim(),
    hash: await readerPage.evaluate(() => window.location.hash),
  };
  await readerPage.screenshot({ path: `${input.artifacts}/not_a_project.png`, fullPage: true });

  phase = 'failedRequest';
  await page.goto(`${input.url}/#histomics_label/project/${input.missingId}`);
  await page.locator('.hl-error').waitFor();
  result.failedRequest = { message: (await page.locator('.hl-error').innerText()).trim() };
  await page.screenshot({ path: `${input.artifacts}/failed_request.png`, fullPage: true });
});
