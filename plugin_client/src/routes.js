// The plugin's client routes. Backbone gives routes added later precedence, so these sit beside Girder's own.
import GuidedView from './views/guided/GuidedView.js';
import ProjectView from './views/project/ProjectView.js';
import ReviewView from './views/review/ReviewView.js';
import BulkView from './views/paint/BulkView.js';
import NewProjectView from './views/project/NewProjectView.js';

const { events, router } = girder;

router.route('histomics_label/project/:id', 'histomicsLabelProject', (folderId) => {
  events.trigger('g:navigateTo', ProjectView, { folderId });
});

router.route('histomics_label/project/:id/new', 'histomicsLabelNewProject', (folderId) => {
  events.trigger('g:navigateTo', NewProjectView, { folderId });
});

router.route('histomics_label/project/:id/label', 'histomicsLabelGuided', (folderId) => {
  events.trigger('g:navigateTo', GuidedView, { folderId });
});

router.route('histomics_label/project/:id/review', 'histomicsLabelReview', (folderId) => {
  events.trigger('g:navigateTo', ReviewView, { folderId });
});

router.route('histomics_label/project/:id/paint/:item', 'histomicsLabelPaint', (folderId, itemId, query) => {
  const { segment, mag: magnification, from } = query || {};
  events.trigger('g:navigateTo', BulkView, { folderId, itemId, segment, magnification, from });
});
