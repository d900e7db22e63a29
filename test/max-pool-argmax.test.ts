import * as tf from '@tensorflow/tfjs';
import { maxPoolArgmax, maxPoolGradFromArgmax } from '../src/kernels/native/max-pool-argmax';

/**
 * Max pooling's gradient for copies of one batch from the one copy's argmax must equal
 * TensorFlow's MaxPoolGrad on the repeated inputs exactly, ties included (ReLU zeros, rounded
 * values), for overlapping windows and both paddings.
 */
describe('max pooling gradient from a stored argmax (tfjs-node)', () => {
  const native = () => tf.getBackend() === 'tensorflow';
  const count = 3;

  const CASES: [string, number[], [number, number], [number, number], 'same' | 'valid'][] = [
    ['2×2 valid', [4, 10, 10, 5], [2, 2], [2, 2], 'valid'],
    ['3×3 stride 2 same, odd size', [3, 15, 13, 4], [3, 3], [2, 2], 'same'],
    ['3×3 stride 2 valid (overlapping windows)', [2, 15, 15, 6], [3, 3], [2, 2], 'valid'],
    ['3×3 stride 1 same', [2, 7, 7, 3], [3, 3], [1, 1], 'same'],
  ];

  it.each(CASES)(
    '%s: exactly MaxPoolGrad on repeated inputs',
    (_name, shape, filterSize, strides, pad) => {
      if (!native()) return;
      // Rounded ReLU values: many ties inside a window.
      const x = tf.tidy(() =>
        tf.round(tf.mul(tf.relu(tf.randomNormal(shape, 0, 1, 'float32', 1)), 3)),
      );
      const y = tf.maxPool(x as tf.Tensor4D, filterSize, strides, pad);
      const dy = tf.randomNormal([count * shape[0], ...y.shape.slice(1)], 0, 1, 'float32', 2);
      const argmax = maxPoolArgmax(x, filterSize, strides, pad) as tf.Tensor;
      expect(argmax.dtype).toBe('int32');
      expect(argmax.shape).toEqual(y.shape);
      const repeat = (t: tf.Tensor) => tf.tile(t, [count, 1, 1, 1]);
      const stock = tf
        .engine()
        .runKernel(
          'MaxPoolGrad',
          { dy, input: repeat(x), output: repeat(y) },
          { filterSize, strides, pad },
        ) as tf.Tensor;
      const before = tf.memory().numTensors;
      const tiled = repeat(argmax);
      const ours = maxPoolGradFromArgmax(
        dy,
        tiled,
        [count * shape[0], ...shape.slice(1)],
        filterSize,
        strides,
        pad,
      );
      expect(tf.memory().numTensors).toBe(before + 2);
      expect(ours.shape).toEqual(stock.shape);
      expect(Array.from(ours.dataSync())).toEqual(Array.from(stock.dataSync()));
      tf.dispose([x, y, dy, argmax, stock, tiled, ours]);
    },
  );

  it('refuses an argmax that does not pair with dy (TensorFlow would abort the process)', () => {
    if (!native()) return;
    const x = tf.randomNormal([2, 6, 6, 2]);
    const argmax = maxPoolArgmax(x, [2, 2], [2, 2], 'valid') as tf.Tensor;
    const dy = tf.randomNormal([4, 3, 3, 2]);
    expect(() => maxPoolGradFromArgmax(dy, argmax, [4, 6, 6, 2], [2, 2], [2, 2], 'valid')).toThrow(
      /argmax int32 \[2,3,3,2\] does not match dy \[4,3,3,2\]/,
    );
    const floats = tf.zeros([4, 3, 3, 2]);
    expect(() => maxPoolGradFromArgmax(dy, floats, [4, 6, 6, 2], [2, 2], [2, 2], 'valid')).toThrow(
      /float32/,
    );
    tf.dispose([x, argmax, dy, floats]);
  });

  it('gives no argmax for explicit padding', () => {
    if (!native()) return;
    const x = tf.randomNormal([1, 4, 4, 1]);
    expect(maxPoolArgmax(x, [2, 2], [2, 2], 1)).toBeUndefined();
    x.dispose();
  });
});
