import * as tf from '@tensorflow/tfjs';
import { analyze } from '../src/analysis';
import {
  convPool,
  convPoolAvailable,
  convPoolCallCount,
  convPoolFits,
  convPoolGrad,
  convPoolGradFits,
  convPoolRoute,
} from '../src/kernels/native/conv-pool';
import { enableOurOps } from '../src/kernels/native/our-ops';

/**
 * Our `AntifragileConvPool` op (convolution into few channels, bias, ReLU, max pooling) gives
 * TensorFlow's own values bit for bit, in every layout the batched sweep asks for, and the
 * analysis gives the same results with and without it.
 */
describe('AntifragileConvPool (src/kernels/native/conv-pool.ts)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  afterEach(() => enableOurOps(true));

  it('is built and registered wherever the native backend runs', () => {
    if (!native()) return;
    expect(convPoolAvailable()).toBe(true);
  });

  /** TensorFlow's ops for `variants` filters on one input, laid out per variant. */
  function reference(
    x: tf.Tensor4D,
    filters: tf.Tensor4D[],
    biases: (tf.Tensor1D | null)[],
    pool: [number, number, number, number],
    relu: boolean,
  ): tf.Tensor {
    return tf.tidy(() =>
      tf.concat(
        filters.map((w, v) => {
          let y: tf.Tensor4D = tf.conv2d(x, w, 1, 'valid');
          const b = biases[v];
          if (b) y = tf.add(y, b);
          if (relu) y = tf.relu(y);
          return tf.maxPool(y, [pool[0], pool[1]], [pool[2], pool[3]], 'valid');
        }),
      ),
    );
  }

  function expectIdentical(ours: tf.Tensor | undefined, theirs: tf.Tensor): void {
    expect(ours).toBeDefined();
    const a = (ours as tf.Tensor).dataSync();
    const b = theirs.dataSync();
    expect((ours as tf.Tensor).shape).toEqual(theirs.shape);
    let differing = 0;
    for (let i = 0; i < b.length; i++) if (!Object.is(a[i], b[i])) differing++;
    expect(differing).toBe(0);
  }

  const CASES: [string, number[], number[], [number, number, number, number], boolean, boolean][] =
    [
      [
        '3×3 from 1 channel, 2×2 pooling, ReLU (small CNN conv1)',
        [5, 28, 28, 1],
        [3, 3, 1, 16],
        [2, 2, 2, 2],
        true,
        true,
      ],
      [
        '5×5 from 3 channels, 32 outputs, linear',
        [3, 17, 19, 3],
        [5, 5, 3, 32],
        [2, 2, 2, 2],
        false,
        true,
      ],
      [
        '3×3 from 7 channels, no bias, overlapping 3×3/2 pooling',
        [2, 15, 14, 7],
        [3, 3, 7, 16],
        [3, 3, 2, 2],
        true,
        false,
      ],
      [
        '1×2 pooling of stride 1, odd sizes',
        [2, 10, 9, 2],
        [2, 3, 2, 48],
        [1, 2, 1, 1],
        true,
        true,
      ],
      [
        '3×3 from 16 channels into 32, ReLU, 2×2 pooling (small CNN conv2)',
        [5, 13, 13, 16],
        [3, 3, 16, 32],
        [2, 2, 2, 2],
        true,
        true,
      ],
      [
        '3×3 from 24 channels into 16, linear, no bias, odd sizes',
        [3, 12, 15, 24],
        [3, 3, 24, 16],
        [2, 2, 2, 2],
        false,
        false,
      ],
      [
        '5×5 from 64 channels, overlapping 3×3/2 pooling',
        [2, 14, 13, 64],
        [5, 5, 64, 32],
        [3, 3, 2, 2],
        true,
        true,
      ],
      [
        '3×3 from 256 channels (the most taps taken), 1×2 pooling',
        [1, 9, 8, 256],
        [3, 3, 256, 16],
        [1, 2, 1, 2],
        true,
        true,
      ],
    ];

  it.each(CASES)('%s: TensorFlow’s values, one filter', (_n, xs, ws, pool, relu, bias) => {
    if (!native()) return;
    tf.tidy(() => {
      const x = tf.randomNormal(xs, 0, 1, 'float32', 3) as tf.Tensor4D;
      const w = tf.randomNormal(ws, 0, 0.4, 'float32', 4) as tf.Tensor4D;
      const b = bias ? (tf.randomNormal([ws[3]], 0, 0.5, 'float32', 5) as tf.Tensor1D) : null;
      const before = convPoolCallCount();
      const ours = convPool({
        x,
        filters: tf.expandDims(w, 0),
        biases: b && tf.expandDims(b, 0),
        poolSize: [pool[0], pool[1]],
        strides: [pool[2], pool[3]],
        relu,
        groups: 1,
      });
      expect(convPoolCallCount()).toBe(before + 1);
      expectIdentical(ours, reference(x, [w], [b], pool, relu));
    });
  });

  it('lays out stacked variants per variant (groups) and runs per-block filters (blocks)', () => {
    if (!native()) return;
    tf.tidy(() => {
      const n = 4;
      const x = tf.randomNormal([n, 12, 12, 1], 0, 1, 'float32', 6) as tf.Tensor4D;
      const ws = [7, 8, 9].map(
        (s) => tf.randomNormal([3, 3, 1, 16], 0, 0.5, 'float32', s) as tf.Tensor4D,
      );
      const bs = [1, 2, 3].map((s) => tf.randomNormal([16], 0, 0.5, 'float32', s) as tf.Tensor1D);
      const pool: [number, number, number, number] = [2, 2, 2, 2];
      const args = {
        poolSize: [2, 2] as [number, number],
        strides: [2, 2] as [number, number],
        relu: true,
      };
      const stacked = convPool({
        ...args,
        x,
        filters: tf.expandDims(tf.concat(ws, 3), 0),
        biases: tf.expandDims(tf.concat(bs), 0),
        groups: 3,
      });
      expectIdentical(stacked, reference(x, ws, bs, pool, true));
      // Blocks: block v of the input (its own examples) with filter v.
      const xs = [10, 11, 12].map(
        (s) => tf.randomNormal([n, 12, 12, 1], 0, 1, 'float32', s) as tf.Tensor4D,
      );
      const blocks = convPool({
        ...args,
        x: tf.concat(xs),
        filters: tf.stack(ws),
        biases: tf.stack(bs),
        groups: 1,
      });
      const expected = tf.concat(xs.map((xv, v) => reference(xv, [ws[v]], [bs[v]], pool, true)));
      expectIdentical(blocks, expected);
    });
  });

  const GRAD_CASES: [string, number[], number[], boolean, boolean, number][] = [
    [
      '3×3 from 1 channel, ReLU, bias, 3 copies of one route',
      [4, 14, 14, 1],
      [3, 3, 1, 16],
      true,
      true,
      3,
    ],
    ['5×5 from 3 channels, linear, no bias', [2, 13, 12, 3], [5, 5, 3, 32], false, false, 1],
    [
      '3×3 from 1 channel on 28×28 (small CNN conv1), 2 copies',
      [2, 28, 28, 1],
      [3, 3, 1, 16],
      true,
      true,
      2,
    ],
    [
      '5×5 from 1 channel, 20×21, linear (taps in groups)',
      [2, 20, 21, 1],
      [5, 5, 1, 16],
      false,
      true,
      1,
    ],
    [
      '3×3 from 16 channels into 32, ReLU, bias, 2 copies (TensorFlow’s kernel after our scatter)',
      [3, 13, 13, 16],
      [3, 3, 16, 32],
      true,
      true,
      2,
    ],
    ['3×3 from 12 channels, linear, no bias', [2, 11, 12, 12], [3, 3, 12, 16], false, false, 1],
  ];

  it.each(GRAD_CASES)(
    '%s: the route and input gradient give tfjs’ gradient of the separate ops, bit for bit',
    (_n, xs, ws, relu, bias, copies) => {
      if (!native()) return;
      tf.tidy(() => {
        const x = tf.randomNormal(xs, 0, 1, 'float32', 20) as tf.Tensor4D;
        const w = tf.randomNormal(ws, 0, 0.4, 'float32', 21) as tf.Tensor4D;
        const b = bias ? (tf.randomNormal([ws[3]], 0, 0.5, 'float32', 22) as tf.Tensor1D) : null;
        const layers = (input: tf.Tensor4D) => {
          let y: tf.Tensor4D = tf.conv2d(input, w, 1, 'valid');
          if (b) y = tf.add(y, b);
          if (relu) y = tf.relu(y);
          return tf.maxPool(y, 2, 2, 'valid');
        };
        const args = {
          filters: tf.expandDims(w, 0),
          biases: b && tf.expandDims(b, 0),
          poolSize: [2, 2] as [number, number],
          strides: [2, 2] as [number, number],
          relu,
        };
        const out = convPoolRoute({ ...args, x });
        expect(out).toBeDefined();
        const { y, route } = out as { y: tf.Tensor; route: tf.Tensor };
        expectIdentical(y, layers(x));
        // Some windows are ReLU-masked and positions vary: the route is not trivial.
        const codes = Array.from(route.dataSync());
        expect(new Set(codes.map((c) => c & 0xff)).size).toBe(4);
        if (relu) expect(codes.some((c) => c >= 256)).toBe(true);
        // Copies of the batch share the route; each copy has its own gradient.
        const tiled = tf.tile(x, [copies, 1, 1, 1]) as tf.Tensor4D;
        const dy = tf.randomNormal([copies * xs[0], ...y.shape.slice(1)], 0, 1, 'float32', 23);
        const theirs = tf.grad((input: tf.Tensor4D) => tf.sum(tf.mul(layers(input), dy)))(tiled);
        const ours = convPoolGrad({ ...args, dy, route, inputSize: [xs[1], xs[2]] });
        expectIdentical(ours, theirs);
      });
    },
  );

  it.each([1, 16])(
    'the input gradient takes per-block filters (%i input channels), and only windows that do not overlap',
    (channels) => {
      if (!native()) return;
      tf.tidy(() => {
        const ws = [30, 31].map(
          (s) => tf.randomNormal([3, 3, channels, 16], 0, 0.5, 'float32', s) as tf.Tensor4D,
        );
        const xs = [32, 33].map(
          (s) => tf.randomNormal([3, 10, 10, channels], 0, 1, 'float32', s) as tf.Tensor4D,
        );
        const shape = {
          poolSize: [2, 2] as [number, number],
          strides: [2, 2] as [number, number],
          relu: true,
        };
        const out = convPoolRoute({
          ...shape,
          x: tf.concat(xs),
          filters: tf.stack(ws),
          biases: null,
        });
        const { y, route } = out as { y: tf.Tensor; route: tf.Tensor };
        const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 34);
        const ours = convPoolGrad({
          ...shape,
          dy,
          route,
          filters: tf.stack(ws),
          inputSize: [10, 10],
        });
        const dys = tf.split(dy, 2);
        const theirs = tf.concat(
          xs.map((x, v) =>
            tf.grad((input: tf.Tensor4D) =>
              tf.sum(
                tf.mul(
                  tf.maxPool(tf.relu(tf.conv2d(input, ws[v], 1, 'valid')), 2, 2, 'valid'),
                  dys[v],
                ),
              ),
            )(x),
          ),
        );
        expectIdentical(ours, theirs);
      });
      expect(convPoolGradFits([2, 2], [2, 2])).toBe(true);
      expect(convPoolGradFits([3, 3], [2, 2])).toBe(false);
    },
  );

  it('takes only the geometry whose values it repeats; rejects bad shapes with an error', () => {
    if (!native()) return;
    const shape = {
      input: [1, 28, 28, 1],
      filter: [3, 3, 1, 16],
      poolSize: [2, 2] as [number, number],
      strides: [2, 2] as [number, number],
    };
    expect(convPoolFits(shape)).toBe(true);
    expect(convPoolFits({ ...shape, input: [1, 28, 28, 8], filter: [3, 3, 8, 16] })).toBe(true);
    // Beyond the filters whose summation order was read off TensorFlow's outputs.
    expect(convPoolFits({ ...shape, input: [1, 28, 28, 16], filter: [7, 7, 16, 16] })).toBe(false);
    expect(convPoolFits({ ...shape, input: [1, 28, 28, 512], filter: [3, 3, 512, 16] })).toBe(
      false,
    );
    expect(convPoolFits({ ...shape, filter: [3, 3, 1, 10] })).toBe(false);
    expect(convPoolFits({ ...shape, input: [1, 3, 3, 1] })).toBe(false);
    enableOurOps(false);
    expect(convPoolFits(shape)).toBe(false);
    enableOurOps(true);
    tf.tidy(() => {
      const call = () =>
        convPool({
          x: tf.zeros([3, 8, 8, 1]),
          filters: tf.zeros([2, 3, 3, 1, 16]), // 3 examples do not split into 2 blocks
          biases: null,
          poolSize: [2, 2],
          strides: [2, 2],
          relu: true,
          groups: 1,
        });
      expect(call).toThrow(/AntifragileConvPool: inconsistent shapes/);
      // An empty batch gives an empty result; a route naming no window position is refused.
      const shape = { poolSize: [2, 2] as [number, number], strides: [2, 2] as [number, number] };
      const filters = tf.zeros([1, 3, 3, 1, 16]);
      const empty = convPool({
        ...shape,
        x: tf.zeros([0, 8, 8, 1]),
        filters,
        biases: null,
        relu: true,
        groups: 1,
      });
      expect(empty?.shape).toEqual([0, 3, 3, 16]);
      const grad = (route: tf.Tensor) => () =>
        convPoolGrad({ ...shape, dy: tf.zeros(route.shape), route, filters, inputSize: [8, 8] });
      expect(grad(tf.zeros([0, 3, 3, 16], 'int32'))().shape).toEqual([0, 8, 8, 1]);
      expect(grad(tf.fill([1, 3, 3, 16], 4, 'int32'))).toThrow(/names no position of its window/);
      expect(grad(tf.fill([1, 3, 3, 16], 0x200, 'int32'))).toThrow(
        /names no position of its window/,
      );
      // Into 16 channels (our scatter, then TensorFlow's kernel): the same checks.
      const wide = tf.zeros([1, 3, 3, 16, 16]);
      const wideGrad = (route: tf.Tensor) => () =>
        convPoolGrad({
          ...shape,
          dy: tf.zeros(route.shape),
          route,
          filters: wide,
          inputSize: [8, 8],
        });
      expect(wideGrad(tf.zeros([2, 3, 3, 16], 'int32'))().shape).toEqual([2, 8, 8, 16]);
      expect(wideGrad(tf.fill([1, 3, 3, 16], 4, 'int32'))).toThrow(/scatter: a route value names/);
      expect(wideGrad(tf.zeros([1, 2, 3, 16], 'int32'))).toThrow(/scatter: inconsistent shapes/);
    });
  });

  /** A conv-pool block from `channels` channels, after one from the image (`first`) or not. */
  function blockModel(first: boolean): tf.LayersModel {
    const input = tf.input({ shape: [14, 14, 1] });
    const conv = (args: object) =>
      tf.layers.conv2d({ kernelSize: 3, seed: 1, ...args } as tf.layers.ConvLayerArgs);
    let h = conv({ filters: 16, activation: 'relu', name: 'c1' }).apply(input) as tf.SymbolicTensor;
    if (first) h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
    h = conv(
      first
        ? { filters: 16, useBias: false, name: 'c2' }
        : { filters: 32, activation: 'relu', name: 'c2' },
    ).apply(h) as tf.SymbolicTensor;
    h = tf.layers.maxPooling2d({ poolSize: 2 }).apply(h) as tf.SymbolicTensor;
    h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
    const out = tf.layers.dense({ units: 3, activation: 'softmax', name: 'head' }).apply(h);
    return tf.model({ inputs: input, outputs: out as tf.SymbolicTensor });
  }

  it.each([
    ['blocks from 1 and from 16 channels', true],
    ['only a block from 16 channels (TensorFlow’s input gradient after our scatter)', false],
  ])(
    'leaves the analysis unchanged, fixed and regenerated, and is used by it: %s',
    async (_n, first) => {
      if (!native()) return;
      const model = blockModel(first as boolean);
      const xs = tf.randomUniform([24, 14, 14, 1], 0, 1, 'float32', 8);
      const ys = tf.oneHot(
        tf.tensor1d(
          [...Array(24).keys()].map((i) => i % 3),
          'int32',
        ),
        3,
      );
      for (const regenerate of [false, true]) {
        const options = { epsilon: 0.1, steps: 5, regenerate, batchSize: 16 };
        const before = convPoolCallCount();
        const tensors = tf.memory().numTensors;
        const ours = await analyze(model, { xs, ys }, options);
        expect(convPoolCallCount()).toBeGreaterThan(before);
        expect(tf.memory().numTensors).toBe(tensors);
        enableOurOps(false);
        const theirs = await analyze(model, { xs, ys }, options);
        enableOurOps(true);
        expect(JSON.stringify(ours.parameters)).toBe(JSON.stringify(theirs.parameters));
      }
      tf.dispose([xs, ys]);
      model.dispose();
    },
  );
});
