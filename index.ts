/**
 * tfjs-antifragile: what runs inside `model.fit` — the analysis (synaptic filters, attacks,
 * filtering scores, labels), the callbacks, the paper's models and backend selection.
 *
 * Everything else has its own entry: `tfjs-antifragile/mlflow` (tracking),
 * `tfjs-antifragile/datasets` (MNIST, CIFAR-10, Tiny ImageNet loaders and the bundled digits),
 * `tfjs-antifragile/experiment` (recipes and the runner), `tfjs-antifragile/report` (HTML
 * reports) and `tfjs-antifragile/kernels` (our backend kernels). The browser build
 * (`dist/browser/tfjs-antifragile.js`, from browser.ts) exports the same but for the backend.
 * @packageDocumentation
 */
export { initBackend, currentBackend } from './src/kernels/backend';
export type { BackendId, BackendChoice, InitBackendOptions } from './src/kernels/backend';
export * from './portable';
