/**
 * `loadData(spec, options)`: evaluation data for an analysis from a short spec, as the CLI's
 * `--data` takes it: `mnist` (bundled), `mnist:<dir>`, `cifar10:<dir>`, `tiny-imagenet:<dir>`,
 * `imagefolder:<dir>`, `npz:<file>`.
 */
import * as tf from '@tensorflow/tfjs';
import { seededPermutation } from '../src/util/random';
import { loadCifar10 } from './cifar10';
import { DatasetError, DatasetOptionsError } from './errors';
import { countImageFolder, readImageFolder } from './image-folder';
import { loadMnist } from './mnist';
import { readBuiltinDigits } from './mnist-builtin';
import { readNpz } from './npz';
import type { LoadedDataset } from './pipeline';
import { loadTinyImageNet } from './tiny-imagenet';

/** The kinds of `--data` spec. */
export const DATA_KINDS = ['mnist', 'cifar10', 'tiny-imagenet', 'imagefolder', 'npz'] as const;

/** Options of {@link loadData}. */
export interface LoadDataOptions {
  /** The model's input `[height, width, channels]`: images of a folder are resized to it. */
  inputShape?: number[];
  /** Keep the first N examples (or, with `seed`, a seeded sample of N); default all. */
  examples?: number;
  /** Draw the `examples` as a seeded sample instead of the first ones. */
  seed?: number;
  /**
   * Preprocessing `x' = (x·scale − mean) / std` (mean and std per channel, or one value), from
   * the raw values: images as x/255 in [0, 1], npz arrays as stored. Without any of the three,
   * mnist/cifar10/tiny-imagenet get the normalisation the recipes train with, imagefolder
   * stays in [0, 1] and npz as stored.
   */
  scale?: number;
  mean?: number[];
  std?: number[];
}

/** What {@link loadData} returns. Dispose `xs` and `ys` when done. */
export interface LoadedData {
  xs: tf.Tensor;
  /** Class ids `[n]` (int32) or one-hot `[n, classes]`, as the source holds them. */
  ys: tf.Tensor;
  labels: 'ids' | 'one-hot';
  /** Classes the data names: the dataset's, the folder's, the one-hot width, or max id + 1. */
  classes: number;
  classNames?: string[];
  examples: number;
  spec: string;
  /** The preprocessing applied, in words. */
  preprocessing: string;
}

interface Raw {
  values: Float32Array;
  shape: number[];
  ids?: Int32Array;
  oneHot?: { values: Float32Array; classes: number };
  classes: number;
  classNames?: string[];
  /** The dataset's own normalisation, applied when no preprocessing is asked for. */
  normalisation?: { mean: number; std: number };
}

function pick(count: number, options: LoadDataOptions): number[] | undefined {
  const n = options.examples;
  if (n === undefined || n >= count) {
    return options.seed === undefined
      ? undefined
      : seededPermutation(count, options.seed).sort((a, b) => a - b);
  }
  if (options.seed === undefined) return Array.from({ length: n }, (_, i) => i);
  return seededPermutation(count, options.seed)
    .slice(0, n)
    .sort((a, b) => a - b);
}

function gatherRows(values: Float32Array, per: number, rows: readonly number[]): Float32Array {
  const out = new Float32Array(rows.length * per);
  rows.forEach((r, k) => out.set(values.subarray(r * per, (r + 1) * per), k * per));
  return out;
}

function fromNpz(file: string, options: LoadDataOptions): Raw {
  const arrays = readNpz(file);
  const x = arrays.get('x');
  const y = arrays.get('y');
  if (!x || !y) {
    throw new DatasetError(
      `npz: ${file} must hold arrays 'x' and 'y'; it holds ${[...arrays.keys()].join(', ') || 'none'}`,
    );
  }
  const n = x.shape[0];
  if (y.shape[0] !== n || y.shape.length > 2) {
    throw new DatasetError(
      `npz: ${file}: 'y' must be class ids [${n}] or one-hot [${n}, classes]; got [${y.shape.join(', ')}] for x of [${x.shape.join(', ')}]`,
    );
  }
  const rows = pick(n, options) ?? Array.from({ length: n }, (_, i) => i);
  const per = x.data.length / Math.max(n, 1);
  const values = gatherRows(x.data, per, rows);
  const shape = [rows.length, ...x.shape.slice(1)];
  if (y.shape.length === 2 && y.shape[1] > 1) {
    const classes = y.shape[1];
    return {
      values,
      shape,
      oneHot: { values: gatherRows(y.data, classes, rows), classes },
      classes,
    };
  }
  const ids = Int32Array.from(rows.map((r) => y.data[r]));
  if (ids.some((id, k) => id < 0 || id !== y.data[rows[k]])) {
    throw new DatasetError(`npz: ${file}: 'y' holds values that are not class ids (integers ≥ 0)`);
  }
  return { values, shape, ids, classes: ids.reduce((m, id) => Math.max(m, id + 1), 0) };
}

function fromImageFolder(dir: string, options: LoadDataOptions): Raw {
  const shape = options.inputShape;
  if (!shape || shape.length !== 3 || shape.some((d) => !(d > 0))) {
    throw new DatasetOptionsError(
      `imagefolder: the model input must be [height, width, channels] to resize images to; got ${JSON.stringify(shape)}`,
    );
  }
  const [h, w, c] = shape;
  const data = readImageFolder(dir, [h, w], c, pick(countImageFolder(dir), options));
  return {
    values: data.pixels,
    shape: [data.labels.length, h, w, c],
    ids: data.labels,
    classes: data.classNames.length,
    classNames: data.classNames,
  };
}

function fromBuiltinMnist(options: LoadDataOptions): Raw {
  const raw = readBuiltinDigits();
  const rows = pick(raw.labels.length, options) ?? Array.from(raw.labels.keys());
  return {
    values: gatherRows(raw.pixels, 784, rows),
    shape: [rows.length, 28, 28, 1],
    ids: Int32Array.from(rows.map((r) => raw.labels[r])),
    classes: 10,
    normalisation: { mean: 0.1307, std: 0.3081 },
  };
}

/** The test split of a dataset on disk, as x/255, read batch by batch (tensors disposed). */
async function fromLoader(
  load: (o: {
    normalize: boolean;
    split: 'test';
    batchSize: number;
    limit?: number;
    seed?: number;
  }) => Promise<LoadedDataset>,
  options: LoadDataOptions,
  normalisation: { mean: number; std: number },
): Promise<Raw> {
  const loaded = await load({
    normalize: false,
    split: 'test',
    batchSize: 256,
    ...(options.seed !== undefined && options.examples !== undefined
      ? { limit: options.examples, seed: options.seed }
      : {}),
  });
  const n = Math.min(loaded.size, options.examples ?? loaded.size);
  const per = loaded.inputShape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(n * per);
  const ids = new Int32Array(n);
  let at = 0;
  const it = await loaded.dataset.iterator();
  while (at < n) {
    const next = await it.next();
    if (next.done) break;
    const { xs, ys } = next.value;
    const take = Math.min(xs.shape[0], n - at);
    values.set((xs.dataSync() as Float32Array).subarray(0, take * per), at * per);
    const labels = tf.tidy(() => ys.argMax(-1).dataSync());
    ids.set(labels.subarray(0, take), at);
    xs.dispose();
    ys.dispose();
    at += take;
  }
  return {
    values: values.subarray(0, at * per),
    shape: [at, ...loaded.inputShape],
    ids: ids.subarray(0, at),
    classes: loaded.classes,
    classNames: loaded.classNames,
    normalisation,
  };
}

function preprocess(raw: Raw, options: LoadDataOptions): string {
  const asked =
    options.scale !== undefined || options.mean !== undefined || options.std !== undefined;
  const channels = raw.shape[raw.shape.length - 1];
  if (!asked) {
    if (!raw.normalisation) return 'none (values as read)';
    const { mean, std } = raw.normalisation;
    for (let i = 0; i < raw.values.length; i++) raw.values[i] = (raw.values[i] - mean) / std;
    return `the dataset's: (x/255 − ${mean}) / ${std}`;
  }
  const scale = options.scale ?? 1;
  const mean = options.mean ?? [0];
  const std = options.std ?? [1];
  for (const [name, list] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (list.length !== 1 && list.length !== channels) {
      throw new DatasetOptionsError(
        `--${name} needs 1 or ${channels} values (one per channel); got ${list.length} (${list.join(',')})`,
      );
    }
  }
  if (std.some((s) => !(s > 0)))
    throw new DatasetOptionsError(`--std must be > 0; got ${std.join(',')}`);
  for (let i = 0; i < raw.values.length; i++) {
    const ch = i % channels;
    raw.values[i] = (raw.values[i] * scale - mean[ch % mean.length]) / std[ch % std.length];
  }
  return `(x·${scale} − [${mean.join(', ')}]) / [${std.join(', ')}]`;
}

async function readRaw(kind: string, arg: string, options: LoadDataOptions): Promise<Raw> {
  switch (kind) {
    case 'mnist':
      if (!arg) return fromBuiltinMnist(options);
      return fromLoader((o) => loadMnist({ ...o, dir: arg }), options, {
        mean: 0.1307,
        std: 0.3081,
      });
    case 'cifar10':
      return fromLoader((o) => loadCifar10({ ...o, dir: arg }), options, { mean: 0.5, std: 0.5 });
    case 'tiny-imagenet':
      return fromLoader((o) => loadTinyImageNet({ ...o, dir: arg }), options, {
        mean: 0.5,
        std: 0.5,
      });
    case 'imagefolder':
      return fromImageFolder(arg, options);
    case 'npz':
      return fromNpz(arg, options);
    default:
      throw new DatasetOptionsError(
        `--data '${kind}${arg ? `:${arg}` : ''}': unknown kind '${kind}'; use mnist, mnist:<dir>, cifar10:<dir>, tiny-imagenet:<dir>, imagefolder:<dir> or npz:<file>`,
      );
  }
}

/** Loads evaluation data from a spec (see the module comment); throws a DatasetError on bad input. */
export async function loadData(spec: string, options: LoadDataOptions = {}): Promise<LoadedData> {
  const colon = spec.indexOf(':');
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  if (kind !== 'mnist' && !arg && (DATA_KINDS as readonly string[]).includes(kind)) {
    throw new DatasetOptionsError(
      `--data '${spec}': ${kind} needs a location, e.g. ${kind}:<path>`,
    );
  }
  if (
    options.examples !== undefined &&
    !(Number.isInteger(options.examples) && options.examples > 0)
  ) {
    throw new DatasetOptionsError(`--examples must be a positive integer; got ${options.examples}`);
  }
  const raw = await readRaw(kind, arg, options);
  if (raw.shape[0] === 0) throw new DatasetError(`--data '${spec}' holds no examples`);
  const preprocessing = preprocess(raw, options);
  const xs = tf.tensor(raw.values, raw.shape, 'float32');
  const ys = raw.oneHot
    ? tf.tensor2d(raw.oneHot.values, [raw.shape[0], raw.oneHot.classes])
    : tf.tensor1d(raw.ids!, 'int32');
  return {
    xs,
    ys,
    labels: raw.oneHot ? 'one-hot' : 'ids',
    classes: raw.classes,
    ...(raw.classNames ? { classNames: raw.classNames } : {}),
    examples: raw.shape[0],
    spec,
    preprocessing,
  };
}
