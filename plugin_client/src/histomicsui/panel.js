// The panel beside the slide in HistomicsUI's image view: one of this plugin's views of a project (guided labeling,
// or painting the open slide) working on HistomicsUI's own viewer. It sits over the page rather than inside
// HistomicsUI's panels, which HistomicsUI draws anew for each image, so the guided panel stays while HistomicsUI opens
// the slide of each suggestion. One panel at a time.
import './panel.css';

const { $ } = girder;

let panel = null; // {projectId, itemId (a painting panel's slide, else null), node, view}

/**
 * Open the panel titled `title` for the project `projectId` with the view `View` made with `settings`; a panel
 * for one slide (`itemId`) closes when HistomicsUI opens another.
 */
export function openPanel({ projectId, itemId = null, title, View, settings }) {
  closePanel();
  const node = $('<section class="hl-hui-panel"></section>').attr('aria-label', `Histomics Label: ${title}`);
  const close = $('<button type="button" class="close hl-hui-panel-close" title="Close this panel">&times;</button>')
    .on('click', closePanel);
  const body = $('<div class="hl-hui-panel-body"></div>');
  node.append(close, body).appendTo(document.body);
  const view = new View({ el: body, parentView: null, folderId: projectId, ...settings });
  panel = { projectId, itemId, node, view };
}

/** Close the panel, if open (its layers leave HistomicsUI's map). */
export function closePanel() {
  if (panel) {
    panel.view.destroy();
    panel.node.remove();
    panel = null;
  }
}

/**
 * Close the panel when HistomicsUI opened the image `itemId` of the projects `projectIds` (null: not yet known) and
 * the panel has no place there: a painting panel of another slide, or a panel of a project the image is not in.
 */
export function imageChanged(itemId, projectIds = null) {
  if (!panel) {
    return;
  }
  if ((panel.itemId && panel.itemId !== itemId) || (projectIds && !projectIds.includes(panel.projectId))) {
    closePanel();
  }
}
