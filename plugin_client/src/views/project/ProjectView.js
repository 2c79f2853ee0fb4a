// The project page (`#histomics_label/project/<folderId>`): name, categories (CategoriesView), slides with their
// segment counts (SlidesView), the pipeline settings (SettingsView), the latest training round (its cross-validated
// and audit accuracies, labels, labeling time and stopping signal), and a Label button
// (the guided labeling view) for users with write access. Users with admin access on the folder also set the project
// up here: categories (add, colour, rename, hotkey, excluded, remove, merge with a confirmation), the settings and
// segment generation. Each section is drawn again from the server's answer after a change; whatever request fails,
// the section says which one and Girder's message.
import { labelRoute, loadProject, paintRoute, reviewRoute } from '../../api.js';
import { LiveView, accuracyOf, auditOf, changeOf, labelingTimeOf } from '../common.js';
import CategoriesView from './CategoriesView.js';
import template from './project.pug';
import SettingsView from './SettingsView.js';
import SlidesView from './SlidesView.js';
import './project.css';

const ProjectView = LiveView.extend({
  className: 'hl-project-view',

  initialize(settings) {
    this.folderId = settings.folderId;
    this.state = { status: 'loading' };
    this.render();
    loadProject(this.folderId).then(
      (data) => this._show({ status: 'ready', ...data }),
      (error) => this._show({ status: 'failed', error }),
    );
  },

  _show(state) {
    if (this._destroyed) {
      return;
    }
    this.state = state;
    this.render();
  },

  render() {
    const { status, project, rounds, error } = this.state;
    if (status !== 'ready') {
      this.$el.html(template({ status, error, folderId: this.folderId }));
      return this;
    }
    const access = project.access || {};
    const admin = Boolean(access.admin);
    const write = Boolean(access.write);
    const latest = rounds[rounds.length - 1];
    this.$el.html(template({
      status, project, admin, write, latest, accuracy: latest ? accuracyOf(latest) : null,
      audit: latest ? auditOf(latest) : null, change: latest ? changeOf(latest) : null,
      labelingTime: latest ? labelingTimeOf(latest) : null,
      labelRoute: labelRoute(project._id), reviewRoute: reviewRoute(project._id),
    }));
    const { folderId } = this;
    this.categories = new CategoriesView({
      el: this.$('.hl-categories-body'), parentView: this, folderId, project, admin,
    });
    this.slides = new SlidesView({
      el: this.$('.hl-slides-body'), parentView: this, folderId, slides: this.state.slides, admin,
      notSlides: project.notSlides || [],
      paint: write ? (itemId) => paintRoute(project._id, itemId) : null,
    });
    this.settings = new SettingsView({ el: this.$('.hl-settings-body'), parentView: this, folderId, project, admin });
    return this;
  },
});

export default ProjectView;
