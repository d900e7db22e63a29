import * as tf from '@tensorflow/tfjs';
import { currentBackend } from '../src/kernels/backend';
import { DatasetError, DatasetFormatError } from './errors';

type DecodeJpeg = (contents: Uint8Array, channels?: number) => tf.Tensor3D;

/** tfjs-node's decoder of BMP, GIF, JPEG and PNG files. */
export type DecodeImage = (contents: Uint8Array, channels?: number) => tf.Tensor3D | tf.Tensor4D;

/**
 * TensorFlow's native JPEG decoder from `@tensorflow/tfjs-node` (or `-gpu`, whichever provides
 * the active backend), loaded on first use so that this module loads without it. Throws a
 * {@link DatasetError} naming `user` when the native backend is not the active one.
 */
export function nativeJpegDecoder(user: string): DecodeJpeg {
  return nativeDecoders(user).decodeJpeg;
}

/** Like {@link nativeJpegDecoder}, for PNG, JPEG, BMP and GIF files (`tf.node.decodeImage`). */
export function nativeImageDecoder(user: string): DecodeImage {
  return nativeDecoders(user).decodeImage;
}

let decoders: { decodeJpeg: DecodeJpeg; decodeImage: DecodeImage } | undefined;

function nativeDecoders(user: string): { decodeJpeg: DecodeJpeg; decodeImage: DecodeImage } {
  if (tf.getBackend() !== 'tensorflow') {
    throw new DatasetError(
      `${user} decodes JPEGs with TensorFlow's native library, which needs the 'tensorflow' backend ` +
        `(@tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu, chosen by initBackend()); ` +
        `the active backend is '${tf.getBackend()}'`,
    );
  }
  if (decoders) return decoders;
  const pkg =
    currentBackend()?.package === '@tensorflow/tfjs-node-gpu'
      ? '@tensorflow/tfjs-node-gpu'
      : '@tensorflow/tfjs-node';
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(pkg) as { node: { decodeJpeg: DecodeJpeg; decodeImage: DecodeImage } };
    decoders = mod.node;
  } catch (err) {
    throw new DatasetError(
      `${user} needs ${pkg} to decode JPEGs: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
    );
  }
  return decoders;
}

const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).toUpperCase().padStart(2, '0')).join(' ');

/**
 * What keeps `bytes` from being a whole JPEG, checked before the native decoder sees them (which
 * answers a bare status code and prints libjpeg's warnings): the start-of-image marker FF D8 FF
 * and an end-of-image marker FF D9. Undefined when both are there.
 */
export function jpegStructureProblem(bytes: Uint8Array): string | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8 || bytes[2] !== 0xff) {
    return (
      `it is not a JPEG (expected the start marker FF D8 FF; the ${bytes.length} bytes start ` +
      `with ${bytes.length ? hex(bytes.subarray(0, 4)) : 'nothing'})`
    );
  }
  for (let i = bytes.length - 2; i >= 2; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return undefined;
  }
  return `it is truncated (${bytes.length} bytes and no end-of-image marker FF D9)`;
}

/**
 * Decodes `bytes` (the contents of `file`) to RGB with `decode` and checks its size; an
 * undecodable file or one of another size is a {@link DatasetFormatError} naming the file.
 * Writes the pixels, in [0, 255] and HWC order, into `target` at `offset`.
 */
export function decodeInto(
  decode: DecodeJpeg,
  file: string,
  bytes: Uint8Array,
  size: [number, number],
  target: Float32Array,
  offset: number,
): void {
  const problem = jpegStructureProblem(bytes);
  if (problem) throw new DatasetFormatError(file, `cannot be decoded as a JPEG: ${problem}`);
  let image: tf.Tensor3D;
  try {
    image = decode(bytes, 3);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new DatasetFormatError(
      file,
      `cannot be decoded as a JPEG: its ${bytes.length} bytes start and end like one, but ` +
        `TensorFlow's decoder rejected the data (${reason}); the file is corrupt`,
    );
  }
  try {
    const [h, w] = image.shape;
    if (h !== size[0] || w !== size[1]) {
      throw new DatasetFormatError(file, `is ${h}×${w} pixels, expected ${size[0]}×${size[1]}`);
    }
    target.set(image.dataSync(), offset);
  } finally {
    image.dispose();
  }
}
