/**
 * tfjs-antifragile in a browser: what the package's `.` entry exports (analysis, callbacks,
 * models), with the browser's backend selection instead of Node's. Bundled by esbuild into one
 * ES module (`dist/browser/tfjs-antifragile.js`) that takes tfjs and its wasm backend from the
 * page's `tf` global (load `tf.min.js` and `tf-backend-wasm.min.js` first).
 * @packageDocumentation
 */
export { initBrowserBackend, BROWSER_BACKENDS } from './src/kernels/browser-backend';
export type {
  BrowserBackendId,
  BrowserBackendChoice,
  BrowserBackendOptions,
} from './src/kernels/browser-backend';
export * from './portable';
