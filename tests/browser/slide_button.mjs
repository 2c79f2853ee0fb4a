// Drives Debian Chromium (npm playwright-core, through driver.mjs) for test_slide_button.py: Girder's home page and
// item pages with the plugin's "Histomics Label" item action and its HistomicsUI adapter, which must stay silent
// without HistomicsUI; then the adapter with a STAND-IN for HistomicsUI (see STAND_IN below). Prints one JSON object
// of observations on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, slideId, plainSlideId, artifacts, chromium}
import { login, openPage, pageQueries, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;
const STAND_IN_PATH = '/hl-test/histomicsui-stand-in.js';

// TEST CODE ONLY, NOT HistomicsUI: a minimal stand-in for the parts of HistomicsUI's Girder 5 client that the adapter
// relies on (docs/histomicsui.md), since HistomicsUI cannot be installed here. Served as one more plugin script, as
// Girder loads HistomicsUI's bundle: it registers the `histomicsui` namespace, adds a header shaped like
// HistomicsUI's (`ul.navbar-right > li.h-image-menu-wrapper`, whose content it replaces on each image as
// HeaderImageView does), and `window.histomicsUIStandIn.open(id)` triggers `h:imageOpened` with the fetched
// ItemModel (or null), as HistomicsUI's ImageView does once an image is shown. The header is added on the first
// image, as Girder's app (rendered into <body>) would replace one added earlier.
const STAND_IN = `
girder.pluginUtils.registerPluginNamespace('histomicsui', { standIn: true });
girder.events.on('h:imageOpened', (image) => {
  girder.$('.h-image-menu-wrapper').text(image ? image.name() : '');
});
window.histomicsUIStandIn = {
  async open(id) {
    if (!girder.$('.hl-test-stand-in').length) {
      girder.$('body').prepend('<nav class="navbar navbar-default hl-test-stand-in" ' +
        'style="position: relative; z-index: 10000"><ul class="nav navbar-nav ' +
        'navbar-right"><li class="h-image-menu-wrapper dropdown"></li><li class="h-current-user-wrapper"></li>' +
        '</ul></nav>');
    }
    const image = id ? new girder.models.ItemModel({ _id: id }) : null;
    if (image) {
      await image.fetch();
    }
    girder.events.trigger('h:imageOpened', image);
  },
};
`;

const result = { consoleErrors: {} };
let phase = 'start';
let page;
await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const newPage = () => openPage(context, TIMEOUT, result, () => phase);
  page = await newPage();
  const { texts, attrs, projectsAnswer } = pageQueries(() => page);

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'home';
  await page.goto(`${input.url}/`);
  await page.locator('.g-user-dropdown-link').waitFor();
  await page.waitForLoadState('networkidle');
  result.home = await page.evaluate(() => ({
    plugin: Boolean(window.girder.plugins.histomics_label),
    histomicsUI: Boolean(window.girder.plugins.histomicsui),
    adapterMenus: document.querySelectorAll('.hl-hui-projects').length,
  }));

  phase = 'slideItem';
  let answer = projectsAnswer(input.slideId);
  await page.goto(`${input.url}/#item/${input.slideId}`);
  await answer;
  await page.locator('.hl-slide-projects').waitFor();
  await page.locator('.hl-slide-projects .dropdown-toggle').click();
  await page.locator('.hl-slide-projects .hl-slide-project').waitFor();
  result.slideItem = {
    button: (await page.locator('.hl-slide-projects .dropdown-toggle').innerText()).trim(),
    names: await texts('.hl-slide-projects .hl-slide-project-name'),
    projectLinks: await attrs('.hl-slide-projects .hl-slide-project', 'href'),
    paintLinks: await attrs('.hl-slide-projects .hl-slide-paint', 'href'),
    paintTexts: await texts('.hl-slide-projects .hl-slide-paint'),
  };
  await page.screenshot({ path: `${input.artifacts}/slide_item_action.png` });
  await page.locator('.hl-slide-projects .hl-slide-project').click();
  await page.locator('.hl-project-name').waitFor();
  result.slideItem.openedHash = await page.evaluate(() => window.location.hash);

  phase = 'plainItem';
  answer = projectsAnswer(input.plainSlideId);
  await page.goto(`${input.url}/#item/${input.plainSlideId}`);
  result.plainItem = { answer: await (await answer).json() };
  await page.waitForLoadState('networkidle');
  result.plainItem.actions = await page.locator('.hl-slide-projects').count();
  result.plainItem.header = await page.locator('.g-item-header').count();
  await page.close();

  // HistomicsUI's script loads after the plugin's in one page and before it in the other: the adapter hooks in either way.
  for (const order of ['after', 'before']) {
    phase = `standIn_${order}`;
    page = await newPage();
    await page.route(`**${STAND_IN_PATH}`, (route) => route.fulfill({ contentType: 'text/javascript', body: STAND_IN }));
    await page.route('**/api/v1/system/plugin_static_files', async (route) => {
      const files = await (await route.fetch()).json();
      files.js = order === 'after' ? [...files.js, STAND_IN_PATH] : [STAND_IN_PATH, ...files.js];
      await route.fulfill({ json: files });
    });
    await page.goto(`${input.url}/`);
    await page.locator('.g-user-dropdown-link').waitFor();
    await page.waitForLoadState('networkidle');
    const seen = { scriptOrder: await page.evaluate(() => [...document.querySelectorAll('head script[src]')]
      .map((el) => new URL(el.src).pathname).filter((path) => /histomics-label|stand-in/.test(path))) };

    answer = projectsAnswer(input.slideId);
    await page.evaluate((id) => window.histomicsUIStandIn.open(id), input.slideId);
    await answer;
    await page.locator('.navbar-right > .hl-hui-projects').waitFor({ state: 'attached' });
    await page.locator('.hl-hui-projects .dropdown-toggle').click();
    seen.slide = {
      menus: await page.locator('.hl-hui-projects').count(),
      nextToImageMenu: await page.evaluate(() => document.querySelector('.hl-hui-projects').previousElementSibling
        .classList.contains('h-image-menu-wrapper')),
      imageMenu: (await page.locator('.h-image-menu-wrapper').innerText()).trim(),
      names: await texts('.hl-hui-projects .hl-slide-project-name'),
      projectLinks: await attrs('.hl-hui-projects .hl-slide-project', 'href'),
      paintLinks: await attrs('.hl-hui-projects .hl-slide-paint', 'href'),
      targets: await attrs('.hl-hui-projects a[role="menuitem"]', 'target'),
    };
    await page.screenshot({ path: `${input.artifacts}/histomicsui_stand_in_${order}.png` });

    answer = projectsAnswer(input.plainSlideId);
    await page.evaluate((id) => window.histomicsUIStandIn.open(id), input.plainSlideId);
    await answer;
    await page.waitForLoadState('networkidle');
    seen.plainMenus = await page.locator('.hl-hui-projects').count();

    answer = projectsAnswer(input.slideId);
    await page.evaluate((id) => window.histomicsUIStandIn.open(id), input.slideId);
    await answer;
    await page.locator('.hl-hui-projects').waitFor({ state: 'attached' });
    await page.evaluate(() => window.histomicsUIStandIn.open(null));
    seen.closedMenus = await page.locator('.hl-hui-projects').count();
    result[phase] = seen;
    await page.close();
  }
});
