import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import {
  DatasetError,
  DatasetFormatError,
  DatasetNotFoundError,
  Example,
  loadTinyImageNet,
} from '../datasets';
import { COLOURS, jpeg, WNIDS, writeTinyImageNet } from './support/dataset-files';
import { describeIf } from './support/skip';

// JPEGs are encoded here and decoded by the loader with TensorFlow's native library.
const native = !process.env.TFJS_BACKEND || process.env.TFJS_BACKEND.startsWith('tensorflow');

let root: string;

/** Labels and each image's mean colour, in [0, 255]. */
async function collect(
  ds: tf.data.Dataset<Example>,
): Promise<{ labels: number[]; colours: number[][] }> {
  const labels: number[] = [];
  const colours: number[][] = [];
  await ds.forEachAsync((e) => {
    labels.push(e.ys.argMax(-1).dataSync()[0]);
    const mean = tf.tidy(() => e.xs.add(1).mul(127.5).mean([0, 1]));
    colours.push(Array.from(mean.dataSync()));
    tf.dispose([e.xs, e.ys, mean]);
  });
  return { labels, colours };
}

describeIf(
  native,
  `TFJS_BACKEND=${process.env.TFJS_BACKEND}: decoding JPEGs needs the native backend (tensorflow)`,
)('Tiny ImageNet', () => {
  let dir: string;
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-imagenet-test-'));
    dir = path.join(root, 'tiny-imagenet-200');
    await writeTinyImageNet(dir);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('streams the training images, labelled by folder, scaled to [-1, 1]', async () => {
    const train = await loadTinyImageNet({ dir: root, shuffle: false }); // the archive folder is found
    expect(train).toMatchObject({
      name: 'tiny-imagenet',
      size: 12,
      classes: 3,
      inputShape: [64, 64, 3],
    });
    expect(train.source).toBe(dir);
    expect(train.classNames).toEqual([
      'goldfish, Carassius auratus',
      'European fire salamander',
      'n01641577',
    ]);
    const { labels, colours } = await collect(train.dataset);
    expect(labels).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    labels.forEach((label, i) =>
      colours[i].forEach((c, ch) => expect(Math.abs(c - COLOURS[label][ch])).toBeLessThan(4)),
    );
  });

  it('reads the labelled val/ images as the test split, in batches', async () => {
    const test = await loadTinyImageNet({ dir, split: 'test', batchSize: 2 });
    expect(test.size).toBe(5);
    const labels: number[] = [];
    const shapes: number[][] = [];
    await test.dataset.forEachAsync((e) => {
      shapes.push(e.xs.shape);
      labels.push(...Array.from(e.ys.argMax(-1).dataSync()));
      tf.dispose([e.xs, e.ys]);
    });
    expect(labels).toEqual([2, 0, 1, 1, 0]);
    expect(shapes).toEqual([
      [2, 64, 64, 3],
      [2, 64, 64, 3],
      [1, 64, 64, 3],
    ]);
  });

  it('splits off a seeded validation set from train/', async () => {
    const validation = await loadTinyImageNet({
      dir,
      split: 'validation',
      validationFraction: 0.25,
      seed: 3,
    });
    const train = await loadTinyImageNet({
      dir,
      split: 'train',
      validationFraction: 0.25,
      seed: 3,
    });
    expect([validation.size, train.size]).toEqual([3, 9]);
  });

  it('expands grey JPEGs to RGB', async () => {
    const greyDir = path.join(root, 'grey');
    fs.cpSync(dir, greyDir, { recursive: true });
    fs.writeFileSync(
      path.join(greyDir, 'val', 'images', 'val_0.JPEG'),
      await jpeg([128, 0, 0], 64, true),
    );
    const test = await loadTinyImageNet({ dir: greyDir, split: 'test', limit: 5 });
    const { colours } = await collect(test.dataset);
    for (const c of colours[0]) expect(Math.abs(c - 128)).toBeLessThan(3);
  });

  it('reads files only when the dataset reaches them, and names a file that is corrupt', async () => {
    const lazy = path.join(root, 'lazy');
    fs.cpSync(dir, lazy, { recursive: true });
    const test = await loadTinyImageNet({ dir: lazy, split: 'test' });
    // Damaged after loading: the loader did not read the images up front.
    const broken = path.join(lazy, 'val', 'images', 'val_3.JPEG');
    const bytes = fs.readFileSync(broken);
    fs.writeFileSync(broken, bytes.subarray(0, 200));
    const err = await collect(test.dataset).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as DatasetFormatError).file).toBe(broken);
    expect((err as Error).message).toMatch(
      /val_3\.JPEG: cannot be decoded as a JPEG: it is truncated \(200 bytes and no end-of-image marker FF D9\)/,
    );
    fs.writeFileSync(broken, 'not an image');
    await expect(collect(test.dataset)).rejects.toThrow(
      /val_3\.JPEG: cannot be decoded as a JPEG: it is not a JPEG \(expected the start marker FF D8 FF; the 12 bytes start with 6E 6F 74 20\)/,
    );
    fs.writeFileSync(broken, await jpeg([1, 2, 3], 32));
    await expect(collect(test.dataset)).rejects.toThrow(
      /val_3\.JPEG: is 32×32 pixels, expected 64×64/,
    );
  });

  it('rejects a validation class that is not in wnids.txt, naming file and line', async () => {
    const bad = path.join(root, 'bad-class');
    fs.cpSync(dir, bad, { recursive: true });
    const annotations = path.join(bad, 'val', 'val_annotations.txt');
    fs.appendFileSync(annotations, 'val_0.JPEG\tn00000042\t0\t0\t1\t1\n');
    await expect(loadTinyImageNet({ dir: bad, split: 'test' })).rejects.toThrow(
      `${annotations}: line 6: class 'n00000042' is not one of the 3 classes of wnids.txt`,
    );
  });

  it('says which files to put where when the folder or a class folder is missing', async () => {
    const err = await loadTinyImageNet({ dir: path.join(root, 'nowhere') }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatasetNotFoundError);
    expect((err as Error).message).toMatch(
      /Tiny ImageNet not found in '.*nowhere': the folder .* does not exist/,
    );
    expect((err as Error).message).toMatch(/train\/<wnid>\/images\/\*\.JPEG/);
    expect((err as Error).message).toMatch(/tiny-imagenet-200\.zip/);
    const partial = path.join(root, 'partial');
    fs.cpSync(dir, partial, { recursive: true });
    fs.rmSync(path.join(partial, 'train', WNIDS[1]), { recursive: true });
    await expect(loadTinyImageNet({ dir: partial })).rejects.toThrow(
      /class 'n01629819' of wnids.txt has no folder train\/n01629819\/images/,
    );
  });

  it('needs the native backend for JPEG decoding and says so', async () => {
    await tf.setBackend('cpu');
    try {
      const err = await loadTinyImageNet({ dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DatasetError);
      expect((err as Error).message).toMatch(
        /needs the 'tensorflow' backend .* the active backend is 'cpu'/,
      );
    } finally {
      await tf.setBackend('tensorflow');
    }
  });
});
