import * as tf from '@tensorflow/tfjs';

/** A labelled batch set: images `[n, 28, 28, 1]`, one-hot labels `[n, 10]`. */
export interface LabelledSet {
  xs: tf.Tensor4D;
  ys: tf.Tensor2D;
}

/** Compiles the model as the bench trains it: Adam (lr 0.001), categorical cross-entropy. */
export function compileForBench(model: tf.LayersModel): void {
  model.compile({
    optimizer: tf.train.adam(0.001),
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
  });
}

/** One epoch of `model.fit` (shuffled, no validation, no logging). */
export async function trainEpoch(
  model: tf.LayersModel,
  data: LabelledSet,
  batchSize: number,
): Promise<void> {
  await model.fit(data.xs, data.ys, { epochs: 1, batchSize, shuffle: true, verbose: 0 });
}

/** `model.evaluate` in batches; returns [loss, accuracy] read back to JS. */
export async function evaluate(
  model: tf.LayersModel,
  data: LabelledSet,
  batchSize: number,
): Promise<number[]> {
  const out = model.evaluate(data.xs, data.ys, { batchSize });
  const scalars = Array.isArray(out) ? out : [out];
  const values = await Promise.all(scalars.map(async (s) => (await s.data())[0]));
  tf.dispose(scalars);
  return values;
}

/**
 * The logits of a sequential model that ends in a softmax `Dense` layer: every layer but the last
 * applied as usual (inference mode), then the last one's affine map without its activation.
 */
export function logitsOf(model: tf.LayersModel, xs: tf.Tensor): tf.Tensor2D {
  const layers = model.layers;
  const last = layers[layers.length - 1];
  const [kernel, bias] = last.getWeights();
  if (last.getClassName() !== 'Dense' || !kernel) {
    throw new Error(`logitsOf: the last layer must be Dense; got ${last.getClassName()}`);
  }
  let h = xs;
  for (const layer of layers.slice(0, -1)) h = layer.apply(h, { training: false }) as tf.Tensor;
  const z = tf.matMul(h as tf.Tensor2D, kernel as tf.Tensor2D);
  return (bias ? tf.add(z, bias) : z) as tf.Tensor2D;
}

/**
 * FGSM's cost: the sign of ∂L/∂x, L the softmax cross-entropy computed from the logits, over the
 * set in batches of `batchSize`, each read back to JS.
 */
export async function inputGradientSign(
  model: tf.LayersModel,
  data: LabelledSet,
  batchSize: number,
): Promise<void> {
  const n = data.xs.shape[0];
  for (let start = 0; start < n; start += batchSize) {
    const size = Math.min(batchSize, n - start);
    const signs = tf.tidy(() => {
      const x = data.xs.slice([start, 0, 0, 0], [size, -1, -1, -1]);
      const y = data.ys.slice([start, 0], [size, -1]);
      const loss = (input: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, logitsOf(model, input));
      return tf.sign(tf.grad(loss)(x));
    });
    await signs.data();
    signs.dispose();
  }
}
