import * as tf from '@tensorflow/tfjs';
import {
  registerLeanGradients,
  unregisterLeanGradients,
} from '../src/kernels/gradients/batch-norm';

/**
 * The lean BatchNorm gradient must give tfjs' own values (the input's to float32 rounding: one
 * product by γ/√(variance + ε) instead of two in turn), with less work.
 */
describe('lean BatchNorm gradient (registered by initBackend)', () => {
  const x = () => tf.randomNormal([3, 5, 4, 6], 0, 2, 'float32', 1);
  const params = () => ({
    mean: tf.randomNormal([6], 0, 1, 'float32', 2),
    variance: tf.randomUniform([6], 0.5, 2, 'float32', 3),
    offset: tf.randomNormal([6], 0, 1, 'float32', 4),
    scale: tf.randomNormal([6], 1, 0.3, 'float32', 5),
  });

  function allGradients(): tf.Tensor[] {
    const input = x();
    const p = params();
    const dy = tf.randomNormal(input.shape, 0, 1, 'float32', 6);
    const f = (a: tf.Tensor, m: tf.Tensor, v: tf.Tensor, o: tf.Tensor, s: tf.Tensor) =>
      tf.sum(tf.mul(tf.batchNorm(a, m, v, o, s, 0.001), dy));
    const grads = tf.grads(f)([input, p.mean, p.variance, p.offset, p.scale]);
    tf.dispose([input, dy, ...Object.values(p)]);
    return grads;
  }

  afterAll(() => registerLeanGradients());

  it("gives tfjs' values for the input (to rounding), mean, variance, offset and scale (exactly)", () => {
    unregisterLeanGradients();
    const stock = allGradients();
    registerLeanGradients();
    const lean = allGradients();
    stock.forEach((g, i) => {
      expect(lean[i].shape).toEqual(g.shape);
      if (i > 0) {
        expect(Array.from(lean[i].dataSync())).toEqual(Array.from(g.dataSync()));
        return;
      }
      const scale = tf.max(tf.abs(g)).dataSync()[0];
      const error = tf.max(tf.abs(tf.sub(lean[i], g))).dataSync()[0];
      expect(scale).toBeGreaterThan(0);
      expect(error).toBeLessThanOrEqual(scale * 1e-6);
    });
    tf.dispose([...stock, ...lean]);
  });

  it('computes only the input gradient when only that is asked for (no Sub, no Tile)', async () => {
    registerLeanGradients();
    const input = x();
    const p = params();
    const info = await tf.profile(() =>
      tf.tidy(() => {
        tf.grad((a: tf.Tensor) =>
          tf.sum(tf.batchNorm(a, p.mean, p.variance, p.offset, p.scale, 0.001)),
        )(input);
      }),
    );
    const names = info.kernels.map((k) => k.name);
    expect(names).toContain('FusedBatchNorm');
    expect(names).not.toContain('Sub');
    expect(names).not.toContain('Tile');
    // One pass over the activation's gradient: a single full-size product by a [C] vector.
    const fullSize = info.kernels.filter(
      (k) =>
        k.name === 'Multiply' &&
        k.outputShapes[0]?.join() === input.shape.join() &&
        k.inputShapes.some((s) => s?.length === 1),
    );
    expect(fullSize).toHaveLength(1);
    tf.dispose([input, ...Object.values(p)]);
  });
});
