import * as tf from '@tensorflow/tfjs';
import {
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
} from '../src/kernels/native/fast-kernels';
import { fusedKernelCalls, fusedKernelsRegistered } from '../src/kernels/native/fused-ops';
import { stockAndOurs } from './support/native-kernels';

/**
 * tfjs' FusedConv2D and _FusedMatMul as TensorFlow's `_FusedConv2D` / `_FusedMatMul` (one op:
 * product, bias, activation) must give exactly tfjs-node's values (product, `Add`,
 * activation as three ops), and calls they do not cover must still run.
 */
describe('fused convolution and matrix product (registered by initBackend on the native backend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  it('are in effect on the native backend (our setup patches the binding for their list attributes)', () => {
    if (!native()) return;
    expect(fusedKernelsRegistered()).toBe(true);
  });

  const CONV_CASES: [string, number[], number[], 'same' | 'valid', number, tf.fused.Activation][] =
    [
      ['3×3 valid, ReLU', [5, 13, 13, 16], [3, 3, 16, 32], 'valid', 1, 'relu'],
      ['3×3 same, stride 2, linear', [3, 12, 12, 8], [3, 3, 8, 24], 'same', 2, 'linear'],
      ['1×1, ReLU6', [4, 7, 7, 12], [1, 1, 12, 20], 'valid', 1, 'relu6'],
      [
        'one input channel into 64 (stacked variants of a stem)',
        [3, 12, 12, 1],
        [3, 3, 1, 64],
        'valid',
        1,
        'relu',
      ],
    ];

  it.each(CONV_CASES)(
    'a convolution (%s) gives exactly the three-op values',
    (_name, xShape, wShape, pad, stride, activation) => {
      if (!native()) return;
      const x = tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D;
      const filter = tf.randomNormal(wShape, 0, 0.3, 'float32', 2) as tf.Tensor4D;
      const bias = tf.randomNormal([wShape[3]], 0, 1, 'float32', 3);
      const run = () => tf.fused.conv2d({ x, filter, strides: stride, pad, bias, activation });
      const { stock, ours: fused, calls } = stockAndOurs(run, fusedKernelCalls);
      expect(calls).toBe(1);
      expect(fused.shape).toEqual(stock.shape);
      expect(Array.from(fused.dataSync())).toEqual(Array.from(stock.dataSync()));
      tf.dispose([x, filter, bias, stock, fused]);
    },
  );

  it.each([
    [false, false, 'relu'],
    [true, false, 'linear'],
    [false, true, 'relu'],
  ] as [boolean, boolean, tf.fused.Activation][])(
    'a matrix product (transposeA %s, transposeB %s, %s) gives exactly the three-op values',
    (transposeA, transposeB, activation) => {
      if (!native()) return;
      const a = tf.randomNormal(
        transposeA ? [40, 30] : [30, 40],
        0,
        1,
        'float32',
        4,
      ) as tf.Tensor2D;
      const b = tf.randomNormal(
        transposeB ? [20, 40] : [40, 20],
        0,
        1,
        'float32',
        5,
      ) as tf.Tensor2D;
      const bias = tf.randomNormal([20], 0, 1, 'float32', 6);
      const {
        stock,
        ours: fused,
        calls,
      } = stockAndOurs(
        () => tf.fused.matMul({ a, b, transposeA, transposeB, bias, activation }),
        fusedKernelCalls,
      );
      expect(calls).toBe(1);
      expect(Array.from(fused.dataSync())).toEqual(Array.from(stock.dataSync()));
      tf.dispose([a, b, bias, stock, fused]);
    },
  );

  it('leaves what it does not cover to tfjs-node (no bias, one input channel into few, sigmoid, batched products)', () => {
    if (!native()) return;
    const x = tf.randomNormal([2, 9, 9, 8], 0, 1, 'float32', 7) as tf.Tensor4D;
    const narrow = tf.randomNormal([2, 9, 9, 1], 0, 1, 'float32', 8) as tf.Tensor4D;
    const filter = tf.randomNormal([3, 3, 8, 4]) as tf.Tensor4D;
    const narrowFilter = tf.randomNormal([3, 3, 1, 4]) as tf.Tensor4D;
    const bias = tf.randomNormal([4]);
    const a3 = tf.randomNormal([2, 3, 5]) as tf.Tensor3D;
    const b3 = tf.randomNormal([2, 5, 4]) as tf.Tensor3D;
    const {
      stock,
      ours: fused,
      calls,
    } = stockAndOurs(
      () =>
        tf.stack([
          tf.fused.conv2d({ x, filter, pad: 'same', strides: 1, activation: 'relu' }).flatten(),
          tf.fused
            .conv2d({ x: narrow, filter: narrowFilter, pad: 'same', strides: 1, bias })
            .flatten(),
          tf.fused
            .conv2d({ x, filter, pad: 'same', strides: 1, bias, activation: 'sigmoid' })
            .flatten(),
          tf.pad(tf.fused.matMul({ a: a3, b: b3, bias, activation: 'relu' }).flatten(), [
            [0, 2 * 9 * 9 * 4 - 2 * 3 * 4],
          ]),
        ]),
      fusedKernelCalls,
    );
    expect(calls).toBe(0);
    expect(Array.from(fused.dataSync())).toEqual(Array.from(stock.dataSync()));
    tf.dispose([x, narrow, filter, narrowFilter, bias, a3, b3, stock, fused]);
  });

  it("keeps tfjs' gradients of the fused ops", () => {
    if (!native()) return;
    const x = tf.randomNormal([2, 8, 8, 8], 0, 1, 'float32', 9) as tf.Tensor4D;
    const filter = tf.randomNormal([3, 3, 8, 6], 0, 0.3, 'float32', 10) as tf.Tensor4D;
    const bias = tf.randomNormal([6], 0, 1, 'float32', 11);
    const grads = () =>
      tf.grads((xx: tf.Tensor, ff: tf.Tensor) =>
        tf.fused
          .conv2d({
            x: xx as tf.Tensor4D,
            filter: ff as tf.Tensor4D,
            pad: 'same',
            strides: 1,
            bias,
            activation: 'relu',
          })
          .square()
          .sum(),
      )([x, filter]);
    unregisterFastTensorflowKernels();
    const stock = grads();
    expect(registerFastTensorflowKernels()).toBe(true);
    const fused = grads();
    stock.forEach((g, i) =>
      expect(Array.from(fused[i].dataSync())).toEqual(Array.from(g.dataSync())),
    );
    tf.dispose([x, filter, bias, ...stock, ...fused]);
  });
});
