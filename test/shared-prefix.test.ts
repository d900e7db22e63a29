import * as tf from '@tensorflow/tfjs';
import { GraphRunner, type WeightVariants } from '../src/analysis/graph';
import { copiedReluScaleGradientCount } from '../src/kernels/native/batch-norm';
import * as convPoolOps from '../src/kernels/native/conv-pool';
import { maxPoolArgmaxGradients } from '../src/kernels/native/max-pool-argmax';
import { buildModel, type ModelName } from '../src/models';

/**
 * With `copies`, the graph runner computes the layers upstream of the varied one once for all
 * copies of a batch (src/analysis/shared-prefix.ts). Its outputs and its input gradient must be
 * exactly those of the whole graph on every copy, and the model's first convolution must run
 * on one copy only where the prefix is handled (a chain, or ResNet's blocks with batch norm,
 * padding and additions), on every copy where it is not (SqueezeNet's concatenations).
 */
describe('shared prefix for copies of one batch (FGSM of many filtered models)', () => {
  const count = 3;
  const n = 4;

  const CASES: [ModelName, [number, number, number], number | undefined, string, boolean][] = [
    ['small_cnn', [12, 12, 1], undefined, 'conv2', true],
    ['small_cnn', [12, 12, 1], undefined, 'dense1', true],
    ['resnet18', [16, 16, 3], 0.0625, 'layer2_0_conv2', true],
    ['resnet18', [16, 16, 3], 0.0625, 'layer3_1_conv1', true],
    ['squeezenet1_1', [24, 24, 3], 0.125, 'features_6_expand3x3', false],
  ];

  function setup(
    name: ModelName,
    shape: [number, number, number],
    width: number | undefined,
    layer: string,
  ) {
    const model = buildModel(name, { inputShape: shape, classes: 10, width, seed: 5 });
    // Moving statistics away from 0 and 1, so batch norm is not the identity.
    for (const l of model.layers) {
      if (l.getClassName() !== 'BatchNormalization') continue;
      const [gamma, beta, mean, variance] = l.getWeights();
      l.setWeights([
        tf.randomUniform(gamma.shape, 0.5, 1.5, 'float32', 1),
        tf.randomNormal(beta.shape, 0, 0.1, 'float32', 2),
        tf.randomNormal(mean.shape, 0, 0.1, 'float32', 3),
        tf.randomUniform(variance.shape, 0.5, 2, 'float32', 4),
      ]);
    }
    const runner = new GraphRunner(model);
    const kernel = (model.getLayer(layer) as unknown as { kernel: tf.LayerVariable }).kernel;
    const values = Array.from({ length: count }, (_, b) =>
      tf.tidy(() => tf.mul(kernel.read(), tf.randomUniform(kernel.shape, 0, 2, 'float32', b))),
    );
    const variants: WeightVariants = { values: new Map([[kernel, values]]), count };
    const xs = tf.tidy(() =>
      tf.tile(tf.randomUniform([n, ...shape], 0, 1, 'float32', 9), [count, 1, 1, 1]),
    );
    const labels = tf.oneHot(tf.tensor1d([1, 3, 5, 7, 1, 3, 5, 7, 1, 3, 5, 7], 'int32'), 10);
    const release = () => {
      tf.dispose([...values, xs, labels]);
      model.dispose();
    };
    return { runner, variants, xs, labels, release, shape };
  }

  it.each(CASES)(
    '%s %j width %s, %s varied: exactly the whole graph’s logits and input gradient',
    (name, shape, width, layer, handled) => {
      const c = setup(name, shape, width, layer);
      const gradient = (copies: boolean) =>
        tf.grad((x: tf.Tensor) =>
          tf.losses.softmaxCrossEntropy(
            c.labels,
            c.runner.logits(x, c.variants, copies),
            undefined,
            0,
            tf.Reduction.SUM,
          ),
        )(c.xs);
      const plain = c.runner.logits(c.xs, c.variants, false);
      const shared = c.runner.logits(c.xs, c.variants, true);
      expect(Array.from(shared.dataSync())).toEqual(Array.from(plain.dataSync()));
      const before = tf.memory().numTensors;
      const g1 = gradient(false);
      // On tfjs-node our ops run where a prefix is handled.
      const native = tf.getBackend() === 'tensorflow' && handled;
      const pooled = maxPoolArgmaxGradients() + convPoolOps.convPoolCallCount();
      const normed = copiedReluScaleGradientCount();
      const g2 = gradient(true);
      // ResNet's prefix: its batch-norm blocks' backward as one op over the copies.
      const fusedNorms = native && name === 'resnet18';
      expect(copiedReluScaleGradientCount() > normed).toBe(fusedNorms);
      expect(tf.memory().numTensors).toBe(before + 2);
      // On tfjs-node a handled prefix's pooling scatters into the one copy's argmax, or runs
      // with its convolution as our conv-pool ops (the small CNN's first block).
      expect(maxPoolArgmaxGradients() + convPoolOps.convPoolCallCount() > pooled).toBe(native);
      expect(Array.from(g2.dataSync())).toEqual(Array.from(g1.dataSync()));
      // The variants differ, so the copies' gradients must too (the test would not see a sum).
      const blocks = tf.split(g2, count);
      expect(Array.from(blocks[0].dataSync())).not.toEqual(Array.from(blocks[1].dataSync()));
      tf.dispose([plain, shared, g1, g2, ...blocks]);
      c.release();
    },
  );

  it.each(CASES)(
    '%s %j width %s, %s varied: the first convolution runs on one copy where the prefix is handled (%s)',
    async (name, shape, width, layer, handled) => {
      const c = setup(name, shape, width, layer);
      const firstConvBatches = async (copies: boolean) => {
        // Our conv-pool ops run the small CNN's first block outside tfjs' kernels: spied on.
        const ops: number[] = [];
        const spies = (['convPool', 'convPoolRoute'] as const).map((name) => {
          const real = convPoolOps[name] as (a: { x: tf.Tensor }) => unknown;
          return jest.spyOn(convPoolOps, name).mockImplementation(((a: { x: tf.Tensor }) => {
            if (a.x.shape[3] === shape[2]) ops.push(a.x.shape[0]);
            return real(a);
          }) as never);
        });
        try {
          const info = await tf.profile(() =>
            tf.tidy(() => {
              tf.grad((x: tf.Tensor) => c.runner.logits(x, c.variants, copies).sum())(c.xs);
            }),
          );
          // The model's first convolution: the one whose input has the image's channels.
          const kernels = info.kernels
            .filter((k) => /Conv2D$/.test(k.name) && k.inputShapes[0]?.[3] === shape[2])
            .map((k) => k.inputShapes[0]?.[0] as number);
          return [...kernels, ...ops];
        } finally {
          spies.forEach((spy) => spy.mockRestore());
        }
      };
      expect(await firstConvBatches(false)).toContain(count * n);
      const shared = await firstConvBatches(true);
      expect(shared.length).toBeGreaterThan(0);
      expect(shared.every((b) => b === n)).toBe(handled);
      // ResNet's stem padding is folded into its input gradient on tfjs-node: that gradient comes
      // out at the image's own size, not the padded one.
      const info = await tf.profile(() =>
        tf.tidy(() => {
          tf.grad((x: tf.Tensor) => c.runner.logits(x, c.variants, true).sum())(c.xs);
        }),
      );
      const intoImage = info.kernels.some(
        (k) =>
          k.name === 'Conv2DBackpropInput' &&
          k.outputShapes[0]?.join() === [count * n, ...shape].join(),
      );
      if (name === 'resnet18') expect(intoImage).toBe(tf.getBackend() === 'tensorflow');
      c.release();
    },
  );
});
