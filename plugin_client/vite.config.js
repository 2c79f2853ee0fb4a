// A library build of the plugin: Girder 5's client loads `histomics-label.umd.cjs` and `style.css` from the
// plugin's static files after it has defined the global `girder`, which is all the plugin code imports from.
import { fileURLToPath } from 'node:url';

import { compileClient } from 'pug';
import { defineConfig } from 'vite';

/**
 * `import template from './x.pug'` gives the template as a function of its locals that returns HTML (pug escapes
 * `#{}`, `=` and attribute values). The same small transform Girder's own plugins (large_image, slicer_cli_web)
 * use; `vite-plugin-pug` only renders HTML entry pages and `rollup-plugin-pug` still needs pug 2.
 */
function pugTemplates() {
  return {
    name: 'histomics-label-pug',
    transform(source, id) {
      if (!id.endsWith('.pug')) {
        return null;
      }
      const code = compileClient(source, { filename: id, doctype: 'html', compileDebug: false });
      return { code: `${code}\nexport default template;\n`, map: { mappings: '' } };
    },
  };
}

export default defineConfig({
  plugins: [pugTemplates()],
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
