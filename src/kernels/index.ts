/**
 * `tfjs-antifragile/kernels`: backend selection and the kernels we register on tfjs' backends
 * (wasm training kernels and SIMD pool, native fast kernels and Adam).
 * @packageDocumentation
 */
export { initBackend, currentBackend } from './backend';
export type { BackendId, BackendChoice, InitBackendOptions } from './backend';
export {
  registerWasmKernels,
  wasmKernelsRegistered,
  checkTfjsVersion,
  TfjsVersionError,
  WASM_KERNELS,
  WASM_KERNELS_TFJS_VERSION,
} from './wasm';
export type { WasmKernelInfo, WasmKernelRole } from './wasm';
export { registerWasmAdam, unregisterWasmAdam, wasmAdamRegistered } from './wasm/adam';
export {
  useThreadedWasm,
  wasmThreading,
  requestedWasmThreads,
  WASM_THREADS_ENV,
  MAX_WASM_THREADS,
} from './wasm/threads';
export type { WasmThreading } from './wasm/threads';
export {
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
  fastTensorflowKernelsRegistered,
} from './native/fast-kernels';
export { enableOurOps, ourOpsAvailable } from './native/our-ops';
