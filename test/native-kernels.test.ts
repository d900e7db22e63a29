import * as tf from '@tensorflow/tfjs';
import { nativeAdamRegistered } from '../src/kernels/native/adam';
import { adamProblem, trainAdam, type AdamOptions } from './support/adam-problem';

type Shape4 = [number, number, number, number];
import { smallConvCallCount, smallConvKernelsRegistered } from '../src/kernels/native/small-conv';
import {
  fastTensorflowKernelsRegistered,
  registerFastTensorflowKernels,
  unregisterFastTensorflowKernels,
} from '../src/kernels/native/fast-kernels';

describe('fast tensorflow kernels (registered by initBackend on the native backend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  it('are in effect on the native backend', () => {
    if (!native()) return;
    expect(fastTensorflowKernelsRegistered()).toBe(true);
    expect(nativeAdamRegistered()).toBe(true);
    expect(smallConvKernelsRegistered()).toBe(true);
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

describe('native Adam (ResourceApplyAdam; registered by initBackend on the native backend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  /** The same Adam in float64 (tfjs' formula), as the yardstick of both. */
  function reference(shapes: number[][], steps: number, options: AdamOptions): number[][] {
    const { init, grads } = adamProblem(shapes, steps, options);
    const lr = options.lr ?? 1e-3;
    const eps = options.epsilon ?? 1e-7;
    return init.map((values, i) => {
      const w = Array.from(values);
      if (i === options.nullGradient) return w;
      const m = w.map(() => 0);
      const v = w.map(() => 0);
      for (let s = 0; s < steps; s++) {
        const [c1, c2] = [1 - 0.9 ** (s + 1), 1 - 0.999 ** (s + 1)];
        grads[s][i].forEach((g, k) => {
          m[k] = 0.9 * m[k] + 0.1 * g;
          v[k] = 0.999 * v[k] + 0.001 * g * g;
          w[k] -= (lr * (m[k] / c1)) / (Math.sqrt(v[k] / c2) + eps);
        });
      }
      return w;
    });
  }

  const maxError = (a: number[][], b: number[][]) =>
    Math.max(...a.map((x, i) => Math.max(0, ...x.map((xi, k) => Math.abs(xi - b[i][k])))));

  const CASES: [string, number[][], number, AdamOptions][] = [
    ['one step, several shapes', [[3, 3, 4, 5], [7], [2, 9], []], 1, {}],
    ['ten steps, six gradient scales', [[5, 4], [6], [3, 3, 2, 2], [8], [4, 4], [9]], 10, {}],
    ['a zero gradient (m = v = 0)', [[4, 3], [5]], 4, { zeroGradient: 1 }],
    ['a variable without gradient (map form)', [[4, 3], [5], [2]], 3, { nullGradient: 1 }],
    ['large ε and learning rate', [[6, 5], [4]], 5, { lr: 0.1, epsilon: 1e-2 }],
  ];

  it.each(CASES)(
    '%s: as close to float64 Adam as tfjs Adam is; moments equal to float32 rounding',
    async (_, shapes, steps, options) => {
      if (!native()) return;
      unregisterFastTensorflowKernels();
      const stock = await trainAdam(shapes, steps, options);
      registerFastTensorflowKernels();
      const before = tf.memory().numTensors;
      const ours = await trainAdam(shapes, steps, options);
      expect(tf.memory().numTensors).toBe(before);
      const exact = reference(shapes, steps, options);
      const stockError = maxError(stock.values, exact);
      const ourError = maxError(ours.values, exact);
      // Float32 rounding: both land within a few ulps of a step's size of the float64 result.
      expect(stockError).toBeLessThan(1e-4 * (options.lr ?? 1e-3) * steps + 1e-6);
      expect(ourError).toBeLessThanOrEqual(Math.max(1.5 * stockError, 1e-6));
      // The updates happened (weights moved by about lr per step) and skipped what tfjs skips.
      expect(
        maxError(
          ours.values,
          adamProblem(shapes, steps, options).init.map((a) => Array.from(a)),
        ),
      ).toBeGreaterThan(0.5 * (options.lr ?? 1e-3));
      expect(ours.iterations).toBe(stock.iterations);
      expect(ours.moments.map((m) => m.name)).toEqual(stock.moments.map((m) => m.name));
      // TensorFlow computes 1 − β in float32 from float32 β (1 − β2 is 1.3e-5 off, relatively,
      // for β2 = 0.999), tfjs in float64: the second moments differ by that much.
      ours.moments.forEach((m, i) => {
        const expected = stock.moments[i].values;
        const scale = Math.max(...expected.map(Math.abs));
        m.values.forEach((x, k) =>
          expect(Math.abs(x - expected[k])).toBeLessThanOrEqual(3e-5 * scale),
        );
      });
    },
  );

  it('keeps the native state in step when the variables are assigned from outside', () => {
    if (!native()) return;
    registerFastTensorflowKernels();
    const run = () => {
      const v = tf.variable(tf.tensor1d([1, -2, 3]));
      const optimizer = tf.train.adam(0.1);
      const g = tf.tensor1d([0.5, 0.5, -1]);
      optimizer.applyGradients([{ name: v.name, tensor: g }]);
      v.assign(tf.tensor1d([10, 20, 30]));
      optimizer.applyGradients([{ name: v.name, tensor: g }]);
      const out = v.arraySync();
      optimizer.dispose();
      tf.dispose([v, g]);
      return out;
    };
    const ours = run();
    unregisterFastTensorflowKernels();
    const stock = run();
    registerFastTensorflowKernels();
    ours.forEach((x, i) => expect(x).toBeCloseTo(stock[i], 5));
    expect(ours[0]).toBeLessThan(10);
  });

  it('updates small variables as one group: members frozen and unfrozen, assigned from outside', async () => {
    if (!native()) return;
    const shapes = [[3], [2, 2], [5000], [4], [3, 3, 2, 1]];
    const run = async (fast: boolean) => {
      if (fast) registerFastTensorflowKernels();
      else unregisterFastTensorflowKernels();
      const vars = shapes.map((shape, i) =>
        tf.tidy(() => tf.variable(tf.randomNormal(shape, 0, 1, 'float32', 40 + i))),
      );
      const optimizer = tf.train.adam(0.05);
      const trace: number[] = [];
      for (let s = 0; s < 7; s++) {
        // Steps 2 and 3 leave the last variable out (frozen), step 5 the last two. (tfjs
        // indexes the moments by position in the gradient map: only trailing ones can go.)
        const kept = s === 2 || s === 3 ? 4 : s === 5 ? 3 : 5;
        const grads = tf.tidy(() =>
          Object.fromEntries(
            vars
              .slice(0, kept)
              .map((v) => [v.name, tf.randomNormal(v.shape, 0, 1, 'float32', 7 * s + v.size)]),
          ),
        );
        if (s === 4) tf.tidy(() => vars[0].assign(tf.tensor1d([1, 2, 3])));
        // A map of plain tensors, as tfjs-layers hands them (its typing asks for variables).
        optimizer.applyGradients(grads as unknown as Record<string, tf.Variable>);
        tf.dispose(Object.values(grads));
        trace.push(...vars.flatMap((v) => Array.from(v.dataSync()).slice(0, 4)));
      }
      const weights = await optimizer.getWeights();
      const moments = weights.slice(1).flatMap((w) => Array.from(w.tensor.dataSync()).slice(0, 6));
      tf.dispose(weights.map((w) => w.tensor));
      optimizer.dispose();
      tf.dispose(vars);
      registerFastTensorflowKernels();
      return { trace, moments };
    };
    const stock = await run(false);
    const before = tf.memory().numTensors;
    const ours = await run(true);
    expect(tf.memory().numTensors).toBe(before);
    expect(ours.trace).toHaveLength(stock.trace.length);
    ours.trace.forEach((x, i) => expect(x).toBeCloseTo(stock.trace[i], 4));
    ours.moments.forEach((x, i) => expect(x).toBeCloseTo(stock.moments[i], 4));
  });

  it('hands its moments over when the stock code takes over mid-training, and to getWeights', async () => {
    if (!native()) return;
    const run = async (switchAfter: number | undefined) => {
      if (switchAfter === undefined) unregisterFastTensorflowKernels();
      else registerFastTensorflowKernels();
      const v = tf.variable(tf.tensor2d([1, -2, 3, 0.5], [2, 2]));
      const optimizer = tf.train.adam(0.05);
      const trace: number[][] = [];
      for (let s = 0; s < 5; s++) {
        if (s === switchAfter) unregisterFastTensorflowKernels();
        const g = tf.tensor2d([0.5 - s, 0.25, -1, 2 * s], [2, 2]);
        optimizer.applyGradients([{ name: v.name, tensor: g }]);
        g.dispose();
        trace.push(Array.from(v.dataSync()));
      }
      const weights = await optimizer.getWeights();
      const moments = weights.slice(1).map((w) => Array.from(w.tensor.dataSync()));
      weights[0].tensor.dispose();
      optimizer.dispose();
      v.dispose();
      registerFastTensorflowKernels();
      return { trace, moments };
    };
    const stock = await run(undefined);
    for (const ours of [await run(2), await run(99)]) {
      ours.trace.flat().forEach((x, i) => expect(x).toBeCloseTo(stock.trace.flat()[i], 5));
      ours.moments.flat().forEach((x, i) => expect(x).toBeCloseTo(stock.moments.flat()[i], 5));
    }
  });

  it('trains a model with the same losses as tfjs Adam', async () => {
    if (!native()) return;
    const fit = async () => {
      const model = tf.sequential({
        layers: [
          tf.layers.dense({
            inputShape: [6],
            units: 8,
            activation: 'relu',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
          }),
          tf.layers.dense({
            units: 3,
            kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
          }),
        ],
      });
      model.compile({ optimizer: 'adam', loss: 'meanSquaredError' });
      const xs = tf.randomNormal([16, 6], 0, 1, 'float32', 3);
      const ys = tf.randomNormal([16, 3], 0, 1, 'float32', 4);
      const history = await model.fit(xs, ys, {
        epochs: 5,
        batchSize: 8,
        shuffle: false,
        verbose: 0,
      });
      model.dispose();
      tf.dispose([xs, ys]);
      return history.history.loss as number[];
    };
    unregisterFastTensorflowKernels();
    const stock = await fit();
    registerFastTensorflowKernels();
    const ours = await fit();
    ours.forEach((l, i) => expect(l).toBeCloseTo(stock[i], 5));
  });
});

/** Outputs read back from a run with our kernels and one with the stock ones. */
type Outputs = { shape: number[]; values: number[] }[];

/** Each of `ours` has the shape of `stock`'s and its values within 1e-5 of its largest magnitude. */
function expectSameOutputs(ours: Outputs, stock: Outputs): void {
  ours.forEach((o, i) => {
    expect(o.shape).toEqual(stock[i].shape);
    const scale = Math.max(1, ...stock[i].values.map(Math.abs));
    o.values.forEach((v, k) =>
      expect(Math.abs(v - stock[i].values[k])).toBeLessThanOrEqual(1e-5 * scale),
    );
  });
}

describe('small-map convolutions as one matrix product (registered by initBackend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  // [input [n, h, w, c], filter [kh, kw, c, f], pad]
  const CASES: [string, number[], number[], 'same' | 'valid'][] = [
    ['3×3 same on 1×1 (ResNet-18 layer4)', [4, 1, 1, 6], [3, 3, 6, 5], 'same'],
    ['3×3 same on 2×2 (ResNet-18 layer3)', [3, 2, 2, 4], [3, 3, 4, 7], 'same'],
    ['5×5 same on 2×2', [2, 2, 2, 3], [5, 5, 3, 4], 'same'],
    ['3×3 same on 1×2', [2, 1, 2, 3], [3, 3, 3, 4], 'same'],
    ['4×4 same on 2×3 (asymmetric padding)', [2, 2, 3, 3], [4, 4, 3, 2], 'same'],
    ['1×1 valid on 1×1 (ShuffleNet stage 4, conv5)', [3, 1, 1, 4], [1, 1, 4, 5], 'valid'],
    ['1×1 same on 1×1', [5, 1, 1, 6], [1, 1, 6, 3], 'same'],
    ['not covered: 1×1 same on 2×2', [3, 2, 2, 4], [1, 1, 4, 5], 'same'],
    ['not covered: 1×1 valid on 1×2', [3, 1, 2, 4], [1, 1, 4, 5], 'valid'],
    ['not covered: 3×3 same on 4×4', [2, 4, 4, 3], [3, 3, 3, 2], 'same'],
  ];

  function run(xShape: number[], fShape: number[], pad: 'same' | 'valid') {
    return tf.tidy(() => {
      const x = tf.randomNormal(xShape as Shape4, 0, 1, 'float32', 21) as tf.Tensor4D;
      const w = tf.randomNormal(fShape as Shape4, 0, 1, 'float32', 22) as tf.Tensor4D;
      const y = tf.conv2d(x, w, 1, pad);
      const fused = tf.fused.conv2d({ x, filter: w, strides: 1, pad });
      const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 23);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.fused.conv2d({ x: a as tf.Tensor4D, filter: b as tf.Tensor4D, strides: 1, pad }),
            dy,
          ),
        ),
      )([x, w]);
      return [y, fused, dx, dw].map((t) => ({ shape: t.shape, values: Array.from(t.dataSync()) }));
    });
  }

  it.each(CASES)(
    '%s: forward and both gradients equal the stock kernels',
    (name, xShape, fShape, pad) => {
      if (!native()) return;
      unregisterFastTensorflowKernels();
      const stock = run(xShape, fShape, pad);
      registerFastTensorflowKernels();
      // The first run caches the tap table (one kept tensor per geometry); later runs leave
      // nothing behind.
      run(xShape, fShape, pad);
      const calls = smallConvCallCount();
      const before = tf.memory().numTensors;
      const ours = run(xShape, fShape, pad);
      expect(tf.memory().numTensors).toBe(before);
      // conv2d, fused conv2d, the fused conv2d under grads, its input and filter gradients.
      expect(smallConvCallCount() - calls).toBe(name.startsWith('not covered') ? 0 : 5);
      expectSameOutputs(ours, stock);
    },
  );
});

describe('depthwise convolutions on one pixel as an element-wise product (registered by initBackend)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  // [input [n, h, w, c], filter [kh, kw, c, multiplier], pad]
  const CASES: [string, number[], number[], 'same' | 'valid'][] = [
    ['3×3 same on 1×1 (ShuffleNet V2 stage 4)', [4, 1, 1, 6], [3, 3, 6, 1], 'same'],
    ['4×4 same on 1×1 (asymmetric padding)', [3, 1, 1, 5], [4, 4, 5, 1], 'same'],
    ['1×1 valid on 1×1', [3, 1, 1, 4], [1, 1, 4, 1], 'valid'],
    ['not covered: 3×3 same on 2×2', [2, 2, 2, 3], [3, 3, 3, 1], 'same'],
    ['not covered: multiplier 2', [2, 1, 1, 3], [3, 3, 3, 2], 'same'],
  ];

  function run(xShape: number[], fShape: number[], pad: 'same' | 'valid') {
    return tf.tidy(() => {
      const x = tf.randomNormal(xShape as Shape4, 0, 1, 'float32', 31) as tf.Tensor4D;
      const w = tf.randomNormal(fShape as Shape4, 0, 1, 'float32', 32) as tf.Tensor4D;
      const y = tf.depthwiseConv2d(x, w, 1, pad);
      const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 33);
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), dy)),
      )([x, w]);
      return [y, dx, dw].map((t) => ({ shape: t.shape, values: Array.from(t.dataSync()) }));
    });
  }

  it.each(CASES)(
    '%s: forward and both gradients equal the stock kernels',
    (name, xShape, fShape, pad) => {
      if (!native()) return;
      unregisterFastTensorflowKernels();
      const stock = run(xShape, fShape, pad);
      registerFastTensorflowKernels();
      const calls = smallConvCallCount();
      const before = tf.memory().numTensors;
      const ours = run(xShape, fShape, pad);
      expect(tf.memory().numTensors).toBe(before);
      // The forward pass twice (once under grads), the input and filter gradients.
      expect(smallConvCallCount() - calls).toBe(name.startsWith('not covered') ? 0 : 4);
      expectSameOutputs(ours, stock);
    },
  );
});
