// The project page (`#histomics_label/project/<folderId>`): name, categories, slides with their segment counts, the
// latest training round, and a Label button (the guided labeling view) for users with write access. Whatever request
// fails, the page says which one and why.
import { labelRoute, loadProject } from '../api.js';

const { _ } = girder;
const { View } = girder.views;

const esc = _.escape;

/** "0.912" → "91.2 %"; a round without a held-out set has no accuracy. */
function percent(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

function categoriesHtml(categories) {
  if (!categories.length) {
    return '<p class="hl-empty">No categories yet.</p>';
  }
  const rows = categories.map((category) => `
    <li class="hl-category${category.excluded ? ' hl-excluded' : ''}">
      <span class="hl-swatch" style="background-color: ${esc(category.color || 'transparent')}"></span>
      <span class="hl-category-name">${esc(category.name)}</span>
      ${category.excluded ? '<span class="hl-excluded-mark" title="Never trained nor suggested">excluded</span>' : ''}
    </li>`);
  return `<ul class="hl-categories">${rows.join('')}</ul>`;
}

function slidesHtml(slides) {
  if (!slides.length) {
    return '<p class="hl-empty">No slides: add large-image items to this folder.</p>';
  }
  const rows = slides.map((slide) => `
    <tr class="hl-slide">
      <td><a href="#item/${esc(slide._id)}">${esc(slide.name)}</a></td>
      <td class="hl-segments">${slide.segments === null ? 'not segmented yet' : esc(slide.segments.toLocaleString())}</td>
    </tr>`);
  return `<table class="table table-condensed hl-slides">
      <thead><tr><th>Slide</th><th>Segments</th></tr></thead>
      <tbody>${rows.join('')}</tbody>
    </table>`;
}

function roundHtml(rounds) {
  const latest = rounds[rounds.length - 1];
  if (!latest) {
    return '<p class="hl-round hl-empty">No training round yet.</p>';
  }
  return `<dl class="hl-round">
      <dt>Round</dt><dd class="hl-round-number">${esc(latest.number)}</dd>
      <dt>Held-out balanced accuracy</dt><dd class="hl-accuracy">${percent(latest.heldOutBalancedAccuracy)}</dd>
      <dt>Labels used</dt><dd class="hl-labels-used">${esc(latest.labelsUsed)}</dd>
    </dl>`;
}

const ProjectView = View.extend({
  className: 'hl-project-view',

  initialize(settings) {
    this.folderId = settings.folderId;
    this.state = { status: 'loading' };
    this.render();
    loadProject(this.folderId).then(
      (data) => this._show({ status: 'ready', ...data }),
      (error) => this._show({ status: 'failed', error }),
    );
  },

  _show(state) {
    this.state = state;
    this.render();
  },

  render() {
    const { status } = this.state;
    if (status === 'loading') {
      this.$el.html('<div class="hl-project hl-loading">Loading the project…</div>');
    } else if (status === 'failed') {
      this.$el.html(`<div class="hl-project">
          <div class="hl-error alert alert-danger" role="alert">
            <strong>Could not load this Histomics Label project.</strong>
            <div class="hl-error-detail">${esc(this.state.error.message)}</div>
          </div>
          <a href="#folder/${esc(this.folderId)}">Back to the folder</a>
        </div>`);
    } else {
      const { project, slides, rounds } = this.state;
      this.$el.html(`<div class="hl-project">
          <h2 class="hl-project-name">${esc(project.name)}</h2>
          <div class="hl-project-actions">
            ${project.access && project.access.write ? `<a class="hl-label-link btn btn-primary btn-sm"
                href="#${esc(labelRoute(project._id))}" title="Label the suggested segments">Label</a>` : ''}
            <a class="hl-folder-link" href="#folder/${esc(project._id)}">Open the folder</a>
          </div>
          <section><h3>Categories</h3>${categoriesHtml(project.config.categories || [])}</section>
          <section><h3>Slides</h3>${slidesHtml(slides)}</section>
          <section><h3>Latest round</h3>${roundHtml(rounds)}</section>
        </div>`);
    }
    return this;
  },
});

export default ProjectView;
