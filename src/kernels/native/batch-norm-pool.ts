import * as tf from '@tensorflow/tfjs';
import {
  batchNormFusable,
  formulaFor,
  probeValues,
  sameBits,
  type BatchNormInputs,
} from './batch-norm';
import type { NativeBackend } from './native-backend';

/**
 * A network's stem after its convolution, `maxPool(zeroPad(relu(batchNorm(x))))`, as one op of
 * ours (`AntifragileBatchNormPool`, ./addon/batch_norm.cc): one pass that reads the convolution's
 * output and writes the pooled map, where TensorFlow runs three ops over the full-size map and a
 * padded copy of it (ResNet's stem: 57 ms of ops per 8,064 examples). Forward only: no gradient.
 *
 * The values are TensorFlow's, bit for bit: the batch norm by the formula found for the channel
 * count (./batch-norm.ts), and TensorFlow's max pooling, which keeps the first of equal values
 * and never takes a NaN. That pooling is checked too, once per channel count, on probe values
 * (NaN, ±0 and infinities among them) against TensorFlow's own ops; where it differs the op does
 * not run and the caller runs TensorFlow's.
 */

export interface BatchNormReluPoolArgs extends BatchNormInputs {
  /** `[[top, bottom], [left, right]]` zeros around the map before the pooling. */
  padding: [[number, number], [number, number]];
  /** The pooling window, `[height, width]`, `valid` on the padded map. */
  poolSize: [number, number];
  strides: [number, number];
}

const OP = 'AntifragileBatchNormPool';

/** Per channel count: whether the op gave TensorFlow's values on the probe. */
const matches = new Map<number, boolean>();
let calls = 0;

/** How many times the op ran for callers, probes aside (tests check it is used). */
export function batchNormPoolCallCount(): number {
  return calls;
}

function runOp(args: BatchNormReluPoolArgs, formula: number): tf.Tensor {
  const backend = tf.backend() as unknown as NativeBackend;
  const b = backend.binding;
  const [[top, bottom], [left, right]] = args.padding;
  const channels = args.x.shape[3] as number;
  const attrs = [
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: args.varianceEpsilon },
    { name: 'formula', type: b.TF_ATTR_INT, value: formula },
    { name: 'pool', type: b.TF_ATTR_INT, value: [...args.poolSize, ...args.strides] },
    { name: 'pads', type: b.TF_ATTR_INT, value: [top, bottom, left, right] },
  ];
  return tf.tidy(() => {
    const scale = args.scale ?? tf.ones([channels]);
    const offset = args.offset ?? tf.zeros([channels]);
    return backend.executeSingleOutput(OP, attrs, [
      args.x,
      args.mean,
      args.variance,
      scale,
      offset,
    ]);
  });
}

/** TensorFlow's ops for the same computation. */
function theirs(args: BatchNormReluPoolArgs): tf.Tensor {
  return tf.tidy(() => {
    const { x, mean, variance, offset, scale, varianceEpsilon } = args;
    const y = tf.relu(tf.batchNorm(x, mean, variance, offset, scale, varianceEpsilon));
    const padded = tf.pad(y, [[0, 0], ...args.padding, [0, 0]]);
    return tf.maxPool(padded as tf.Tensor4D, args.poolSize, args.strides, 'valid');
  });
}

/** Whether the op gives TensorFlow's values for `channels` (see the module comment). */
function poolMatches(channels: number, formula: 0 | 1): boolean {
  let known = matches.get(channels);
  if (known === undefined) {
    known = tf.tidy(() => {
      const xs = probeValues(4 * 6 * 6 * channels, 29, 20);
      // Whole windows of zeros, NaN and −0 after the ReLU, beside ordinary values.
      [NaN, -0, 0, Infinity, -Infinity].forEach((v, i) => (xs[(i * 53) % xs.length] = v));
      for (let i = 0; i < 3 * channels; i++) xs[i] = -Math.abs(xs[i]) - 1e3;
      const args: BatchNormReluPoolArgs = {
        x: tf.tensor4d(xs, [4, 6, 6, channels]),
        mean: tf.tensor1d(probeValues(channels, 31, 4)),
        variance: tf.tensor1d(probeValues(channels, 37, 2).map((v) => Math.abs(v))),
        scale: tf.tensor1d(probeValues(channels, 41, 3)),
        offset: tf.tensor1d(probeValues(channels, 43, 2)),
        varianceEpsilon: 1e-3,
        padding: [
          [1, 0],
          [1, 1],
        ],
        poolSize: [3, 3],
        strides: [2, 2],
      };
      return sameBits(runOp(args, formula), theirs(args));
    });
    matches.set(channels, known);
  }
  return known;
}

/**
 * `maxPool(pad(relu(batchNorm(x))))` (see the module comment); undefined where the op does not
 * run (no ops module, another backend, a channel count whose values did not match, non-float
 * input, a window larger than the padded map).
 */
export function batchNormReluPool(args: BatchNormReluPoolArgs): tf.Tensor | undefined {
  const { x } = args;
  if (x.dtype !== 'float32' || x.rank !== 4) return undefined;
  const [, h, w, channels] = x.shape;
  const [[top, bottom], [left, right]] = args.padding;
  const fits = h + top + bottom >= args.poolSize[0] && w + left + right >= args.poolSize[1];
  if (!fits || !batchNormFusable(channels)) return undefined;
  const formula = formulaFor(channels) as 0 | 1;
  if (!poolMatches(channels, formula)) return undefined;
  calls += 1;
  return runOp(args, formula);
}
