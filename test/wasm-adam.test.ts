/**
 * Our fused Adam on wasm (one AntifragileAdam kernel per variable, registered by
 * registerWasmKernels) gives exactly the values of tfjs' own Adam, on wasm and on cpu: the kernel
 * repeats tfjs' float32 operations in the same order, and every one of them is IEEE-exact on both.
 */
import * as tf from '@tensorflow/tfjs';
import {
  ADAM_KERNEL,
  registerWasmAdam,
  unregisterWasmAdam,
  wasmAdamRegistered,
} from '../src/kernels/wasm/adam';
import { adamProblem, trainAdam, type AdamOptions } from './support/adam-problem';
import { switchToWasm } from './support/wasm';

let previousBackend = '';

beforeAll(async () => {
  previousBackend = await switchToWasm();
});

afterAll(async () => {
  registerWasmAdam();
  await tf.setBackend(previousBackend);
});

/** `run` with tfjs' own Adam on the active backend (ours unregistered meanwhile). */
async function withStockAdam<T>(run: () => Promise<T>): Promise<T> {
  unregisterWasmAdam();
  try {
    return await run();
  } finally {
    registerWasmAdam();
  }
}

async function onCpu<T>(run: () => Promise<T>): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return await run();
  } finally {
    await tf.setBackend('wasm');
  }
}

const CASES: [string, number[][], number, AdamOptions][] = [
  ['one step, several shapes (sizes 180, 7, 18, 1)', [[3, 3, 4, 5], [7], [2, 9], []], 1, {}],
  ['ten steps, six gradient scales', [[5, 4], [6], [3, 3, 2, 2], [8], [4, 4], [9]], 10, {}],
  ['a zero gradient (m = v = 0)', [[4, 3], [5]], 4, { zeroGradient: 1 }],
  ['a variable without gradient (map form)', [[4, 3], [5], [2]], 3, { nullGradient: 1 }],
  ['large ε and learning rate', [[6, 5], [4]], 5, { lr: 0.1, epsilon: 1e-2 }],
  ['NaN and ±∞ in a gradient', [[3, 5], [4]], 3, { specialGradient: 0 }],
  ['a large variable (SIMD body and tail)', [[257, 13]], 3, {}],
];

describe('fused Adam on wasm (AntifragileAdam)', () => {
  it('is in effect after registerWasmKernels', () => {
    expect(wasmAdamRegistered()).toBe(true);
    expect(tf.getKernel(ADAM_KERNEL, 'wasm')).toBeDefined();
  });

  it.each(CASES)(
    '%s: exactly the values and moments of tfjs Adam on wasm and on cpu',
    async (_, shapes, steps, options) => {
      const ours = await trainAdam(shapes, steps, options);
      const stock = await withStockAdam(() => trainAdam(shapes, steps, options));
      const cpu = await onCpu(() => trainAdam(shapes, steps, options));
      expect(ours.iterations).toBe(steps);
      expect(ours).toEqual(stock);
      expect(ours).toEqual(cpu);
      // The update moved every variable that had a (non-zero) gradient.
      const { init } = adamProblem(shapes, steps, options);
      ours.values.forEach((values, i) => {
        const moved = values.some((x, k) => x !== init[i][k]);
        expect(moved).toBe(i !== options.nullGradient && i !== options.zeroGradient);
      });
    },
  );

  it('runs one kernel per variable, not tfjs element-wise ops, and leaves no tensor behind', async () => {
    const variables = [tf.variable(tf.ones([40, 3])), tf.variable(tf.ones([5]))];
    const optimizer = tf.train.adam(0.01);
    const step = () => {
      const gradients = variables.map((v) => ({ name: v.name, tensor: tf.onesLike(v) }));
      optimizer.applyGradients(gradients);
      tf.dispose(gradients.map((g) => g.tensor));
    };
    step(); // creates the moments
    const before = tf.memory().numTensors;
    const info = await tf.profile(step);
    expect(tf.memory().numTensors).toBe(before);
    const names = info.kernels.map((k) => k.name);
    expect(names.filter((n) => n === ADAM_KERNEL)).toHaveLength(2);
    expect(names).not.toContain('Sqrt');
    expect(names).not.toContain('RealDiv');
    optimizer.dispose();
    tf.dispose(variables);
  });

  it('trains a model to the same weights as tfjs Adam', async () => {
    const fit = async () => {
      const model = tf.sequential({
        layers: [
          tf.layers.dense({
            inputShape: [6],
            units: 9,
            activation: 'relu',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
          }),
          tf.layers.dense({
            units: 3,
            activation: 'softmax',
            kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
          }),
        ],
      });
      model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
      const xs = tf.randomNormal([64, 6], 0, 1, 'float32', 3);
      const ys = tf.oneHot(tf.randomUniform([64], 0, 3, 'int32', 4), 3);
      const history = await model.fit(xs, ys, {
        epochs: 3,
        batchSize: 16,
        shuffle: false,
        verbose: 0,
      });
      const weights = model.getWeights().map((w) => Array.from(w.dataSync()));
      tf.dispose([xs, ys]);
      model.dispose();
      return { loss: history.history.loss, weights };
    };
    const ours = await fit();
    const stock = await withStockAdam(fit);
    expect(ours).toEqual(stock);
  });

  it('leaves other backends to the Adam it wraps', async () => {
    await onCpu(async () => {
      const v = tf.variable(tf.ones([4]));
      const optimizer = tf.train.adam(0.1);
      const g = tf.onesLike(v);
      const info = await tf.profile(() => optimizer.applyGradients([{ name: v.name, tensor: g }]));
      expect(info.kernels.map((k) => k.name)).toContain('Sqrt');
      for (const x of v.dataSync()) expect(x).toBeCloseTo(0.9, 5);
      tf.dispose([v, g]);
      optimizer.dispose();
    });
  });
});
