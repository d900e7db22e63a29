import * as tf from '@tensorflow/tfjs';
import { LazyGradConv2D } from './conv';

/** Options of {@link smallCnn}. */
export interface SmallCnnOptions {
  /** Input shape `[height, width, channels]`; default MNIST's `[28, 28, 1]`. */
  inputShape?: [number, number, number];
  /** Number of classes; default 10. */
  classes?: number;
  /** Seed of the weight initialisers, for reproducible runs; default 0. */
  seed?: number;
}

/**
 * The small CNN of our benchmarks and quick runs: conv16-pool-conv32-pool-dense64-dense10
 * (3×3 convolutions, ReLU, 2×2 max pooling), ending in softmax. The convolutions are
 * {@link LazyGradConv2D}s (bias and ReLU fused into the convolution also in training).
 */
export function smallCnn(options: SmallCnnOptions = {}): tf.Sequential {
  const seed = options.seed ?? 0;
  const init = (offset: number) => tf.initializers.glorotUniform({ seed: seed * 100 + offset });
  return tf.sequential({
    name: 'small_cnn',
    layers: [
      new LazyGradConv2D({
        inputShape: options.inputShape ?? [28, 28, 1],
        filters: 16,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(1),
        name: 'conv1',
      }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      new LazyGradConv2D({
        filters: 32,
        kernelSize: 3,
        activation: 'relu',
        kernelInitializer: init(2),
        name: 'conv2',
      }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({
        units: 64,
        activation: 'relu',
        kernelInitializer: init(3),
        name: 'dense1',
      }),
      tf.layers.dense({
        units: options.classes ?? 10,
        activation: 'softmax',
        kernelInitializer: init(4),
        name: 'dense2',
      }),
    ],
  });
}
