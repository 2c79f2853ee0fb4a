// Drives Debian Chromium (npm playwright-core, through driver.mjs) through Histomics Label's review view for
// test_review.py: logs in as the admin, opens the review route, sorts by the model's certainty (least, then most
// certain first), filters by disagreement and by labeler, groups by category, approves one label, overrides another
// and relabels a third, reads the agreement tables, the learning curve (both series, against labels and against
// labeling minutes) and the reliability figure, makes one review fail on purpose; then a read-only user's view.
// Prints one JSON object of observations on stdout; the pytest test makes the assertions.
//
// Input: a JSON object in the HL_BROWSER_INPUT environment variable:
//   {url, login, password, reader: {login, password}, projectId, secondId, artifacts, chromium}
import { login, openPage, readInput, run } from './driver.mjs';

const input = readInput();
const TIMEOUT = 30000;
const ROUTE = `${input.url}/#histomics_label/project/${input.projectId}/review`;

const result = { consoleErrors: {} };
let phase = 'start';
let page;

/** A new page of `context`, logged in as `user`. */
async function loggedIn(context, user, password) {
  const tab = await openPage(context, TIMEOUT, result, () => phase);
  await login(tab, input.url, user, password);
  return tab;
}

const text = async (selector) => (await page.locator(selector).first().innerText()).trim();
/**
 * Nothing loading or saving in the view, and every image loaded. Up to 90 s: a listing of 24 cards asks the tile
 * server for 24 region thumbnails, which on CI's two shared cores once took over the default 30 s.
 */
const idle = () => page.waitForFunction(() => !document.querySelector('.hl-review .hl-loading') &&
  !document.querySelector('.hl-review-saving') &&
  [...document.querySelectorAll('.hl-review img')].every((img) => img.complete), null, { timeout: 90000 });
const cards = () => page.locator('.hl-review-card').evaluateAll((all) => all.map((card) => ({
  labelId: card.dataset.labelId,
  item: card.dataset.item,
  segment: Number(card.dataset.segment),
  category: card.querySelector('.hl-review-category').textContent.trim(),
  labeler: card.querySelector('.hl-review-labeler').textContent.trim(),
  date: card.querySelector('.hl-review-date').textContent.trim(),
  predicted: card.querySelector('.hl-review-predicted').textContent.trim(),
  // how far apart (px) the vertical centres of the model line's swatch, category and probability are: 0 on one line
  modelSpread: (() => {
    const centres = ['.hl-swatch', '.hl-review-predicted', '.hl-review-certainty'].map((selector) => {
      const box = card.querySelector(`.hl-review-model ${selector}`).getBoundingClientRect();
      return box.top + box.height / 2;
    });
    return Math.round(Math.max(...centres) - Math.min(...centres));
  })(),
  certainty: card.dataset.certainty,
  certaintyText: card.querySelector('.hl-review-certainty')?.textContent.trim() ?? '',
  flagged: Boolean(card.querySelector('.hl-review-flag')),
  state: card.querySelector('.hl-review-state').textContent.trim(),
})));
const cardState = (labelId) => page.locator(`.hl-review-card[data-label-id="${labelId}"] .hl-review-state`)
  .innerText().then((t) => t.trim());
/** What a card leads with (its first line's category and swatch colour) and the labeler's category it shows. */
const cardLead = (labelId) => page.locator(`.hl-review-card[data-label-id="${labelId}"] .hl-review-fields`)
  .evaluate((fields) => ({
    lead: fields.firstElementChild.querySelector('strong').textContent.trim(),
    leadColour: getComputedStyle(fields.firstElementChild.querySelector('.hl-swatch')).backgroundColor,
    original: fields.querySelector('.hl-review-category').textContent.trim(),
  }));
/** The learning curve as drawn: both series' points (with their data), interval bars, axis titles and note. */
const curve = () => page.locator('.hl-review-curve').evaluate((box) => {
  const points = (selector) => [...box.querySelectorAll(selector)].map((c) => ({
    round: c.dataset.round, x: c.dataset.x, labels: c.dataset.labels, accuracy: c.dataset.accuracy,
    low: c.dataset.low, high: c.dataset.high }));
  const rounds = (selector) => [...box.querySelectorAll(selector)].map((g) => g.dataset.round);
  const chart = box.querySelector('.hl-review-curve-chart');
  return {
    axis: chart ? chart.dataset.axis : null,
    pressed: box.querySelector('.hl-curve-x.active')?.dataset.axis,
    points: points('.hl-review-curve-chart .hl-curve-point[data-round]'),
    intervals: rounds('.hl-curve-interval'),
    audit: points('.hl-review-curve-chart .hl-curve-audit-point[data-round]'),
    auditIntervals: rounds('.hl-curve-audit-interval'),
    legend: [...box.querySelectorAll('.hl-curve-legend text')].map((t) => t.textContent.trim()),
    axisLabels: [...box.querySelectorAll('.hl-curve-axis-label')].map((t) => t.textContent.trim()),
    note: box.querySelector('.hl-review-curve-note')?.textContent.trim() ?? null,
    empty: box.querySelector('.hl-review-no-curve')?.textContent.trim() ?? null,
  };
});
/** Change a filter and wait for the page of labels it asks for. */
async function filter(name, value) {
  await page.locator(`.hl-review-filters select[name="${name}"]`).selectOption(value);
  await idle();
  return { total: await text('.hl-review-total'), cards: await cards() };
}
/** The choice on a card other than its category. */
const otherChoice = (labelId) => page.locator(`.hl-review-card[data-label-id="${labelId}"]`).evaluate((card) => {
  const choices = [...card.querySelectorAll('.hl-review-choice option')].map((o) => o.value);
  return choices.find((c) => c !== card.dataset.category);
});

await run({
  executablePath: input.chromium, result, phaseOf: () => phase, pageOf: () => page,
  failureShot: (failed) => ({ path: `${input.artifacts}/failure_review_${failed}.png`, fullPage: true }),
}, async (browser) => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  phase = 'login';
  page = await loggedIn(context, input.login, input.password);

  phase = 'open';
  await page.goto(ROUTE);
  await page.locator('.hl-review-card').first().waitFor();
  await page.locator('.hl-review-pairs').waitFor();
  await page.locator('.hl-curve-point').first().waitFor();
  await page.locator('.hl-reliability-chart, .hl-reliability-none').first().waitFor();
  await idle();
  result.open = {
    hash: await page.evaluate(() => window.location.hash),
    title: await text('.hl-review-title'),
    total: await text('.hl-review-total'),
    cards: await cards(),
    actions: await page.locator('.hl-review-approve').count(),
    images: await page.locator('.hl-review img').evaluateAll((all) => all.map((img) => ({
      naturalWidth: img.naturalWidth, src: img.getAttribute('src') }))),
    curve: await curve(),
    reliability: await page.locator('.hl-review-reliability').evaluate((box) => {
      const bins = (selector) => [...box.querySelectorAll(selector)].map((c) => ({
        count: c.dataset.count, confidence: c.dataset.confidence, accuracy: c.dataset.accuracy, low: c.dataset.low,
        high: c.dataset.high, r: Number(c.getAttribute('r')), cx: Number(c.getAttribute('cx')),
        cy: Number(c.getAttribute('cy')) }));
      const chart = box.querySelector('.hl-reliability-chart');
      const ece = box.querySelector('.hl-reliability-ece');
      return {
        round: chart && chart.dataset.round,
        calibrated: bins('.hl-reliability-chart .hl-reliability-point'),
        raw: bins('.hl-reliability-chart .hl-reliability-raw'),
        diagonal: Boolean(box.querySelector('.hl-reliability-diagonal')),
        diagonalEnds: [...box.querySelectorAll('.hl-reliability-diagonal')].flatMap((line) => [
          [Number(line.getAttribute('x1')), Number(line.getAttribute('y1'))],
          [Number(line.getAttribute('x2')), Number(line.getAttribute('y2'))]]),
        eceRaw: ece && ece.dataset.raw,
        eceCalibrated: ece && ece.dataset.calibrated,
        eceText: ece && ece.textContent.replace(/\s+/g, ' ').trim(),
        temperature: box.querySelector('.hl-reliability-temperature')?.dataset.temperature,
        temperatureText: box.querySelector('.hl-reliability-temperature')?.textContent.trim(),
      };
    }),
  };
  await page.screenshot({ path: `${input.artifacts}/review_open.png`, fullPage: true });
  // the panels from a full-page shot, clear of Girder's fixed header (an element shot scrolls it under the header)
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${input.artifacts}/review_panels.png`, fullPage: true,
    clip: await page.locator('.hl-review-panels').boundingBox() });

  // each thumbnail carries its segment's outline, in the thumbnail's own base-pixel frame
  result.outlines = await page.locator('.hl-review-card').evaluateAll((all) => all.map((card) => {
    const svg = card.querySelector('.hl-thumbnail-outline');
    return { segment: Number(card.dataset.segment), item: card.dataset.item,
      viewBox: svg && svg.getAttribute('viewBox'),
      points: svg && svg.querySelector('.hl-outline-line').getAttribute('points') };
  }));

  phase = 'jump';
  const first = page.locator('.hl-review-card').first();
  const jumped = { segment: Number(await first.getAttribute('data-segment')), item: await first.getAttribute('data-item') };
  await first.locator('.hl-review-jump').click();
  await page.locator(`.hl-bulk.hl-map-idle[data-segment="${jumped.segment}"]`).waitFor();
  jumped.hash = await page.evaluate(() => window.location.hash);
  jumped.view = (await page.locator('.hl-bulk-map').getAttribute('data-view')).split(',').map(Number);
  jumped.legend = await page.locator('.hl-legend .hl-legend-row[data-kind="outline"]').textContent();
  await page.screenshot({ path: `${input.artifacts}/review_show_on_slide.png` });
  await page.locator('.hl-back').click();
  await page.locator('.hl-review-card').first().waitFor();
  jumped.backHash = await page.evaluate(() => window.location.hash);
  result.jump = jumped;
  await idle();

  phase = 'minutes';
  await page.locator('.hl-curve-x[data-axis="minutes"]').click();
  await page.locator('.hl-review-curve-chart[data-axis="minutes"], .hl-review-no-curve').first().waitFor();
  result.minutes = await curve();
  await page.locator('.hl-review-curve').screenshot({ path: `${input.artifacts}/review_curve_minutes.png` });
  await page.locator('.hl-curve-x[data-axis="labels"]').click();
  await page.locator('.hl-review-curve-chart[data-axis="labels"]').waitFor();
  // back to the top, where the next phases' cards are: lazy thumbnails far from the viewport never load
  await page.evaluate(() => window.scrollTo(0, 0));

  phase = 'certainty';
  result.certainty = { least: await filter('sort', 'certainty:1'), most: await filter('sort', 'certainty:-1') };
  await page.screenshot({ path: `${input.artifacts}/review_certainty.png`, fullPage: true });
  await filter('sort', 'updated:-1');

  phase = 'disagree';
  result.disagree = await filter('disagree', 'true');
  await page.screenshot({ path: `${input.artifacts}/review_disagree.png`, fullPage: true });

  phase = 'labeler';
  await filter('disagree', '');
  result.labeler = await filter('labeler', input.secondId);

  phase = 'grouped';
  await page.locator('.hl-review-filters select[name="group"]').selectOption('category');
  await page.locator('.hl-review-group').first().waitFor();
  result.grouped = await page.locator('.hl-review-group').evaluateAll((groups) => groups.map((group) => ({
    name: group.querySelector('.hl-review-group-name').textContent.trim(),
    count: group.querySelector('.hl-review-group-count').textContent.trim(),
    categories: [...group.querySelectorAll('.hl-review-category')].map((c) => c.textContent.trim()),
  })));
  await page.screenshot({ path: `${input.artifacts}/review_grouped.png`, fullPage: true });

  phase = 'actions';
  const targets = (await cards()).map((card) => card.labelId);
  const [approveId, overrideId, relabelId, failId] = targets;
  await page.locator(`.hl-review-card[data-label-id="${approveId}"] .hl-review-approve`).click();
  await page.locator(`.hl-review-card.hl-review-approved[data-label-id="${approveId}"]`).waitFor();
  const overrideTo = await otherChoice(overrideId);
  await page.locator(`.hl-review-card[data-label-id="${overrideId}"] .hl-review-choice`).selectOption(overrideTo);
  await page.locator(`.hl-review-card[data-label-id="${overrideId}"] .hl-review-override`).click();
  await page.locator(`.hl-review-card.hl-review-overridden[data-label-id="${overrideId}"]`).waitFor();
  const orderBefore = (await cards()).map((card) => card.labelId);
  const relabelCard = (await cards()).find((card) => card.labelId === relabelId);
  const relabelTo = await otherChoice(relabelId);
  await page.locator(`.hl-review-card[data-label-id="${relabelId}"] .hl-review-choice`).selectOption(relabelTo);
  await page.locator(`.hl-review-card[data-label-id="${relabelId}"] .hl-review-relabel`).click();
  await page.locator('.hl-message.alert-success').waitFor();
  await idle();
  result.actions = {
    approve: { labelId: approveId, state: await cardState(approveId) },
    override: { labelId: overrideId, category: overrideTo, state: await cardState(overrideId),
      ...await cardLead(overrideId) },
    relabel: { labelId: relabelId, item: relabelCard.item, segment: relabelCard.segment, category: relabelTo,
      message: await text('.hl-message.alert-success'), orderBefore,
      orderAfter: (await cards()).map((card) => card.labelId) },
  };
  // with no filter and no grouping (newest first), a relabel shows the new label right after its card: none moves
  await filter('labeler', '');
  await filter('group', '');
  const unfiltered = (await cards()).map((card) => card.labelId);
  // a card of the other labeler where both agree, relabeled to another category: my label of it changes
  const other = (await cards()).find((card) => card.labeler !== input.login && card.segment !== relabelCard.segment &&
    input.sameSegments.includes(card.segment));
  const successes = await page.locator('.hl-message.alert-success').count();
  const otherTo = await otherChoice(other.labelId);
  await page.locator(`.hl-review-card[data-label-id="${other.labelId}"] .hl-review-choice`).selectOption(otherTo);
  await page.locator(`.hl-review-card[data-label-id="${other.labelId}"] .hl-review-relabel`).click();
  await page.waitForFunction((count) => document.querySelectorAll('.hl-message.alert-success').length > count,
    successes);
  await idle();
  result.actions.inPlace = { labelId: other.labelId, segment: other.segment, category: otherTo,
    orderBefore: unfiltered, cardsAfter: (await cards()).map((card) => ({ labelId: card.labelId,
      segment: card.segment, labeler: card.labeler, category: card.category })) };
  await page.screenshot({ path: `${input.artifacts}/review_actions.png`, fullPage: true });

  phase = 'agreement';
  // a fresh page: the tables as the server computes them after the reviews and the relabel
  await page.reload();
  await page.locator('.hl-review-pairs').waitFor();
  await page.locator('.hl-review-overall').waitFor();
  await idle();
  result.agreement = {
    pairs: await page.locator('.hl-review-pair').evaluateAll((rows) => rows.map((row) => ({
      logins: row.dataset.logins,
      count: row.querySelector('.hl-review-count').textContent.trim(),
      agreement: row.querySelector('.hl-review-agree').textContent.trim(),
      kappa: row.querySelector('.hl-review-kappa').textContent.trim(),
    }))),
    vsModel: await page.locator('.hl-review-vs-model').evaluateAll((rows) => rows.map((row) => ({
      login: row.dataset.login, kappa: row.querySelector('.hl-review-kappa').textContent.trim() }))),
    overall: await page.locator('.hl-review-overall').evaluate((box) => ({
      count: box.querySelector('.hl-review-count').textContent.trim(),
      kappa: box.querySelector('.hl-review-kappa').textContent.trim(),
      matrix: [...box.querySelectorAll('.hl-review-confusion tbody tr')].map((tr) => [...tr.querySelectorAll('td')]
        .map((td) => td.textContent.trim())),
    })),
  };
  await page.locator('.hl-review-agreement').screenshot({ path: `${input.artifacts}/review_agreement.png` });
  await page.locator('.hl-review-curve').screenshot({ path: `${input.artifacts}/review_curve.png` });

  phase = 'failedReview';
  await filter('labeler', input.secondId);
  await page.route('**/histomics_label/project/*/labels/*/review**', (route) => route.fulfill({
    status: 400, contentType: 'application/json',
    body: JSON.stringify({ message: 'Injected failure', type: 'validation' }) }));
  await page.locator(`.hl-review-card[data-label-id="${failId}"] .hl-review-approve`).click();
  await page.locator('.hl-message.alert-danger').waitFor();
  await idle();
  result.failedReview = {
    labelId: failId, message: await text('.hl-message.alert-danger'), state: await cardState(failId),
  };
  await page.screenshot({ path: `${input.artifacts}/review_failed.png`, fullPage: true });
  await page.unroute('**/histomics_label/project/*/labels/*/review**');

  phase = 'reader';
  page = await loggedIn(await browser.newContext({ viewport: { width: 1280, height: 900 } }), input.reader.login,
    input.reader.password);
  await page.goto(ROUTE);
  await page.locator('.hl-review-card').first().waitFor();
  await idle();
  result.reader = {
    cards: await page.locator('.hl-review-card').count(),
    actions: await page.locator('.hl-review-actions').count(),
    access: await text('.hl-review-access'),
  };
  await page.screenshot({ path: `${input.artifacts}/review_reader.png`, fullPage: true });
});
