import * as tf from '@tensorflow/tfjs';
import {
  fastTensorflowKernelsRegistered,
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
} from '../src/native/fast-kernels';

describe('fast tensorflow kernels (registered by initBackend on the native backend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  it('are in effect on the native backend', () => {
    if (!native()) return;
    expect(fastTensorflowKernelsRegistered()).toBe(true);
  });

  it("Step (alpha 0) gives exactly tfjs-node's values, NaN and -0 included, and the same ReLU gradients", () => {
    if (!native()) return;
    const x = tf.tensor1d([NaN, -Infinity, -2, -0, 0, 1e-30, 3, Infinity]);
    const big = tf.randomNormal([3, 5, 7, 2], 0, 1, 'float32', 4);
    const reluGrad = () => tf.grad((t: tf.Tensor) => tf.relu(t).sum())(big);
    unregisterFastTensorflowKernels();
    const stock = tf.step(x);
    const stockLeaky = tf.step(x, 0.5);
    const stockGrad = reluGrad();
    expect(registerFastTensorflowKernels()).toBe(true);
    const before = tf.memory().numTensors;
    const fast = tf.step(x);
    const fastLeaky = tf.step(x, 0.5);
    const fastGrad = reluGrad();
    expect(tf.memory().numTensors).toBe(before + 3);
    expect(fast.arraySync()).toEqual(stock.arraySync());
    expect(fastLeaky.arraySync()).toEqual(stockLeaky.arraySync());
    expect(fastGrad.arraySync()).toEqual(stockGrad.arraySync());
    tf.dispose([x, big, stock, stockLeaky, stockGrad, fast, fastLeaky, fastGrad]);
  });
});
