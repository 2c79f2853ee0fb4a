// The settings section of the project page: the pipeline settings as a form for admins, which PUTs the changed
// fields, and as a read-only list for everyone else. The server validates; its 400 message is shown as it comes and
// the form keeps what was typed.
import { request } from '../../api.js';
import { LiveView, detailOf, requestOf } from '../common.js';
import messageTemplate from './sectionMessage.pug';
import template from './settings.pug';

export const CHOICES = {
  feature: ['vector', 'image'],
  extractor: ['efficientnet_lite0', 'uni', 'timm', 'imported'],
  model: ['linear', 'seeded_kmeans', 'cnn_torch', 'cnn_keras'],
  certainty: ['confidence', 'margin', 'negative_entropy', 'batchbald', 'coreset', 'entropy_diverse',
    'kmeans_cold_start', 'random'],
};

/** The settings shown, in order. */
const FIELDS = [
  ['radius', 'Superpixel radius', 'integer', 'analysis pixels'],
  ['compactness', 'Compactness', 'number', 'SLIC compactness'],
  ['magnification', 'Magnification', 'number', 'analysis magnification'],
  ['patchSize', 'Patch size', 'integer', 'masked patch size (image representation)'],
  ['feature', 'Representation', 'choice', 'vector: embeddings; image: masked patches'],
  ['extractor', 'Feature extractor', 'choice', 'imported: embeddings computed elsewhere, imported per slide'],
  ['model', 'Model', 'choice', 'linear, seeded_kmeans (vector); cnn_torch, cnn_keras (image)'],
  ['certainty', 'Certainty metric', 'choice', 'how suggestions are ranked'],
  ['embeddingMap', 'Embedding map', 'boolean',
    'colour segments by a UMAP of their embeddings (painting view; about 10 s a slide)'],
  ['batchSize', 'Batch size', 'integer', 'suggestions per batch'],
  ['retrainEvery', 'Retrain every', 'integer', 'new labels (0: only on request)'],
  ['auditEvery', 'Random check every', 'integer', 'labels: one suggestion in this many is a random check (0: none)'],
].map(([name, label, kind, help]) => ({ name, label, kind, help }));

/** A choice's options: the known ones, after the current value when it is none of them. */
function choices(name, value) {
  return CHOICES[name].includes(value) ? CHOICES[name] : [value, ...CHOICES[name]];
}

/** The fields of the form that differ from `config` (numbers as numbers; what is not a number as typed). */
function changedSettings(form, config) {
  const changes = {};
  FIELDS.forEach(({ name, kind }) => {
    const element = form.querySelector(`[name="${name}"]`);
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
    if (value !== config[name]) {
      changes[name] = value;
    }
  });
  return changes;
}

const SettingsView = LiveView.extend({
  events: {
    'submit .hl-settings-form': '_save',
  },

  /** `folderId`, `project` (whose `config` a save replaces) and `admin` as CategoriesView takes them. */
  initialize({ folderId, project, admin }) {
    Object.assign(this, { folderId, project, admin });
    this.message = null;
    this.render();
  },

  render() {
    this.$el.html(template({
      fields: FIELDS, config: this.project.config, admin: this.admin, message: this.message, choices, detailOf,
      requestOf,
    }));
    return this;
  },

  _save(event) {
    event.preventDefault();
    const changes = changedSettings(event.currentTarget, this.project.config);
    const fields = Object.keys(changes);
    if (!fields.length) {
      this.message = { kind: 'info', title: 'Nothing changed.' };
      this.render();
      return;
    }
    const controls = this.$('.hl-settings-form').find('input, button, select').prop('disabled', true);
    request('PUT', `histomics_label/project/${this.folderId}`, { json: changes }).then(({ data }) => {
      if (this._destroyed) {
        return;
      }
      this.project.config = data.config;
      this.message = { kind: 'success', title: `Saved: ${fields.join(', ')}.` };
      this.render();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.message = { kind: 'danger', title: 'Could not save the settings.', error };
      controls.prop('disabled', false);
      // the form keeps what was typed, to be corrected
      this.$('.hl-settings-message').remove();
      this.$el.prepend(messageTemplate({ message: this.message, className: 'hl-settings-message', detailOf,
        requestOf }));
    });
  },
});

export default SettingsView;
