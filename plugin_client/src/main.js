// Entry point of Histomics Label's Girder 5 client plugin: registers the routes (project page, guided labeling),
// the folder-page and item-page buttons and the HistomicsUI adapter, and exposes the modules under
// `girder.plugins.histomics_label` for other plugins and the browser console.
import './style.css';
import './routes.js';
import './folderButton.js';
import './slideButton.js';
import './histomicsui.js';
import * as api from './api.js';
import GuidedView from './views/guided/GuidedView.js';
import ProjectView from './views/project/ProjectView.js';
import ReviewView from './views/review/ReviewView.js';
import BulkView from './views/paint/BulkView.js';

girder.pluginUtils.registerPluginNamespace('histomics_label', { api, BulkView, GuidedView, ProjectView, ReviewView });
