import * as tf from '@tensorflow/tfjs';
import { analyze, GraphRunner } from '../src/analysis';
import { defaultVariantMemoryMiB } from '../src/analysis/options';
import type { AnalysisReport, AnalyzeOptions } from '../src/analysis';
import { selectParameters } from '../src/analysis/parameters';
import { buildModel, type ModelName } from '../src/models';

/**
 * The batched sweep (the default `fast` strategy) against the naive one, which filters the
 * model's own weights and evaluates every step from scratch: every step's removed count, α,
 * clean and adversarial accuracy and every score must be identical. Models are untrained and
 * tiny; their BatchNorm statistics are set from the data (see {@link calibrateBatchNorm}) and
 * the labels are the model's own predictions, so that filtering changes the accuracies.
 */

/** What must agree between two reports (not the count of evaluated models, nor the time). */
function results(report: AnalysisReport): unknown {
  return {
    reference: report.reference,
    parameters: report.parameters.map(({ evaluated: _evaluated, ...rest }) => rest),
  };
}

/** The clean and adversarial accuracies of every step: they must not all be equal. */
function accuracies(report: AnalysisReport): number[] {
  return report.parameters.flatMap((p) =>
    Object.values(p.filters).flatMap(
      (f) => f?.steps.flatMap((s) => [s.clean, s.adversarial]) ?? [],
    ),
  );
}

/**
 * Sets every BatchNorm layer's moving mean and variance to its input's statistics over `xs`
 * (layers in graph order). At initialisation they are 0 and 1: BatchNorm in inference mode is
 * then the identity, and a random ResNet or ShuffleNet predicts one class for every input.
 */
function calibrateBatchNorm(model: tf.LayersModel, xs: tf.Tensor): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const input = layer.input as tf.SymbolicTensor;
    const stats = tf.tidy(() => {
      const head = tf.model({ inputs: model.inputs, outputs: input });
      return tf.moments(head.predict(xs) as tf.Tensor, [0, 1, 2]);
    });
    const [gamma, beta] = layer.getWeights();
    layer.setWeights([gamma, beta, stats.mean, stats.variance]);
    tf.dispose([stats.mean, stats.variance]);
  }
}

interface Case {
  model: tf.LayersModel;
  set: { xs: tf.Tensor; ys: tf.Tensor };
}

/** A tiny model and `n` random inputs labelled with its own predictions (inference mode). */
function setup(
  name: ModelName,
  shape: [number, number, number],
  width: number | undefined,
  seed: number,
  n = 16,
): Case {
  const model = buildModel(name, { inputShape: shape, classes: 10, width, seed });
  const xs = tf.randomNormal([n, ...shape], 0, 1, 'float32', seed);
  calibrateBatchNorm(model, xs);
  const ys = tf.tidy(() => (model.predict(xs) as tf.Tensor).argMax(-1).toInt());
  return { model, set: { xs, ys } };
}

/** The name of the selectable weight (kernel) of layer `layer`. */
function kernelOf(model: tf.LayersModel, layer: string): string {
  const p = selectParameters(model).find((q) => q.layer.name === layer);
  if (!p) throw new Error(`${model.name} has no selectable weight in layer ${layer}`);
  return p.name;
}

function release(c: Case): void {
  tf.dispose([c.set.xs, c.set.ys]);
  c.model.dispose();
}

/**
 * A memory budget (MiB) that fits about `variants` filtered models per pass of
 * `examples`: a pass holds each example's activations through the whole model, three times
 * with `regenerate` (forward, backward, sign).
 */
function budgetFor(model: tf.LayersModel, examples: number, variants: number): number {
  const bytes = 3 * new GraphRunner(model).exampleBytes() * examples;
  return ((variants + 0.5) * bytes) / 2 ** 20;
}

/** Naive, batched and (with `chunked`) batched in passes of about 2 models: all identical. */
async function expectIdentical(c: Case, options: AnalyzeOptions, chunked = false): Promise<void> {
  const naive = await analyze(c.model, c.set, { ...options, strategy: 'naive' });
  // The labels are the model's predictions: naive evaluation runs the model in inference mode.
  expect(naive.reference.clean).toBe(1);
  expect(new Set(accuracies(naive)).size).toBeGreaterThan(2);
  const tensors = tf.memory().numTensors;
  const batched = await analyze(c.model, c.set, options);
  expect(results(batched)).toEqual(results(naive));
  if (chunked) {
    const examples = c.set.xs.shape[0];
    const variantMemoryMiB = budgetFor(c.model, Math.min(examples, options.batchSize ?? 256), 2);
    const inPasses = await analyze(c.model, c.set, { ...options, variantMemoryMiB });
    expect(results(inPasses)).toEqual(results(naive));
  }
  expect(tf.memory().numTensors).toBe(tensors);
}

/** K = 3; 16 examples in one batch. */
const base: AnalyzeOptions = { epsilon: 0.3, steps: 3, batchSize: 16 };

describe('the batched sweep gives exactly the naive sweep', () => {
  it('small CNN: every weight (convolutions, dense), three batches, chunked passes', async () => {
    const c = setup('small_cnn', [12, 12, 1], undefined, 3);
    try {
      for (const regenerate of [false, true]) {
        await expectIdentical(c, { ...base, batchSize: 6, regenerate }, regenerate);
      }
    } finally {
      release(c);
    }
  });

  /** The paper's architectures, smallest widths, one or two weights each behind their blocks. */
  const architectures: [ModelName, [number, number, number], number, number, string[]][] = [
    ['resnet18', [16, 16, 3], 0.0625, 2, ['layer2_0_conv2']],
    ['resnet50', [16, 16, 3], 0.0625, 2, ['layer2_0_conv2']],
    ['squeezenet1_1', [24, 24, 3], 0.125, 6, ['features_6_expand3x3', 'classifier_1']],
    ['shufflenet_v2_x1_0', [16, 16, 3], 0.0625, 2, ['stage3_0_branch1_0', 'stage3_1_branch2_5']],
  ];

  it.each(architectures)(
    '%s (input %j, width %d), both regenerate settings',
    async (name, shape, width, seed, layers) => {
      const c = setup(name, shape, width, seed);
      try {
        const parameters = layers.map((layer) => kernelOf(c.model, layer));
        for (const regenerate of [false, true]) {
          await expectIdentical(c, { ...base, regenerate, parameters }, name === 'resnet18');
        }
      } finally {
        release(c);
      }
    },
  );

  it.each([false, true])('global mode (regenerate: %s), chunked over steps', async (regenerate) => {
    const c = setup('resnet18', [16, 16, 3], 0.0625, 2);
    try {
      await expectIdentical(c, { ...base, regenerate, mode: 'global' }, true);
    } finally {
      release(c);
    }
  });

  it('PGD regenerated per filtered model, the model read as probabilities', async () => {
    const c = setup('small_cnn', [12, 12, 1], undefined, 3);
    try {
      await expectIdentical(c, {
        ...base,
        regenerate: true,
        attack: 'pgd',
        pgd: { steps: 2, stepSize: 0.1 },
        clip: [-1, 1],
        output: 'probabilities',
      });
    } finally {
      release(c);
    }
  });

  it('a weight the batched sweep cannot vary (a BatchNorm scale) is evaluated one by one', async () => {
    const c = setup('resnet18', [16, 16, 3], 0.0625, 2);
    try {
      const gamma = c.model.weights.find((w) => /gamma/.test(w.name))?.name as string;
      const parameters = [gamma, kernelOf(c.model, 'layer2_0_conv2')];
      await expectIdentical(c, { ...base, parameters });
    } finally {
      release(c);
    }
  });
});

describe('option variantMemoryMiB', () => {
  it('must be a positive number', async () => {
    const c = setup('small_cnn', [12, 12, 1], undefined, 1, 4);
    try {
      await expect(analyze(c.model, c.set, { ...base, variantMemoryMiB: 0 })).rejects.toThrow(
        /option 'variantMemoryMiB' must be > 0; got 0/,
      );
    } finally {
      release(c);
    }
  });

  it('defaults on tfjs-node to a quarter of the available memory (512 to 4096 MiB, 1024 with a fixed set), elsewhere to 512', () => {
    expect(defaultVariantMemoryMiB('tensorflow', 10_000)).toBe(2500);
    expect(defaultVariantMemoryMiB('tensorflow', 1_000)).toBe(512);
    expect(defaultVariantMemoryMiB('tensorflow', 100_000)).toBe(4096);
    expect(defaultVariantMemoryMiB('tensorflow', null)).toBe(2048);
    expect(defaultVariantMemoryMiB('tensorflow', 10_000, false)).toBe(1024);
    expect(defaultVariantMemoryMiB('tensorflow', 3_000, false)).toBe(750);
    expect(defaultVariantMemoryMiB('tensorflow', null, false)).toBe(1024);
    // This machine's own figure, from Node.
    const available = process.availableMemory() / 2 ** 20;
    expect(defaultVariantMemoryMiB('tensorflow')).toBe(
      Math.floor(Math.min(4096, Math.max(512, available / 4))),
    );
    for (const backend of ['wasm', 'webgl', 'cpu'])
      expect(defaultVariantMemoryMiB(backend, 100_000)).toBe(512);
  });

  it("counts a convolution's bias and activation outputs in a pass's memory", () => {
    const input = tf.input({ shape: [6, 6, 2] });
    const plain = tf.layers.conv2d({ filters: 3, kernelSize: 3, useBias: false }).apply(input);
    const full = tf.layers
      .conv2d({ filters: 3, kernelSize: 3, activation: 'relu' })
      .apply(input) as tf.SymbolicTensor;
    const bytes = (output: tf.SymbolicTensor) =>
      new GraphRunner(tf.model({ inputs: input, outputs: output })).exampleBytes();
    // 4 × 4 × 3 floats out: once without bias and activation, three times with both.
    expect(bytes(plain as tf.SymbolicTensor)).toBe(4 * 48);
    expect(bytes(full)).toBe(3 * 4 * 48);
  });
});
