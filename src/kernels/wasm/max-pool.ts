import * as tf from '@tensorflow/tfjs';
import { heapAddress, isHeapBackend, type KernelArgs } from './kernel-io';
import { isInside2x2, poolInfo } from './max-pool-grad';
import { runShared, simdKernels, simdSettings } from './simd';

/**
 * Builds the replacement of wasm's `MaxPool`: float32 2×2 windows at stride 2 inside the input,
 * channels a multiple of 4, by our SIMD kernel (kernels.wat `maxPool2x2`) with cpu's values (NaN
 * never wins a window; wasm's own lets it through). Large inputs (at least twice
 * `simdSettings.minValuesPerThread` values) have their rows shared out over the pool's threads:
 * pooling is memory-bound, and from memory (not cache) one thread draws a third of the
 * bandwidth two do (1.96 → 1.43 ms for [1000, 26, 26, 16]); cached, one thread is about as fast
 * (0.28 ms for [100, 26, 26, 16], 0.22 for XNNPACK's on two). Every other call goes to
 * `original`.
 */
export function makeMaxPool(original: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const { x } = args.inputs;
    if (x === undefined) throw new Error('MaxPool needs an input x');
    const backend: unknown = args.backend;
    const simd = simdKernels(backend);
    if (
      simd === undefined ||
      !isHeapBackend(backend) ||
      x.dtype !== 'float32' ||
      x.shape.length !== 4
    ) {
      return original(params);
    }
    const info = poolInfo(args, x.shape);
    if (!isInside2x2(info) || info.inChannels % 4 !== 0) return original(params);
    const out = backend.makeOutput(info.outShape.slice(), 'float32');
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
    const fixed = [heapAddress(backend, x), heapAddress(backend, out), inHeight, inWidth];
    runShared(
      backend,
      simd,
      'maxPool2x2',
      [...fixed, inChannels, outHeight, outWidth],
      batchSize * outHeight,
      Math.ceil(simdSettings.minValuesPerThread / (2 * inWidth * inChannels)),
    );
    return out;
  };
}
