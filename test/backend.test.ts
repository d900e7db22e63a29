import * as tf from '@tensorflow/tfjs';
import { currentBackend, initBackend } from '../src/kernels/backend';

describe('backend selection', () => {
  it('runs the suite on the native TensorFlow backend (or TFJS_BACKEND when set)', async () => {
    const expected = process.env.TFJS_BACKEND || 'tensorflow';
    const choice = await initBackend({ log: () => undefined });
    expect(choice.id).toBe(expected);
    expect(currentBackend()?.id).toBe(expected);
    expect(tf.getBackend()).toBe(choice.tfjsName);
  });

  it('rejects an unknown backend name, naming the allowed ones', async () => {
    await expect(initBackend({ backend: 'tpu' as never, log: () => undefined })).rejects.toThrow(
      /'tpu' is not a backend we know; use one of tensorflow-gpu, tensorflow, wasm, cpu/,
    );
  });

  it('trains a small CNN on the chosen backend: the loss falls', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({
          inputShape: [8, 8, 1],
          filters: 4,
          kernelSize: 3,
          activation: 'relu',
          kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        }),
        tf.layers.flatten(),
        tf.layers.dense({
          units: 2,
          activation: 'softmax',
          kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }),
        }),
      ],
    });
    model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
    // Class 1: a bright upper half; class 0: a bright lower half.
    const n = 64;
    const images = tf.tidy(() => {
      const top = tf.concat([tf.ones([n / 2, 4, 8, 1]), tf.zeros([n / 2, 4, 8, 1])], 1);
      const bottom = tf.concat([tf.zeros([n / 2, 4, 8, 1]), tf.ones([n / 2, 4, 8, 1])], 1);
      return tf.concat([top, bottom], 0);
    });
    const labels = tf.tidy(() =>
      tf.oneHot(tf.concat([tf.fill([n / 2], 1, 'int32'), tf.fill([n / 2], 0, 'int32')]), 2),
    );
    const history = await model.fit(images, labels, {
      epochs: 15,
      batchSize: 16,
      shuffle: false,
      verbose: 0,
    });
    const losses = history.history.loss as number[];
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    tf.dispose([images, labels]);
    model.dispose();
  });
});
