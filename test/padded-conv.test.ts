import * as tf from '@tensorflow/tfjs';
import { analyze, GraphRunner } from '../src/analysis';
import { paddedConvCallCount } from '../src/analysis/padded-conv';
import { enableOurOps } from '../src/kernels/native/our-ops';
import { buildModel } from '../src/models';

/**
 * The graph runner computes a ZeroPadding2D and the `valid` Conv2D that alone reads it as one
 * convolution with explicit padding (src/analysis/padded-conv.ts): the same outputs as
 * `model.predict`, the same input gradients and the same analysis as without the fold, bit for
 * bit, on the paper's two architectures with such pads (ResNet's downsampling convolutions and
 * stem, ShuffleNet's stem).
 */
describe('padding folded into its convolution (src/analysis/padded-conv.ts)', () => {
  const native = () => tf.getBackend() === 'tensorflow';

  afterEach(() => enableOurOps(true));

  function bits(t: tf.Tensor): string[] {
    return Array.from(t.dataSync(), (v) => (Object.is(v, -0) ? '-0' : String(v)));
  }

  /** The input gradient of the summed logits, through the graph runner. */
  function inputGradient(runner: GraphRunner, xs: tf.Tensor): tf.Tensor {
    return tf.grad((x: tf.Tensor) => tf.sum(runner.logits(x)))(xs);
  }

  const models: [string, Record<string, number>][] = [
    ['resnet18', { width: 0.125 }],
    ['shufflenet_v2_x1_0', { width: 0.25 }],
  ];

  it.each(models)(
    '%s: the same outputs and input gradients with the fold as without',
    (name, extra) => {
      if (!native()) return;
      const model = buildModel(name, { inputShape: [16, 16, 3], classes: 10, seed: 5, ...extra });
      const pads = model.layers.filter((l) => l.getClassName() === 'ZeroPadding2D').length;
      expect(pads).toBeGreaterThan(0);
      const xs = tf.randomNormal([6, 16, 16, 3], 0, 1, 'float32', 6);
      const runner = new GraphRunner(model);
      const before = paddedConvCallCount();
      const outputs = runner.predict(xs);
      const folded = paddedConvCallCount() - before;
      const grads = inputGradient(runner, xs);
      // Every padding before a valid convolution, in the forward pass and the gradient's.
      expect(folded).toBeGreaterThan(0);
      expect(paddedConvCallCount() - before).toBe(2 * folded);
      const reference = model.predict(xs) as tf.Tensor;
      expect(bits(outputs)).toEqual(bits(reference));
      enableOurOps(false);
      const unfolded = paddedConvCallCount();
      const plainGrads = inputGradient(runner, xs);
      expect(paddedConvCallCount()).toBe(unfolded);
      expect(bits(grads)).toEqual(bits(plainGrads));
      tf.dispose([xs, outputs, grads, reference, plainGrads]);
      model.dispose();
    },
  );

  it('gives the same analysis with the fold as without (ShuffleNet, FGSM regenerated)', async () => {
    if (!native()) return;
    const model = buildModel('shufflenet_v2_x1_0', {
      inputShape: [16, 16, 3],
      classes: 10,
      width: 0.25,
      seed: 8,
    });
    const xs = tf.randomNormal([10, 16, 16, 3], 0, 1, 'float32', 9);
    const ys = tf.tidy(() => tf.argMax(model.predict(xs) as tf.Tensor, -1).toInt());
    const options = { epsilon: 0.2, steps: 3, batchSize: 10, regenerate: true };
    // (Layer names are unique per process; a weight's name may carry a suffix.)
    const parameters = [
      model.getLayer('stage2_0_branch2_0').getWeights()[0] &&
        model.getLayer('stage2_0_branch2_0').weights[0].name,
    ];
    const before = paddedConvCallCount();
    const ours = await analyze(model, { xs, ys }, { ...options, parameters });
    expect(paddedConvCallCount()).toBeGreaterThan(before);
    enableOurOps(false);
    const theirs = await analyze(model, { xs, ys }, { ...options, parameters });
    const strip = (r: typeof ours) => r.parameters.map(({ evaluated: _e, ...rest }) => rest);
    expect(strip(ours)).toEqual(strip(theirs));
    tf.dispose([xs, ys]);
    model.dispose();
  });
});
