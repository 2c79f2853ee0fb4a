// A "Histomics Label" button among a folder page's header buttons. A project folder opens its project page; any
// other folder opens the set-up of a new project for the folder's admins (NewProjectView) and gets a short
// explanation in place for everyone else, without a request (the folder's metadata and access level say which).
import { isProject, projectRoute } from './api.js';

const { $ } = girder;
const { wrap } = girder.utilities.PluginUtils;
const { HierarchyWidget } = girder.views.widgets;

wrap(HierarchyWidget, 'render', function (render, ...args) {
  render.apply(this, args);
  const folder = this.parentModel;
  const buttons = this.$('.g-folder-header-buttons');
  if (folder.resourceName !== 'folder' || !buttons.length || buttons.find('.hl-open-project').length) {
    return this;
  }
  const button = $('<button class="hl-open-project btn btn-sm btn-primary" type="button">Histomics Label</button>')
    .attr('title', 'Open this folder as a Histomics Label project');
  button.on('click', () => {
    if (isProject(folder.attributes)) {
      girder.router.navigate(projectRoute(folder.id), { trigger: true });
      return;
    }
    if (folder.getAccessLevel() >= girder.constants.AccessType.ADMIN) {
      girder.router.navigate(`${projectRoute(folder.id)}/new`, { trigger: true });
      return;
    }
    this.$('.hl-not-project').remove();
    $('<div class="hl-not-project alert alert-info" role="status"></div>')
      .text(`"${folder.name()}" is not a Histomics Label project. One of the folder's administrators can set it ` +
        'up as one with this button; its large-image items then become the project\'s slides.')
      .insertAfter(this.$('.g-hierarchy-actions-header'));
  });
  buttons.prepend(button);
  return this;
});
