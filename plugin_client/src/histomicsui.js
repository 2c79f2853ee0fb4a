// HistomicsUI adapter: where HistomicsUI is in the page, its header gets a "Histomics Label" menu linking the open
// image to its projects in Girder's client; where it is not, this module adds nothing and throws nothing.
//
// HistomicsUI's interface relied upon (Girder 5 branch; docs/histomicsui.md):
// - its plugin bundle registers the namespace `girder.plugins.histomicsui`; Girder's and HistomicsUI's pages load
//   all plugins' scripts, in no guaranteed order, before triggering `g:appload.before` on `girder.events`;
// - its image view triggers `h:imageOpened` on `girder.events` with the open image's ItemModel, or null;
// - its header holds `ul.navbar-right` with `li.h-image-menu-wrapper` (re-rendered on each image; its list is not).
import { projectsMenu, slideProjects } from './slideButton.js';

const { $, events } = girder;

const ITEM_CLASS = 'hl-hui-projects';
let current = null; // the id of the image whose projects are being shown or fetched

function histomicsUIPresent() {
  return Boolean(girder.plugins && girder.plugins.histomicsui);
}

/**
 * A link to a route of Girder's own client, which Girder serves at its API root's parent (not HistomicsUI's); the
 * API root may be relative to the page (HistomicsUI 1.8 on Girder 3 gives `api/v1`).
 */
function girderLink(route) {
  const apiRoot = new URL(girder.rest.getApiRoot(), window.location.href).href;
  return `${apiRoot.replace(/api\/v1\/?$/, '')}#${route}`;
}

/** Show the projects of the opened image (none for null) in HistomicsUI's header. */
function showProjects(image) {
  $(`.${ITEM_CLASS}`).remove();
  current = image && image.id;
  if (!current) {
    return;
  }
  const itemId = current;
  slideProjects(itemId).then((projects) => {
    const anchor = $('.navbar-right > .h-image-menu-wrapper').first();
    if (itemId !== current || !projects.length) {
      return;
    }
    if (!anchor.length) {
      console.warn('Histomics Label: HistomicsUI\'s header (.navbar-right > .h-image-menu-wrapper) was not found');
      return;
    }
    const toggle = $('<a class="dropdown-toggle" role="button" data-toggle="dropdown">Histomics Label ' +
      '<i class="icon-down-open"></i></a>').attr('title', 'This image\'s Histomics Label projects');
    // HistomicsUI opens Girder's pages in the window named "girder"; these links do the same.
    const menu = projectsMenu(projects, itemId, { href: girderLink, target: 'girder' });
    // After the image's menu: HistomicsUI's header grows leftwards under its brand when the breadcrumb is long
    // (HistomicsUI 1.8.1 at 1280 px), and this keeps the menu in view.
    anchor.after($(`<li class="${ITEM_CLASS} dropdown"></li>`).append(toggle, menu));
  }).catch((error) => {
    console.warn(`Histomics Label: no project menu for this image: ${error.message}`);
  });
}

function hook() {
  events.on('h:imageOpened', showProjects);
}

if (histomicsUIPresent()) {
  hook();
} else {
  // HistomicsUI's script may come after this one; both pages trigger g:appload.before once all have loaded.
  events.once('g:appload.before', () => {
    if (histomicsUIPresent()) {
      hook();
    }
  });
}
