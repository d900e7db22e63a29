import * as tf from '@tensorflow/tfjs';
import { analyze } from '../src/analysis';
import type { AnalysisReport, AnalyzeOptions } from '../src/analysis';
import { selectParameters } from '../src/analysis/parameters';
import { buildModel, type ModelName } from '../src/models';

/**
 * The batched sweep (the default `fast` strategy) against the naive one, which filters the
 * model's own weights and evaluates every step from scratch: every step's removed count, α,
 * clean and adversarial accuracy and every score must be identical.
 */

/** What must agree between two reports (not the count of evaluated models, nor the time). */
function results(report: AnalysisReport): unknown {
  return {
    reference: report.reference,
    parameters: report.parameters.map(({ evaluated: _evaluated, ...rest }) => rest),
  };
}

function data(n: number, shape: [number, number, number], seed: number) {
  return tf.tidy(() => ({
    xs: tf.randomNormal([n, ...shape], 0, 1, 'float32', seed),
    ys: tf.tensor1d(
      Array.from({ length: n }, (_, i) => (i * 7) % 4),
      'int32',
    ),
  }));
}

/** Two kernels (one in the middle, behind residual or concatenated branches; the last) and a depthwise one if any. */
function someKernels(model: tf.LayersModel): string[] {
  const all = selectParameters(model);
  const picked = new Set([all[Math.floor(all.length / 2)], all[all.length - 1]]);
  const depthwise = all.find((p) => p.layer.getClassName() === 'DepthwiseConv2D');
  if (depthwise) picked.add(depthwise);
  return all.filter((p) => picked.has(p)).map((p) => p.name);
}

/**
 * A few Adam steps on the data: at random initialisation ShuffleNet and ResNet-18 (seed 11)
 * predict one class whatever the input (and whatever is filtered): equal results would prove
 * nothing.
 */
async function fitBriefly(model: tf.LayersModel, set: { xs: tf.Tensor; ys: tf.Tensor }) {
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const oneHot = tf.oneHot(set.ys, 10);
  for (let i = 0; i < 3; i++) await model.trainOnBatch(set.xs, oneHot);
  oneHot.dispose();
}

/** Three batches (4, 4, 2 examples of 10); K = 4. */
const base: AnalyzeOptions = { epsilon: 0.3, steps: 4, batchSize: 4 };

describe('the batched sweep gives exactly the naive sweep', () => {
  const architectures: [ModelName, [number, number, number]][] = [
    ['small_cnn', [28, 28, 1]],
    ['resnet18', [32, 32, 3]],
    ['resnet50', [16, 16, 3]],
    ['squeezenet1_1', [24, 24, 3]],
    ['shufflenet_v2_x1_0', [32, 32, 3]],
  ];

  it.each(architectures)('%s (input %j), both regenerate settings', async (name, shape) => {
    const model = buildModel(name, {
      inputShape: shape,
      classes: 10,
      width: name === 'small_cnn' ? undefined : name === 'resnet50' ? 0.125 : 0.25,
      seed: 11,
    });
    const set = data(10, shape, 5);
    try {
      if (name === 'resnet18' || name === 'shufflenet_v2_x1_0') await fitBriefly(model, set);
      const parameters = someKernels(model);
      for (const regenerate of [false, true]) {
        const options = { ...base, regenerate, parameters };
        const naive = await analyze(model, set, { ...options, strategy: 'naive' });
        const tensors = tf.memory().numTensors;
        const batched = await analyze(model, set, options);
        expect(tf.memory().numTensors).toBe(tensors);
        expect(results(batched)).toEqual(results(naive));
        if (regenerate) {
          // A budget of 1 MiB: every tensor's filtered models in several chunks.
          const chunked = await analyze(model, set, { ...options, variantMemoryMiB: 1 });
          expect(results(chunked)).toEqual(results(naive));
        }
        // The sweep did change predictions: a test of equal constants would prove nothing.
        const accuracies = naive.parameters.flatMap((p) =>
          Object.values(p.filters).flatMap(
            (f) => f?.steps.flatMap((s) => [s.clean, s.adversarial]) ?? [],
          ),
        );
        expect(new Set(accuracies).size).toBeGreaterThan(1);
      }
    } finally {
      tf.dispose([set.xs, set.ys]);
      model.dispose();
    }
  });

  it.each([false, true])('global mode (regenerate: %s), chunked over steps', async (regenerate) => {
    const model = buildModel('resnet18', { inputShape: [16, 16, 3], width: 0.25, seed: 4 });
    const set = data(12, [16, 16, 3], 9);
    try {
      const options: AnalyzeOptions = { ...base, regenerate, mode: 'global' };
      const naive = await analyze(model, set, { ...options, strategy: 'naive' });
      const tensors = tf.memory().numTensors;
      const batched = await analyze(model, set, options);
      const chunked = await analyze(model, set, { ...options, variantMemoryMiB: 1 });
      expect(tf.memory().numTensors).toBe(tensors);
      expect(results(batched)).toEqual(results(naive));
      expect(results(chunked)).toEqual(results(naive));
    } finally {
      tf.dispose([set.xs, set.ys]);
      model.dispose();
    }
  });

  it('PGD regenerated per filtered model, and a model ending in logits', async () => {
    const model = buildModel('small_cnn', { seed: 2 });
    const set = data(10, [28, 28, 1], 3);
    try {
      const options: AnalyzeOptions = {
        ...base,
        attack: 'pgd',
        pgd: { steps: 2, stepSize: 0.1 },
        clip: [-1, 1],
        output: 'probabilities',
      };
      const naive = await analyze(model, set, { ...options, strategy: 'naive' });
      const batched = await analyze(model, set, options);
      expect(results(batched)).toEqual(results(naive));
    } finally {
      tf.dispose([set.xs, set.ys]);
      model.dispose();
    }
  });

  it('a weight the batched sweep cannot vary (a BatchNorm scale) is evaluated one by one', async () => {
    const model = buildModel('resnet18', { inputShape: [16, 16, 3], width: 0.25, seed: 6 });
    const set = data(8, [16, 16, 3], 1);
    try {
      const gamma = model.weights.find((w) => /gamma/.test(w.name))?.name as string;
      const conv = selectParameters(model)[1].name;
      const options: AnalyzeOptions = { ...base, parameters: [gamma, conv] };
      const naive = await analyze(model, set, { ...options, strategy: 'naive' });
      const fast = await analyze(model, set, options);
      expect(results(fast)).toEqual(results(naive));
    } finally {
      tf.dispose([set.xs, set.ys]);
      model.dispose();
    }
  });
});

describe('option variantMemoryMiB', () => {
  it('must be a positive integer', async () => {
    const model = buildModel('small_cnn', { seed: 1 });
    const set = data(4, [28, 28, 1], 1);
    try {
      await expect(analyze(model, set, { ...base, variantMemoryMiB: 0 })).rejects.toThrow(
        /option 'variantMemoryMiB' must be >= 1; got 0/,
      );
    } finally {
      tf.dispose([set.xs, set.ys]);
      model.dispose();
    }
  });
});
