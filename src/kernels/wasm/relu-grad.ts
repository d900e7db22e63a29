import * as tf from '@tensorflow/tfjs';
import { composed, input, isHeapBackend, heapAddress, type KernelArgs } from './kernel-io';
import { runShared, simdKernels, simdSettings } from './simd';

/** Our kernel for ReLU's gradient, `dy · step(x)` in one pass (registered for `wasm` only). */
export const RELU_GRAD_KERNEL = 'AntifragileReluGrad';

/** tfjs' own ReLU gradient: `dy · step(x)` as separate passes (Step, Cast, Multiply). */
function stockReluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.mul(dy, tf.cast(tf.step(x), 'float32'));
}

/**
 * {@link RELU_GRAD_KERNEL}: on float32 data in the backend's memory, our SIMD kernel (the same
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

/**
 * ReLU's gradient `dy · step(x)`: {@link RELU_GRAD_KERNEL} (one pass) when the active backend is
 * `wasm` with our kernels registered, else tfjs' formula. `x` may be ReLU's input or its output
 * (the same steps).
 */
export function reluGradient(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.getBackend() === 'wasm' && tf.getKernel(RELU_GRAD_KERNEL, 'wasm') !== undefined
    ? (tf.engine().runKernel(RELU_GRAD_KERNEL, { dy, x }) as tf.Tensor)
    : stockReluGrad(dy, x);
}

/**
 * Makes `Relu`'s gradient call {@link RELU_GRAD_KERNEL} when the active backend is `wasm`: one
 * pass over memory instead of three (ReLU's gradient is among the largest element-wise costs of
 * a CNN's training step and FGSM gradient). Other backends keep tfjs' formula. tfjs keeps one
 * gradient per kernel for the whole process, so this replaces it everywhere; the values are the
 * same on every backend. Idempotent.
 */
export function registerReluGradient(): void {
  tf.registerGradient({
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => {
      const [x] = saved;
      return { x: () => reluGradient(dy as tf.Tensor, x) };
    },
  });
  // Second derivatives, as tfjs' formula has them: dy · step(x) is linear in dy and flat in x.
  tf.registerGradient({
    kernelName: RELU_GRAD_KERNEL,
    inputsToSave: ['x'],
    gradFunc: (ddx, saved) => {
      const [x] = saved;
      return {
        dy: () => tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: ddx as tf.Tensor, x }) as tf.Tensor,
        x: () => tf.zerosLike(x),
      };
    },
  });
}
