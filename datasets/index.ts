import { Cifar10Options, loadCifar10 } from './cifar10';
import { DatasetOptionsError } from './errors';
import { loadMnist, MnistOptions } from './mnist';
import { LoadedDataset } from './pipeline';
import { loadTinyImageNet, TinyImageNetOptions } from './tiny-imagenet';

export { CIFAR10_FILES, loadCifar10 } from './cifar10';
export type { Cifar10Options } from './cifar10';
export {
  DatasetError,
  DatasetFormatError,
  DatasetNotFoundError,
  DatasetOptionsError,
} from './errors';
export { loadMnist, MNIST_FILES } from './mnist';
export type { MnistOptions } from './mnist';
export { loadBuiltinMnist, MNIST_MEAN, MNIST_STD, readBuiltinDigits } from './mnist-builtin';
export type { BuiltinMnistOptions, TensorSet } from './mnist-builtin';
export type { CommonDatasetOptions, DatasetSplit } from './options';
export type { Example, LoadedDataset } from './pipeline';
export { loadTinyImageNet } from './tiny-imagenet';
export type { TinyImageNetOptions } from './tiny-imagenet';

/** Names accepted by {@link loadDataset}. */
export const DATASET_NAMES = ['mnist', 'cifar10', 'tiny-imagenet'] as const;

/** One of {@link DATASET_NAMES}. */
export type DatasetName = (typeof DATASET_NAMES)[number];

/** The options of each dataset's loader. */
export interface DatasetOptionsByName {
  mnist: MnistOptions;
  cifar10: Cifar10Options;
  'tiny-imagenet': TinyImageNetOptions;
}

/**
 * Loads a dataset by name: `mnist` ({@link loadMnist}; without `dir`, the built-in digits),
 * `cifar10` ({@link loadCifar10}) or `tiny-imagenet` ({@link loadTinyImageNet}).
 */
export function loadDataset<N extends DatasetName>(
  name: N,
  options: DatasetOptionsByName[N],
): Promise<LoadedDataset> {
  switch (name) {
    case 'mnist':
      return loadMnist(options as MnistOptions);
    case 'cifar10':
      return loadCifar10(options as Cifar10Options);
    case 'tiny-imagenet':
      return loadTinyImageNet(options as TinyImageNetOptions);
    default:
      return Promise.reject(
        new DatasetOptionsError(
          `loadDataset: unknown dataset '${String(name)}'; use one of ${DATASET_NAMES.join(', ')}`,
        ),
      );
  }
}

export { DATA_KINDS, loadData } from './load-data';
export type { LoadDataOptions, LoadedData } from './load-data';
export { parseNpy, readNpz } from './npz';
export type { NpyArray } from './npz';
export { listImageFolder, readImageFolder } from './image-folder';
export type { ImageFolderData } from './image-folder';
