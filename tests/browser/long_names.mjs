// Drives Debian Chromium (npm playwright-core, through driver.mjs) through every view of a project whose category
// has the longest name allowed (100 characters) for test_long_names.py: the project page, guided labeling, painting
// and review. On each it measures what a person would see: whether the page scrolls sideways (its width beyond the
// window's), and each element that shows the long name: whether it ends inside the window, whether the layout cuts
// it short, and whether hovering it (its own `title` or an ancestor's) gives the whole name. Prints one JSON object of observations on stdout; the
// pytest test makes the assertions. Screenshots go to `artifacts`.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, projectId, itemId, longName, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 60000;
const WIDTH = 1280;

const result = { consoleErrors: {}, pages: {} };
let phase = 'start';
let page;

/** The page's sideways overflow and every innermost element whose text holds the long name. */
const measure = () => page.evaluate((name) => {
  const shown = [];
  for (const element of document.querySelectorAll('body *')) {
    const own = [...element.childNodes].some((node) => node.nodeType === 3 && node.textContent.includes(name));
    const box = element.getBoundingClientRect();
    if (!own || !box.width) {
      continue; // not this element's own text, or not shown
    }
    const titled = element.closest('[title]');
    // cut short: the element or one of its next three ancestors hides some of its content
    let clipped = false;
    for (let at = element, depth = 0; at && depth < 4 && !clipped; at = at.parentElement, depth += 1) {
      const style = getComputedStyle(at);
      clipped = style.overflowX !== 'visible' && at.clientWidth > 0 &&
        (at.scrollWidth > at.clientWidth + 1 || at.scrollHeight > at.clientHeight + 1);
    }
    // where it ends as seen: its box, cut at the right edge of every ancestor that hides what overflows it
    let right = box.right;
    for (let at = element.parentElement; at && at !== document.body; at = at.parentElement) {
      if (getComputedStyle(at).overflowX !== 'visible') {
        right = Math.min(right, at.getBoundingClientRect().right);
      }
    }
    shown.push({
      tag: element.tagName.toLowerCase(), cls: String(element.className), clipped,
      right: Math.round(right), top: Math.round(box.top), hover: Boolean(titled && titled.getAttribute('title').includes(name)),
    });
  }
  return {
    overflow: document.documentElement.scrollWidth - window.innerWidth, shown,
  };
}, input.longName);

const visit = async (name, hash, ready) => {
  phase = name;
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}${hash}`);
  for (const selector of ready) {
    await page.locator(selector).first().waitFor();
  }
  await page.waitForTimeout(300); // the last layout after the data arrived
  result.pages[name] = await measure();
  await page.screenshot({ path: `${input.artifacts}/long_names_${name}.png` });
};

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_long_names_${failed}.png`, fullPage: true }),
}, async (browser) => {
  page = await openPage(await browser.newContext({ viewport: { width: WIDTH, height: 900 } }), TIMEOUT, result,
    () => phase);
  phase = 'login';
  await login(page, input.url, input.login, input.password);
  result.window = WIDTH;
  await visit('project', '', ['.hl-project-name', '.hl-category-name']);
  // a name over the limit, and one that differs from another only in case: each refused, saying why, in the page
  const detail = '.hl-categories-section .hl-section-message.alert-danger .hl-message-detail';
  const refused = async (name) => {
    const before = await page.locator(detail).count() ? await page.locator(detail).innerText() : null;
    await page.locator('.hl-new-name').fill(name);
    await page.locator('.hl-add').click();
    await page.waitForFunction(([selector, old]) => {
      const shown = document.querySelector(selector);
      return shown && shown.innerText !== old;
    }, [detail, before]);
    const said = (await page.locator(detail).innerText()).trim();
    const kept = await page.locator('.hl-new-name').inputValue();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    return { said, kept: kept === name, overflow };
  };
  phase = 'refused'; // the browser logs each refusal (a 400) as a console error
  result.refused = { tooLong: await refused('x'.repeat(101)), caseOnly: await refused('STROMA') };
  await visit('guided', '/label', ['.hl-card', '.hl-choose']);
  await visit('paint', `/paint/${input.itemId}`, ['.hl-bulk.hl-map-idle']);
  await visit('review', '/review', ['.hl-review-card', '.hl-curve-point']);
});
