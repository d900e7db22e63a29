import * as tf from '@tensorflow/tfjs';
import { analyze, GraphRunner } from '../src/analysis';
import {
  batchNormAddRelu,
  batchNormCallCount,
  reluScaleGradient,
} from '../src/kernels/native/batch-norm';
import { batchNormPoolCallCount, batchNormReluPool } from '../src/kernels/native/batch-norm-pool';
import { enableOurOps } from '../src/kernels/native/our-ops';
import { buildModel } from '../src/models';

/**
 * Our `AntifragileBatchNorm` op (batch norm in inference, a residual Add, ReLU) gives
 * TensorFlow's own values bit for bit (−0 and NaN included) for channel counts on both of its
 * formulas, and the same gradients as the three ops; the graph runner uses it for a ResNet's
 * blocks, with the same outputs and analysis results as without it.
 */
describe('AntifragileBatchNorm (src/kernels/native/batch-norm.ts)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  afterEach(() => enableOurOps(true));

  /** Random values with a few NaN, ±0 and infinities among them. */
  function values(shape: number[], seed: number, spread: number): tf.Tensor {
    return tf.tidy(() => {
      const data = tf.randomNormal(shape, 0, spread, 'float32', seed).dataSync().slice();
      [NaN, -0, 0, Infinity, -Infinity].forEach(
        (v, i) => (data[(i * 97 + seed) % data.length] = v),
      );
      return tf.tensor(data, shape);
    });
  }

  function bits(t: tf.Tensor): string[] {
    return Array.from(t.dataSync(), (v) => (Object.is(v, -0) ? '-0' : String(v)));
  }

  const cases: [number[], boolean][] = [
    [[40, 3, 3, 16], true],
    [[40, 3, 3, 10], true],
    [[30, 5, 5, 3], false],
    [[200, 58], true],
    [[50, 2, 2, 116], false],
    [[20, 1, 1, 64], true],
    [[300, 1], true],
  ];

  it.each(cases)('input %j (scale and offset: %s): TensorFlow’s values', (shape, affine) => {
    if (!native()) return;
    const channels = shape[shape.length - 1];
    tf.tidy(() => {
      const x = values(shape, 1, 4);
      const side = values(shape, 2, 3);
      const mean = tf.randomNormal([channels], 0, 1, 'float32', 3);
      const variance = tf.exp(tf.randomUniform([channels], -8, 6, 'float32', 4));
      const scale = affine ? tf.randomNormal([channels], 1, 0.5, 'float32', 5) : undefined;
      const offset = affine ? tf.randomNormal([channels], 0, 1, 'float32', 6) : undefined;
      const varianceEpsilon = 1e-3;
      const norm = tf.batchNorm(x, mean, variance, offset, scale, varianceEpsilon);
      const args = { x, mean, variance, scale, offset, varianceEpsilon };
      const before = batchNormCallCount();
      const residual = batchNormAddRelu({ ...args, side, relu: true });
      const plain = batchNormAddRelu({ ...args, relu: false });
      const rectified = batchNormAddRelu({ ...args, relu: true });
      expect(batchNormCallCount()).toBe(before + 3);
      expect(bits(residual as tf.Tensor)).toEqual(bits(tf.relu(tf.add(norm, side))));
      expect(bits(plain as tf.Tensor)).toEqual(bits(norm));
      expect(bits(rectified as tf.Tensor)).toEqual(bits(tf.relu(norm)));
    });
  });

  it('has the gradients of TensorFlow’s three ops, for x and the side', () => {
    if (!native()) return;
    tf.tidy(() => {
      const shape = [16, 4, 4, 12];
      const x = tf.randomNormal(shape, 0, 2, 'float32', 7);
      const side = tf.randomNormal(shape, 0, 2, 'float32', 8);
      const weights = tf.randomNormal(shape, 0, 1, 'float32', 9);
      const mean = tf.randomNormal([12], 0, 1, 'float32', 10);
      const variance = tf.randomUniform([12], 0.1, 3, 'float32', 11);
      const scale = tf.randomNormal([12], 1, 0.5, 'float32', 12);
      const offset = tf.randomNormal([12], 0, 1, 'float32', 13);
      const varianceEpsilon = 1e-5;
      const weighted = (t: tf.Tensor) => tf.sum(tf.mul(t, weights));
      const norm = { mean, variance, scale, offset, varianceEpsilon, relu: true };
      const theirsNorm = (a: tf.Tensor) =>
        tf.batchNorm(a, mean, variance, offset, scale, varianceEpsilon);
      const ours = (a: tf.Tensor, b: tf.Tensor) =>
        weighted(batchNormAddRelu({ ...norm, x: a, side: b }) as tf.Tensor);
      const theirs = (a: tf.Tensor, b: tf.Tensor) => weighted(tf.relu(tf.add(theirsNorm(a), b)));
      const [dx, dSide] = tf.grads(ours)([x, side]);
      const [tx, tSide] = tf.grads(theirs)([x, side]);
      expect(bits(dx)).toEqual(bits(tx));
      expect(bits(dSide)).toEqual(bits(tSide));
      expect(tf.sum(tf.abs(dx)).dataSync()[0]).toBeGreaterThan(0);
      // Without a side: ReLU's and batch norm's gradients alone.
      const alone = (a: tf.Tensor) => weighted(batchNormAddRelu({ ...norm, x: a }) as tf.Tensor);
      const plain = (a: tf.Tensor) => weighted(tf.relu(theirsNorm(a)));
      expect(bits(tf.grad(alone)(x))).toEqual(bits(tf.grad(plain)(x)));
    });
  });

  it.each([
    [[4, 3, 3, 16], 3],
    [[4, 3, 3, 10], 5],
    [[60, 7, 7, 16], 3],
    [[50, 5, 5, 10], 4],
  ])(
    'gradient over %j copied %i times: each copy’s steps from the one y, as with y repeated',
    (shape, count) => {
      if (!native()) return;
      tf.tidy(() => {
        const channels = shape[3];
        const y = tf.relu(values(shape, 31, 1));
        const dy = values([count * shape[0], ...shape.slice(1)], 32, 1);
        const factor = tf.randomUniform([channels], 0.5, 2, 'float32', 33);
        const copied = reluScaleGradient(dy, y, factor, true);
        const repeated = reluScaleGradient(dy, tf.tile(y, [count, 1, 1, 1]), factor, true);
        if (!copied || !repeated) throw new Error('the op did not run');
        expect(bits(copied.dx)).toEqual(bits(repeated.dx));
        expect(bits(copied.g)).toEqual(bits(repeated.g));
        // And the step's values: dy where y > 0, else 0 (a product: −0 for a negative dy).
        const step = tf.mul(dy, tf.tile(tf.cast(tf.greater(y, 0), 'float32'), [count, 1, 1, 1]));
        expect(bits(copied.g)).toEqual(bits(step));
      });
    },
  );

  const POOLS: [
    number[],
    [[number, number], [number, number]],
    [number, number],
    [number, number],
  ][] = [
    [
      [30, 14, 14, 16],
      [
        [1, 0],
        [1, 0],
      ],
      [3, 3],
      [2, 2],
    ],
    [
      [20, 8, 8, 6],
      [
        [1, 1],
        [1, 1],
      ],
      [3, 3],
      [2, 2],
    ],
    [
      [10, 9, 7, 24],
      [
        [0, 1],
        [2, 0],
      ],
      [2, 3],
      [1, 2],
    ],
    [
      [8, 5, 5, 3],
      [
        [0, 0],
        [0, 0],
      ],
      [2, 2],
      [2, 2],
    ],
  ];

  it.each(POOLS)(
    'input %j, padding %j: batch norm, ReLU, padding and max pooling as one op, TensorFlow’s values',
    (shape, padding, poolSize, strides) => {
      if (!native()) return;
      tf.tidy(() => {
        const c = shape[3];
        const args = {
          x: values(shape, 41, 2),
          mean: tf.randomNormal([c], 0, 0.5, 'float32', 42),
          variance: tf.randomUniform([c], 0.2, 2, 'float32', 43),
          scale: tf.randomNormal([c], 0.5, 1, 'float32', 44),
          offset: tf.randomNormal([c], 0, 0.5, 'float32', 45),
          varianceEpsilon: 1e-5,
          padding,
          poolSize,
          strides,
        };
        const before = batchNormPoolCallCount();
        const ours = batchNormReluPool(args);
        expect(batchNormPoolCallCount()).toBe(before + 1);
        const { x, mean, variance, offset, scale } = args;
        const normed = tf.relu(tf.batchNorm(x, mean, variance, offset, scale, 1e-5));
        const padded = tf.pad(normed, [[0, 0], ...padding, [0, 0]]) as tf.Tensor4D;
        const theirs = tf.maxPool(padded, poolSize, strides, 'valid');
        expect(ours?.shape).toEqual(theirs.shape);
        expect(bits(ours as tf.Tensor)).toEqual(bits(theirs));
        enableOurOps(false);
        expect(batchNormReluPool(args)).toBeUndefined();
        enableOurOps(true);
      });
    },
  );

  it('does not run with our ops switched off (the caller then runs TensorFlow’s)', () => {
    enableOurOps(false);
    const x = tf.ones([2, 4]);
    const c = tf.ones([4]);
    expect(
      batchNormAddRelu({ x, mean: c, variance: c, varianceEpsilon: 1e-3, relu: true }),
    ).toBeUndefined();
    tf.dispose([x, c]);
  });

  it("computes a ResNet's batch norms with their ReLU: the same outputs and analysis with and without", async () => {
    if (!native()) return;
    const model = buildModel('resnet18', {
      inputShape: [16, 16, 3],
      classes: 10,
      width: 0.125,
      seed: 3,
    });
    // Moving statistics away from 0 and 1, so that the batch norms change their inputs.
    for (const layer of model.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      // (getWeights gives the variables' own tensors: not disposed here.)
      const [gamma, beta] = layer.getWeights();
      const shape = beta.shape;
      const set = [
        tf.randomNormal(shape, 0, 0.2, 'float32', 1),
        tf.randomNormal(shape, 0, 0.5, 'float32', 2),
        tf.randomUniform(shape, 0.5, 2, 'float32', 3),
      ];
      layer.setWeights([gamma, ...set]);
      tf.dispose(set);
    }
    const xs = tf.randomNormal([12, 16, 16, 3], 0, 1, 'float32', 4);
    const ys = tf.tidy(() => tf.argMax(model.predict(xs) as tf.Tensor, -1).toInt());
    const runner = new GraphRunner(model);
    const before = batchNormCallCount();
    const stems = batchNormPoolCallCount();
    const withOp = runner.predict(xs);
    // The stem's batch norm, ReLU, padding and max pooling as one op.
    expect(batchNormPoolCallCount()).toBe(stems + 1);
    const blocks = model.layers.filter((l) => l.getClassName() === 'Add').length;
    // Every block's residual Add and the stem, at least.
    expect(batchNormCallCount() - before).toBeGreaterThan(blocks);
    const reference = model.predict(xs) as tf.Tensor;
    expect(bits(withOp)).toEqual(bits(reference));
    const options = { epsilon: 0.2, steps: 3, batchSize: 12, regenerate: true };
    const set = { xs, ys };
    const ours = await analyze(model, set, { ...options, parameters: ['layer3_0_conv2/kernel'] });
    enableOurOps(false);
    const counted = batchNormCallCount();
    const theirs = await analyze(model, set, { ...options, parameters: ['layer3_0_conv2/kernel'] });
    expect(batchNormCallCount()).toBe(counted);
    const strip = (r: typeof ours) => r.parameters.map(({ evaluated: _e, ...rest }) => rest);
    expect(strip(ours)).toEqual(strip(theirs));
    tf.dispose([xs, ys, withOp, reference]);
    model.dispose();
  });
});
