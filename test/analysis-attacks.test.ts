import * as tf from '@tensorflow/tfjs';
import { defaultPgdSettings, fgsm, pgd } from '../src/analysis';

// A linear classifier with fixed weights: logits z = xW + b, so the cross-entropy's input
// gradient is (softmax(z) − y) Wᵀ, computed here in plain JS.
const W = [
  [0.5, -1.0, 0.25],
  [-0.75, 0.5, 1.0],
  [0.2, 0.1, -0.4],
  [1.5, -0.5, 0.3],
];
const B = [0.1, -0.2, 0.05];
const X = [
  [0.3, -0.2, 0.9, 0.1],
  [-1.0, 0.5, 0.2, 0.7],
  [0.0, 0.0, 1.0, -0.3],
];
const Y = [0, 2, 1];

function linearModel(activation: 'softmax' | 'linear', separateSoftmax = false): tf.LayersModel {
  const input = tf.input({ shape: [4] });
  const dense = tf.layers.dense({ units: 3, activation: separateSoftmax ? 'linear' : activation });
  let out = dense.apply(input) as tf.SymbolicTensor;
  if (separateSoftmax) out = tf.layers.softmax().apply(out) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  dense.setWeights([tf.tensor2d(W), tf.tensor1d(B)]);
  return model;
}

function expectedGradientSigns(scale = 1): number[][] {
  return X.map((x, n) => {
    const z = [0, 1, 2].map((j) => scale * (x.reduce((s, xi, i) => s + xi * W[i][j], 0) + B[j]));
    const zmax = Math.max(...z);
    const e = z.map((v) => Math.exp(v - zmax));
    const sum = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / sum);
    const d = p.map((pj, j) => pj - (j === Y[n] ? 1 : 0));
    return x.map((_, i) => Math.sign(d.reduce((s, dj, j) => s + scale * dj * W[i][j], 0)));
  });
}

describe('FGSM (docs/method.md §3)', () => {
  const eps = 0.1;
  const expected = expectedGradientSigns().map((signs, n) =>
    signs.map((s, i) => X[n][i] + eps * s),
  );

  it.each([
    ['a dense softmax output', 'softmax', false],
    ['a separate softmax layer', 'softmax', true],
    ['logits', 'linear', false],
  ] as const)('x + ε·sign(∇ₓL) matches the closed-form gradient for %s', (_, act, separate) => {
    const model = linearModel(act, separate);
    const xs = tf.tensor2d(X);
    const ids = tf.tensor1d(Y, 'int32');
    const oneHot = tf.oneHot(ids, 3);
    const fromIds = fgsm(model, xs, ids, eps);
    const fromOneHot = fgsm(model, xs, oneHot, eps);
    const got = fromIds.arraySync() as number[][];
    got.forEach((row, n) => row.forEach((v, i) => expect(v).toBeCloseTo(expected[n][i], 6)));
    expect(fromOneHot.arraySync()).toEqual(got);
    tf.dispose([xs, ids, oneHot, fromIds, fromOneHot]);
    model.dispose();
  });

  it('uses logits: where the softmax saturates, the attack keeps its full strength', () => {
    // Scaled ×60, example 0's winning logit leads by ~68: its probability rounds to 1 in
    // float32, so a cross-entropy on (clipped) probabilities has a zero input gradient there,
    // while the one from logits does not.
    const scale = 60;
    const model = linearModel('softmax');
    const dense = model.layers[1];
    dense.setWeights([tf.tensor2d(W).mul(scale), tf.tensor1d(B).mul(scale)]);
    const xs = tf.tensor2d(X);
    const ids = tf.tensor1d(Y, 'int32');
    const fromProbabilities = tf.tidy(() =>
      tf
        .grad((x: tf.Tensor) =>
          tf.metrics.categoricalCrossentropy(tf.oneHot(ids, 3), model.apply(x) as tf.Tensor).sum(),
        )(xs)
        .arraySync(),
    ) as number[][];
    expect(fromProbabilities[0].every((g) => g === 0)).toBe(true);
    const adv = fgsm(model, xs, ids, eps);
    const moved = tf.tidy(() => adv.sub(xs).arraySync()) as number[][];
    const signs = expectedGradientSigns(scale);
    moved[0].forEach((v, i) => expect(v).toBeCloseTo(eps * signs[0][i], 6));
    expect(signs[0].every((s) => s !== 0)).toBe(true);
    tf.dispose([xs, ids, adv]);
    model.dispose();
  });

  it('clips to the given range and validates its arguments', () => {
    const model = linearModel('softmax');
    const xs = tf.tensor2d(X);
    const ys = tf.tensor1d(Y, 'int32');
    const adv = fgsm(model, xs, ys, 0.5, { clip: [-0.2, 0.2] });
    const values = Array.from(adv.dataSync());
    expect(Math.max(...values)).toBeLessThanOrEqual(Math.fround(0.2));
    expect(Math.min(...values)).toBeGreaterThanOrEqual(Math.fround(-0.2));
    expect(() => fgsm(model, xs, ys, 0)).toThrow(/epsilon must be a finite number > 0/);
    expect(() => fgsm(model, xs, ys, 0.1, { clip: [1, 0] })).toThrow(/clip must be \[low, high\]/);
    const wrong = tf.zeros([3, 5]);
    expect(() => fgsm(model, xs, wrong, 0.1)).toThrow(/one-hot \[n, 3\]/);
    tf.dispose([xs, ys, adv, wrong]);
    model.dispose();
  });

  it('batches without changing the result', () => {
    const model = linearModel('softmax');
    const xs = tf.tensor2d(X);
    const ys = tf.tensor1d(Y, 'int32');
    const whole = fgsm(model, xs, ys, eps);
    const pieces = fgsm(model, xs, ys, eps, { batchSize: 2 });
    expect(pieces.arraySync()).toEqual(whole.arraySync());
    tf.dispose([xs, ys, whole, pieces]);
    model.dispose();
  });
});

describe('PGD', () => {
  it('one step of size ε is FGSM; more steps stay in the ε-ball and hurt at least as much', () => {
    const model = linearModel('softmax');
    const xs = tf.tensor2d(X);
    const ys = tf.tensor1d(Y, 'int32');
    const eps = 0.3;
    const one = pgd(model, xs, ys, eps, { steps: 1, stepSize: eps });
    const f = fgsm(model, xs, ys, eps);
    expect(one.arraySync()).toEqual(f.arraySync());
    const many = pgd(model, xs, ys, eps, { steps: 10, stepSize: eps / 4 });
    const dist = tf.tidy(() => many.sub(xs).abs().max().dataSync()[0]);
    expect(dist).toBeLessThanOrEqual(eps + 1e-6);
    const loss = (x: tf.Tensor) =>
      tf.tidy(
        () =>
          tf.losses
            .softmaxCrossEntropy(tf.oneHot(ys, 3), (model.predict(x) as tf.Tensor).log())
            .dataSync()[0],
      );
    // On a linear model FGSM is already optimal in the ball, so PGD matches it (up to rounding).
    expect(loss(many)).toBeGreaterThanOrEqual(loss(f) - 1e-4);
    // The default settings are 10 steps of ε/4 (PGD_DEFAULTS), each one overridable.
    const byDefault = pgd(model, xs, ys, eps);
    expect(byDefault.arraySync()).toEqual(many.arraySync());
    expect(defaultPgdSettings(eps)).toEqual({ steps: 10, stepSize: eps / 4 });
    const oneSmall = pgd(model, xs, ys, eps, { steps: 1 });
    const reach = tf.tidy(() => oneSmall.sub(xs).abs().max().dataSync()[0]);
    expect(reach).toBeCloseTo(eps / 4, 6);
    tf.dispose([byDefault, oneSmall]);
    expect(() => pgd(model, xs, ys, eps, { steps: 0, stepSize: 0.1 })).toThrow(
      /steps must be an integer ≥ 1/,
    );
    tf.dispose([xs, ys, one, f, many]);
    model.dispose();
  });
});
