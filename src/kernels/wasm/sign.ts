import * as tf from '@tensorflow/tfjs';
import { isHeapBackend, heapAddress, type KernelArgs } from './kernel-io';
import { runShared, simdKernels, simdSettings } from './simd';

/**
 * Builds the `Sign` replacement: float32 signs (FGSM's step direction) in one loop over the
 * backend's memory, as `cpu` computes them (−1 below 0, 1 above, else 0: NaN and −0 give +0).
 * wasm's kernel gives 0 for every |x| below about 1e-6, which erases small input gradients from
 * FGSM, and costs ~5 ns a value. Computed by our SIMD kernel (else a JS loop); other dtypes go
 * to `original`.
 */
export function makeSign(original: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const x = args.inputs.x;
    if (x === undefined) throw new Error('Sign needs input x');
    const backend: unknown = args.backend;
    const size = x.shape.reduce((p, d) => p * d, 1);
    if (x.dtype !== 'float32' || !isHeapBackend(backend)) {
      return original(params);
    }
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    const simd = simdKernels(backend);
    if (simd !== undefined) {
      runShared(
        backend,
        simd,
        'signRange',
        [heapAddress(backend, x), heapAddress(backend, out)],
        size,
        simdSettings.minValuesPerThread,
      );
      return out;
    }
    const xs = backend.typedArrayFromHeap(x) as Float32Array;
    const ys = backend.typedArrayFromHeap(out) as Float32Array;
    // Without branches: gradient signs are a coin toss each, which mispredicts half the time.
    for (let i = 0; i < size; i++) {
      const v = xs[i];
      ys[i] = +(v > 0) - +(v < 0);
    }
    return out;
  };
}
