/**
 * What runs inside `model.fit`, in Node and in a browser alike: the analysis (synaptic filters,
 * attacks, filtering scores, labels), the callbacks and the paper's models. The package's `.`
 * entry (index.ts) adds Node's backend selection; the browser build (browser.ts) the browser's.
 * Nothing imported from here may need a Node module.
 * @packageDocumentation
 */
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
