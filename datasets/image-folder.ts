/**
 * A folder of images with one subfolder per class (PNG, JPEG, BMP, GIF), classes in sorted order
 * like Keras' `image_dataset_from_directory` and torchvision's `ImageFolder`.
 */
import * as tf from '@tensorflow/tfjs';
import * as fs from 'fs';
import * as path from 'path';
import { DatasetError, DatasetFormatError, DatasetNotFoundError } from './errors';
import { nativeImageDecoder } from './jpeg';

const IMAGE_FILE = /\.(png|jpe?g|bmp|gif)$/i;

/** Images of a folder as pixels in [0, 1] (x/255), resized to one size. */
export interface ImageFolderData {
  /** `[n, height, width, channels]` values in C order. */
  pixels: Float32Array;
  labels: Int32Array;
  classNames: string[];
  /** The image files, in the order of `labels`. */
  files: string[];
}

/** The class folders and their image files, sorted; throws when there is nothing to read. */
export function listImageFolder(dir: string): { classNames: string[]; files: string[][] } {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new DatasetNotFoundError(`imagefolder: ${dir} is not a folder`, [dir]);
  }
  const classNames = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  if (classNames.length === 0) {
    throw new DatasetError(
      `imagefolder: ${dir} has no class subfolders; expected <dir>/<class>/<image>.png|jpg`,
    );
  }
  const files = classNames.map((name) =>
    fs
      .readdirSync(path.join(dir, name))
      .sort()
      .map((f) => path.join(dir, name, f))
      .filter((f) => fs.statSync(f).isFile()),
  );
  if (files.every((f) => f.length === 0)) {
    throw new DatasetError(`imagefolder: ${dir} is empty (its class folders hold no files)`);
  }
  for (const file of files.flat()) {
    if (!IMAGE_FILE.test(file)) {
      throw new DatasetFormatError(
        file,
        'is not an image (expected .png, .jpg, .jpeg, .bmp, .gif)',
      );
    }
  }
  return { classNames, files };
}

/**
 * Reads `picked` (indices into the sorted file list of every class, or all) of the folder,
 * decoded to `channels` and resized (bilinear) to `size`. Needs the native backend.
 */
export function readImageFolder(
  dir: string,
  size: [number, number],
  channels: number,
  picked?: readonly number[],
): ImageFolderData {
  const { classNames, files } = listImageFolder(dir);
  const all = files.flatMap((list, label) => list.map((file) => ({ file, label })));
  const chosen = picked ? picked.map((i) => all[i]) : all;
  const decode = nativeImageDecoder('imagefolder');
  const per = size[0] * size[1] * channels;
  const pixels = new Float32Array(chosen.length * per);
  chosen.forEach(({ file }, k) => {
    const values = tf.tidy(() => {
      let image: tf.Tensor;
      try {
        image = decode(new Uint8Array(fs.readFileSync(file)), channels);
      } catch (err) {
        const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
        throw new DatasetFormatError(file, `is not an image that can be decoded (${reason})`);
      }
      if (image.rank === 4) image = image.slice([0], [1]).squeeze([0]);
      const resized = tf.image.resizeBilinear(image as tf.Tensor3D, size);
      return resized.div(255).dataSync() as Float32Array;
    });
    pixels.set(values, k * per);
  });
  return {
    pixels,
    labels: Int32Array.from(chosen.map((c) => c.label)),
    classNames,
    files: chosen.map((c) => c.file),
  };
}

/** How many images the folder holds (for sampling before decoding). */
export function countImageFolder(dir: string): number {
  return listImageFolder(dir).files.reduce((n, f) => n + f.length, 0);
}
