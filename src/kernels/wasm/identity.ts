import * as tf from '@tensorflow/tfjs';
import type { KernelArgs } from './kernel-io';

/**
 * Builds the `Identity` replacement: the output shares the input's data (one more reference),
 * as the `cpu` backend does, instead of wasm's copy. No tfjs kernel writes into its inputs, so
 * sharing is safe. Strings go to `fallback`, the original kernel.
 */
export function makeIdentity(fallback: tf.KernelFunc | undefined): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const x = args.inputs.x;
    if (x === undefined) throw new Error('Identity needs input x');
    if (x.dtype === 'string') {
      if (fallback === undefined) throw new Error('Identity of strings is not supported on wasm');
      return fallback(params);
    }
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
}
