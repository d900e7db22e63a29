/**
 * Two rates behind the README's arithmetic for `wasm`, measured on the wasm backend:
 *   node dist/bench/tools/wasm-rates.js [--repeats=N]
 * - the memory bandwidth of a memory-bound SIMD kernel of ours (`Sign`'s: 4 bytes read and 4
 *   written a value) on one thread and shared over our SIMD pool, at 1M and 10M values;
 * - the rate of the bench CNN's conv2 (100 × 13 × 13 × 16 → 32 channels, 3 × 3, bias and ReLU)
 *   on XNNPACK and on our direct SIMD kernel (`convForward`, shared over the pool), in GFLOP/s.
 * Medians of `repeats` runs after a few warm-ups; wasm kernels run synchronously.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/kernels/backend';
import { directConvLimits } from '../../src/kernels/wasm/conv-forward';
import { heapAddress, type HeapBackend } from '../../src/kernels/wasm/kernel-io';
import { runShared, simdKernels, simdPool } from '../../src/kernels/wasm/simd';
import { intArg, parseArgs } from '../lib/bench';
import { markdownTable } from '../lib/table';
import { median } from '../lib/timing';

/** Median milliseconds of `repeats` runs of `f`, after 5 untimed ones. */
function timeMs(f: () => void, repeats: number): number {
  for (let i = 0; i < 5; i++) f();
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    f();
    samples.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(samples);
}

function bandwidthRows(repeats: number): (string | number)[][] {
  const backend = tf.backend() as unknown as HeapBackend;
  const simd = simdKernels(backend);
  if (simd === undefined) throw new Error('our SIMD kernels are not available');
  const threads = simdPool(backend)?.threads ?? 1;
  return [1 << 20, 10 << 20].map((n) => {
    const x = tf.randomNormal([n]);
    const out = tf.zeros([n]);
    const fixed = [heapAddress(backend, x), heapAddress(backend, out)];
    const one = timeMs(() => simd.signRange(fixed[0], fixed[1], 0, n), repeats);
    const shared = timeMs(() => runShared(backend, simd, 'signRange', fixed, n), repeats);
    tf.dispose([x, out]);
    const gbs = (ms: number) => ((8 * n) / ms / 1e6).toFixed(1);
    return [`${n.toLocaleString('en')} values`, gbs(one), gbs(shared), String(threads)];
  });
}

function convRows(repeats: number): (string | number)[][] {
  const x = tf.randomNormal([100, 13, 13, 16]);
  const filter = tf.randomNormal([3, 3, 16, 32]);
  const bias = tf.randomNormal([32]);
  const attrs = {
    strides: [1, 1],
    pad: 'valid',
    dataFormat: 'NHWC',
    dilations: [1, 1],
    activation: 'relu',
  };
  const gflop = (2 * 100 * 11 * 11 * 32 * 3 * 3 * 16) / 1e9;
  const run = () =>
    (tf.engine().runKernel('FusedConv2D', { x, filter, bias }, attrs) as tf.Tensor).dispose();
  const saved = directConvLimits.maxInputChannels;
  const rows: (string | number)[][] = [];
  try {
    directConvLimits.maxInputChannels = 0;
    rows.push(['XNNPACK', (gflop / (timeMs(run, repeats) / 1e3)).toFixed(1)]);
    directConvLimits.maxInputChannels = 16;
    rows.push(['ours (convForward)', (gflop / (timeMs(run, repeats) / 1e3)).toFixed(1)]);
  } finally {
    directConvLimits.maxInputChannels = saved;
    tf.dispose([x, filter, bias]);
  }
  return rows;
}

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, ['repeats']);
  const repeats = intArg(args, 'repeats', 25);
  const choice = await initBackend({ backend: 'wasm', log: () => undefined });
  console.log(`wasm, ${choice.threads ?? 1} thread(s); medians of ${repeats}\n`);
  console.log('Memory-bound SIMD kernel (Sign: 8 bytes a value), GB/s:\n');
  console.log(markdownTable(['array', 'one thread', 'shared', 'threads'], bandwidthRows(repeats)));
  console.log('\nconv2 of the bench CNN (FusedConv2D, batch 100), GFLOP/s:\n');
  console.log(markdownTable(['kernel', 'GFLOP/s'], convRows(repeats)));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
