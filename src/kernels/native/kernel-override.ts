import * as tf from '@tensorflow/tfjs';

/**
 * Our kernels registered over tfjs-node's (`tensorflow` backend), each falling back to the kernel
 * it replaced for the calls it does not cover, and put back for comparisons.
 */

const BACKEND = 'tensorflow';

type KernelArgs = Parameters<tf.KernelFunc>[0];

/** A replacement: its result, or undefined to run the original kernel. */
export type KernelOverride = (args: KernelArgs) => tf.TensorInfo | undefined;

/**
 * Registers `override` over tfjs-node's kernel `name`. Returns the kernel it replaced, or
 * undefined (nothing registered) where this tfjs-node version has no such kernel.
 */
export function overrideKernel(
  name: string,
  override: KernelOverride,
): tf.KernelConfig | undefined {
  const original = tf.getKernel(name, BACKEND);
  if (!original) return undefined;
  tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({
    kernelName: name,
    backendName: BACKEND,
    kernelFunc: (args) => override(args) ?? original.kernelFunc(args),
  });
  return original;
}

/** Puts back a kernel that {@link overrideKernel} replaced. */
export function restoreKernel(original: tf.KernelConfig): void {
  tf.unregisterKernel(original.kernelName, original.backendName);
  tf.registerKernel(original);
}
