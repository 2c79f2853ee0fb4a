// A "Histomics Label" button among a folder page's header buttons. A project folder opens its project page; any
// other folder gets a short explanation in place, without a request (the folder's metadata says which it is).
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
    this.$('.hl-not-project').remove();
    $('<div class="hl-not-project alert alert-info" role="status"></div>')
      .text(`"${folder.name()}" is not a Histomics Label project. A folder administrator makes it one by giving ` +
        'it categories (PUT /histomics_label/project/{id}); its large-image items are then the project\'s slides.')
      .insertAfter(this.$('.g-hierarchy-actions-header'));
  });
  buttons.prepend(button);
  return this;
});
