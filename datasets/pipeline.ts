import * as tf from '@tensorflow/tfjs';
import { seededPermutation } from '../src/util/random';
import { DatasetOptionsError } from './errors';
import { DatasetSplit, ResolvedCommonOptions } from './options';

/** One element of a loader's dataset: images and one-hot labels (float32). */
export interface Example extends tf.TensorContainerObject {
  xs: tf.Tensor;
  ys: tf.Tensor;
}

/** What a loader returns: the dataset of one split and what to know about it. */
export interface LoadedDataset {
  /**
   * The examples: `{xs: [h, w, c], ys: [classes]}` each, or batches `{xs: [n, h, w, c],
   * ys: [n, classes]}` with the `batchSize` option. Iterate it as often as needed (one pass =
   * one epoch); each pass reads the files again, in a new seeded order when shuffling.
   */
  dataset: tf.data.Dataset<Example>;
  /** `mnist`, `cifar10` or `tiny-imagenet`. */
  name: string;
  split: DatasetSplit;
  /** Number of examples in this split (after `validationFraction` and `limit`). */
  size: number;
  /** Number of classes (length of each one-hot label). */
  classes: number;
  /** Human-readable class names, index = label. */
  classNames: string[];
  /** Shape of one image, `[height, width, channels]`. */
  inputShape: [number, number, number];
  /** Where the examples come from: a folder, or `builtin` for the digits bundled with `mnist`. */
  source: string;
  /** How pixels were mapped from [0, 255]: `x' = (x/255 − mean) / std`, per channel. */
  normalization: { mean: number; std: number };
}

/** Random access to the examples of one part (training or test files) of a dataset. */
export interface ExampleSource {
  /** Number of examples. */
  readonly count: number;
  /** Shape of one image `[h, w, c]`. */
  readonly shape: [number, number, number];
  /** Label of example `i`, in [0, classes). */
  label(i: number): number;
  /** Writes example `i`'s pixels, in [0, 255] and HWC order, into `target` at `offset`. */
  read(i: number, target: Float32Array, offset: number): void | Promise<void>;
}

/**
 * The examples of the requested split, as indices into the training files (`train`,
 * `validation`) or the test files (`test`), in ascending order. The train/validation split is a
 * seeded permutation of the training files: its first `round(fraction · n)` form `validation`.
 * `limit` keeps the first examples of the split in that seeded order (the test files are
 * permuted with the same seed for it).
 */
export function splitIndices(
  loader: string,
  count: number,
  options: ResolvedCommonOptions,
): number[] {
  let chosen: number[];
  if (options.split === 'test') {
    chosen =
      options.limit !== undefined && options.limit < count
        ? seededPermutation(count, options.seed).slice(0, options.limit)
        : Array.from({ length: count }, (_, i) => i);
  } else {
    const order = seededPermutation(count, options.seed);
    const held = Math.round(options.validationFraction * count);
    if (options.split === 'validation' && held === 0) {
      throw new DatasetOptionsError(
        `${loader}: validationFraction ${options.validationFraction} of ${count} training examples ` +
          `holds out none; use a larger fraction`,
      );
    }
    if (options.split === 'train' && held === count) {
      throw new DatasetOptionsError(
        `${loader}: validationFraction ${options.validationFraction} of ${count} training examples ` +
          `leaves none for training; use a smaller fraction`,
      );
    }
    chosen = options.split === 'validation' ? order.slice(0, held) : order.slice(held);
    if (options.limit !== undefined) chosen = chosen.slice(0, options.limit);
  }
  return chosen.sort((a, b) => a - b);
}

/** A seed per pass over the data, derived from the user's seed. */
function passSeed(seed: number, pass: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(pass + 1, 0xc2b2ae35)) >>> 0;
}

/**
 * A dataset over `indices` of `source`: reads examples on demand (nothing is decoded ahead of
 * the consumer), normalises the pixels with `(x/255 − mean)/std`, one-hot encodes the labels,
 * and with `shuffle` visits the indices in a new seeded order at each pass.
 */
export function sourceDataset(
  source: ExampleSource,
  indices: number[],
  classes: number,
  options: ResolvedCommonOptions,
  normalization: { mean: number; std: number },
): tf.data.Dataset<Example> {
  const [h, w, c] = source.shape;
  const pixels = h * w * c;
  const batch = options.batchSize ?? 1;
  const scale = 1 / (255 * normalization.std);
  const shift = normalization.mean / normalization.std;
  let pass = 0;
  return tf.data.generator<Example>(async function* () {
    let order = indices;
    if (options.shuffle) {
      const permutation = seededPermutation(indices.length, passSeed(options.seed, pass));
      order = permutation.map((p) => indices[p]);
    }
    pass += 1;
    for (let start = 0; start < order.length; start += batch) {
      const chunk = order.slice(start, start + batch);
      const images = new Float32Array(chunk.length * pixels);
      const labels = new Float32Array(chunk.length * classes);
      const reads = chunk.map((index, k) => {
        labels[k * classes + source.label(index)] = 1;
        return source.read(index, images, k * pixels);
      });
      await Promise.all(reads);
      for (let p = 0; p < images.length; p++) images[p] = images[p] * scale - shift;
      if (options.batchSize === undefined) {
        yield { xs: tf.tensor3d(images, [h, w, c]), ys: tf.tensor1d(labels) };
      } else {
        yield {
          xs: tf.tensor4d(images, [chunk.length, h, w, c]),
          ys: tf.tensor2d(labels, [chunk.length, classes]),
        };
      }
    }
  });
}
