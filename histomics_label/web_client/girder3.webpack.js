// Girder 3's `girder build` hands each plugin its webpack config to adjust. The shared views (dist/, the build
// Girder 5 loads) are copied beside this plugin's bundle as they are, not compiled into it: webpack 3's minifier
// (uglify-es 3.3) fails on them ("sym.definition is not a function"), and they need no compiling.
const path = require('path');

const CopyWebpackPlugin = require('copy-webpack-plugin');

const DIST = path.join(__dirname, 'dist');

module.exports = function (config) {
  config.plugins.push(new CopyWebpackPlugin([
    { from: path.join(DIST, 'histomics-label.umd.cjs'), to: path.join(config.output.path, 'histomics-label.js') },
    { from: path.join(DIST, 'histomics-label.umd.cjs.map'), to: config.output.path },
  ]));
  return config;
};
