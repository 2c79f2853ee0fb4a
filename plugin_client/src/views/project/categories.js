// The categories section of the project page. Everyone sees the list (swatch, name, hotkey, excluded mark); users
// with admin access on the folder also get the controls: a colour picker on each swatch, rename, hotkey, excluded,
// remove, a form to add a category and one to merge two (with a confirmation step). Every change is a request to the
// server (PUT of the whole `categories` list, or categories/rename, categories/merge); the section is drawn again
// from the server's answer.
import { request } from '../../api.js';
import { esc, messageHtml, toHex } from './common.js';

const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6', '#bcf60c',
  '#fabebe', '#008080', '#e6beff', '#9a6324', '#800000', '#aaffc3', '#808000', '#000075'];

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

/** PUT the whole list; resolves with the saved configuration. */
export function saveCategories(folderId, categories) {
  return request('PUT', `histomics_label/project/${folderId}`, { json: { categories: plain(categories) } })
    .then(({ data }) => data.config);
}

export function renameCategory(folderId, oldName, newName) {
  return request('POST', `histomics_label/project/${folderId}/categories/rename`,
    { params: { old: oldName, new: newName } }).then(({ data }) => data);
}

export function mergeCategories(folderId, source, target) {
  return request('POST', `histomics_label/project/${folderId}/categories/merge`,
    { params: { source, target } }).then(({ data }) => data);
}

/** The list with one category changed (by name). */
export function changed(categories, name, change) {
  return categories.map((c) => (c.name === name ? { ...c, ...change } : c));
}

function readOnlyRow(category) {
  return `
    <li class="hl-category${category.excluded ? ' hl-excluded' : ''}" data-name="${esc(category.name)}">
      <span class="hl-swatch" style="background-color: ${esc(category.color || 'transparent')}"></span>
      <span class="hl-category-name">${esc(category.name)}</span>
      ${category.hotkey ? `<kbd class="hl-hotkey" title="Hotkey">${esc(category.hotkey)}</kbd>` : ''}
      ${category.excluded ? '<span class="hl-excluded-mark" title="Never trained nor suggested">excluded</span>' : ''}
    </li>`;
}

function adminRow(category, index, renaming) {
  const name = esc(category.name);
  const nameHtml = renaming === category.name
    ? `<span class="hl-rename-form">
         <input type="text" class="form-control input-sm hl-rename-input" value="${name}" aria-label="New name"
           maxlength="100">
         <button type="button" class="btn btn-primary btn-xs hl-rename-save">Rename</button>
         <button type="button" class="btn btn-default btn-xs hl-rename-cancel">Cancel</button>
       </span>`
    : `<span class="hl-category-name">${name}</span>`;
  return `
    <li class="hl-category hl-category-edit${category.excluded ? ' hl-excluded' : ''}" data-name="${name}">
      <span class="hl-position" title="Key ${index + 1} picks it while labeling">${index + 1}</span>
      <label class="hl-swatch hl-swatch-picker" style="background-color: ${esc(category.color || 'transparent')}"
          title="Change the colour">
        <input type="color" class="hl-color-input" value="${esc(toHex(category.color))}"
          aria-label="Colour of ${name}">
      </label>
      ${nameHtml}
      <span class="hl-category-controls">
        <label class="hl-hotkey-label">hotkey
          <input type="text" class="form-control input-sm hl-hotkey-input" maxlength="1"
            value="${esc(category.hotkey || '')}" aria-label="Hotkey of ${name}"></label>
        <label class="hl-excluded-label" title="Excluded categories never train and are never suggested">
          <input type="checkbox" class="hl-excluded-toggle"${category.excluded ? ' checked' : ''}>
          ${category.excluded ? '<span class="hl-excluded-mark">excluded</span>' : 'excluded'}</label>
        ${renaming === category.name ? '' : '<button type="button" class="btn btn-default btn-xs hl-rename">Rename</button>'}
        <button type="button" class="btn btn-default btn-xs hl-remove"
          title="Remove (only a category without labels; merge one with labels)">Remove</button>
      </span>
    </li>`;
}

function options(categories, selected) {
  return categories.map((c) => `<option value="${esc(c.name)}"${c.name === selected ? ' selected' : ''}>`
    + `${esc(c.name)}</option>`).join('');
}

function mergeHtml(categories, merge) {
  if (categories.length < 2) {
    return '';
  }
  if (merge && merge.confirming) {
    return `<div class="hl-merge-confirm alert alert-warning" role="alertdialog">
        <p>Merge <strong class="hl-merge-source-name">${esc(merge.source)}</strong> into
          <strong class="hl-merge-target-name">${esc(merge.target)}</strong>? Every label of
          ${esc(merge.source)} becomes ${esc(merge.target)}'s and ${esc(merge.source)} leaves the project.
          This cannot be undone.</p>
        <button type="button" class="btn btn-danger btn-sm hl-merge-yes">Merge</button>
        <button type="button" class="btn btn-default btn-sm hl-merge-no">Cancel</button>
      </div>`;
  }
  const source = (merge && merge.source) || categories[categories.length - 1].name;
  const target = (merge && merge.target) || categories[0].name;
  return `<form class="hl-merge-form form-inline">
      <span>Merge</span>
      <select class="form-control input-sm hl-merge-source" aria-label="Category to merge">
        ${options(categories, source)}</select>
      <span>into</span>
      <select class="form-control input-sm hl-merge-target" aria-label="Category that receives its labels">
        ${options(categories, target)}</select>
      <button type="submit" class="btn btn-default btn-sm hl-merge">Merge…</button>
    </form>`;
}

function addHtml(categories, draft) {
  return `<form class="hl-add-category form-inline">
      <input type="text" class="form-control input-sm hl-new-name" placeholder="New category" maxlength="100"
        aria-label="Name of the new category" value="${esc(draft.name || '')}">
      <input type="color" class="hl-new-color" value="${esc(draft.color || nextColour(categories))}"
        aria-label="Colour of the new category">
      <input type="text" class="form-control input-sm hl-new-hotkey" placeholder="hotkey" maxlength="1"
        aria-label="Hotkey of the new category" value="${esc(draft.hotkey || '')}">
      <button type="submit" class="btn btn-primary btn-sm hl-add">Add</button>
    </form>`;
}

/** The section's body; `ui` is `{admin, renaming, merge, message, draft}`. */
export function categoriesHtml(categories, ui) {
  const list = categories.length
    ? `<ul class="hl-categories">${categories.map((c, i) => (ui.admin ? adminRow(c, i, ui.renaming)
      : readOnlyRow(c))).join('')}</ul>`
    : '<p class="hl-empty">No categories yet.</p>';
  if (!ui.admin) {
    return list;
  }
  return `${messageHtml(ui.message, 'hl-categories-message')}
    ${list}
    <div class="hl-category-forms">
      ${addHtml(categories, ui.draft || {})}
      ${mergeHtml(categories, ui.merge)}
    </div>`;
}
