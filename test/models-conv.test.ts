/**
 * LazyGradConv2D (our zoo's convolution layer) against tfjs-layers' Conv2D with the same weights:
 * the same outputs and gradients (to float32 rounding: the fused kernel adds the bias inside the
 * sum), on cpu, wasm and the backend the tests run on; and its lazy gradients (no input gradient
 * for a layer whose input needs none).
 */
import * as tf from '@tensorflow/tfjs';
import { LazyGradConv2D } from '../src/models/conv';
import { switchToWasm } from './support/wasm';

interface Case {
  activation: 'linear' | 'relu';
  useBias: boolean;
  strides: number;
  padding: 'same' | 'valid';
}

const CASES: Case[] = (['linear', 'relu'] as const).flatMap((activation) =>
  [true, false].flatMap((useBias) =>
    [1, 2].flatMap((strides) =>
      (['same', 'valid'] as const).map((padding) => ({ activation, useBias, strides, padding })),
    ),
  ),
);

/** Output, and gradients of Σ output·r (r fixed) with respect to input, kernel and bias. */
function outputsAndGradients(layer: tf.layers.Layer, x: tf.Tensor4D): number[][] {
  return tf.tidy(() => {
    const y = layer.apply(x) as tf.Tensor;
    const r = tf.randomNormal(y.shape, 0, 1, 'float32', 7);
    const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const loss = (input: tf.Tensor) => tf.sum(tf.mul(layer.apply(input) as tf.Tensor, r));
    const dx = tf.grad(loss)(x);
    const { grads } = tf.variableGrads(() => loss(x) as tf.Scalar, weights);
    return [y, dx, ...weights.map((w) => grads[w.name])].map((t) => Array.from(t.dataSync()));
  });
}

function relativeError(a: number[], b: number[]): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return worst / Math.max(scale, 1e-30);
}

function layers(c: Case, seed: number): [tf.layers.Layer, tf.layers.Layer] {
  const config = {
    filters: 8,
    kernelSize: 3,
    strides: c.strides,
    padding: c.padding,
    activation: c.activation,
    useBias: c.useBias,
    kernelInitializer: tf.initializers.glorotUniform({ seed }),
    biasInitializer: tf.initializers.randomNormal({ seed: seed + 1 }),
  };
  const ours = new LazyGradConv2D(config);
  const stock = tf.layers.conv2d(config);
  const x = tf.zeros([1, 9, 9, 3]);
  ours.apply(x);
  stock.apply(x);
  stock.setWeights(ours.getWeights());
  x.dispose();
  return [ours, stock];
}

async function compareOn(backend: string, c: Case): Promise<void> {
  const [ours, stock] = layers(c, 3);
  const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
  const a = outputsAndGradients(ours, x);
  const b = outputsAndGradients(stock, x);
  expect(a.length).toBe(c.useBias ? 4 : 3);
  a.forEach((values, i) => {
    expect(values.length).toBe(b[i].length);
    const error = relativeError(values, b[i]);
    expect({ backend, part: i, error, ok: error < 1e-5 }).toMatchObject({ ok: true });
  });
  // ReLU really clipped something, so the masks were compared.
  if (c.activation === 'relu') expect(a[0].some((v) => v === 0)).toBe(true);
  x.dispose();
  ours.dispose();
  stock.dispose();
}

describe('LazyGradConv2D', () => {
  let initial = '';
  beforeAll(() => {
    initial = tf.getBackend();
  });
  afterAll(async () => {
    await tf.setBackend(initial);
  });

  it.each(CASES)(
    'matches tfjs-layers Conv2D: $activation, bias $useBias, stride $strides, $padding',
    async (c) => {
      await tf.setBackend(initial);
      await compareOn(initial, c);
      await tf.setBackend('cpu');
      await compareOn('cpu', c);
      await switchToWasm();
      await compareOn('wasm', c);
    },
  );

  it.each(['linear', 'relu'] as const)(
    'computes no input gradient for a first layer, and one when asked (%s, with bias)',
    async (activation) => {
      await tf.setBackend(initial);
      const [ours] = layers({ activation, useBias: true, strides: 1, padding: 'same' }, 9);
      const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
      const weights = ours.trainableWeights.map((w) => w.read() as tf.Variable);
      const loss = (input: tf.Tensor) => tf.sum(ours.apply(input) as tf.Tensor) as tf.Scalar;
      const kernelsOf = async (f: () => tf.TensorContainer) =>
        (await tf.profile(() => tf.tidy(f))).kernels.map((k) => k.name);
      const weightsOnly = await kernelsOf(() => tf.variableGrads(() => loss(x), weights).grads);
      expect(weightsOnly).toContain('FusedConv2D');
      expect(weightsOnly).toContain('Conv2DBackpropFilter');
      expect(weightsOnly).not.toContain('Conv2DBackpropInput');
      expect(weightsOnly).not.toContain('Conv2D');
      const withInput = await kernelsOf(() => tf.grad(loss)(x));
      expect(withInput).toContain('Conv2DBackpropInput');
      x.dispose();
      ours.dispose();
    },
  );

  it('keeps the class name Conv2D (saved models load as the standard layer)', () => {
    const [ours, stock] = layers(
      { activation: 'relu', useBias: true, strides: 1, padding: 'same' },
      2,
    );
    expect(ours.getClassName()).toBe('Conv2D');
    const { name: _a, ...oursConfig } = ours.getConfig();
    const { name: _b, ...stockConfig } = stock.getConfig();
    expect(oursConfig).toEqual(stockConfig);
    ours.dispose();
    stock.dispose();
  });
});
