// Drives Debian Chromium (npm playwright-core, through driver.mjs) through the project page's set-up controls for
// test_project_setup.py: as the admin, edits the categories, makes two requests the server refuses, saves the radius
// and makes segments from the button; then, as a reader, looks for edit controls. Prints one JSON object of
// observations on stdout; the pytest test makes the assertions. Screenshots go to `artifacts`.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, reader: {login, password}, projectId, radius, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;
const SEGMENTS_TIMEOUT = 600000;

const result = { consoleErrors: {} };
let phase = 'start';
let page;

const texts = (selector) => page.locator(selector).allInnerTexts().then((all) => all.map((t) => t.trim()));
const text = async (selector) => (await page.locator(selector).innerText()).trim().replace(/\s+/g, ' ');
const names = () => page.locator('.hl-category').evaluateAll((all) => all.map((el) => el.dataset.name));
const row = (name) => page.locator(`.hl-category[data-name="${name}"]`);
const swatchOf = (name) => row(name).locator('.hl-swatch').evaluate((el) => getComputedStyle(el).backgroundColor);
/** Wait for the categories section's message after a request (the controls are disabled while it runs). */
async function categoriesMessage(kind) {
  await page.locator(`.hl-categories-message.alert-${kind}`).waitFor();
  return text('.hl-categories-message');
}

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_setup_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await openPage(context, TIMEOUT, result, () => phase);

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-add-category').waitFor();
  await page.screenshot({ path: `${input.artifacts}/project_setup_start.png`, fullPage: true });
  result.notSlides = await page.locator('.hl-not-slide').evaluateAll((all) => all.map((entry) => ({
    item: entry.dataset.item, name: entry.querySelector('a').textContent,
    reason: entry.querySelector('.hl-not-slide-reason').textContent })));

  phase = 'colourBlind';
  // red and green categories: the page warns that they look alike to colour-blind eyes and offers safe colours
  const lookAlike = () => page.locator('.hl-look-alike-pair').evaluateAll((all) => all.map((pair) => ({
    first: pair.dataset.first, second: pair.dataset.second, text: pair.textContent.replace(/\s+/g, ' ').trim() })));
  result.colourBlind = { before: await lookAlike() };
  await page.locator('.hl-safe-colours').click();
  await categoriesMessage('success');
  result.colourBlind.message = await text('.hl-categories-message');
  result.colourBlind.after = await lookAlike();
  result.colourBlind.swatches = [await swatchOf('tumor'), await swatchOf('stroma')];

  phase = 'add';
  // the keyboard's place is ringed: Tab from the name field to the colour field
  await page.locator('.hl-new-name').focus();
  await page.keyboard.press('Tab');
  result.focusRing = await page.evaluate(() => {
    const style = getComputedStyle(document.activeElement);
    return { element: document.activeElement.className, style: style.outlineStyle, width: style.outlineWidth };
  });
  await page.locator('.hl-new-name').fill('necrosis');
  await page.locator('.hl-new-color').fill('#4363d8');
  await page.locator('.hl-new-hotkey').fill('n');
  await page.locator('.hl-add').click();
  await row('necrosis').waitFor();
  await categoriesMessage('success');
  await page.locator('.hl-new-name').fill('debris');
  await page.locator('.hl-add').click();
  await row('debris').waitFor();
  result.added = {
    names: await names(),
    swatch: await swatchOf('necrosis'),
    hotkey: await row('necrosis').locator('.hl-hotkey-input').inputValue(),
  };

  phase = 'colour';
  await row('tumor').locator('.hl-color-input').fill('#ff8000');
  await page.locator('.hl-categories-message.alert-success', { hasText: 'colour #ff8000' }).waitFor();
  result.recoloured = await swatchOf('tumor');

  phase = 'hotkey';
  await row('tumor').locator('.hl-hotkey-input').fill('t');
  await row('tumor').locator('.hl-hotkey-input').press('Tab');
  await page.locator('.hl-categories-message.alert-success', { hasText: 'hotkey t saved' }).waitFor();
  result.hotkeyed = await row('tumor').locator('.hl-hotkey-input').inputValue();

  phase = 'rename';
  await row('stroma').locator('.hl-rename').click();
  await page.locator('.hl-rename-input').fill('connective');
  await page.locator('.hl-rename-save').click();
  await row('connective').waitFor();
  result.renamed = { names: await names(), message: await categoriesMessage('success') };

  phase = 'exclude';
  await row('necrosis').locator('.hl-excluded-toggle').check();
  await page.locator('.hl-category.hl-excluded[data-name="necrosis"]').waitFor();
  result.excluded = { names: await texts('.hl-category.hl-excluded .hl-category-name') };

  phase = 'merge';
  await page.locator('.hl-merge-source').selectOption('debris');
  await page.locator('.hl-merge-target').selectOption('tumor');
  await page.locator('.hl-merge').click();
  await page.locator('.hl-merge-confirm').waitFor();
  result.merge = { question: await text('.hl-merge-confirm p') };
  await page.screenshot({ path: `${input.artifacts}/project_setup_merge_confirm.png`, fullPage: true });
  await page.locator('.hl-merge-no').click();
  await page.locator('.hl-merge-form').waitFor();
  result.merge.afterCancel = await names();
  await page.locator('.hl-merge-source').selectOption('debris');
  await page.locator('.hl-merge-target').selectOption('tumor');
  await page.locator('.hl-merge').click();
  await page.locator('.hl-merge-yes').click();
  await row('debris').waitFor({ state: 'detached' });
  result.merge.names = await names();
  result.merge.message = await categoriesMessage('success');

  phase = 'badHotkey';
  // a key the server refuses (1-9 pick categories by position): its 400 message is shown, nothing changes
  await row('connective').locator('.hl-hotkey-input').fill('3');
  await row('connective').locator('.hl-hotkey-input').press('Tab');
  result.badHotkey = { message: await categoriesMessage('danger'), names: await names() };
  await page.screenshot({ path: `${input.artifacts}/project_setup_refused.png`, fullPage: true });

  phase = 'badRadius';
  await page.locator('#hl-setting-radius').fill('1');
  await page.locator('.hl-save-settings').click();
  await page.locator('.hl-settings-message.alert-danger').waitFor();
  result.badRadius = {
    message: await text('.hl-settings-message'),
    value: await page.locator('#hl-setting-radius').inputValue(),
  };

  phase = 'settings';
  await page.locator('#hl-setting-radius').fill(String(input.radius));
  await page.locator('.hl-save-settings').click();
  await page.locator('.hl-settings-message.alert-success').waitFor();
  result.settings = {
    message: await text('.hl-settings-message'),
    radius: await page.locator('#hl-setting-radius').inputValue(),
  };

  phase = 'segments';
  await page.locator('.hl-make-segments').click();
  await page.locator('.hl-slide .hl-job').waitFor();
  result.segments = { jobSeen: true, states: [], started: await text('.hl-slides-message') };
  const deadline = Date.now() + SEGMENTS_TIMEOUT;
  // watch the progress until the slides are reloaded (the final message)
  while (Date.now() < deadline) {
    const job = await page.locator('.hl-slide .hl-job').first().innerText().catch(() => '');
    const state = job.trim().replace(/\s+/g, ' ');
    if (state && result.segments.states[result.segments.states.length - 1] !== state) {
      result.segments.states.push(state);
    }
    if (await page.locator('.hl-slides-message.alert-success, .hl-slides-message.alert-danger').count()) {
      break;
    }
    await page.waitForTimeout(250);
  }
  result.segments.message = await text('.hl-slides-message');
  result.segments.finalJob = await text('.hl-slide .hl-job');
  result.segments.count = await text('.hl-slide .hl-segments');
  await page.screenshot({ path: `${input.artifacts}/project_setup_done.png`, fullPage: true });

  phase = 'reader';
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(readerContext, TIMEOUT, result, () => phase);
  await login(page, input.url, input.reader.login, input.reader.password);
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-project-name').waitFor();
  await page.locator('.hl-settings-readonly').waitFor();
  result.reader = {
    categories: await texts('.hl-category .hl-category-name'),
    excluded: await texts('.hl-category.hl-excluded .hl-category-name'),
    hotkeys: await texts('.hl-category .hl-hotkey'),
    controls: await page.locator(['.hl-add-category', '.hl-merge-form', '.hl-color-input', '.hl-hotkey-input',
      '.hl-excluded-toggle', '.hl-rename', '.hl-remove', '.hl-settings-form', '.hl-make-segments',
      '.hl-project input', '.hl-project select', '.hl-project button'].join(', ')).count(),
    radius: await text('.hl-settings-readonly dd[data-field="radius"]'),
    segments: await text('.hl-slide .hl-segments'),
  };
  await page.screenshot({ path: `${input.artifacts}/project_setup_reader.png`, fullPage: true });
});
