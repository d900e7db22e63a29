import * as tf from '@tensorflow/tfjs';
import { RELU_GRAD_KERNEL, stockReluGrad } from '../gradients/relu';
import { composed, input, isHeapBackend, heapAddress, type KernelArgs } from './kernel-io';
import { runShared, simdKernels, simdSettings } from './simd';

/**
 * {@link RELU_GRAD_KERNEL} on `wasm`: on float32 data in the backend's memory, our SIMD kernel (the same
 * IEEE products as tfjs' formula, NaN, ±∞ and −0 included), else tfjs' formula.
 */
export function reluGrad(args: KernelArgs): tf.TensorInfo {
  const { dy, x } = args.inputs;
  if (dy === undefined || x === undefined) throw new Error(`${RELU_GRAD_KERNEL} needs dy and x`);
  const backend: unknown = args.backend;
  const simd = simdKernels(backend);
  const sameShape = tf.util.arraysEqual(dy.shape, x.shape);
  if (
    simd === undefined ||
    !isHeapBackend(backend) ||
    !sameShape ||
    dy.dtype !== 'float32' ||
    x.dtype !== 'float32'
  ) {
    return composed(args, () => stockReluGrad(input(args, 'dy'), input(args, 'x')));
  }
  const out = backend.makeOutput(x.shape.slice(), 'float32');
  runShared(
    backend,
    simd,
    'reluGradRange',
    [heapAddress(backend, x), heapAddress(backend, dy), heapAddress(backend, out)],
    tf.util.sizeFromShape(x.shape),
    simdSettings.minValuesPerThread,
  );
  return out;
}
