import * as tf from '@tensorflow/tfjs';
import { isHeapBackend, type KernelArgs } from './kernel-io';

/**
 * Up to this many output values, a broadcasting float32 operation runs as a plain loop over the
 * backend's memory. wasm's own broadcasting path costs ~50 µs for 1,000 values ([100, 1] ×
 * [100, 10], as in softmax cross-entropy), ten times its same-shape path; the loop costs a few.
 */
export const SMALL_BROADCAST_MAX = 1 << 14;

/** The operations {@link makeSmallBroadcast} computes. */
export type BinaryOp = 'add' | 'sub' | 'mul' | 'div';

/** One output row: `out[o + j] = a[pa] op b[pb]`, the input positions stepping by 0 or 1. */
function rowOp(
  op: BinaryOp,
  a: Float32Array,
  b: Float32Array,
  out: Float32Array,
  pa: number,
  pb: number,
  o: number,
  width: number,
  stepA: number,
  stepB: number,
): void {
  // One loop per operation, so that each stays monomorphic.
  const end = o + width;
  switch (op) {
    case 'add':
      for (; o < end; o++, pa += stepA, pb += stepB) out[o] = a[pa] + b[pb];
      break;
    case 'sub':
      for (; o < end; o++, pa += stepA, pb += stepB) out[o] = a[pa] - b[pb];
      break;
    case 'mul':
      for (; o < end; o++, pa += stepA, pb += stepB) out[o] = a[pa] * b[pb];
      break;
    case 'div':
      for (; o < end; o++, pa += stepA, pb += stepB) out[o] = a[pa] / b[pb];
      break;
  }
}

/**
 * Builds the replacement of a binary wasm kernel (`Multiply`, `RealDiv`, `Sub`, `Add`): small
 * float32 broadcasts (neither input a single value, shapes different, at most
 * {@link SMALL_BROADCAST_MAX} output values) as loops computing `op` in double precision,
 * stored as float32 — the correctly rounded float32 result of +, −, ×, ÷ (double has more than
 * twice float32's precision), so exactly wasm's and cpu's values. Every other call goes to
 * `original` unchanged.
 */
export function makeSmallBroadcast(original: tf.KernelFunc, op: BinaryOp): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const { a, b } = args.inputs;
    if (a === undefined || b === undefined) throw new Error('a binary kernel needs a and b');
    const backend: unknown = args.backend;
    if (
      !isHeapBackend(backend) ||
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      tf.util.arraysEqual(a.shape, b.shape) ||
      tf.util.sizeFromShape(a.shape) === 1 ||
      tf.util.sizeFromShape(b.shape) === 1
    ) {
      return original(params);
    }
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const size = tf.util.sizeFromShape(shape);
    if (size > SMALL_BROADCAST_MAX) return original(params);
    const out = backend.makeOutput(shape, 'float32');
    // Views after the allocation, which may have grown (and so detached) the memory.
    const av = backend.typedArrayFromHeap(a) as Float32Array;
    const bv = backend.typedArrayFromHeap(b) as Float32Array;
    const ov = backend.typedArrayFromHeap(out) as Float32Array;
    const strideA = broadcastStrides(a.shape, shape);
    const strideB = broadcastStrides(b.shape, shape);
    const rank = shape.length;
    const width = shape[rank - 1];
    const stepA = strideA[rank - 1];
    const stepB = strideB[rank - 1];
    const index = new Array<number>(rank).fill(0);
    let ia = 0;
    let ib = 0;
    for (let o = 0; o < size; o += width) {
      rowOp(op, av, bv, ov, ia, ib, o, width, stepA, stepB);
      // Next row: advance the odometer over the outer axes.
      for (let d = rank - 2; d >= 0; d--) {
        index[d] += 1;
        ia += strideA[d];
        ib += strideB[d];
        if (index[d] < shape[d]) break;
        ia -= strideA[d] * shape[d];
        ib -= strideB[d] * shape[d];
        index[d] = 0;
      }
    }
    return out;
  };
}

/** Per output axis, the step in an input of `inShape` broadcast to `outShape` (0: broadcast). */
function broadcastStrides(inShape: number[], outShape: number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let step = 1;
  for (let d = inShape.length - 1, o = outShape.length - 1; d >= 0; d--, o--) {
    strides[o] = inShape[d] === 1 ? 0 : step;
    step *= inShape[d];
  }
  return strides;
}
