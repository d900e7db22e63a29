import * as tf from '@tensorflow/tfjs';
import { composed, input, type KernelArgs } from './kernel-io';

/** Below this many values, wasm's own `Add` is as fast. */
const MIN_SIZE = 16384;
/** Biases narrower than this many values are widened… */
const MIN_WIDTH = 256;
/** …by tiling them up to at most this many values. */
const MAX_WIDTH = 1024;

/** True when `v` holds one value per channel (the last axis) of `x`: a bias of `x`. */
function isBias(v: tf.TensorInfo, x: tf.TensorInfo): boolean {
  const channels = x.shape[x.shape.length - 1];
  return (
    x.shape.length >= 2 &&
    v.shape.length >= 1 &&
    v.shape.length <= x.shape.length &&
    v.shape[v.shape.length - 1] === channels &&
    v.shape.slice(0, -1).every((d) => d === 1)
  );
}

/** The largest `k` dividing `rows` with `k · width ≤ MAX_WIDTH`. */
function widening(rows: number, width: number): number {
  for (let k = Math.floor(MAX_WIDTH / width); k > 1; k--) if (rows % k === 0) return k;
  return 1;
}

/**
 * Builds the `Add` replacement: wasm's `Add` (XNNPACK) broadcasts a bias (one value per channel,
 * as a layer's bias does) row by row, so a narrow bias costs a call per row; here the bias is
 * tiled `k` times and `x` viewed as rows `k` times as wide, for the same kernel: the same float32
 * sums, several times faster. Every other addition goes to `original` unchanged.
 */
export function makeAdd(original: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const { a, b } = args.inputs;
    if (a === undefined || b === undefined) throw new Error('Add needs inputs a and b');
    const float = a.dtype === 'float32' && b.dtype === 'float32';
    const biasIsB = float && isBias(b, a);
    const biasIsA = float && !biasIsB && isBias(a, b);
    const x = biasIsB ? a : b;
    const width = x.shape[x.shape.length - 1];
    const size = x.shape.reduce((p, d) => p * d, 1);
    const k = (biasIsA || biasIsB) && width < MIN_WIDTH ? widening(size / width, width) : 1;
    if (k === 1 || size < MIN_SIZE) return original(params);
    return composed(args, () => {
      const xt = tf.reshape(input(args, biasIsB ? 'a' : 'b'), [size / (k * width), k * width]);
      const bias = tf.tile(tf.reshape(input(args, biasIsB ? 'b' : 'a'), [width]), [k]);
      const inputs = biasIsB ? { a: xt, b: bias } : { a: bias, b: xt };
      const sum = original({ inputs, backend: args.backend as object, attrs: {} });
      if (Array.isArray(sum)) throw new Error('Add returned several outputs');
      return tf.reshape(tf.engine().makeTensorFromTensorInfo(sum), x.shape);
    });
  };
}
