import * as tf from '@tensorflow/tfjs';
import { RELU_GRAD_KERNEL, stockReluGrad } from '../src/kernels/gradients/relu';

/**
 * On tfjs-node, `Relu`'s gradient runs TensorFlow's `ReluGrad` in one pass (registered by
 * initBackend): tfjs' values, −0 included, with NaN inputs giving 0 (TensorFlow's and PyTorch's
 * convention) instead of tfjs' NaN.
 */
describe("ReLU's gradient on the native backend", () => {
  const native = () => tf.getBackend() === 'tensorflow';

  it("equals tfjs' formula value for value, −0 included, and runs as one kernel", async () => {
    if (!native()) return;
    // Rounded values: many exact zeros, where the gradient must be ±0 as dy's sign says.
    const x = tf.tidy(() => tf.round(tf.mul(tf.randomNormal([4, 6, 6, 3], 0, 1, 'float32', 1), 2)));
    const dy = tf.randomNormal(x.shape, 0, 1, 'float32', 2);
    const ours = tf.grad((input: tf.Tensor) => tf.relu(input))(x, dy);
    const stock = stockReluGrad(dy, x);
    const a = ours.dataSync();
    const b = stock.dataSync();
    expect(a.length).toBe(b.length);
    expect(Array.from(a).every((v, i) => Object.is(v, b[i]))).toBe(true);
    expect(Array.from(a).some((v) => Object.is(v, -0))).toBe(true);
    const info = await tf.profile(() =>
      tf.tidy(() => {
        tf.grad((input: tf.Tensor) => tf.relu(input))(x, dy);
      }),
    );
    const names = info.kernels.map((k) => k.name);
    expect(names).toContain(RELU_GRAD_KERNEL);
    expect(names).not.toContain('Step');
    tf.dispose([x, dy, ours, stock]);
  });

  it('gives 0 for a NaN input (TensorFlow and PyTorch), where tfjs gives NaN', () => {
    if (!native()) return;
    const x = tf.tensor1d([NaN, -1, 2]);
    const dy = tf.tensor1d([1, 1, 1]);
    const g = tf.grad((input: tf.Tensor) => tf.relu(input))(x, dy);
    expect(Array.from(g.dataSync())).toEqual([0, 0, 1]);
    tf.dispose([x, dy, g]);
  });
});
