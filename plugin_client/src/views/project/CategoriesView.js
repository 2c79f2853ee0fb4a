// The categories section of the project page. Everyone sees the list (swatch, name, hotkey, excluded mark); users
// with admin access on the folder also get the controls: a colour picker on each swatch, rename, hotkey, excluded,
// remove, a form to add a category and one to merge two (with a confirmation step). Every change is a request to the
// server (PUT of the whole `categories` list, or categories/rename, categories/merge); the section is drawn again
// from the server's answer, which becomes the project's configuration.
import { request } from '../../api.js';
import { LiveView, detailOf, requestOf, toHex } from '../common.js';
import template from './categories.pug';
import { lookAlike } from './colourVision.js';

/**
 * The server's default colours (core/io/labels.py DEFAULT_COLORS, checked equal by a test): Okabe and Ito's eight,
 * apart for colour-blind eyes, then Paul Tol's muted scheme.
 */
export const PALETTE = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000',
  '#332288', '#88ccee', '#44aa99', '#117733', '#999933', '#ddcc77', '#cc6677', '#882255'];

/** A colour of the palette not yet used by a category (the first one when all are). */
export function nextColour(categories) {
  const used = new Set(categories.map((c) => toHex(c.color)));
  return PALETTE.find((colour) => !used.has(colour)) || PALETTE[categories.length % PALETTE.length];
}

/** The categories as the server wants them back (only its four fields). */
function plain(categories) {
  return categories.map(({ name, color, excluded, hotkey }) => ({
    name, color, excluded: Boolean(excluded), hotkey: hotkey || null,
  }));
}

/** The list with one category changed (by name). */
function changed(categories, name, change) {
  return categories.map((c) => (c.name === name ? { ...c, ...change } : c));
}

function labels(count) {
  return count === 1 ? '1 label' : `${count} labels`;
}

const CategoriesView = LiveView.extend({
  events: {
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
    'click .hl-safe-colours': '_safeColours',
  },

  /**
   * `folderId` is the project's, `project` its summary (whose `config` each answer replaces), `admin` whether the
   * user edits the categories.
   */
  initialize({ folderId, project, admin }) {
    this.folderId = folderId;
    this.project = project;
    this.admin = admin;
    this.renaming = null;
    this.merge = null;
    this.message = null;
    this.draft = {};
    this.render();
  },

  _categories() {
    return this.project.config.categories || [];
  },

  render() {
    const categories = this._categories();
    this.$el.html(template({
      categories, admin: this.admin, renaming: this.renaming, merge: this.merge, message: this.message,
      draft: this.draft, newColour: nextColour(categories), alike: lookAlike(categories),
      names: categories.map((c) => ({ value: c.name, text: c.name })), toHex, detailOf, requestOf,
    }));
    const input = this.$('.hl-rename-input');
    if (input.length) {
      input.trigger('focus').trigger('select');
    }
    return this;
  },

  _nameOf(event) {
    return this.$(event.currentTarget).closest('.hl-category').attr('data-name');
  },

  /**
   * Run a category request (resolving with `{config, relabeled?}`), then draw the section from the server's answer;
   * `success` is the message, or a function of the answer that makes it.
   */
  _request(promise, success, failure, after = () => {}) {
    this.$('input, button, select').prop('disabled', true);
    promise.then((data) => {
      if (this._destroyed) {
        return;
      }
      this.project.config = data.config;
      after();
      this.message = { kind: 'success', title: typeof success === 'function' ? success(data) : success };
      this.render();
    }, (error) => {
      if (this._destroyed) {
        return;
      }
      this.message = { kind: 'danger', title: failure, error };
      this.render();
    });
  },

  /** PUT the whole list. */
  _put(categories, success, failure, after) {
    const promise = request('PUT', `histomics_label/project/${this.folderId}`,
      { json: { categories: plain(categories) } }).then(({ data }) => ({ config: data.config }));
    this._request(promise, success, failure, after);
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

  /** Recolour every category with the palette's colours, in order (the first eight tell apart for colour-blind eyes). */
  _safeColours() {
    const recoloured = this._categories().map((c, index) => ({ ...c, color: PALETTE[index % PALETTE.length] }));
    this._put(recoloured, 'The categories have colour-blind safe colours now.', 'Could not change the colours.');
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
    this.draft = draft; // kept if the server refuses it
    const category = { name: draft.name, color: draft.color, excluded: false, hotkey: draft.hotkey || null };
    this._put([...this._categories(), category], `${draft.name} added.`,
      `Could not add the category ${draft.name || '(no name)'}.`, () => { this.draft = {}; });
  },

  _startRename(event) {
    this.renaming = this._nameOf(event);
    this.message = null;
    this.render();
  },

  _cancelRename() {
    this.renaming = null;
    this.render();
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
    const promise = request('POST', `histomics_label/project/${this.folderId}/categories/rename`,
      { params: { old: oldName, new: newName } }).then(({ data }) => data);
    this._request(promise, (data) => `${oldName} renamed to ${newName} (${labels(data.relabeled)} relabeled).`,
      `Could not rename ${oldName}.`, () => { this.renaming = null; });
  },

  _askMerge(event) {
    event.preventDefault();
    const source = this.$('.hl-merge-source').val();
    const target = this.$('.hl-merge-target').val();
    if (source === target) {
      this.message = { kind: 'warning', title: 'Choose two different categories to merge.' };
      this.merge = { source, target };
    } else {
      this.message = null;
      this.merge = { source, target, confirming: true };
    }
    this.render();
  },

  _cancelMerge() {
    this.merge = null;
    this.message = { kind: 'info', title: 'Nothing merged.' };
    this.render();
  },

  _merge() {
    const { source, target } = this.merge;
    this.merge = null;
    const promise = request('POST', `histomics_label/project/${this.folderId}/categories/merge`,
      { params: { source, target } }).then(({ data }) => data);
    this._request(promise, (data) => `${source} merged into ${target} (${labels(data.relabeled)} relabeled).`,
      `Could not merge ${source} into ${target}.`);
  },
});

export default CategoriesView;
