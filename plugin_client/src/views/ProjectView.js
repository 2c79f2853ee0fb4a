// The project page (`#histomics_label/project/<folderId>`): name, categories, slides with their segment counts, the
// pipeline settings, the latest training round, and a Label button (the guided labeling view) for users with write
// access. Users with admin access on the folder also set the project up here: categories (add, colour, rename,
// hotkey, excluded, remove, merge with a confirmation), the settings (a form that PUTs the changed fields) and segment
// generation (one job per slide, its progress polled until done). Each section is drawn again from the server's
// answer after a change; whatever request fails, the section says which one and Girder's message.
import { labelRoute, loadProject } from '../api.js';
import {
  categoriesHtml, changed, mergeCategories, renameCategory, saveCategories,
} from './project/categories.js';
import { esc, messageHtml } from './project/common.js';
import {
  changedSettings, JOB, jobDone, lastLogLine, loadJob, loadSlides, saveSettings, settingsHtml, slidesHtml,
  startSegments,
} from './project/setup.js';
import './project/project.css';
import { paintRoute } from './bulk/BulkView.js';
import { reviewRoute } from './review/ReviewView.js';

const { View } = girder.views;

/** How often a running segment job is polled (ms). */
const JOB_POLL_MS = 1000;

/** "0.912" → "91.2 %"; a round without a held-out set has no accuracy. */
function percent(value) {
  return typeof value === 'number' ? `${(value * 100).toFixed(1)} %` : 'n/a';
}

function labels(count) {
  return count === 1 ? '1 label' : `${count} labels`;
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

  events: {
    // categories
    'change .hl-color-input': '_changeColour',
    'change .hl-hotkey-input': '_changeHotkey',
    'change .hl-excluded-toggle': '_toggleExcluded',
    'click .hl-rename': '_startRename',
    'click .hl-rename-cancel': '_cancelRename',
    'click .hl-rename-save': '_saveRename',
    'keydown .hl-rename-input': '_renameKey',
    'click .hl-remove': '_remove',
    'submit .hl-add-category': '_add',
    'submit .hl-merge-form': '_askMerge',
    'click .hl-merge-yes': '_merge',
    'click .hl-merge-no': '_cancelMerge',
    // setup
    'submit .hl-settings-form': '_saveSettings',
    'click .hl-make-segments': '_makeSegments',
  },

  initialize(settings) {
    this.folderId = settings.folderId;
    this.state = { status: 'loading' };
    this.ui = { renaming: null, merge: null, categoriesMessage: null, settingsMessage: null, slidesMessage: null,
      draft: {}, jobs: {}, busy: false };
    this._timers = new Set();
    this.render();
    loadProject(this.folderId).then(
      (data) => this._show({ status: 'ready', ...data }),
      (error) => this._show({ status: 'failed', error }),
    );
  },

  destroy(...args) {
    this._destroyed = true;
    this._timers.forEach((timer) => clearTimeout(timer));
    return View.prototype.destroy.apply(this, args);
  },

  _show(state) {
    if (this._destroyed) {
      return;
    }
    this.state = state;
    this.render();
  },

  _admin() {
    const { project } = this.state;
    return Boolean(project && project.access && project.access.admin);
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
      const { project, rounds } = this.state;
      const admin = this._admin();
      this.$el.html(`<div class="hl-project${admin ? ' hl-project-admin' : ''}">
          <h2 class="hl-project-name">${esc(project.name)}</h2>
          <div class="hl-project-actions">
            ${project.access && project.access.write ? `<a class="hl-label-link btn btn-primary btn-sm"
                href="#${esc(labelRoute(project._id))}" title="Label the suggested segments">Label</a>` : ''}
            <a class="hl-review-link btn btn-default btn-sm" href="#${esc(reviewRoute(project._id))}"
                title="All labels, agreement between labelers and with the model, the learning curve">Review</a>
            <a class="hl-folder-link" href="#folder/${esc(project._id)}">Open the folder</a>
            ${admin ? '' : '<span class="hl-muted hl-read-only-note">Only the folder\'s admins change the set-up.</span>'}
          </div>
          <section class="hl-categories-section"><h3>Categories</h3><div class="hl-categories-body"></div></section>
          <section class="hl-slides-section"><h3>Slides</h3><div class="hl-slides-body"></div></section>
          <section class="hl-settings-section"><h3>Settings</h3><div class="hl-settings-body"></div></section>
          <section><h3>Latest round</h3>${roundHtml(rounds)}</section>
        </div>`);
      this._renderCategories();
      this._renderSlides();
      this._renderSettings();
    }
    return this;
  },

  _renderCategories() {
    const ui = { admin: this._admin(), renaming: this.ui.renaming, merge: this.ui.merge,
      message: this.ui.categoriesMessage, draft: this.ui.draft };
    this.$('.hl-categories-body').html(categoriesHtml(this.state.project.config.categories || [], ui));
    const input = this.$('.hl-rename-input');
    if (input.length) {
      input.trigger('focus').trigger('select');
    }
  },

  _renderSlides() {
    const { project } = this.state;
    const ui = {
      admin: this._admin(), jobs: this.ui.jobs, message: this.ui.slidesMessage, busy: this.ui.busy,
      paint: project.access && project.access.write ? (itemId) => paintRoute(project._id, itemId) : null,
    };
    this.$('.hl-slides-body').html(slidesHtml(this.state.slides, ui));
  },

  _renderSettings() {
    const ui = { admin: this._admin(), message: this.ui.settingsMessage };
    this.$('.hl-settings-body').html(settingsHtml(this.state.project.config, ui));
  },

  // -- categories ----------------------------------------------------------------------------------------------------

  _categories() {
    return this.state.project.config.categories || [];
  },

  _nameOf(event) {
    return this.$(event.currentTarget).closest('.hl-category').attr('data-name');
  },

  /**
   * Run a category request (resolving with `{config, relabeled?}`), then draw the section from the server's answer;
   * `success` is the message, or a function of the answer that makes it.
   */
  _categoryRequest(promise, success, failure, after = () => {}) {
    this.$('.hl-categories-body').find('input, button, select').prop('disabled', true);
    promise.then((data) => {
      if (this._destroyed) {
        return;
      }
      this.state.project.config = data.config;
      after();
      this.ui.categoriesMessage = { kind: 'success', title: typeof success === 'function' ? success(data) : success };
      this._renderCategories();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.ui.categoriesMessage = { kind: 'danger', title: failure, error };
      this._renderCategories();
    });
  },

  _put(categories, success, failure, after) {
    const promise = saveCategories(this.folderId, categories).then((config) => ({ config }));
    this._categoryRequest(promise, success, failure, after);
  },

  _changeColour(event) {
    const name = this._nameOf(event);
    const color = event.currentTarget.value;
    this._put(changed(this._categories(), name, { color }), `${name}: colour ${color} saved.`,
      `Could not change the colour of ${name}.`);
  },

  _changeHotkey(event) {
    const name = this._nameOf(event);
    const hotkey = event.currentTarget.value.trim().toLowerCase() || null;
    this._put(changed(this._categories(), name, { hotkey }),
      hotkey ? `${name}: hotkey ${hotkey} saved.` : `${name}: hotkey removed.`,
      `Could not set the hotkey of ${name}.`);
  },

  _toggleExcluded(event) {
    const name = this._nameOf(event);
    const excluded = event.currentTarget.checked;
    this._put(changed(this._categories(), name, { excluded }),
      excluded ? `${name} is excluded: it never trains and is never suggested.` : `${name} is trained again.`,
      `Could not change whether ${name} is excluded.`);
  },

  _remove(event) {
    const name = this._nameOf(event);
    this._put(this._categories().filter((c) => c.name !== name), `${name} removed.`, `Could not remove ${name}.`);
  },

  _add(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const draft = {
      name: form.querySelector('.hl-new-name').value.trim(),
      color: form.querySelector('.hl-new-color').value,
      hotkey: form.querySelector('.hl-new-hotkey').value.trim().toLowerCase(),
    };
    this.ui.draft = draft; // kept if the server refuses it
    const category = { name: draft.name, color: draft.color, excluded: false, hotkey: draft.hotkey || null };
    this._put([...this._categories(), category], `${draft.name} added.`,
      `Could not add the category ${draft.name || '(no name)'}.`, () => { this.ui.draft = {}; });
  },

  _startRename(event) {
    this.ui.renaming = this._nameOf(event);
    this.ui.categoriesMessage = null;
    this._renderCategories();
  },

  _cancelRename() {
    this.ui.renaming = null;
    this._renderCategories();
  },

  _renameKey(event) {
    if (event.key === 'Enter') {
      event.preventDefault();
      this._saveRename(event);
    } else if (event.key === 'Escape') {
      this._cancelRename();
    }
  },

  _saveRename(event) {
    const oldName = this._nameOf(event);
    const newName = this.$(event.currentTarget).closest('.hl-category').find('.hl-rename-input').val().trim();
    if (newName === oldName) {
      this._cancelRename();
      return;
    }
    this._categoryRequest(renameCategory(this.folderId, oldName, newName),
      (data) => `${oldName} renamed to ${newName} (${labels(data.relabeled)} relabeled).`,
      `Could not rename ${oldName}.`, () => { this.ui.renaming = null; });
  },

  _askMerge(event) {
    event.preventDefault();
    const source = this.$('.hl-merge-source').val();
    const target = this.$('.hl-merge-target').val();
    if (source === target) {
      this.ui.categoriesMessage = { kind: 'warning', title: 'Choose two different categories to merge.' };
      this.ui.merge = { source, target };
    } else {
      this.ui.categoriesMessage = null;
      this.ui.merge = { source, target, confirming: true };
    }
    this._renderCategories();
  },

  _cancelMerge() {
    this.ui.merge = null;
    this.ui.categoriesMessage = { kind: 'info', title: 'Nothing merged.' };
    this._renderCategories();
  },

  _merge() {
    const { source, target } = this.ui.merge;
    this.ui.merge = null;
    this._categoryRequest(mergeCategories(this.folderId, source, target),
      (data) => `${source} merged into ${target} (${labels(data.relabeled)} relabeled).`,
      `Could not merge ${source} into ${target}.`);
  },

  // -- settings ------------------------------------------------------------------------------------------------------

  _saveSettings(event) {
    event.preventDefault();
    const changes = changedSettings(event.currentTarget, this.state.project.config);
    const fields = Object.keys(changes);
    if (!fields.length) {
      this.ui.settingsMessage = { kind: 'info', title: 'Nothing changed.' };
      this._renderSettings();
      return;
    }
    this.$('.hl-settings-form').find('input, button, select').prop('disabled', true);
    saveSettings(this.folderId, changes).then((config) => {
      if (this._destroyed) {
        return;
      }
      this.state.project.config = config;
      this.ui.settingsMessage = { kind: 'success', title: `Saved: ${fields.join(', ')}.` };
      this._renderSettings();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.ui.settingsMessage = { kind: 'danger', title: 'Could not save the settings.', error };
      this.$('.hl-settings-form').find('input, button, select').prop('disabled', false);
      // the form keeps what was typed, to be corrected
      this.$('.hl-settings-message').remove();
      this.$('.hl-settings-body').prepend(messageHtml(this.ui.settingsMessage, 'hl-settings-message'));
    });
  },

  // -- segment generation --------------------------------------------------------------------------------------------

  _makeSegments() {
    const force = this.$('.hl-force').prop('checked');
    this.ui.busy = true;
    this.ui.slidesMessage = { kind: 'info', title: 'Starting the segment jobs…' };
    this._renderSlides();
    startSegments(this.folderId, force).then((started) => {
      if (this._destroyed) {
        return;
      }
      const jobs = {};
      started.forEach((entry) => {
        if (entry.status === 'started') {
          jobs[entry.item] = { id: entry.job, status: JOB.QUEUED, current: 0, total: 0, message: '' };
        } else {
          jobs[entry.item] = { state: entry.status === 'current' ? 'current' : 'running-elsewhere' };
        }
      });
      this.ui.jobs = jobs;
      const count = started.filter((e) => e.status === 'started').length;
      this.ui.slidesMessage = { kind: 'info', title: count ? `Making segments for ${count} slide(s)…`
        : 'Every slide\'s segments are up to date.' };
      this._renderSlides();
      this._pollJobs();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.ui.busy = false;
      this.ui.slidesMessage = { kind: 'danger', title: 'Could not start segment generation.', error };
      this._renderSlides();
    });
  },

  _pollJobs() {
    const running = Object.entries(this.ui.jobs).filter(([, job]) => job.id && !jobDone(job));
    if (!running.length) {
      this._jobsFinished();
      return;
    }
    Promise.all(running.map(([item, job]) => loadJob(job.id).then((data) => {
      Object.assign(job, { status: data.status, current: data.progress ? data.progress.current : 0,
        total: data.progress ? data.progress.total : 0, message: data.progress ? data.progress.message : '' });
      if (job.status === JOB.ERROR || job.status === JOB.CANCELED) {
        return loadJob(job.id, true).then((full) => { job.error = lastLogLine(full) || 'the job failed'; });
      }
      return item;
    }))).then(() => {
      if (this._destroyed) {
        return;
      }
      this._renderSlides();
      const timer = setTimeout(() => {
        this._timers.delete(timer);
        this._pollJobs();
      }, JOB_POLL_MS);
      this._timers.add(timer);
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.ui.busy = false;
      this.ui.slidesMessage = { kind: 'danger', title: 'Could not follow the segment jobs.', error };
      this._renderSlides();
    });
  },

  _jobsFinished() {
    loadSlides(this.folderId).then((slides) => {
      if (this._destroyed) {
        return;
      }
      this.state.slides = slides;
      const failed = Object.values(this.ui.jobs).filter((job) => job.status === JOB.ERROR
        || job.status === JOB.CANCELED).length;
      this.ui.busy = false;
      this.ui.slidesMessage = failed
        ? { kind: 'danger', title: `${failed} segment job(s) failed.`,
          error: { message: 'The failed job\'s row in the table says why.' } }
        : { kind: 'success', title: 'Segments are ready.' };
      this._renderSlides();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.ui.busy = false;
      this.ui.slidesMessage = { kind: 'danger', title: 'The jobs ended but the slides could not be reloaded.', error };
      this._renderSlides();
    });
  },
});

export default ProjectView;
