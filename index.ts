/**
 * tfjs-antifragile: the public API, from one entry point.
 * @packageDocumentation
 */
export { initBackend, currentBackend } from './src/backend';
export type { BackendId, BackendChoice, InitBackendOptions } from './src/backend';
export { seededRandom, seededPermutation } from './src/random';
export { smallCnn } from './src/models/small-cnn';
export type { SmallCnnOptions } from './src/models/small-cnn';
export {
  loadBuiltinMnist,
  readBuiltinDigits,
  MNIST_MEAN,
  MNIST_STD,
} from './datasets/mnist-builtin';
export type { TensorSet, BuiltinMnistOptions } from './datasets/mnist-builtin';
export * from './src/analysis';
export * from './callbacks';
