// Histomics Label's client on Girder 3, where `girder build` compiles this file into the plugin's bundle with
// webpack 3. The views are the same build Girder 5 loads, copied beside the bundle (girder3.webpack.js) and loaded
// from here while the page is still being parsed, so that, as on Girder 5, they register their routes and hooks
// before Girder's application starts. They use the global `girder` as Girder 5 defines it; Girder 3's lacks two of
// its names, jQuery as `girder.$` and `girder.pluginUtils`, which are set here first.
import $ from 'jquery';
import { registerPluginNamespace } from '@girder/core/pluginUtils';

import './dist/style.css';

const girder = window.girder;
girder.$ = girder.$ || $;
girder.pluginUtils = girder.pluginUtils || { registerPluginNamespace };

const views = new URL('histomics-label.js', document.currentScript.src);
document.write(`<script src="${views.href}"></script>`);
