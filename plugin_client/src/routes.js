// The plugin's client routes. Backbone gives routes added later precedence, so these sit beside Girder's own.
import ProjectView from './views/ProjectView.js';

const { events, router } = girder;

router.route('histomics_label/project/:id', 'histomicsLabelProject', (folderId) => {
  events.trigger('g:navigateTo', ProjectView, { folderId });
});
