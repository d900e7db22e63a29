import * as tf from '@tensorflow/tfjs';
import { attr, isHeapBackend, type KernelArgs } from './kernel-io';

/** Blocks shorter than this are copied value by value (a `set` call costs more). */
const MIN_SET_BLOCK = 32;

/**
 * The plan of a slice as block copies: the trailing axes the slice takes whole are merged with
 * the innermost axis it cuts into one contiguous block of `block` values; the `outer` axes before
 * it are iterated. `offset` is the flat index of the first value taken.
 */
export function sliceBlocks(
  shape: number[],
  begin: number[],
  size: number[],
): { block: number; outerSizes: number[]; outerStrides: number[]; offset: number } {
  const strides = tf.util.computeStrides(shape);
  const stride = (axis: number) => (axis === shape.length - 1 ? 1 : strides[axis]);
  let axis = shape.length - 1;
  let block = 1;
  while (axis >= 0 && begin[axis] === 0 && size[axis] === shape[axis]) block *= shape[axis--];
  if (axis >= 0) block *= size[axis];
  let offset = 0;
  for (let a = 0; a < shape.length; a++) offset += begin[a] * stride(a);
  const outer = Math.max(0, axis);
  return {
    block,
    outerSizes: size.slice(0, outer),
    outerStrides: shape.slice(0, outer).map((_, a) => stride(a)),
    offset,
  };
}

/**
 * Builds the `Slice` replacement: the slice is copied as contiguous blocks (whole trailing axes
 * merged), where wasm's kernel copies one innermost row at a time (one value at a time for a
 * single channel, e.g. a batch of `[n, 28, 28, 1]` images). Strings go to `fallback`.
 */
export function makeSlice(fallback: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const x = args.inputs.x;
    const backend: unknown = args.backend;
    if (x === undefined) throw new Error('Slice needs input x');
    if (x.dtype === 'string' || !isHeapBackend(backend)) return fallback(params);
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      attr<number[] | number>(args, 'begin'),
      attr<number[] | number>(args, 'size'),
    );
    const out = backend.makeOutput(size, x.dtype);
    const total = size.reduce((p, d) => p * d, 1);
    if (total === 0) return out;
    const xs = backend.typedArrayFromHeap(x);
    const ys = backend.typedArrayFromHeap(out);
    const { block, outerSizes, outerStrides, offset } = sliceBlocks(x.shape, begin, size);
    const blocks = total / block;
    const counter = new Array<number>(outerSizes.length).fill(0);
    let src = offset;
    for (let dst = 0, n = 0; n < blocks; n++, dst += block) {
      if (block >= MIN_SET_BLOCK) ys.set(xs.subarray(src, src + block), dst);
      else for (let i = 0; i < block; i++) ys[dst + i] = xs[src + i];
      // Advance the outer index like an odometer, innermost outer axis first.
      for (let a = outerSizes.length - 1; a >= 0; a--) {
        src += outerStrides[a];
        if (++counter[a] < outerSizes[a]) break;
        src -= outerStrides[a] * outerSizes[a];
        counter[a] = 0;
      }
    }
    return out;
  };
}
