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
export {
  registerWasmKernels,
  wasmKernelsRegistered,
  checkTfjsVersion,
  TfjsVersionError,
  WASM_KERNELS,
  WASM_KERNELS_TFJS_VERSION,
} from './src/wasm';
export type { WasmKernelInfo, WasmKernelRole } from './src/wasm';
export { registerWasmAdam, unregisterWasmAdam, wasmAdamRegistered } from './src/wasm/adam';
export {
  useThreadedWasm,
  wasmThreading,
  requestedWasmThreads,
  WASM_THREADS_ENV,
  MAX_WASM_THREADS,
} from './src/wasm/threads';
export type { WasmThreading } from './src/wasm/threads';
export {
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
  fastTensorflowKernelsRegistered,
} from './src/native/fast-kernels';
export {
  buildModel,
  MODEL_NAMES,
  resnet18,
  resnet50,
  squeezenet1_1,
  shufflenetV2x1_0,
  ChannelShuffle,
  ChannelSplit,
  channelShuffle,
  channelSplit,
  NativeBatchNormalization,
  torchOutputSize,
} from './src/models';
export type {
  ModelName,
  ArchitectureOptions,
  ResolvedArchitectureOptions,
  ChannelGroupsArgs,
} from './src/models';
export {
  loadDataset,
  loadMnist,
  loadCifar10,
  loadTinyImageNet,
  DATASET_NAMES,
  MNIST_FILES,
  CIFAR10_FILES,
  DatasetError,
  DatasetFormatError,
  DatasetNotFoundError,
  DatasetOptionsError,
} from './datasets';
export type {
  DatasetName,
  DatasetOptionsByName,
  LoadedDataset,
  Example,
  CommonDatasetOptions,
  DatasetSplit,
  MnistOptions,
  Cifar10Options,
  TinyImageNetOptions,
} from './datasets';
export {
  MlflowClient,
  MlflowRun,
  Spool,
  resolveMlflowConfig,
  sanitizeKey,
  keyProblem,
  MLFLOW_LIMITS,
  MLFLOW_ENV,
  DEFAULT_RETRY_POLICY,
  analysisMetrics,
  analysisParams,
  analysisCsv,
  scoreMetricKey,
  MlflowError,
  MlflowConfigError,
  MlflowValidationError,
  MlflowRequestError,
  MlflowUnavailableError,
} from './src/mlflow';
export type {
  MlflowClientOptions,
  MlflowConnectionOptions,
  MlflowConfig,
  MlflowRunOptions,
  FlushOptions,
  FlushResult,
  RetryPolicy,
  BatchInput,
  MetricInput,
  ParamValue,
  RunStatus,
  Run,
  RunInfo,
  Metric,
  Experiment,
  Dataset,
  DatasetInput,
  ArtifactFile,
} from './src/mlflow';
export * from './src/recipes';
export * from './src/report';
export * from './src/progress';
