/**
 * The browser builds, bundled by esbuild into ES modules: the library (browser.ts →
 * `tfjs-antifragile.js`) and the demo page (demo/page.ts → `demo.js`). tfjs, its wasm backend,
 * vega and vega-lite are not bundled: they come from the page's globals (`tf`, `tf.wasm`,
 * `vega`, `vegaLite`, from the packages' own browser scripts), so the page holds one tfjs.
 * A Node-only module anywhere in the graph fails the build (esbuild cannot resolve it for the
 * browser).
 */
import * as path from 'path';
import type { Plugin } from 'esbuild';
import { findProjectRoot } from './setup';

// This package's folder (from cli/ in the sources, dist/cli/ when built).
const ROOT = findProjectRoot(__dirname);

/** The packages taken from the page, and the global expression each one is. */
export const PAGE_GLOBALS: Record<string, string> = {
  '@tensorflow/tfjs': 'globalThis.tf',
  '@tensorflow/tfjs-backend-wasm': '(globalThis.tf && globalThis.tf.wasm) || {}',
  vega: 'globalThis.vega',
  'vega-lite': 'globalThis.vegaLite',
};

/** The files of the browser build, by name. */
export const BROWSER_BUNDLES = {
  library: 'tfjs-antifragile.js',
  demo: 'demo.js',
} as const;

function pageGlobals(): Plugin {
  const names = Object.keys(PAGE_GLOBALS).map((n) => n.replace(/[/.-]/g, '\\$&'));
  return {
    name: 'page-globals',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^(${names.join('|')})$`) }, (args) => ({
        path: args.path,
        namespace: 'page-global',
      }));
      build.onLoad({ filter: /.*/, namespace: 'page-global' }, (args) => ({
        contents: `module.exports = ${PAGE_GLOBALS[args.path]};`,
        loader: 'js',
      }));
    },
  };
}

/**
 * Bundles the library and the demo page into `outDir` (ES modules with source maps); returns
 * the files written.
 */
export async function buildBrowserBundles(
  outDir: string,
): Promise<Record<keyof typeof BROWSER_BUNDLES, string>> {
  // esbuild is a development dependency: load it only when a bundle is built.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const entries = {
    library: path.join(ROOT, 'browser.ts'),
    demo: path.join(ROOT, 'demo', 'page.ts'),
  };
  const written = {} as Record<keyof typeof BROWSER_BUNDLES, string>;
  for (const key of Object.keys(entries) as (keyof typeof BROWSER_BUNDLES)[]) {
    const outfile = path.join(outDir, BROWSER_BUNDLES[key]);
    await esbuild.build({
      entryPoints: [entries[key]],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2020',
      sourcemap: true,
      logLevel: 'silent',
      plugins: [pageGlobals()],
    });
    written[key] = outfile;
  }
  return written;
}

if (require.main === module) {
  const out = process.argv[2] ?? path.join(ROOT, 'dist', 'browser');
  buildBrowserBundles(out).then(
    (files) => console.log(Object.values(files).join('\n')),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
