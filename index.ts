/**
 * tfjs-antifragile: what runs inside `model.fit` — the analysis (synaptic filters, attacks,
 * filtering scores, labels), the callbacks, the paper's models and backend selection.
 *
 * Everything else has its own entry: `tfjs-antifragile/mlflow` (tracking),
 * `tfjs-antifragile/datasets` (MNIST, CIFAR-10, Tiny ImageNet loaders and the bundled digits),
 * `tfjs-antifragile/experiment` (recipes and the runner), `tfjs-antifragile/report` (HTML
 * reports) and `tfjs-antifragile/kernels` (our backend kernels).
 * @packageDocumentation
 */
export { initBackend, currentBackend } from './src/kernels/backend';
export type { BackendId, BackendChoice, InitBackendOptions } from './src/kernels/backend';
export { seededRandom, seededPermutation } from './src/util/random';
export { TfjsCopiesError, assertOneTfjs, loadedTfjsCopies } from './src/util/tfjs-copies';
export * from './src/analysis';
export * from './callbacks';
export {
  buildModel,
  MODEL_NAMES,
  smallCnn,
  resnet18,
  resnet50,
  squeezenet1_1,
  shufflenetV2x1_0,
} from './src/models';
export type { ModelName, ArchitectureOptions, SmallCnnOptions } from './src/models';
