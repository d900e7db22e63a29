import * as tf from '@tensorflow/tfjs';
import { attr, composed, input, isHeapBackend, heapAddress, type KernelArgs } from './kernel-io';
import { simdKernels } from './simd';

/** The longest last axis our SIMD row sums add (in sequence, 4 lanes). */
const MAX_ROW_SUM = 1024;

/** Below this many values, wasm's own `Sum` (transpose, then loop) is fast enough. */
const MIN_SIZE = 4096;

/**
 * Builds the `Sum` replacement. A float32 sum over the leading axes (a bias gradient) or over the
 * last axis, of a width that is a multiple of 4, goes to our SIMD kernels (see `sumBySimd`).
 * Otherwise, a float32 sum over leading axes (e.g. a bias gradient, over batch,
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
    const simdSum = sumBySimd(args, x, sorted);
    if (simdSum !== undefined) return simdSum;
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

/**
 * A float32 sum over the leading axes (a bias gradient) or over the last axis alone, by our SIMD
 * kernels (kernels.wat `columnSum` / `rowSum`; float32, in blocks), when the kept (or summed)
 * width is a multiple of 4; otherwise undefined.
 */
function sumBySimd(
  args: KernelArgs,
  x: tf.TensorInfo,
  sorted: number[],
): tf.TensorInfo | undefined {
  const backend: unknown = args.backend;
  const simd = simdKernels(backend);
  const rank = x.shape.length;
  if (simd === undefined || !isHeapBackend(backend) || x.dtype !== 'float32' || rank === 0) {
    return undefined;
  }
  const leading = sorted.length > 0 && sorted.length < rank && sorted.every((a, i) => a === i);
  const last = sorted.length === 1 && sorted[0] === rank - 1;
  const size = tf.util.sizeFromShape(x.shape);
  const width = leading
    ? size / tf.util.sizeFromShape(x.shape.slice(0, sorted.length))
    : x.shape[rank - 1];
  // Row sums add each row's values in sequence: short rows only (a channel axis), for accuracy.
  if (!(leading || (last && width <= MAX_ROW_SUM)) || width % 4 !== 0 || size === 0) {
    return undefined;
  }
  const keepDims = attr<boolean>(args, 'keepDims') === true;
  const outShape = keepDims
    ? x.shape.map((d, i) => (sorted.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !sorted.includes(i));
  const out = backend.makeOutput(outShape, 'float32');
  if (leading)
    simd.columnSum(heapAddress(backend, x), heapAddress(backend, out), size / width, width);
  else simd.rowSum(heapAddress(backend, x), heapAddress(backend, out), size / width, width);
  return out;
}
