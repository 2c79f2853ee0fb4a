// HistomicsUI adapter: where HistomicsUI is in the page, its header gets a "Histomics Label" menu linking the open
// image to its projects, and opening a panel beside the slide (histomicsui/panel.js) that works on HistomicsUI's own
// viewer: guided labeling (HistomicsUI's viewer pans to each suggestion) and painting the slide with the segment
// overlays as layers of HistomicsUI's map (read only for a reader). The project's pages (set-up, review, ...) open as
// HistomicsUI routes in a window of their own; they are Girder's pages where only a stand-in of HistomicsUI's
// interface is there (no image view). Where HistomicsUI is not in the page, this module adds nothing and throws
// nothing.
//
// HistomicsUI's interface relied upon (Girder 5 branch; docs/histomicsui.md):
// - its plugin bundle registers the namespace `girder.plugins.histomicsui`; Girder's and HistomicsUI's pages load
//   all plugins' scripts, in no guaranteed order, before triggering `g:appload.before` on `girder.events`;
// - its image view triggers `h:imageOpened` on `girder.events` with the open image's ItemModel, or null;
// - its header holds `ul.navbar-right` with `li.h-image-menu-wrapper` (re-rendered on each image; its list is not);
// - it exposes its `router` (with `setQuery('image', id)`) and `views.body.ImageView`, whose instance keeps the open
//   image's large_image viewer widget as `viewerWidget` and that widget's geojs map as `viewer`.
import { projectRoute } from './api.js';
import HistomicsUIFocusViewer from './histomicsui/HistomicsUIFocusViewer.js';
import HistomicsUIPaintView from './histomicsui/HistomicsUIPaintView.js';
import { imageViewTracked, trackImageView } from './histomicsui/imageView.js';
import { closePanel, imageChanged, openPanel } from './histomicsui/panel.js';
import GuidedView from './views/guided/GuidedView.js';
import './histomicsui/pages.css';
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

/**
 * A link to a route of this plugin in HistomicsUI's page, opened in a window of its own (PAGES_WINDOW): HistomicsUI
 * cannot leave its image view for another route in the same page (its panels then fail on the closed viewer), while a
 * page loaded at the route shows it in HistomicsUI's frame and moves between this plugin's pages.
 */
function histomicsLink(route) {
  return `${window.location.origin}${window.location.pathname}#${route}`;
}

const PAGES_WINDOW = 'histomics_label';
/** Routes of Girder's own client (its folders, items, ...), which HistomicsUI's router lacks. */
const GIRDER_ROUTE = /^#(folder|item|collection|user|admin)\//;

/** Show the projects of the opened image (none for null) in HistomicsUI's header. */
function showProjects(image) {
  $(`.${ITEM_CLASS}`).remove();
  current = image && image.id;
  if (!current) {
    return;
  }
  const itemId = current;
  imageChanged(itemId);
  slideProjects(itemId).then((projects) => {
    const anchor = $('.navbar-right > .h-image-menu-wrapper').first();
    if (itemId !== current) {
      return;
    }
    imageChanged(itemId, projects.map((project) => project._id));
    if (!projects.length) {
      return;
    }
    if (!anchor.length) {
      console.warn('Histomics Label: HistomicsUI\'s header (.navbar-right > .h-image-menu-wrapper) was not found');
      return;
    }
    const toggle = $('<a class="dropdown-toggle" role="button" data-toggle="dropdown">Histomics Label ' +
      '<i class="icon-down-open"></i></a>').attr('title', 'This image\'s Histomics Label projects');
    // With HistomicsUI's image view to work on, the project's pages open as HistomicsUI routes in a window of their
    // own, and panels open beside the slide; with a stand-in, the links open Girder's pages in the window HistomicsUI
    // names "girder".
    const panels = imageViewTracked();
    const menu = projectsMenu(projects, itemId, panels ? { href: histomicsLink, target: PAGES_WINDOW }
      : { href: girderLink, target: 'girder' });
    if (panels) {
      addPanelItems(menu, projects, itemId);
    }
    // After the image's menu: HistomicsUI's header grows leftwards under its brand when the breadcrumb is long
    // (HistomicsUI 1.8.1 at 1280 px), and this keeps the menu in view.
    anchor.after($(`<li class="${ITEM_CLASS} dropdown"></li>`).append(toggle, menu));
  }).catch((error) => {
    console.warn(`Histomics Label: no project menu for this image: ${error.message}`);
  });
}

/**
 * After each project's painting link, the items that open a panel beside this viewer: guided labeling and painting
 * for a project the user may label, the slide's labels and the model's overlays (read only) for one they may read.
 */
function addPanelItems(menu, projects, itemId) {
  const item = (className, text, title, open) => $('<li role="presentation"></li>').append(
    $('<a role="menuitem" href="#"></a>').addClass(className).text(text).attr('title', title).on('click', (event) => {
      event.preventDefault();
      open();
    }));
  const links = { href: histomicsLink, target: PAGES_WINDOW };
  menu.find('.hl-slide-paint').each((index, paint) => {
    const project = projects[index];
    const review = $('<a role="menuitem" class="hl-hui-review">Review labels</a>')
      .attr({ href: histomicsLink(`${projectRoute(project._id)}/review`), target: PAGES_WINDOW });
    const items = [$('<li role="presentation"></li>').append(review)];
    if (project.access.write) {
      items.push(item('hl-hui-label', 'Label suggestions here',
        'Label the project\'s suggestions in a panel beside this viewer', () => openPanel({
          projectId: project._id, title: `label ${project.name}`, View: GuidedView,
          settings: { Viewer: HistomicsUIFocusViewer, ...links },
        })));
    }
    items.push(item('hl-hui-paint', project.access.write ? 'Paint labels here' : 'Show labels here (read only)',
      'The slide\'s labels and the model\'s overlays on this viewer', () => openPanel({
        projectId: project._id, itemId, title: `paint ${project.name}`, View: HistomicsUIPaintView,
        settings: { itemId, ...links },
      })));
    $(paint).parent().after(items);
  });
}

/**
 * On HistomicsUI's page (not Girder's own, where HistomicsUI's plugin is loaded too), a link of this plugin's pages
 * to a Girder route opens it in Girder's window.
 */
function openGirderRoutesInGirder() {
  const girderPage = girderLink('').replace(/#$/, '');
  $(document).on('click', '#g-app-body-container a[href^="#"]', (event) => {
    const route = event.currentTarget.getAttribute('href');
    if (GIRDER_ROUTE.test(route) && `${window.location.origin}${window.location.pathname}` !== girderPage) {
      event.preventDefault();
      window.open(girderLink(route.slice(1)), 'girder');
    }
  });
}

function hook() {
  const { views } = girder.plugins.histomicsui;
  if (views && views.body && views.body.ImageView) {
    trackImageView(views.body.ImageView, closePanel);
    openGirderRoutesInGirder();
  }
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
