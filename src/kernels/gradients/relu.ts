import * as tf from '@tensorflow/tfjs';

/**
 * ReLU's gradient, `dy · step(x)`, as one kernel where a backend has one: our SIMD kernel on
 * `wasm` (`../wasm/relu-grad.ts`), TensorFlow's `ReluGrad` on `tensorflow`
 * (`../native/relu-grad.ts`). tfjs' own gradient runs three passes (Step, Cast, Multiply).
 */
export const RELU_GRAD_KERNEL = 'AntifragileReluGrad';

/** tfjs' own ReLU gradient: `dy · step(x)` as separate passes (Step, Cast, Multiply). */
export function stockReluGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.mul(dy, tf.cast(tf.step(x), 'float32'));
}

/**
 * ReLU's gradient `dy · step(x)`: {@link RELU_GRAD_KERNEL} (one pass) when the active backend has
 * it registered, else tfjs' formula. `x` may be ReLU's input or its output (the same steps).
 */
export function reluGradient(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  return tf.getKernel(RELU_GRAD_KERNEL, tf.getBackend()) !== undefined
    ? (tf.engine().runKernel(RELU_GRAD_KERNEL, { dy, x }) as tf.Tensor)
    : stockReluGrad(dy, x);
}

/**
 * Makes `Relu`'s gradient call {@link RELU_GRAD_KERNEL} on the backends that have it: one pass
 * over memory instead of three (ReLU's gradient is among the largest element-wise costs of a
 * CNN's training step and FGSM gradient). Other backends keep tfjs' formula. tfjs keeps one
 * gradient per kernel for the whole process, so this replaces it everywhere. The values are
 * tfjs' on every backend, −0 included, except that on `tensorflow` a NaN input gives 0 (as in
 * TensorFlow and PyTorch) where tfjs' formula gives NaN. Idempotent.
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
