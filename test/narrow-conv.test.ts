import * as tf from '@tensorflow/tfjs';
import { narrowConvCallCount, narrowConvOurOpCount } from '../src/kernels/native/narrow-conv';
import { enableOurOps } from '../src/kernels/native/our-ops';
import { stockAndOurs } from './support/native-kernels';

/**
 * The input gradient of a convolution into fewer than 8 channels runs TensorFlow's own kernel
 * (explicit padding) instead of oneDNN's: the same values to float32 rounding, for every padding
 * and stride tfjs passes, and wider inputs keep tfjs-node's kernel.
 */
describe('input gradient into few channels (registered by initBackend on the native backend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  function expectClose(ours: tf.Tensor, stock: tf.Tensor): void {
    expect(ours.shape).toEqual(stock.shape);
    const scale = tf.max(tf.abs(stock)).dataSync()[0];
    const error = tf.max(tf.abs(tf.sub(ours, stock))).dataSync()[0];
    expect(scale).toBeGreaterThan(0);
    expect(error / scale).toBeLessThan(1e-5);
  }

  const CASES: [string, number[], number[], 'same' | 'valid', number][] = [
    ['3×3 valid, 1 channel (small CNN conv1)', [6, 28, 28, 1], [3, 3, 1, 16], 'valid', 1],
    [
      '7×7 stride 2 valid, 1 channel (ResNet stem after padding)',
      [4, 34, 34, 1],
      [7, 7, 1, 16],
      'valid',
      2,
    ],
    ['7×7 stride 2 same, 3 channels (uneven padding)', [3, 33, 32, 3], [7, 7, 3, 8], 'same', 2],
    ['3×3 same, 4 channels', [2, 9, 9, 4], [3, 3, 4, 12], 'same', 1],
  ];

  it.each(CASES)(
    '%s: the same values as oneDNN, through conv2dTranspose and the gradient',
    (_n, xShape, wShape, pad, stride) => {
      if (!native()) return;
      const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D;
      const w = tf.randomNormal(wShape, 0, 0.3, 'float32', 2) as tf.Tensor4D;
      const yShape = tf.conv2d(x, w, stride, pad).shape;
      const dy = tf.randomNormal(yShape, 0, 1, 'float32', 3) as tf.Tensor4D;
      const transpose = stockAndOurs(
        () => tf.conv2dTranspose(dy, w, x.shape, stride, pad),
        narrowConvCallCount,
      );
      expect(transpose.calls).toBe(1);
      expectClose(transpose.ours, transpose.stock);
      const loss = (input: tf.Tensor) =>
        tf.sum(tf.mul(tf.conv2d(input as tf.Tensor4D, w, stride, pad), dy));
      const gradient = stockAndOurs(() => tf.grad(loss)(x), narrowConvCallCount);
      expect(gradient.calls).toBe(1);
      expectClose(gradient.ours, gradient.stock);
      tf.dispose([x, w, dy, transpose.stock, transpose.ours, gradient.stock, gradient.ours]);
    },
  );

  /** Small maps where our op's summation order differs from TensorFlow's kernel's. */
  const SMALL_MAPS: [string, number[], number[], 'same' | 'valid', number][] = [
    [
      '1×1 on a 2×2 map, 6 channels (ShuffleNet at width 0.25)',
      [6, 2, 2, 6],
      [1, 1, 6, 15],
      'valid',
      1,
    ],
    ['3×3 on a 3×3 map', [6, 3, 3, 6], [3, 3, 6, 15], 'same', 1],
  ];
  const BIT_CASES = [
    ...CASES.map((c) => [...c, true] as const),
    ...SMALL_MAPS.map((c) => [...c, false] as const),
  ];

  it.each(BIT_CASES)(
    '%s: TensorFlow’s own kernel’s values, bit for bit (by our AntifragileInputGrad op where it repeats them)',
    (_n, xShape, wShape, pad, stride, byOurOp) => {
      if (!native()) return;
      tf.tidy(() => {
        const w = tf.randomNormal(wShape, 0, 0.3, 'float32', 12) as tf.Tensor4D;
        const yShape = tf.conv2d(tf.zeros(xShape) as tf.Tensor4D, w, stride, pad).shape;
        const dy = tf.randomNormal(yShape, 0, 1, 'float32', 13) as tf.Tensor4D;
        const run = () => tf.conv2dTranspose(dy, w, xShape as never, stride, pad);
        const [before, ourBefore] = [narrowConvCallCount(), narrowConvOurOpCount()];
        const ours = run().dataSync();
        expect(narrowConvCallCount()).toBe(before + 1);
        expect(narrowConvOurOpCount()).toBe(ourBefore + (byOurOp ? 1 : 0));
        enableOurOps(false);
        const theirs = run().dataSync();
        enableOurOps(true);
        expect(narrowConvOurOpCount()).toBe(ourBefore + (byOurOp ? 1 : 0));
        let differing = 0;
        for (let i = 0; i < theirs.length; i++) if (!Object.is(ours[i], theirs[i])) differing++;
        expect(differing).toBe(0);
      });
    },
  );

  it('leaves inputs with 8 or more channels to tfjs-node (oneDNN is the faster there)', () => {
    if (!native()) return;
    const w = tf.randomNormal([3, 3, 8, 4], 0, 0.3, 'float32', 2) as tf.Tensor4D;
    const dy = tf.randomNormal([2, 5, 5, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
    const before = narrowConvCallCount();
    const dx = tf.conv2dTranspose(dy, w, [2, 7, 7, 8], 1, 'valid');
    expect(narrowConvCallCount()).toBe(before);
    expect(dx.shape).toEqual([2, 7, 7, 8]);
    tf.dispose([w, dy, dx]);
  });

  it('keeps no tensors', () => {
    if (!native()) return;
    const w = tf.randomNormal([3, 3, 1, 4]) as tf.Tensor4D;
    const dy = tf.randomNormal([2, 5, 5, 4]) as tf.Tensor4D;
    tf.dispose(tf.conv2dTranspose(dy, w, [2, 7, 7, 1], 1, 'valid'));
    const before = tf.memory().numTensors;
    tf.dispose(tf.conv2dTranspose(dy, w, [2, 7, 7, 1], 1, 'valid'));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, dy]);
  });
});
