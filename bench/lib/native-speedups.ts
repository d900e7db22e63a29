import {
  fastTensorflowKernelsRegistered,
  registerFastTensorflowKernels as register,
  unregisterFastTensorflowKernels as unregister,
} from '../../src/kernels/native/fast-kernels';

/**
 * Registers the library's faster tfjs-node kernels (`src/native/fast-kernels.ts`) for a bench
 * variant; returns a function that puts things back as they were.
 */
export function registerFastTensorflowKernels(): () => void {
  if (fastTensorflowKernelsRegistered()) return () => undefined;
  register();
  return unregister;
}

/** Runs a bench variant on tfjs-node's stock kernels; returns a function that restores ours. */
export function withoutFastTensorflowKernels(): () => void {
  if (!fastTensorflowKernelsRegistered()) return () => undefined;
  unregister();
  return () => {
    register();
  };
}
