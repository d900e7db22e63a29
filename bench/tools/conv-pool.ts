/**
 * Our `AntifragileConvPool` op against TensorFlow's own ops for the same result, on tfjs-node:
 *   node dist/bench/tools/conv-pool.js [--repeats=N]
 * The small CNN's first block (3×3 convolution from one channel into 16, bias, ReLU, 2×2 max
 * pooling) on 256 digits, for one model and for 73 filtered variants at once (the batched
 * sweep's stacked layer: kernels concatenated, the pooled output laid out per variant), and the
 * block's input gradient for 16 copies of 128 digits (an attack on 16 filtered models) against
 * tfjs' gradient of TensorFlow's ops, and a convolution's input gradient into one channel (the
 * small CNN's conv1, ResNet-18's 7×7 stride-2 stem) on 1,024 examples, our op against
 * TensorFlow's own kernel; and the small CNN's second block (from 16 channels) on 1,024 inputs,
 * forward and input gradient. Also prints the GFLOP/s each reaches. Medians of `repeats` runs after
 * warm-ups, each run waited on by reading one value of its output; results checked identical.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/kernels/backend';
import {
  convPool,
  convPoolAvailable,
  convPoolGrad,
  convPoolRoute,
} from '../../src/kernels/native/conv-pool';
import { enableOurOps } from '../../src/kernels/native/our-ops';
import { intArg, parseArgs } from '../lib/bench';
import { markdownTable } from '../lib/table';
import { median } from '../lib/timing';

function timeMs(f: () => tf.Tensor, repeats: number): number {
  const run = () => {
    const y = f();
    tf.tidy(() => tf.reshape(y, [-1]).slice(0, 1).dataSync());
    y.dispose();
  };
  for (let i = 0; i < 3; i++) run();
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    run();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
}

/** Whether two ways of computing a result give the same values (tensors made here are freed). */
function identical(theirs: () => tf.Tensor, ours: () => tf.Tensor): boolean {
  return tf.tidy(() => tf.all(tf.equal(theirs(), ours())).dataSync()[0] === 1);
}

/** A table row: TensorFlow's and our times for the same result, their ratio and GFLOP/s. */
function comparison(
  label: string,
  tfMs: number,
  ourMs: number,
  gflop: number,
  same: boolean,
): (string | number)[] {
  const rate = (ms: number) => (gflop / (ms / 1e3)).toFixed(1);
  const ratio = (ourMs / tfMs).toFixed(3);
  const times = [tfMs.toFixed(2), ourMs.toFixed(2)];
  return [label, ...times, ratio, rate(tfMs), rate(ourMs), same ? 'yes' : 'NO'];
}

function row(variants: number, repeats: number): (string | number)[] {
  const n = 256;
  const x = tf.randomNormal([n, 28, 28, 1], 0, 1, 'float32', 1);
  const w = tf.randomNormal([3, 3, 1, 16 * variants], 0, 0.3, 'float32', 2);
  const b = tf.randomNormal([16 * variants], 0, 0.1, 'float32', 3);
  const theirs = () =>
    tf.tidy(() => {
      const y = tf.maxPool(
        tf.fused.conv2d({
          x: x as tf.Tensor4D,
          filter: w as tf.Tensor4D,
          strides: 1,
          pad: 'valid',
          bias: b,
          activation: 'relu',
        }),
        2,
        2,
        'valid',
      );
      if (variants === 1) return y;
      const split = tf.reshape(y, [n, 13, 13, variants, 16]);
      return tf.reshape(tf.transpose(split, [3, 0, 1, 2, 4]), [variants * n, 13, 13, 16]);
    });
  const ours = () =>
    tf.tidy(
      () =>
        convPool({
          x,
          filters: tf.expandDims(w, 0),
          biases: tf.expandDims(b, 0),
          poolSize: [2, 2],
          strides: [2, 2],
          relu: true,
          groups: variants,
        }) as tf.Tensor,
    );
  const same = identical(theirs, ours);
  const tfMs = timeMs(theirs, repeats);
  const ourMs = timeMs(ours, repeats);
  tf.dispose([x, w, b]);
  const gflop = (2 * n * 26 * 26 * 9 * 16 * variants) / 1e9;
  return comparison(
    variants === 1 ? 'one model' : `${variants} variants, per-variant layout`,
    tfMs,
    ourMs,
    gflop,
    same,
  );
}

/** The block's input gradient on `copies` copies of 128 digits: ours against tfjs' gradient. */
function gradientRow(copies: number, repeats: number): (string | number)[] {
  const n = 128;
  const x = tf.randomNormal([n, 28, 28, 1], 0, 1, 'float32', 4);
  const w = tf.randomNormal([3, 3, 1, 16], 0, 0.3, 'float32', 5);
  const b = tf.randomNormal([16], 0, 0.1, 'float32', 6);
  const dy = tf.randomNormal([copies * n, 13, 13, 16], 0, 1, 'float32', 7);
  const tiled = tf.tile(x, [copies, 1, 1, 1]);
  const block = (input: tf.Tensor) =>
    tf.maxPool(
      tf.relu(
        tf.add(tf.conv2d(input as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid'), b),
      ) as tf.Tensor4D,
      2,
      2,
      'valid',
    );
  const theirs = () =>
    tf.tidy(() => tf.grad((input: tf.Tensor) => tf.sum(tf.mul(block(input), dy)))(tiled));
  const shape = { poolSize: [2, 2] as [number, number], strides: [2, 2] as [number, number] };
  const filters = tf.expandDims(w, 0);
  const routed = convPoolRoute({ ...shape, x, filters, biases: tf.expandDims(b, 0), relu: true });
  if (!routed) throw new Error('the conv-pool ops are not available');
  const ours = () =>
    convPoolGrad({ ...shape, dy, route: routed.route, filters, inputSize: [28, 28] });
  const same = identical(theirs, ours);
  const tfMs = timeMs(theirs, repeats);
  const ourMs = timeMs(ours, repeats);
  tf.dispose([x, w, b, dy, tiled, filters, routed.y, routed.route]);
  // The convolution's input gradient alone: 2·(26·26·9·16) multiply-adds per example and copy.
  const gflop = (2 * copies * n * 26 * 26 * 9 * 16) / 1e9;
  return comparison(`input gradient, ${copies} copies of ${n}`, tfMs, ourMs, gflop, same);
}

/**
 * The small CNN's second block (3×3 from 16 channels into 32, bias, ReLU, 2×2 pooling) on 1,024
 * inputs of 13×13: forward, our op against TensorFlow's ops; and its input gradient, our route,
 * scatter and TensorFlow's own Conv2DBackpropInput against tfjs' gradient of the separate ops.
 */
function wideBlockRows(repeats: number): (string | number)[][] {
  const n = 1024;
  const x = tf.randomNormal([n, 13, 13, 16], 0, 1, 'float32', 10) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 16, 32], 0, 0.2, 'float32', 11) as tf.Tensor4D;
  const b = tf.randomNormal([32], 0, 0.1, 'float32', 12);
  const dy = tf.randomNormal([n, 5, 5, 32], 0, 1, 'float32', 13);
  const shape = { poolSize: [2, 2] as [number, number], strides: [2, 2] as [number, number] };
  const filters = tf.expandDims(w, 0);
  const biases = tf.expandDims(b, 0);
  const block = (input: tf.Tensor) =>
    tf.maxPool(
      tf.relu(tf.add(tf.conv2d(input as tf.Tensor4D, w, 1, 'valid'), b)) as tf.Tensor4D,
      2,
      2,
      'valid',
    );
  const theirs = () => tf.tidy(() => block(x));
  const ours = () => convPool({ ...shape, x, filters, biases, relu: true, groups: 1 }) as tf.Tensor;
  const theirGrad = () =>
    tf.tidy(() => tf.grad((input: tf.Tensor) => tf.sum(tf.mul(block(input), dy)))(x));
  const routed = convPoolRoute({ ...shape, x, filters, biases, relu: true });
  if (!routed) throw new Error('the conv-pool ops are not available');
  const ourGrad = () =>
    convPoolGrad({ ...shape, dy, route: routed.route, filters, inputSize: [13, 13] });
  // FLOPs of the full 11×11 convolution (our forward computes the 10×10 the pooling reads).
  const gflop = (2 * n * 11 * 11 * 9 * 16 * 32) / 1e9;
  const rows = [
    comparison(
      `16 → 32 channels, 1,024 inputs`,
      timeMs(theirs, repeats),
      timeMs(ours, repeats),
      gflop,
      identical(theirs, ours),
    ),
    comparison(
      `its input gradient, 1,024`,
      timeMs(theirGrad, repeats),
      timeMs(ourGrad, repeats),
      gflop,
      identical(theirGrad, ourGrad),
    ),
  ];
  tf.dispose([x, w, b, dy, filters, biases, routed.y, routed.route]);
  return rows;
}

/**
 * A convolution's input gradient into one channel on 1,024 examples (`tf.conv2dTranspose`, the
 * narrow-conv kernel): our AntifragileInputGrad against TensorFlow's own kernel, ops switched
 * off and on in this process.
 */
function inputGradientRow(
  label: string,
  filter: [number, number, number, number],
  stride: number,
  pad: 'valid' | 'same',
  repeats: number,
): (string | number)[] {
  const m = 1024;
  const w = tf.randomNormal(filter, 0, 0.3, 'float32', 8) as tf.Tensor4D;
  const input: [number, number, number, number] = [m, 28, 28, filter[2]];
  const out = tf.conv2d(tf.zeros([1, 28, 28, filter[2]]) as tf.Tensor4D, w, stride, pad).shape;
  const dy = tf.randomNormal([m, out[1], out[2], filter[3]], 0, 1, 'float32', 9) as tf.Tensor4D;
  const run = () => tf.conv2dTranspose(dy, w, input, stride, pad);
  enableOurOps(false);
  const theirs = run();
  const tfMs = timeMs(run, repeats);
  enableOurOps(true);
  const ours = run();
  const ourMs = timeMs(run, repeats);
  const same = identical(
    () => theirs,
    () => ours,
  );
  tf.dispose([w, dy, theirs, ours]);
  const gflop = (2 * m * out[1] * out[2] * filter[0] * filter[1] * filter[2] * filter[3]) / 1e9;
  return comparison(label, tfMs, ourMs, gflop, same);
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['repeats']);
  const repeats = intArg(args, 'repeats', 15);
  await initBackend({ backend: 'tensorflow', log: () => undefined });
  enableOurOps(true);
  if (!convPoolAvailable())
    throw new Error('the AntifragileConvPool op is not built (npm run setup)');
  console.log(`small CNN block on 256 digits, tfjs-node; medians of ${repeats}\n`);
  const header = [
    'case',
    'TensorFlow ops ms',
    'ours ms',
    'ours ÷ TF',
    'TF GFLOP/s',
    'ours GFLOP/s',
    'identical',
  ];
  const rows = [
    row(1, repeats),
    row(73, repeats),
    gradientRow(16, repeats),
    ...wideBlockRows(repeats),
    inputGradientRow(
      'input gradient, 3×3 into 1 channel, 1,024',
      [3, 3, 1, 16],
      1,
      'valid',
      repeats,
    ),
    inputGradientRow(
      'input gradient, 7×7/2 into 1 channel, 1,024',
      [7, 7, 1, 16],
      2,
      'same',
      repeats,
    ),
  ];
  console.log(markdownTable(header, rows));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
