import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { loadBuiltinMnist } from '../../datasets/mnist-builtin';
import { LabelledSet } from './tasks';

/** The bench's digits: a training set and a disjoint evaluation set, both normalised. */
export interface BenchDigits {
  train: LabelledSet;
  eval: LabelledSet;
}

/** The first `trainSize` + `evalSize` digits of the seeded shuffle of the `mnist` package's 10,000. */
export function loadBenchDigits(trainSize: number, evalSize: number): BenchDigits {
  const { train, test } = loadBuiltinMnist({ trainSize, testSize: evalSize, seed: 0 });
  return { train, eval: test };
}

/** The first `n` examples of a set, as new tensors (the caller disposes them). */
export function headOf(set: LabelledSet, n: number): LabelledSet {
  return tf.tidy(() => ({
    xs: set.xs.slice([0, 0, 0, 0], [n, -1, -1, -1]),
    ys: set.ys.slice([0, 0], [n, -1]),
  }));
}

/**
 * Writes the digits for the PyTorch side to a temporary file: float32 images (train then eval,
 * NHWC, normalised as the tfjs side sees them) followed by int32 labels. Returns its path.
 */
export async function writeDigitsFile(digits: BenchDigits): Promise<string> {
  const xs = tf.concat([digits.train.xs, digits.eval.xs]);
  const labels = tf.tidy(() => tf.concat([digits.train.ys, digits.eval.ys]).argMax(1).toInt());
  const pixels = (await xs.data()) as Float32Array;
  const classes = (await labels.data()) as Int32Array;
  tf.dispose([xs, labels]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tfjs-antifragile-bench-'));
  const file = path.join(dir, 'digits.bin');
  const buffer = Buffer.concat([
    Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength),
    Buffer.from(classes.buffer, classes.byteOffset, classes.byteLength),
  ]);
  fs.writeFileSync(file, buffer);
  return file;
}

/** Disposes the tensors of labelled sets. */
export function disposeSets(...sets: LabelledSet[]): void {
  tf.dispose(sets.flatMap((s) => [s.xs, s.ys]));
}
