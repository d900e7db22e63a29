/**
 * Small dataset folders in the real file formats (MNIST IDX, CIFAR-10 binary, Tiny ImageNet
 * JPEGs), for the dataset loader tests and the end-to-end recipe tests.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import * as tf from '@tensorflow/tfjs';

interface NodeImage {
  node: {
    encodeJpeg(
      image: tf.Tensor3D,
      format?: '' | 'grayscale' | 'rgb',
      quality?: number,
    ): Promise<Uint8Array>;
  };
}

// ------------------------------------------------------------------------------------ MNIST IDX

export function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** `n` 28×28 images whose pixels all equal the example's index (so examples can be told apart). */
export function mnistFiles(n: number, labels: (i: number) => number) {
  const images = new Uint8Array(n * 784);
  for (let i = 0; i < n; i++) images.fill(i, i * 784, (i + 1) * 784);
  return {
    images: idx([n, 28, 28], images),
    labels: idx(
      [n],
      Uint8Array.from({ length: n }, (_, i) => labels(i)),
    ),
  };
}

export function writeMnist(dir: string, gzip = false, train = 12, test = 5): void {
  const t = mnistFiles(train, (i) => i % 10);
  const v = mnistFiles(test, (i) => (i * 3) % 10);
  const write = (name: string, bytes: Buffer) =>
    fs.writeFileSync(
      path.join(dir, gzip ? `${name}.gz` : name),
      gzip ? zlib.gzipSync(bytes) : bytes,
    );
  write('train-images-idx3-ubyte', t.images);
  write('train-labels-idx1-ubyte', t.labels);
  write('t10k-images-idx3-ubyte', v.images);
  write('t10k-labels-idx1-ubyte', v.labels);
}

// ----------------------------------------------------------------------------------- CIFAR-10

export const CLASS_NAMES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** `n` records: label `label(i)`; red = example index, green = pixel index mod 256, blue = 255. */
export function cifarBatch(n: number, start: number, label: (i: number) => number): Buffer {
  const out = Buffer.alloc(n * 3073);
  for (let i = 0; i < n; i++) {
    const at = i * 3073;
    out[at] = label(start + i);
    for (let p = 0; p < 1024; p++) {
      out[at + 1 + p] = start + i;
      out[at + 1 + 1024 + p] = p % 256;
      out[at + 1 + 2048 + p] = 255;
    }
  }
  return out;
}

export function writeCifar(dir: string, perBatch = 4): void {
  for (let b = 1; b <= 5; b++) {
    fs.writeFileSync(
      path.join(dir, `data_batch_${b}.bin`),
      cifarBatch(perBatch, (b - 1) * perBatch, (i) => i % 10),
    );
  }
  fs.writeFileSync(
    path.join(dir, 'test_batch.bin'),
    cifarBatch(3, 100, (i) => 9 - (i % 10)),
  );
  fs.writeFileSync(path.join(dir, 'batches.meta.txt'), `${CLASS_NAMES.join('\n')}\n\n`);
}

// ------------------------------------------------------------------------------ Tiny ImageNet

/** JPEGs are encoded with TensorFlow's native library (@tensorflow/tfjs-node). */
export const WNIDS = ['n01443537', 'n01629819', 'n01641577'];
/** Each class has its own colour (class 0 red, 1 green, 2 blue), so labels can be checked from pixels. */
export const COLOURS: [number, number, number][] = [
  [230, 20, 20],
  [20, 230, 20],
  [20, 20, 230],
];

export async function jpeg(
  colour: [number, number, number],
  size = 64,
  grey = false,
): Promise<Uint8Array> {
  const image = tf.tidy(() =>
    grey
      ? tf.fill([size, size, 1], colour[0], 'int32')
      : (tf.tensor1d(colour, 'int32').reshape([1, 1, 3]).tile([size, size, 1]) as tf.Tensor3D),
  ) as tf.Tensor3D;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { encodeJpeg } = (require('@tensorflow/tfjs-node') as NodeImage).node;
  const bytes = await encodeJpeg(image, grey ? 'grayscale' : 'rgb', 95);
  image.dispose();
  return bytes;
}

/** A small Tiny ImageNet folder: 3 classes × 4 training images, 5 validation images. */
export async function writeTinyImageNet(dir: string): Promise<void> {
  fs.mkdirSync(path.join(dir, 'val', 'images'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'wnids.txt'), `${WNIDS.join('\n')}\n`);
  fs.writeFileSync(
    path.join(dir, 'words.txt'),
    'n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\nn99999999\tunused\n',
  );
  for (const [label, wnid] of WNIDS.entries()) {
    const images = path.join(dir, 'train', wnid, 'images');
    fs.mkdirSync(images, { recursive: true });
    fs.writeFileSync(path.join(dir, 'train', wnid, `${wnid}_boxes.txt`), '');
    for (let i = 0; i < 4; i++)
      fs.writeFileSync(path.join(images, `${wnid}_${i}.JPEG`), await jpeg(COLOURS[label]));
  }
  const val = [2, 0, 1, 1, 0];
  const lines = await Promise.all(
    val.map(async (label, i) => {
      fs.writeFileSync(
        path.join(dir, 'val', 'images', `val_${i}.JPEG`),
        await jpeg(COLOURS[label]),
      );
      return `val_${i}.JPEG\t${WNIDS[label]}\t0\t0\t63\t63`;
    }),
  );
  fs.writeFileSync(path.join(dir, 'val', 'val_annotations.txt'), `${lines.join('\n')}\n`);
}
