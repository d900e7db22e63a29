import * as tf from '@tensorflow/tfjs';
import { attr, composed, input, type KernelArgs } from './kernel-io';

/** Below this many values, wasm's own `Sum` (transpose, then loop) is fast enough. */
const MIN_SIZE = 4096;

/**
 * Builds the `Sum` replacement: a float32 sum over leading axes (e.g. a bias gradient, over batch,
 * rows and columns of NHWC) is an average pooling of `x` viewed as `[outer, inner, 1, cols]` over
 * windows of `[inner, 1]` (XNNPACK, channels innermost), scaled back by `inner`, where wasm
 * transposes the reduced axes innermost and then loops. The `outer` partial sums (the batch) are
 * summed the same way or by wasm. Float32 accumulation either way (within 4e-6 of `cpu`'s float64
 * sums over 67,600 zero-mean values). Other sums go to `fallback`, the original kernel.
 */
export function makeSum(fallback: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const x = args.inputs.x;
    if (x === undefined) throw new Error('Sum needs input x');
    const axes = tf.util.parseAxisParam(attr<number | number[]>(args, 'axis'), x.shape);
    const sorted = [...new Set(axes)].sort((a, b) => a - b);
    const leading = sorted.every((a, i) => a === i) && sorted.length < x.shape.length;
    const size = x.shape.reduce((p, d) => p * d, 1);
    if (x.dtype !== 'float32' || !leading || sorted.length === 0 || size < MIN_SIZE) {
      return fallback(params);
    }
    const keepDims = attr<boolean>(args, 'keepDims') === true;
    const rows = x.shape.slice(0, sorted.length).reduce((p, d) => p * d, 1);
    const cols = size / rows;
    const outer = sorted.length > 1 ? x.shape[0] : 1;
    const inner = rows / outer;
    const outShape = keepDims
      ? x.shape.map((d, i) => (i < sorted.length ? 1 : d))
      : x.shape.slice(sorted.length);
    return composed(args, () => {
      const x4 = tf.reshape(input(args, 'x'), [outer, inner, 1, cols]) as tf.Tensor4D;
      const means = tf.avgPool(x4, [inner, 1], 1, 'valid'); // [outer, 1, 1, cols]
      const sums = tf.mul(tf.reshape(means, [outer, cols]), tf.scalar(inner));
      return tf.reshape(outer > 1 ? tf.sum(sums, 0) : sums, outShape);
    });
  };
}
