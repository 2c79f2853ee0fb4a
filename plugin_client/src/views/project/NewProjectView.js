// Setting a folder up as a project (`#histomics_label/project/<folderId>/new`, from the folder page's Histomics Label
// button, for the folder's admins): the folder's large images with their thumbnails and the segments each is expected
// to get at the chosen magnification and radius, the categories, and the representation, model and ranking. Create
// PUTs the configuration (the server checks it; a refusal is shown and the form keeps what was typed), then starts
// segment generation (POST .../segments) and opens the project page, which follows the jobs.
//
// The expected count is what SLIC is asked for: tissue area / (2 · radius)² at the analysis magnification, the tissue
// share read off the slide's thumbnail (pixels with some colour or darker than glass: cruder than the server's tissue
// mask, 35 % against its 38 % on the sample); SLIC often makes fewer (the sample: 242 for 365 asked), so the page
// says "up to". The defaults are the server's own, from its API description.
import { apiUrl, getJson, projectRoute, request } from '../../api.js';
import { LiveView, detailOf, requestOf } from '../common.js';
import { PALETTE, nextColour } from './CategoriesView.js';
import { CHOICES } from './SettingsView.js';
import template from './newProject.pug';

const { $ } = girder;

const THUMBNAIL_WIDTH = 256;
const SETTINGS = ['magnification', 'radius', 'feature', 'extractor', 'model', 'certainty'];

/** The share of a thumbnail's pixels that are tissue: darker than glass or with some colour. */
async function tissueShare(url) {
  const image = new Image();
  image.crossOrigin = 'use-credentials';
  image.src = url;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let tissue = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b] = [pixels[i], pixels[i + 1], pixels[i + 2]];
    tissue += (Math.max(r, g, b) - Math.min(r, g, b) > 18 || (r + g + b) / 3 < 200) ? 1 : 0;
  }
  return tissue / (pixels.length / 4);
}

const NewProjectView = LiveView.extend({
  className: 'hl-new-project-view',

  events: {
    'input .hl-new-setting': '_settingChanged',
    'change .hl-new-setting': '_settingChanged',
    'input .hl-new-category-name': '_categoryEdited',
    'input .hl-new-category-colour': '_categoryEdited',
    'click .hl-new-add-category': '_addCategory',
    'click .hl-new-remove-category': '_removeCategory',
    'submit .hl-new-project-form': '_create',
  },

  initialize({ folderId }) {
    this.folderId = folderId;
    this.categories = [{ name: '', color: PALETTE[0] }, { name: '', color: PALETTE[1] }];
    this.message = null;
    this.busy = false;
    this.$el.html('<div class="hl-loading">Loading the folder…</div>');
    this._load();
  },

  async _load() {
    let folder;
    let items;
    let describe;
    try {
      [folder, items, describe] = await Promise.all([
        getJson(`folder/${this.folderId}`), getJson(`item?folderId=${this.folderId}&limit=0&sort=name`),
        getJson('describe'),
      ]);
    } catch (error) {
      this.$el.html('').append($('<div class="alert alert-danger" role="alert"></div>')
        .text(`Could not load the folder: ${error.message}`));
      return;
    }
    const defaults = (describe.definitions.HistomicsLabelConfig || {}).properties || {};
    this.folder = folder;
    this.settings = Object.fromEntries(SETTINGS.map((name) => [name, (defaults[name] || {}).default]));
    this.slides = items.filter((item) => item.largeImage).map((item) => ({
      _id: item._id, name: item.name,
      thumbnail: apiUrl(`item/${item._id}/tiles/thumbnail?width=${THUMBNAIL_WIDTH}&encoding=PNG`),
    }));
    this.others = items.filter((item) => !item.largeImage);
    this.render();
    await Promise.all(this.slides.map((slide) => this._measure(slide)));
    this._showEstimates();
  },

  /** Read a slide's size, scanned magnification and tissue share (for its expected segment count). */
  async _measure(slide) {
    try {
      const [tiles, share] = await Promise.all([getJson(`item/${slide._id}/tiles`), tissueShare(slide.thumbnail)]);
      Object.assign(slide, { tiles, share });
    } catch (error) {
      slide.failed = error.message;
    }
  },

  render() {
    if (!this.folder) {
      return this;
    }
    this.$el.html(template({
      folder: this.folder, slides: this.slides, others: this.others, categories: this.categories,
      settings: this.settings, choices: CHOICES, message: this.message, busy: this.busy, detailOf, requestOf,
    }));
    this._showEstimates();
    return this;
  },

  /** Each slide's expected segments at the magnification and radius in the form. */
  _showEstimates() {
    const magnification = Number(this.settings.magnification);
    const radius = Number(this.settings.radius);
    this.slides.forEach((slide) => {
      const node = this.$(`.hl-new-slide[data-item="${slide._id}"] .hl-new-estimate`);
      if (slide.failed) {
        node.text(`Could not read this slide: ${slide.failed}`).addClass('text-danger');
        return;
      }
      if (!slide.tiles) {
        return;
      }
      const base = slide.tiles.magnification || magnification;
      const scale = Math.min(1, magnification / base);
      if (!(magnification > 0 && radius > 0)) {
        node.text('Give a magnification and a radius to see how many segments it gets.');
        return;
      }
      const area = slide.tiles.sizeX * slide.tiles.sizeY * scale * scale * slide.share;
      const segments = Math.max(1, Math.round(area / (2 * radius) ** 2));
      node.attr('data-segments', String(segments)).empty()
        .append(document.createTextNode(`up to ≈ ${segments.toLocaleString()} segments`), '<br>')
        .append($('<span class="hl-muted"></span>').text(
          `(what SLIC is asked for: tissue ≈ ${Math.round(slide.share * 100)} % of the slide, from its thumbnail; `
          + 'it often makes fewer, merging small pieces; scanned at '
          + `${slide.tiles.magnification ? `${slide.tiles.magnification}×` : 'an unrecorded magnification'})`));
    });
  },

  _settingChanged(event) {
    this.settings[event.currentTarget.name] = event.currentTarget.value;
    this._showEstimates();
  },

  _categoryEdited(event) {
    const row = $(event.currentTarget).closest('.hl-new-category');
    this.categories[Number(row.attr('data-index'))] = {
      name: row.find('.hl-new-category-name').val(), color: row.find('.hl-new-category-colour').val(),
    };
  },

  _addCategory() {
    this.categories.push({ name: '', color: nextColour(this.categories) });
    this.render();
    this.$('.hl-new-category-name').last().trigger('focus');
  },

  _removeCategory(event) {
    this.categories.splice(Number($(event.currentTarget).closest('.hl-new-category').attr('data-index')), 1);
    this.render();
  },

  /** The configuration the form says: the named categories, the settings as the server takes them. */
  _config() {
    const numbers = { magnification: Number(this.settings.magnification), radius: Number(this.settings.radius) };
    return {
      categories: this.categories.filter((c) => c.name.trim()).map((c) => ({ name: c.name.trim(), color: c.color })),
      ...this.settings, ...numbers,
    };
  },

  async _create(event) {
    event.preventDefault();
    const config = this._config();
    if (!config.categories.length) {
      this.message = { kind: 'warning', title: 'Name at least one category.' };
      this.render();
      return;
    }
    const segments = this.$('.hl-new-segments').prop('checked');
    this.busy = true;
    this.message = { kind: 'info', title: 'Creating the project…' };
    this.render();
    try {
      await request('PUT', `histomics_label/project/${this.folderId}`, { json: config });
    } catch (error) {
      this.busy = false;
      this.message = { kind: 'danger', title: 'The server did not accept this project.', error };
      this.render();
      return;
    }
    if (segments) {
      try {
        await request('POST', `histomics_label/project/${this.folderId}/segments`);
      } catch (error) {
        // the project exists: its page shows the slides and can start segment generation again
        this.busy = false;
        this.message = { kind: 'danger', title: 'The project was created, but segment generation did not start.',
          error };
        this.render();
        return;
      }
    }
    girder.router.navigate(projectRoute(this.folderId), { trigger: true });
  },
});

export default NewProjectView;
