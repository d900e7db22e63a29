import * as fs from 'fs';
import * as path from 'path';
import { DatasetFormatError } from './errors';
import { FolderHelp, requireFiles, resolveFolder } from './files';
import { CommonDatasetOptions, optionsValidator } from './options';
import { ExampleSource, LoadedDataset, sourceDataset, splitIndices } from './pipeline';

/** Options of {@link loadCifar10}. */
export interface Cifar10Options extends CommonDatasetOptions {
  /**
   * Folder holding CIFAR-10's binary version: `data_batch_1.bin` … `data_batch_5.bin`,
   * `test_batch.bin`, `batches.meta.txt` (or the folder `cifar-10-batches-bin` the archive
   * extracts to, or its parent). Required.
   */
  dir: string;
}

/** CIFAR-10's binary files. */
export const CIFAR10_FILES = {
  train: [
    'data_batch_1.bin',
    'data_batch_2.bin',
    'data_batch_3.bin',
    'data_batch_4.bin',
    'data_batch_5.bin',
  ],
  test: ['test_batch.bin'],
  meta: 'batches.meta.txt',
} as const;

const SIDE = 32;
const PLANE = SIDE * SIDE;
/** One record: a label byte, then 1,024 red, 1,024 green and 1,024 blue bytes (row-major). */
const RECORD = 1 + 3 * PLANE;
const CLASSES = 10;

const HELP: FolderHelp = {
  dataset: 'CIFAR-10',
  option: 'dir',
  layout: `  ${[...CIFAR10_FILES.train, ...CIFAR10_FILES.test, CIFAR10_FILES.meta].join(', ')}`,
  source:
    'https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version (suitable for C programs)", ' +
    'cifar-10-binary.tar.gz; `tar xzf cifar-10-binary.tar.gz` extracts cifar-10-batches-bin/)',
};

const validate = optionsValidator('loadCifar10', { dir: { type: 'string', minLength: 1 } }, [
  'dir',
]);

/** Reads and checks CIFAR-10 binary files; keeps their bytes (about 31 MB per 10,000 images). */
function binarySource(folder: string, names: readonly string[]): ExampleSource {
  const files = names.map((name) => {
    const file = path.join(folder, name);
    const bytes = fs.readFileSync(file);
    if (bytes.length === 0) throw new DatasetFormatError(file, 'is empty');
    if (bytes.length % RECORD !== 0) {
      const whole = Math.floor(bytes.length / RECORD);
      throw new DatasetFormatError(
        file,
        `is truncated or corrupt: ${bytes.length} bytes is not a whole number of ${RECORD}-byte records ` +
          `(1 label byte + 3,072 pixel bytes); record ${whole} has only ${bytes.length - whole * RECORD} bytes`,
      );
    }
    for (let r = 0; r < bytes.length / RECORD; r++) {
      const label = bytes[r * RECORD];
      if (label >= CLASSES) {
        throw new DatasetFormatError(
          file,
          `label ${label} of record ${r} (byte offset ${r * RECORD}) is outside the 10 classes (0–9)`,
        );
      }
    }
    return bytes;
  });
  const starts: number[] = [];
  let count = 0;
  for (const bytes of files) {
    starts.push(count);
    count += bytes.length / RECORD;
  }
  const locate = (i: number): [Buffer, number] => {
    let f = files.length - 1;
    while (starts[f] > i) f -= 1;
    return [files[f], (i - starts[f]) * RECORD];
  };
  return {
    count,
    shape: [SIDE, SIDE, 3],
    label(i) {
      const [bytes, at] = locate(i);
      return bytes[at];
    },
    read(i, target, offset) {
      const [bytes, at] = locate(i);
      // Channel planes (CHW) to interleaved pixels (HWC).
      for (let p = 0; p < PLANE; p++) {
        target[offset + 3 * p] = bytes[at + 1 + p];
        target[offset + 3 * p + 1] = bytes[at + 1 + PLANE + p];
        target[offset + 3 * p + 2] = bytes[at + 1 + 2 * PLANE + p];
      }
    },
  };
}

function readClassNames(folder: string): string[] {
  const file = path.join(folder, CIFAR10_FILES.meta);
  const names = fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  if (names.length !== CLASSES) {
    throw new DatasetFormatError(
      file,
      `lists ${names.length} class names, expected 10 (one per line)`,
    );
  }
  return names;
}

/**
 * CIFAR-10 as a tfjs-data dataset, from the official binary version in `dir`. Images are
 * 32×32×3, scaled to [−1, 1] (docs/method.md §8); labels one-hot over 10 classes, named from
 * `batches.meta.txt`. Splits: `train` (the five data batches, 50,000 images), `validation` (a
 * seeded part of them, see `validationFraction`), `test` (`test_batch.bin`, 10,000).
 * Truncated files and labels outside 0–9 are {@link DatasetFormatError}s naming the file; a
 * missing folder or file is a {@link DatasetNotFoundError} saying what to put where.
 */
export async function loadCifar10(options: Cifar10Options): Promise<LoadedDataset> {
  const resolved = validate(options);
  const names = resolved.split === 'test' ? CIFAR10_FILES.test : CIFAR10_FILES.train;
  const folder = resolveFolder(options.dir, [...names], ['cifar-10-batches-bin'], HELP);
  requireFiles(folder, [...names, CIFAR10_FILES.meta], HELP);
  const classNames = readClassNames(folder);
  const source = binarySource(folder, names);
  const indices = splitIndices('loadCifar10', source.count, resolved);
  const normalization = resolved.normalize ? { mean: 0.5, std: 0.5 } : { mean: 0, std: 1 };
  return {
    dataset: sourceDataset(source, indices, CLASSES, resolved, normalization),
    name: 'cifar10',
    split: resolved.split,
    size: indices.length,
    classes: CLASSES,
    classNames,
    inputShape: source.shape,
    source: folder,
    normalization,
  };
}
