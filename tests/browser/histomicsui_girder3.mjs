// Drives Debian Chromium (npm playwright-core, through driver.mjs) for test_histomicsui_girder3.py: a DSA of today,
// Girder 3 with HistomicsUI 1.8.1 and this plugin's client compiled by `girder build`. Girder's own pages with the
// plugin's views (item action, project page), then HistomicsUI's image view with a slide of a project (its header
// links the image to the project) and with a slide in none. Prints one JSON object of observations on stdout; the
// pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, slideId, plainSlideId, artifacts, chromium}
import { login, openPage, pageQueries, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;
await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/girder3_failure_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(context, TIMEOUT, result, () => phase);
  const { texts, attrs, projectsAnswer } = pageQueries(() => page);

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'home';
  await page.waitForLoadState('networkidle');
  result.home = await page.evaluate(() => ({
    version: window.girder.version || null,
    plugin: Object.keys(window.girder.plugins.histomics_label || {}).sort(),
    histomicsUI: Boolean(window.girder.plugins.histomicsui),
    // Girder 3's app renders into <body>, which held the plugins' script tags: what the page fetched says instead.
    files: performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname)
      .filter((path) => path.includes('/plugins/histomics_label/')),
  }));

  phase = 'slideItem';
  let answer = projectsAnswer(input.slideId);
  await page.goto(`${input.url}/#item/${input.slideId}`);
  await answer;
  await page.locator('.hl-slide-projects .dropdown-toggle').click();
  await page.locator('.hl-slide-projects .hl-slide-project').waitFor();
  result.slideItem = { names: await texts('.hl-slide-projects .hl-slide-project-name') };
  await page.locator('.hl-slide-projects .hl-slide-project').click();
  await page.locator('.hl-project-name').waitFor();
  result.slideItem.openedHash = await page.evaluate(() => window.location.hash);
  result.slideItem.projectName = (await page.locator('.hl-project-name').innerText()).trim();
  await page.screenshot({ path: `${input.artifacts}/girder3_project_page.png` });

  phase = 'histomicsUI';
  answer = projectsAnswer(input.slideId);
  await page.goto(`${input.url}/histomics#?image=${input.slideId}`);
  await answer;
  await page.locator('.navbar-right > .hl-hui-projects').waitFor();
  await page.locator('.hl-hui-projects .dropdown-toggle').click();
  result.histomicsUI = {
    viewer: await page.locator('.h-image-view-body, #h-image-view-container, .geojs-layer').count(),
    imageMenu: (await texts('.h-image-menu-wrapper .breadcrumb li')).pop(),
    menus: await page.locator('.hl-hui-projects').count(),
    names: await texts('.hl-hui-projects .hl-slide-project-name'),
    projectLinks: await attrs('.hl-hui-projects .hl-slide-project', 'href'),
    targets: await attrs('.hl-hui-projects a[role="menuitem"]', 'target'),
  };
  await page.screenshot({ path: `${input.artifacts}/girder3_histomicsui_menu.png` });

  phase = 'histomicsUIPlain';
  answer = projectsAnswer(input.plainSlideId);
  await page.goto(`${input.url}/histomics#?image=${input.plainSlideId}`);
  result.histomicsUIPlain = { answer: await (await answer).json() };
  await page.waitForLoadState('networkidle');
  result.histomicsUIPlain.menus = await page.locator('.hl-hui-projects').count();
  await page.locator('.h-image-menu-wrapper .breadcrumb').waitFor();
  result.histomicsUIPlain.imageMenu = (await texts('.h-image-menu-wrapper .breadcrumb li')).pop();
  await page.screenshot({ path: `${input.artifacts}/girder3_histomicsui_plain.png` });
});
