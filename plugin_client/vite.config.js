// A library build of the plugin: Girder 5's client loads `histomics-label.umd.cjs` and `style.css` from the
// plugin's static files after it has defined the global `girder`, which is all the plugin code imports from.
import { fileURLToPath } from 'node:url';

import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: fileURLToPath(new URL('../histomics_label/web_client/dist', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    // geojs's optional renderers (vtk.js) and helpers it does not need here stay out of the bundle.
    commonjsOptions: { ignore: ['hammerjs', 'd3', 'vtk.js'] },
    lib: {
      entry: fileURLToPath(new URL('src/main.js', import.meta.url)),
      name: 'histomicsLabel',
      formats: ['umd'],
      fileName: () => 'histomics-label.umd.cjs',
      cssFileName: 'style',
    },
  },
});
