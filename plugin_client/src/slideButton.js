// A "Histomics Label" action on Girder's item page of a slide: a menu of the projects the slide belongs to, each
// with links to the project page and to painting this slide there. An item that is no large image asks nothing; a
// slide in no project the user may read gets no action. The menu is shared with the HistomicsUI adapter.
import { getJson, paintRoute, projectRoute } from './api.js';

const { $ } = girder;
const { wrap } = girder.utilities.PluginUtils;
const { ItemView } = girder.views.body;

/** The projects a slide belongs to that the user may read: `[{_id, name, access: {write}}]` (docs/rest.md). */
export function slideProjects(itemId) {
  return getJson(`histomics_label/item/${itemId}/projects`);
}

/**
 * A Bootstrap dropdown menu (`ul.dropdown-menu`) of a slide's projects: each project's name, then a link to its
 * page and one to painting the slide. `href` turns a client route into a link; `target` names the window the links
 * open in (none: this one).
 */
export function projectsMenu(projects, itemId, { href = (route) => `#${route}`, target } = {}) {
  const menu = $('<ul class="dropdown-menu pull-right" role="menu"></ul>');
  const link = (route, text, className) => {
    const anchor = $('<a role="menuitem"></a>').addClass(className).attr('href', href(route)).text(text);
    if (target) {
      anchor.attr('target', target);
    }
    return $('<li role="presentation"></li>').append(anchor);
  };
  projects.forEach((project, index) => {
    if (index) {
      menu.append('<li role="separator" class="divider"></li>');
    }
    menu.append($('<li class="dropdown-header hl-slide-project-name"></li>').text(project.name));
    menu.append(link(projectRoute(project._id), 'Project page', 'hl-slide-project'));
    menu.append(link(paintRoute(project._id, itemId),
      project.access.write ? 'Paint labels on this slide' : 'See this slide\'s labels (read only)', 'hl-slide-paint'));
  });
  return menu;
}

/** Add the action to a rendered item page, once its slide's projects are known (and if there are any). */
function addAction(view) {
  const itemId = view.model.id;
  if (!view.model.get('largeImage')) {
    return;
  }
  slideProjects(itemId).then((projects) => {
    const header = view.$('.g-item-header > .pull-right').first(); // its buttons, not the Actions menu's list
    if (!projects.length || view.model.id !== itemId || !header.length || header.find('.hl-slide-projects').length) {
      return;
    }
    const toggle = $('<button class="btn btn-sm btn-primary dropdown-toggle" type="button" data-toggle="dropdown">' +
      'Histomics Label <i class="icon-down-dir"></i></button>').attr('title', 'This slide\'s Histomics Label projects');
    header.prepend($('<div class="hl-slide-projects btn-group"></div>').append(toggle, projectsMenu(projects, itemId)));
  }).catch((error) => {
    // The item page stays usable without the action; say why it is missing.
    console.warn(`Histomics Label: no project menu for this item: ${error.message}`);
  });
}

// Girder's ItemView renders asynchronously and triggers g:rendered when its header and file list are in place.
wrap(ItemView, 'render', function (render, ...args) {
  this.once('g:rendered', () => addAction(this));
  return render.apply(this, args);
});
