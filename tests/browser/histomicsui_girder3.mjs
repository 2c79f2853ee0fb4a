// Drives Debian Chromium (npm playwright-core, through driver.mjs) for test_histomicsui_girder3.py: a DSA of today,
// Girder 3 with HistomicsUI 1.8.1 and this plugin's client compiled by `girder build`. Girder's own pages with the
// plugin's views (item action, project page), then HistomicsUI's image view with a slide of a project (its header
// links the image to the project; the labeling panel opened from there labels suggestions by keyboard while
// HistomicsUI's viewer pans) and with a slide in none; then a reader's menu. Prints one JSON object of observations
// on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, slideId, plainSlideId, keys, reader: {login, password}, artifacts, chromium}
import { drag, greenness, login, openPage, pageQueries, pngStats, readInput, run, storedLabels, trackConsole }
  from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;
const MAP = '.h-image-view-container';

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
    targets: await attrs('.hl-hui-projects a.hl-slide-project, .hl-hui-projects a.hl-slide-paint', 'target'),
  };
  await page.screenshot({ path: `${input.artifacts}/girder3_histomicsui_menu.png` });

  phase = 'huiLabel';
  const layers = () => page.locator('.h-image-view-container .geojs-layer').count();
  result.layers = { before: await layers() };
  let saved = 0;
  page.on('response', (response) => {
    if (response.request().method() === 'PUT' && /\/labels$/.test(new URL(response.url()).pathname) &&
        response.ok()) {
      saved += 1;
    }
  });
  await page.locator('.hl-hui-projects .hl-hui-label').click();
  result.labeled = [];
  for (const key of input.keys) {
    const done = result.labeled.map((step) => `${step.item}/${step.segment}`);
    // the panel's card is shown once HistomicsUI's viewer has drawn the view around it
    await page.waitForFunction((labeled) => {
      const node = document.querySelector('.hl-hui-panel .hl-focus-map');
      return node && node.classList.contains('hl-map-idle') && !labeled.includes(
        `${node.dataset.item}/${node.dataset.segment}`);
    }, done, { timeout: TIMEOUT });
    result.labeled.push(await page.evaluate((pressed) => {
      const node = document.querySelector('.hl-hui-panel .hl-focus-map');
      const query = new URLSearchParams(window.location.hash.split('?')[1] || '');
      return { key: pressed, item: node.dataset.item, segment: Number(node.dataset.segment),
        image: query.get('image'), bounds: query.get('bounds') };
    }, key));
    await page.keyboard.press(key);
  }
  for (let waited = 0; saved < input.keys.length && waited < TIMEOUT; waited += 250) {
    await page.waitForTimeout(250);
  }
  // the server's labels now, asked with the page's login token (the stroke below may paint over some of them)
  result.storedAfterKeys = await storedLabels(page, input.projectId);
  result.layers.open = await layers();
  await page.screenshot({ path: `${input.artifacts}/girder3_histomicsui_panel.png` });
  await page.locator('.hl-hui-panel-close').click();
  result.layers.closed = await layers();
  result.panelAfterClose = await page.locator('.hl-hui-panel').count();

  phase = 'huiPaint';
  await page.locator('.hl-hui-projects .dropdown-toggle').click();
  await page.locator('.hl-hui-projects .hl-hui-paint').click();
  await page.locator('.hl-hui-panel .hl-bulk.hl-map-idle').waitFor();
  await page.waitForTimeout(500);
  result.painting = {
    layers: await layers(), brushes: await page.locator(`${MAP} canvas.hl-bulk-overlay`).count(),
    // the slide itself stays drawn under the panel's layers (not only the segments' layer)
    whiteShare: (await pngStats(page, await page.locator(MAP).screenshot(), { stride: 4 })).whiteShare,
  };
  await page.keyboard.press(input.paintKey);
  result.painting.chosen = await page.locator('.hl-hui-panel .hl-bulk').getAttribute('data-category');
  const mapBox = await page.locator(MAP).boundingBox();
  const y = mapBox.y + mapBox.height / 2;
  const [x0, x1] = [mapBox.x + mapBox.width * 0.45, mapBox.x + mapBox.width * 0.7]; // right of the panel
  result.painting.greenBefore = await greenness(page, MAP, y, x0, x1);
  const painted = page.waitForResponse((response) => response.url().includes('/labels/paint') &&
    response.request().method() === 'POST');
  await drag(page, x0, x1, y);
  const response = await painted;
  result.painting.request = response.request().postDataJSON();
  result.painting.answer = await response.json();
  await page.waitForFunction(() => !document.querySelector('.hl-hui-panel .hl-bulk.hl-painting'));
  await page.waitForTimeout(500); // the overlay's layer redraws with the new labels
  result.painting.greenAfter = await greenness(page, MAP, y, x0, x1);
  result.painting.status = (await page.locator('.hl-hui-panel .hl-paint-status').innerText()).trim();
  await page.screenshot({ path: `${input.artifacts}/girder3_histomicsui_paint.png` });
  await page.locator('.hl-hui-panel-close').click();
  result.painting.closed = { layers: await layers(), brushes: await page.locator('canvas.hl-bulk-overlay').count() };

  phase = 'huiRoutes';
  // the project's pages open as HistomicsUI routes in a window of their own; Girder's routes in Girder's window
  await page.locator('.hl-hui-projects .dropdown-toggle').click();
  const opened = context.waitForEvent('page');
  await page.locator('.hl-hui-projects .hl-hui-review').click();
  const pages = await opened;
  trackConsole(pages, result, () => phase);
  await pages.locator('.hl-review').waitFor();
  await pages.waitForLoadState('networkidle');
  const body = () => pages.evaluate(() => {
    const node = document.querySelector('#g-app-body-container');
    return { scrolls: node.scrollHeight > node.clientHeight && getComputedStyle(node).overflowY === 'auto',
      histomicsUI: Boolean(document.querySelector('#h-navbar-brand')), hash: window.location.hash,
      path: window.location.pathname, window: window.name };
  });
  result.routes = { review: await body() };
  await pages.screenshot({ path: `${input.artifacts}/girder3_histomicsui_review.png` });
  await pages.locator('.hl-review-project-link').click();
  await pages.locator('.hl-project-name').waitFor();
  await pages.waitForLoadState('networkidle');
  result.routes.project = { ...await body(), name: (await pages.locator('.hl-project-name').innerText()).trim() };
  await pages.screenshot({ path: `${input.artifacts}/girder3_histomicsui_project.png` });
  const girderPage = context.waitForEvent('page');
  await pages.locator('.hl-folder-link').click();
  const girderWindow = await girderPage;
  result.routes.folder = { url: girderWindow.url(), window: await girderWindow.evaluate(() => window.name) };
  await pages.close();
  await girderWindow.close();

  phase = 'histomicsUIPlain';
  answer = projectsAnswer(input.plainSlideId);
  await page.goto(`${input.url}/histomics#?image=${input.plainSlideId}`);
  result.histomicsUIPlain = { answer: await (await answer).json() };
  await page.waitForLoadState('networkidle');
  result.histomicsUIPlain.menus = await page.locator('.hl-hui-projects').count();
  await page.locator('.h-image-menu-wrapper .breadcrumb').waitFor();
  result.histomicsUIPlain.imageMenu = (await texts('.h-image-menu-wrapper .breadcrumb li')).pop();
  await page.screenshot({ path: `${input.artifacts}/girder3_histomicsui_plain.png` });

  phase = 'reader';
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(readerContext, TIMEOUT, result, () => phase);
  await login(page, input.url, input.reader.login, input.reader.password);
  answer = projectsAnswer(input.slideId);
  await page.goto(`${input.url}/histomics#?image=${input.slideId}`);
  await answer;
  await page.locator('.navbar-right > .hl-hui-projects').waitFor();
  await page.locator('.hl-hui-projects .dropdown-toggle').click();
  result.reader = {
    names: await texts('.hl-hui-projects .hl-slide-project-name'),
    labelItems: await page.locator('.hl-hui-label').count(),
    paintTexts: await texts('.hl-hui-projects .hl-slide-paint'),
    panelTexts: await texts('.hl-hui-projects .hl-hui-paint'),
  };
  await page.locator('.hl-hui-projects .hl-hui-paint').click();
  await page.locator('.hl-hui-panel .hl-bulk.hl-map-idle').waitFor();
  result.reader.panel = {
    mode: await page.locator('.hl-hui-panel .hl-bulk').getAttribute('data-mode'),
    brushEnabled: await page.locator('.hl-hui-panel .hl-mode[data-mode="brush"]').isEnabled(),
    messages: await page.locator('.hl-hui-panel .hl-message-text').allInnerTexts(),
    labeled: Number(await page.locator('.hl-hui-panel .hl-bulk').getAttribute('data-labeled')),
  };
});
