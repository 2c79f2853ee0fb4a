// The setup sections of the project page: the slides with their segment counts (and, while segments are being made,
// each slide's job progress), and the pipeline settings: a form for admins that PUTs the changed fields, a read-only
// list for everyone else. The server validates; its 400 message is shown as it comes.
import { request } from '../../api.js';
import { esc, messageHtml } from './common.js';

/** Girder job statuses (girder_jobs JobStatus). */
export const JOB = { INACTIVE: 0, QUEUED: 1, RUNNING: 2, SUCCESS: 3, ERROR: 4, CANCELED: 5 };
const JOB_WORDS = { 0: 'waiting', 1: 'queued', 2: 'running', 3: 'done', 4: 'failed', 5: 'canceled' };

export function jobDone(job) {
  return [JOB.SUCCESS, JOB.ERROR, JOB.CANCELED].includes(job.status);
}

const CHOICES = {
  feature: ['vector', 'image'],
  extractor: ['efficientnet_lite0', 'uni', 'timm'],
  model: ['linear', 'seeded_kmeans', 'cnn_torch', 'cnn_keras'],
  certainty: ['confidence', 'margin', 'negative_entropy', 'batchbald', 'coreset', 'entropy_diverse',
    'kmeans_cold_start', 'random'],
};

/** The settings shown, in order: [field, label, kind, help]. */
const FIELDS = [
  ['radius', 'Superpixel radius', 'integer', 'analysis pixels'],
  ['compactness', 'Compactness', 'number', 'SLIC compactness'],
  ['magnification', 'Magnification', 'number', 'analysis magnification'],
  ['patchSize', 'Patch size', 'integer', 'masked patch size (image representation)'],
  ['feature', 'Representation', 'choice', 'vector: embeddings; image: masked patches'],
  ['extractor', 'Feature extractor', 'choice', ''],
  ['model', 'Model', 'choice', 'linear, seeded_kmeans (vector); cnn_torch, cnn_keras (image)'],
  ['certainty', 'Certainty metric', 'choice', 'how suggestions are ranked'],
  ['embeddingMap', 'Embedding map', 'boolean',
    'colour segments by a UMAP of their embeddings (painting view; about 10 s a slide)'],
  ['batchSize', 'Batch size', 'integer', 'suggestions per batch'],
  ['retrainEvery', 'Retrain every', 'integer', 'new labels (0: only on request)'],
];

// -- slides and segment jobs ---------------------------------------------------------------------------------------

export function loadSlides(folderId) {
  return request('GET', `histomics_label/project/${folderId}/slides`).then(({ data }) => data);
}

export function startSegments(folderId, force) {
  return request('POST', `histomics_label/project/${folderId}/segments`, { params: force ? { force: 'true' } : {} })
    .then(({ data }) => data);
}

export function loadJob(jobId, withLog = false) {
  return request('GET', `job/${jobId}`, { params: withLog ? { includeLog: 'true' } : undefined })
    .then(({ data }) => data);
}

/** The last non-empty line of a job's log (why it failed). */
export function lastLogLine(job) {
  const lines = (job.log || []).join('').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines[lines.length - 1] || '';
}

function jobHtml(job) {
  if (!job) {
    return '';
  }
  if (job.state === 'current' || job.state === 'running-elsewhere') {
    const text = job.state === 'current' ? 'up to date' : 'a job is already making them';
    return `<span class="hl-job" data-state="${esc(job.state)}">${esc(text)}</span>`;
  }
  const total = job.total || 0;
  const current = job.current || 0;
  const percent = total ? Math.round((100 * current) / total) : 0;
  const word = JOB_WORDS[job.status] || 'starting';
  const failed = job.status === JOB.ERROR || job.status === JOB.CANCELED;
  return `<div class="hl-job${failed ? ' hl-job-failed' : ''}" data-state="${esc(word)}">
      <progress class="hl-job-progress" max="${esc(total || 1)}" value="${esc(current)}"></progress>
      <span class="hl-job-status">${esc(word)}${total ? ` ${percent} %` : ''}</span>
      ${job.message && job.message !== word ? `<span class="hl-job-message">${esc(job.message)}</span>` : ''}
      ${job.error ? `<div class="hl-job-error text-danger">${esc(job.error)}</div>` : ''}
    </div>`;
}

/** The slides table; `ui` is `{admin, jobs: {itemId: job}, message, busy, paint}` where `paint(itemId)` gives the
 * route of the slide's painting view (null without write access). */
export function slidesHtml(slides, ui) {
  const jobs = ui.jobs || {};
  const showJobs = Object.keys(jobs).length > 0;
  const table = slides.length
    ? `<table class="table table-condensed hl-slides">
        <thead><tr><th>Slide</th><th>Segments</th><th></th>${showJobs ? '<th>Segment job</th>' : ''}</tr></thead>
        <tbody>${slides.map((slide) => `
          <tr class="hl-slide" data-item="${esc(slide._id)}">
            <td><a href="#item/${esc(slide._id)}">${esc(slide.name)}</a></td>
            <td class="hl-segments">${slide.segments === null ? 'not segmented yet'
    : esc(slide.segments.toLocaleString())}</td>
            ${ui.paint && slide.segments !== null ? `<td><a class="hl-paint-link" href="#${esc(ui.paint(slide._id))}"
                title="Paint labels on this slide with a brush">Paint</a></td>` : '<td></td>'}
            ${showJobs ? `<td class="hl-slide-job">${jobHtml(jobs[slide._id])}</td>` : ''}
          </tr>`).join('')}
        </tbody>
      </table>`
    : '<p class="hl-empty">No slides: add large-image items to this folder.</p>';
  if (!ui.admin) {
    return table;
  }
  return `${messageHtml(ui.message, 'hl-slides-message')}
    ${table}
    ${slides.length ? `<div class="hl-segment-actions">
      <button type="button" class="btn btn-primary btn-sm hl-make-segments"${ui.busy ? ' disabled' : ''}
        title="Make segments and features for the slides that lack current ones">Make segments</button>
      <label class="hl-force-label"><input type="checkbox" class="hl-force"${ui.busy ? ' disabled' : ''}>
        remake every slide</label>
    </div>` : ''}`;
}

// -- settings ------------------------------------------------------------------------------------------------------

function inputHtml([field, label, kind], value) {
  const id = `hl-setting-${field}`;
  if (kind === 'choice') {
    const choices = CHOICES[field].includes(value) ? CHOICES[field] : [value, ...CHOICES[field]];
    return `<select class="form-control input-sm hl-setting" id="${id}" name="${field}">
        ${choices.map((c) => `<option value="${esc(c)}"${c === value ? ' selected' : ''}>${esc(c)}</option>`).join('')}
      </select>`;
  }
  if (kind === 'boolean') {
    return `<input type="checkbox" class="hl-setting" id="${id}" name="${field}"${value ? ' checked' : ''}
        aria-label="${esc(label)}">`;
  }
  const step = kind === 'integer' ? '1' : 'any';
  return `<input type="number" step="${step}" class="form-control input-sm hl-setting" id="${id}" name="${field}"
      value="${esc(value)}" aria-label="${esc(label)}">`;
}

/** The settings: a form for admins, a list for everyone else; `ui` is `{admin, message}`. */
export function settingsHtml(config, ui) {
  if (!ui.admin) {
    return `<dl class="hl-settings-readonly">${FIELDS.map(([field, label]) => `
        <dt>${esc(label)}</dt><dd data-field="${field}">${esc(config[field])}</dd>`).join('')}
      </dl>`;
  }
  return `${messageHtml(ui.message, 'hl-settings-message')}
    <form class="hl-settings-form form-horizontal" novalidate>
      ${FIELDS.map((spec) => `<div class="form-group">
          <label class="col-sm-3 control-label" for="hl-setting-${spec[0]}">${esc(spec[1])}</label>
          <div class="col-sm-3">${inputHtml(spec, config[spec[0]])}</div>
          <div class="col-sm-6 hl-setting-help">${esc(spec[3])}</div>
        </div>`).join('')}
      <div class="form-group"><div class="col-sm-offset-3 col-sm-9">
        <button type="submit" class="btn btn-primary btn-sm hl-save-settings">Save settings</button>
        <span class="hl-muted">Changed segment settings take effect at the next “Make segments”.</span>
      </div></div>
    </form>`;
}

/** The fields of the form that differ from `config` (numbers as numbers; what is not a number as typed). */
export function changedSettings(form, config) {
  const changes = {};
  FIELDS.forEach(([field, , kind]) => {
    const element = form.querySelector(`[name="${field}"]`);
    if (!element) {
      return;
    }
    let value = element.value;
    if (kind === 'boolean') {
      value = element.checked;
    } else if (kind !== 'choice') {
      const trimmed = value.trim();
      value = trimmed !== '' && Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
    }
    if (value !== config[field]) {
      changes[field] = value;
    }
  });
  return changes;
}

export function saveSettings(folderId, changes) {
  return request('PUT', `histomics_label/project/${folderId}`, { json: changes }).then(({ data }) => data.config);
}
