// Drives Debian Chromium (npm playwright-core, through driver.mjs) through Histomics Label's guided labeling view
// for test_guided_labeling.py: logs in, reads the project page's latest round, opens the view from its Label
// button, looks at the slide viewer (geojs, WebGL through SwiftShader) around the current segment, labels suggestions
// by keyboard (one marked "not classifiable" with its key), undoes one, retrains from the button, and makes one save
// (by a click on a category button) fail on purpose; then a read-only user's view. The suggestions the page was
// served are recorded beside what it drew of them (the audit cards' badge, the reasons). Prints one JSON object of
// observations on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, reader: {login, password}, projectId, keys, artifacts, chromium}
// `keys` are the keys to press, one label each ('1'..'9', a hotkey letter, 'Enter', 'x' for not classifiable).
import { login, openPage, pngStats, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;

const result = { consoleErrors: {}, labeled: [] };
let phase = 'start';
let page;
await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_guided_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  page = await openPage(context, TIMEOUT, result, () => phase);

  const text = async (selector) => (await page.locator(selector).first().innerText()).trim();
  const texts = (selector) => page.locator(selector).allInnerTexts().then((all) => all.map((t) => t.trim()));
  /** No save in flight, no row loading, every image of the page loaded and, unless `counted` is false, the label
   * count answered. */
  const idle = (counted = true) => page.waitForFunction((counting) => !document.querySelector('.hl-card.hl-saving') &&
    !(counting && document.querySelector('.hl-label-count.hl-counting')) &&
    !document.querySelector('.hl-guided-body.hl-loading') &&
    [...document.querySelectorAll('.hl-guided img')].every((img) => img.complete), counted);
  const row = () => page.locator('.hl-card').evaluateAll((cards) => cards.map((card) => ({
    item: card.dataset.item,
    segment: Number(card.dataset.segment),
    predicted: card.querySelector('.hl-predicted').textContent.trim(),
    score: card.querySelector('.hl-score').textContent.trim(),
    label: card.querySelector('.hl-chosen') ? card.querySelector('.hl-chosen').textContent.trim() : null,
    strategy: card.dataset.strategy,
    badge: card.querySelector('.hl-audit-badge')?.textContent.trim() ?? null,
    reason: card.querySelector('.hl-card-reason').textContent.trim(),
  })));
  const images = () => page.locator('.hl-guided img').evaluateAll((all) => all.map((img) => ({
    cls: img.className, naturalWidth: img.naturalWidth, src: img.getAttribute('src'),
  })));
  const current = () => page.locator('.hl-card.hl-current').evaluate((card) => ({
    item: card.dataset.item,
    segment: Number(card.dataset.segment),
    predicted: card.querySelector('.hl-predicted').textContent.trim(),
    strategy: card.dataset.strategy,
  }));
  /** Whether an answer is the suggestions the guided view asks for. */
  const isSuggestions = (response) => /\/histomics_label\/project\/[^/]+\/suggestions\?/.test(response.url());

  /**
   * The slide viewer once it shows the current card's segment and has drawn: which segment it outlines, how many
   * distinct colours it shows, how many pixels are the outline's yellow, its magnification (screen pixels per
   * slide pixel) and its size.
   */
  const focus = async () => {
    const { segment } = await current();
    await page.locator(`.hl-focus-map.hl-map-idle[data-segment="${segment}"]`).waitFor();
    await page.waitForTimeout(500);
    // every pixel of the viewer's screenshot
    const { distinct, yellow } = await pngStats(page, await page.locator('.hl-focus-map').screenshot());
    const node = page.locator('.hl-focus-map');
    return { segment: Number(await node.getAttribute('data-segment')), item: await node.getAttribute('data-item'),
      current: segment, distinct, yellow, scale: Number(await node.getAttribute('data-scale')),
      width: await node.evaluate((el) => el.clientWidth), height: await node.evaluate((el) => el.clientHeight),
      // the card's information and buttons beside the viewer, not pushed below it by a long line
      beside: await page.evaluate(() => document.querySelector('.hl-focus-side').getBoundingClientRect().left >=
        document.querySelector('.hl-focus-frame').getBoundingClientRect().right) };
  };

  phase = 'login';
  await login(page, input.url, input.login, input.password);

  phase = 'open';
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-round .hl-accuracy').waitFor();
  result.projectPage = {
    round: await text('.hl-round .hl-round-number'),
    accuracy: await text('.hl-round .hl-accuracy'),
    accuracyTitle: await page.locator('.hl-round .hl-accuracy').getAttribute('title'),
    audit: await text('.hl-round .hl-audit'),
    auditTitle: await page.locator('.hl-round .hl-audit').getAttribute('title'),
    labelingTime: await text('.hl-round .hl-labeling-time'),
    // each term beside its value: how far below the term's top the value's top lies, in pixels
    rows: await page.locator('dl.hl-round').evaluate((dl) => [...dl.querySelectorAll('dt')].map((dt) => ({
      term: dt.innerText.trim(), value: dt.nextElementSibling.innerText.trim(),
      below: Math.round(dt.nextElementSibling.getBoundingClientRect().top - dt.getBoundingClientRect().top),
    }))),
  };
  await page.screenshot({ path: `${input.artifacts}/project_page_round.png`, fullPage: true });
  const served = page.waitForResponse(isSuggestions);
  await page.locator('.hl-label-link').click();
  await page.locator('.hl-card').first().waitFor();
  await idle();
  result.open = {
    hash: await page.evaluate(() => window.location.hash),
    title: await text('.hl-guided-title'),
    count: await text('.hl-label-count'),
    round: await text('.hl-round-number'),
    accuracy: await text('.hl-accuracy'),
    changed: await text('.hl-changed'),
    accuracyTitle: await page.locator('.hl-accuracy-stat').getAttribute('title'),
    audit: await text('.hl-audit'),
    auditTitle: await page.locator('.hl-audit-stat').getAttribute('title'),
    choices: await texts('.hl-choose .hl-category-name'),
    unclassifiable: { text: await text('.hl-unclassifiable .hl-category-name'),
      key: await text('.hl-unclassifiable kbd') },
    served: await (await served).json(),
    row: await row(),
    images: await images(),
    focus: await focus(),
  };
  await page.screenshot({ path: `${input.artifacts}/guided_first_row.png`, fullPage: true });

  phase = 'label';
  const started = Date.now();
  const rows = [result.open.row.map((card) => card.segment)];
  // the label count asked for after the next-to-last label is answered late, after the last label's: the count
  // shown must still be the newest
  let delayNext = false;
  let lateAnswered = Promise.resolve();
  const counts = (url) => /\/histomics_label\/project\/[^/]+\/labels$/.test(url.pathname) &&
    url.searchParams.get('limit') === '1';
  await page.route(counts, async (route) => {
    if (!delayNext || route.request().method() !== 'GET') {
      await route.continue();
      return;
    }
    delayNext = false;
    let answered;
    lateAnswered = new Promise((resolve) => { answered = resolve; });
    const response = await route.fetch();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    await route.fulfill({ response });
    answered();
  });
  // slide and segment-image tiles the page asks the server for (a tile fetched ahead is not asked for again)
  await page.evaluate(() => performance.setResourceTimingBufferSize(100000));
  /** Before a key: note when it was pressed and, from then on, when the viewer has drawn a card other than `shown`. */
  const watchNextCard = (shown) => page.evaluate((segment) => {
    const map = document.querySelector('.hl-focus-map');
    window.hlKeyAt = performance.now();
    window.hlDrawnAt = null;
    const observer = new MutationObserver(() => {
      if (map.classList.contains('hl-map-idle') && map.dataset.segment !== segment) {
        window.hlDrawnAt = performance.now();
        observer.disconnect();
      }
    });
    observer.observe(map, { attributes: true, attributeFilter: ['class', 'data-segment'] });
  }, String(shown));
  /** The tiles asked for from the key to the next card drawn (those fetched ahead for later cards come after). */
  const tilesAskedForNextCard = () => page.evaluate(() => performance.getEntriesByType('resource')
    .filter((entry) => entry.name.includes('/tiles/zxy/') && entry.startTime >= window.hlKeyAt &&
      entry.startTime < window.hlDrawnAt)
    .map((entry) => entry.name.replace(/^.*\/item\//, '')));
  for (const [index, key] of input.keys.entries()) {
    const card = await current();
    card.focusBadge = await page.locator('.hl-focus-where .hl-audit-badge').count();
    // the viewer fetches the tiles around the card that comes next once the current one is drawn (a labeler looks
    // at a card far longer than that); the tiles asked for from the key to the next card drawn are counted
    card.prefetched = await page.locator('.hl-focus-map[data-prefetched]')
      .getAttribute('data-prefetched', { timeout: 10000 }).then(Number, () => null);
    await watchNextCard(card.segment);
    delayNext = index === input.keys.length - 2;
    await page.keyboard.press(key);
    await idle(false);
    card.next = (await current()).segment;
    await page.locator(`.hl-focus-map.hl-map-idle[data-segment="${card.next}"]`).waitFor();
    card.tileRequests = await tilesAskedForNextCard();
    const segments = (await row()).map((c) => c.segment);
    if (segments.join() !== rows[rows.length - 1].join()) {
      rows.push(segments);
      // what the server suggests now, before any card of the new row is labeled (the row was asked for early)
      result.serverRow = await page.evaluate(async ([projectId, limit]) => {
        const response = await fetch(`api/v1/histomics_label/project/${projectId}/suggestions?limit=${limit}`,
          { headers: { 'Girder-Token': girder.auth.getCurrentToken() } });
        return (await response.json()).map((s) => s.segment);
      }, [input.projectId, segments.length]);
    } else {
      // the card shows what was chosen while its row is still on the page
      const shown = (await row()).find((c) => c.segment === card.segment);
      card.shown = shown ? shown.label : null;
    }
    result.labeled.push({ key, ...card });
    if (result.labeled.length === 1) {
      result.focusAfterFirst = await focus();
    }
  }
  result.labelSeconds = (Date.now() - started) / 1000;
  await lateAnswered;
  await page.unroute(counts);
  await idle();
  result.rows = rows;
  result.afterLabels = { count: await text('.hl-label-count'), images: await images(),
    choices: await texts('.hl-choose .hl-category-name') };
  await page.screenshot({ path: `${input.artifacts}/guided_labeled.png`, fullPage: true });

  phase = 'undo';
  await page.keyboard.press('Backspace');
  await page.waitForFunction((count) => document.querySelector('.hl-label-count').textContent.trim() === count,
    String(Number(result.afterLabels.count) - 1));
  await idle();
  result.undo = {
    current: await current(),
    currentLabel: await page.locator('.hl-card.hl-current .hl-chosen').count(),
    focusLabel: await text('.hl-focus-label'),
    count: await text('.hl-label-count'),
  };

  phase = 'retrain';
  const before = { round: await text('.hl-round-number'), row: (await row()).map((c) => c.segment) };
  const trainStart = Date.now();
  await page.locator('.hl-retrain').click();
  await page.waitForFunction((round) => document.querySelector('.hl-round-number').textContent.trim() !== round,
    before.round, { timeout: 240000 });
  await page.waitForFunction(() => /trained on/.test(document.querySelector('.hl-train-status').textContent),
    null, { timeout: 60000 });
  await idle();
  result.retrain = {
    seconds: (Date.now() - trainStart) / 1000,
    before,
    round: await text('.hl-round-number'),
    accuracy: await text('.hl-accuracy'),
    changed: await text('.hl-changed'),
    accuracyTitle: await page.locator('.hl-accuracy-stat').getAttribute('title'),
    audit: await text('.hl-audit'),
    auditTitle: await page.locator('.hl-audit-stat').getAttribute('title'),
    status: await text('.hl-train-status'),
    row: await row(),
    images: await images(),
    messages: await texts('.hl-message'),
  };
  await page.screenshot({ path: `${input.artifacts}/guided_retrained.png`, fullPage: true });

  phase = 'failedSave';
  await page.route('**/histomics_label/project/*/labels', (route) => (route.request().method() === 'PUT'
    ? route.fulfill({ status: 400, contentType: 'application/json',
      body: JSON.stringify({ message: 'Injected failure', type: 'validation' }) })
    : route.continue()));
  // a click on a category button does what its key does: here the save it makes fails
  const target = await current();
  await page.locator('.hl-choose[data-category="tumor"]').click();
  await page.locator('.hl-message').first().waitFor();
  await idle();
  result.failedSave = {
    target,
    message: await text('.hl-message'),
    label: (await row()).find((c) => c.segment === target.segment).label,
  };
  await page.screenshot({ path: `${input.artifacts}/guided_failed_save.png`, fullPage: true });
  await page.unroute('**/histomics_label/project/*/labels');

  phase = 'jump';
  // "Show on slide" opens the painting view at the current card's segment; Back returns to the row
  const shown = await current();
  await page.locator('.hl-focus-jump').click();
  await page.locator(`.hl-bulk.hl-map-idle[data-segment="${shown.segment}"]`).waitFor();
  result.jump = {
    card: shown, hash: await page.evaluate(() => window.location.hash),
    view: (await page.locator('.hl-bulk-map').getAttribute('data-view')).split(',').map(Number),
  };
  await page.locator('.hl-back').click();
  await page.locator('.hl-card').first().waitFor();
  result.jump.backHash = await page.evaluate(() => window.location.hash);

  phase = 'reader';
  // a user with read access only: no Label button, and the label route says why it does not label
  const readerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await openPage(readerContext, TIMEOUT, result, () => phase);
  await login(page, input.url, input.reader.login, input.reader.password);
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}`);
  await page.locator('.hl-project-name').waitFor();
  result.reader = { labelButtons: await page.locator('.hl-label-link').count() };
  await page.goto(`${input.url}/#histomics_label/project/${input.projectId}/label`);
  await page.locator('.hl-guided .hl-error').waitFor();
  result.reader.message = await text('.hl-guided .hl-error');
  result.reader.cards = await page.locator('.hl-card').count();
  await page.screenshot({ path: `${input.artifacts}/guided_reader.png`, fullPage: true });
});
