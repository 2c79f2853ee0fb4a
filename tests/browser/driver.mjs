// What the Node browser-test drivers beside this file (project_page.mjs, project_setup.mjs, slide_button.mjs,
// guided_labeling.mjs, bulk_labeling.mjs, review.mjs) share: their input, Debian Chromium launched through npm
// playwright-core, Girder's login dialog, the console errors recorded per phase, PNG screenshots measured in the page,
// and the run that turns a failure into `result.failure` and prints the observations as one JSON object on stdout
// for the pytest test beside the driver (test_<driver>.py), which makes the assertions.
import { chromium } from 'playwright-core';

/** The driver's input: the JSON object its pytest test puts in the HL_BROWSER_INPUT environment variable. */
export function readInput() {
  return JSON.parse(process.env.HL_BROWSER_INPUT);
}

/**
 * Chromium's flags, the same for every driver: no sandbox (root in CI), no GPU, nothing fetched in the background,
 * and WebGL through SwiftShader (software), which geojs needs to draw slides.
 */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader'];

/** Headless Chromium from `executablePath` (Debian's, see histomics_label.devtools.client_build) with CHROMIUM_ARGS. */
export function launchChromium(executablePath) {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}

/**
 * Records the page's console errors and uncaught errors (as "uncaught: <message>") in
 * `result.consoleErrors[phaseOf()]`, a list made on the first error of each phase: the phase is read when the error
 * comes, so a driver that sets its phase before each step gets them per step.
 */
export function trackConsole(page, result, phaseOf) {
  const errorsOf = (name) => (result.consoleErrors[name] ||= []);
  page.on('console', (message) => {
    if (message.type() === 'error') {
      errorsOf(phaseOf()).push(message.text());
    }
  });
  page.on('pageerror', (error) => errorsOf(phaseOf()).push(`uncaught: ${error.message}`));
}

/** A new page of `context` whose actions time out after `timeout` ms, its errors tracked (see trackConsole). */
export async function openPage(context, timeout, result, phaseOf) {
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  trackConsole(page, result, phaseOf);
  return page;
}

/**
 * The server's labels of project `projectId` (GET .../labels with `params`, limit 0), asked with the page's login token
 * under the page's own API root (so under `/` and `/histomics` alike), each as {item, segment, category, view}.
 */
export function storedLabels(page, projectId, params = {}) {
  return page.evaluate(async ([project, query]) => {
    const search = new URLSearchParams({ ...query, limit: 0 });
    const response = await fetch(`${girder.rest.getApiRoot()}/histomics_label/project/${project}/labels?${search}`,
      { headers: { 'Girder-Token': girder.auth.getCurrentToken() } });
    const labels = await response.json();
    return labels.map((label) => ({ item: label.item, segment: label.segment, category: label.category,
      view: label.view }));
  }, [projectId, params]);
}

/**
 * Shorthands for the page `pageOf()` answers (a driver may open another): `texts(selector)`, the trimmed texts of the
 * elements; `attrs(selector, name)`, their attribute `name`; `projectsAnswer(itemId)`, the next answer to a request
 * for the projects of an item.
 */
export function pageQueries(pageOf) {
  return {
    texts: (selector) => pageOf().locator(selector).allTextContents().then((all) => all.map((t) => t.trim())),
    attrs: (selector, name) => pageOf().locator(selector).evaluateAll(
      (all, attr) => all.map((el) => el.getAttribute(attr)), name),
    projectsAnswer: (itemId) => pageOf().waitForResponse((response) => response.url().includes(
      `/histomics_label/item/${itemId}/projects`)),
  };
}

/** Logs `login` in through Girder's login dialog on the home page of `url`; done once the user menu shows. */
export async function login(page, url, user, password) {
  // A person types again when the dialog says "Login failed" with the password field empty: on a cold first load
  // the dialog can draw itself again while it opens and lose what was typed (seen once in CI: a 401, the login
  // name still there, the password empty). Three tries, each checking what the fields hold before sending.
  for (let attempt = 1; ; attempt += 1) {
    await page.goto(`${url}/`);
    await page.locator('.g-login').click();
    await page.locator('#g-login').fill(user);
    await page.locator('#g-password').fill(password);
    await page.waitForTimeout(200);
    const typed = await page.locator('#g-login').inputValue() === user
      && await page.locator('#g-password').inputValue() === password;
    if (typed) {
      await page.locator('#g-login-button').click();
      try {
        await page.locator('.g-user-dropdown-link').waitFor({ timeout: attempt < 3 ? 20000 : 60000 });
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    } else if (attempt >= 3) {
      throw new Error('login: the dialog kept losing what was typed');
    }
  }
}

/**
 * Runs in the page (page.evaluate sends its source, so it is self-contained): decodes base64 PNGs through an image
 * and a canvas, reads the pixels of `region` ([x, y, width, height], the whole image without one) of each, and
 * measures every `stride`-th pixel: of the first image, its distinct colours (quantized to 5 bits a channel), the
 * share of near-white pixels (all channels > 245), the count of the outline's yellow (r > 220, g > 200, b < 90) and
 * the mean greenness g − (r + b) / 2; with a second image, the share of those pixels that differ from it by more than
 * `threshold` in a channel.
 */
async function measureInPage([pngs, { stride, region, threshold }]) {
  const read = async (data) => {
    const image = new Image();
    image.src = `data:image/png;base64,${data}`;
    await image.decode();
    const canvas = document.createElement('canvas');
    canvas.width = image.naturalWidth;
    canvas.height = image.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(image, 0, 0);
    const [x, y, width, height] = region || [0, 0, canvas.width, canvas.height];
    return { pixels: ctx.getImageData(x, y, width, height).data, width: canvas.width, height: canvas.height };
  };
  const [first, second] = await Promise.all(pngs.map(read));
  const a = first.pixels;
  const seen = new Set();
  let white = 0;
  let yellow = 0;
  let green = 0;
  let changed = 0;
  let count = 0;
  for (let i = 0; i < a.length; i += 4 * stride) {
    const [r, g, b] = [a[i], a[i + 1], a[i + 2]];
    seen.add(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3));
    white += r > 245 && g > 245 && b > 245 ? 1 : 0;
    yellow += r > 220 && g > 200 && b < 90 ? 1 : 0;
    green += g - (r + b) / 2;
    if (second) {
      const o = second.pixels;
      changed += Math.max(Math.abs(r - o[i]), Math.abs(g - o[i + 1]), Math.abs(b - o[i + 2])) > threshold ? 1 : 0;
    }
    count += 1;
  }
  return { distinct: seen.size, whiteShare: white / count, yellow, greenness: green / count,
    changedShare: second ? changed / count : null, width: first.width, height: first.height };
}

/**
 * What a PNG screenshot (a Buffer) shows, measured in `page` (which has the canvas to decode it) over every
 * `stride`-th pixel of `region` ([x, y, width, height] in the image, all of it by default):
 * {distinct, whiteShare, yellow, greenness, width, height} as measureInPage describes (width and height: the image's).
 */
export async function pngStats(page, png, { stride = 1, region = null } = {}) {
  const { changedShare, ...stats } = await page.evaluate(measureInPage,
    [[png.toString('base64')], { stride, region, threshold: 0 }]);
  return stats;
}

/** The share of every `stride`-th pixel that differs by more than `threshold` in a channel between two PNGs. */
export async function pngChangedShare(page, before, after, { stride = 5, threshold = 24 } = {}) {
  const { changedShare } = await page.evaluate(measureInPage,
    [[before.toString('base64'), after.toString('base64')], { stride, region: null, threshold }]);
  return changedShare;
}

/**
 * How green the element `selector` is along a horizontal band (page coordinates y, x0..x1, five pixels high): the
 * mean of g − (r + b) / 2 over its pixels, from a screenshot of the element (for a map: the slide and every layer
 * WebGL drew on it).
 */
export async function greenness(page, selector, y, x0, x1) {
  const box = await page.locator(selector).boundingBox();
  const png = await page.locator(selector).screenshot();
  const band = [Math.round(x0 - box.x), Math.round(y - box.y) - 2, Math.round(x1 - x0), 5];
  return (await pngStats(page, png, { region: band })).greenness;
}

/** A mouse drag, left button held, from (x0, y) to (x1, y) in page pixels, in twenty moves (a brush stroke). */
export async function drag(page, x0, x1, y) {
  await page.mouse.move(x0, y);
  await page.mouse.down();
  await page.mouse.move(x1, y, { steps: 20 });
  await page.mouse.up();
}

/**
 * Runs a driver: launches Chromium (`executablePath`), awaits `steps(browser)`, and if a step throws records
 * `result.failure` as "<phase>: <message>" and saves a screenshot of the current page (if still open) with the
 * Playwright screenshot options `failureShot(phase)` answers; then closes the browser and prints `result` as JSON on
 * stdout. `phaseOf` and `pageOf` answer the driver's current phase and page.
 */
export async function run({ executablePath, result, phaseOf, pageOf, failureShot }, steps) {
  const browser = await launchChromium(executablePath);
  try {
    await steps(browser);
  } catch (error) {
    result.failure = `${phaseOf()}: ${error.message}`;
    const page = pageOf();
    if (page && !page.isClosed()) {
      await page.screenshot(failureShot(phaseOf())).catch(() => {});
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result));
}
