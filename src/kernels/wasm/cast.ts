import * as tf from '@tensorflow/tfjs';
import { attr, type KernelArgs } from './kernel-io';

/**
 * Builds the `Cast` replacement: a cast to the dtype the tensor already has shares its data (as
 * {@link makeIdentity} does; wasm copies it: e.g. the float32 `Step` of every ReLU gradient).
 * Real conversions go to `fallback`, the original kernel.
 */
export function makeCast(fallback: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const x = args.inputs.x;
    if (x === undefined) throw new Error('Cast needs input x');
    if (x.dtype !== attr<tf.DataType>(args, 'dtype') || x.dtype === 'string') {
      return fallback(params);
    }
    args.backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
  };
}
