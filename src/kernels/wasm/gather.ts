import * as tf from '@tensorflow/tfjs';
import { attr, isHeapBackend, type KernelArgs } from './kernel-io';

/** Below this many values per gathered slice, wasm's element loop is as fast as block copies. */
const MIN_SLICE = 8;

/**
 * Builds the `GatherV2` replacement: each gathered slice (e.g. one image of a batch) is one block
 * copy in the backend's memory, where wasm's kernel copies value by value. Indices are checked
 * as wasm checks them. Strings, small slices and non-heap backends go to `fallback`.
 */
export function makeGatherV2(fallback: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const { x, indices } = args.inputs;
    const backend: unknown = args.backend;
    if (x === undefined || indices === undefined) throw new Error('GatherV2 needs x and indices');
    if (x.dtype === 'string' || !isHeapBackend(backend)) return fallback(params);
    const axis = tf.util.parseAxisParam(attr<number>(args, 'axis'), x.shape)[0];
    const batchDims = attr<number | undefined>(args, 'batchDims') ?? 0;
    const shape = tf.backend_util.segment_util.collectGatherOpShapeInfo(
      x as tf.Tensor,
      indices as tf.Tensor,
      axis,
      batchDims,
    );
    const { batchSize, outerSize, dimSize, sliceSize, outputShape } = shape;
    if (sliceSize < MIN_SLICE) return fallback(params);
    const idx = backend.typedArrayFromHeap(indices);
    for (let i = 0; i < idx.length; i++) {
      if (!(idx[i] >= 0 && idx[i] <= dimSize - 1)) {
        throw new Error(`GatherV2: the index value ${idx[i]} is not in [0, ${dimSize - 1}]`);
      }
    }
    const out = backend.makeOutput(outputShape, x.dtype);
    const xs = backend.typedArrayFromHeap(x);
    const ys = backend.typedArrayFromHeap(out);
    const ind = backend.typedArrayFromHeap(indices); // views again: makeOutput may grow memory
    const perBatch = ind.length / batchSize;
    let dst = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let o = 0; o < outerSize; o++) {
        const base = (b * outerSize + o) * dimSize;
        for (let i = 0; i < perBatch; i++, dst += sliceSize) {
          const src = (base + ind[b * perBatch + i]) * sliceSize;
          ys.set(xs.subarray(src, src + sliceSize), dst);
        }
      }
    }
    return out;
  };
}
