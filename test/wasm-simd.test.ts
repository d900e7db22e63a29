/**
 * Our SIMD kernels (src/kernels/wasm/simd): the committed binary is the assembled kernels.wat, and both
 * of its variants run: the shared-memory one in this process (threaded build, see the kernel
 * tests for agreement with cpu), the plain-memory one under the single-threaded build.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { heapAddress, type HeapBackend } from '../src/kernels/wasm/kernel-io';
import { simdKernels, simdPool } from '../src/kernels/wasm/simd';
import { wasmThreading } from '../src/kernels/wasm/threads';
import { projectPath, runNodeScript } from './support/child-script';
import { switchToWasm } from './support/wasm';

const root = path.resolve(__dirname, '..');

describe('SIMD kernel binary', () => {
  it('is kernels.wat assembled (node scripts/assemble-wasm.js)', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { render } = require(path.join(root, 'scripts', 'assemble-wasm.js')) as {
      render(): Promise<string>;
    };
    const committed = fs.readFileSync(
      path.join(root, 'src', 'kernels', 'wasm', 'simd', 'binary.ts'),
      'utf8',
    );
    expect(committed).toBe(await render());
  });
});

describe('SIMD kernels on the threaded build', () => {
  let previous: string;
  beforeAll(async () => {
    previous = await switchToWasm();
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  it('share work out to a pool of threads that reports failures and keeps working', () => {
    const pool = simdPool(tf.backend());
    const threads = wasmThreading()?.threads ?? 1;
    if (threads < 2) {
      expect(pool).toBeUndefined();
      return;
    }
    expect(pool?.threads).toBe(threads);
    expect(simdPool(tf.backend())).toBe(pool);
    // Every thread takes the signs of its own part of one array.
    const n = 4096;
    const x = tf.randomNormal([n], 0, 1, 'float32', 9);
    const out = tf.zeros([n]);
    const at = (t: tf.Tensor) => heapAddress(tf.backend() as unknown as HeapBackend, t);
    const part = n / threads;
    const ranges = Array.from({ length: threads }, (_, i) => [i * part, (i + 1) * part]);
    pool?.run(
      'signRange',
      ranges.map((range) => [at(x), at(out), ...range]),
    );
    expect(Array.from(out.dataSync())).toEqual(Array.from(tf.sign(x).dataSync()));
    // A share that traps (an address past the memory's end) fails the call, not the pool.
    const beyond = ranges.map((range) => [at(x), at(out), ...range]);
    beyond[threads - 1] = [0x7ffffff0, 0x7ffffff0, 0, 1024];
    expect(() => pool?.run('signRange', beyond)).toThrow(
      /'signRange' failed on a SIMD pool thread/,
    );
    expect(() => pool?.run('adam', beyond)).toThrow(/cannot run 'adam'/);
    tf.dispose(out);
    const again = tf.zeros([n]);
    pool?.run(
      'signRange',
      ranges.map((range) => [at(x), at(again), ...range]),
    );
    expect(Array.from(again.dataSync())).toEqual(Array.from(tf.sign(x).dataSync()));
    tf.dispose([x, again]);
  });

  it('are instantiated on the backend memory, once', () => {
    const kernels = simdKernels(tf.backend());
    expect(typeof kernels?.maxPoolGrad2x2Range).toBe('function');
    expect(typeof kernels?.filterGradBlocks).toBe('function');
    expect(simdKernels(tf.backend())).toBe(kernels);
    expect(simdKernels(undefined)).toBeUndefined();
  });
});

/** A child process on the single-threaded build: our kernels against cpu, as JSON. */
function runSingleThreaded(): Promise<{ code: number | null; out: string }> {
  return runNodeScript(
    `const tf = require('@tensorflow/tfjs');
const { initBackend } = require(${projectPath('src/kernels/backend.ts')});
const { simdKernels } = require(${projectPath('src/kernels/wasm/simd/index.ts')});
(async () => {
  const choice = await initBackend({ backend: 'wasm', log: () => undefined });
  const x = tf.randomNormal([3, 12, 10, 8], 0, 1, 'float32', 1);
  const dy = tf.randomNormal([3, 10, 8, 16], 0, 1, 'float32', 2);
  const pooled = tf.randomNormal([3, 6, 5, 8], 0, 1, 'float32', 3);
  const run = () => [
    tf.engine().runKernel('Conv2DBackpropFilter', { x: x.slice([0, 0, 0, 0], [3, 12, 10, 1]), dy },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 1, 16] }).dataSync(),
    tf.engine().runKernel('MaxPoolGrad', { dy: pooled, input: x, output: tf.maxPool(x, 2, 2, 'valid') },
      { filterSize: [2, 2], strides: [2, 2], pad: 'valid' }).dataSync(),
    tf.engine().runKernel('FusedConv2D', { x: x.slice([0, 0, 0, 0], [3, 12, 10, 2]),
      filter: dy.slice([0, 0, 0, 0], [3, 3, 2, 16]), bias: dy.slice([0, 0, 0, 0], [1, 1, 1, 16]).reshape([16]) },
      { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1], activation: 'relu' }).dataSync(),
    tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: dy.slice([0, 0, 0, 0], [3, 3, 1, 16]) },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', inputShape: [3, 12, 10, 1] }).dataSync(),
  ];
  const adam = async () => {
    const v = tf.variable(tf.randomNormal([37], 0, 1, 'float32', 5));
    const optimizer = tf.train.adam(0.01);
    const kernels = [];
    for (let s = 0; s < 3; s++) {
      const g = tf.randomNormal([37], 0, 1, 'float32', 6 + s);
      const info = await tf.profile(() => optimizer.applyGradients([{ name: v.name, tensor: g }]));
      kernels.push(...info.kernels.map((k) => k.name));
      g.dispose();
    }
    const values = v.dataSync();
    optimizer.dispose();
    v.dispose();
    return { values, fused: kernels.includes('AntifragileAdam') };
  };
  const { directConvStats } = require(${projectPath('src/kernels/wasm/conv-forward.ts')});
  const { directGradientStats } = require(${projectPath('src/kernels/wasm/conv-gradients.ts')});
  const [gradOnly, pool, conv, inputGrad] = run();
  const direct = directConvStats.calls === 1 && directGradientStats.inputGradient === 1;
  const grad = [...gradOnly, ...conv, ...inputGrad];
  const adamWasm = await adam();
  const simd = simdKernels(tf.backend()) !== undefined;
  await tf.setBackend('cpu');
  const [gradOnlyCpu, poolCpu, convCpu, inputGradCpu] = run();
  const gradCpu = [...gradOnlyCpu, ...convCpu, ...inputGradCpu];
  const adamCpu = await adam();
  const adamSame = adamWasm.fused && adamWasm.values.every((v, i) => Object.is(v, adamCpu.values[i]));
  let worst = 0;
  for (let i = 0; i < grad.length; i++) worst = Math.max(worst, Math.abs(grad[i] - gradCpu[i]) / Math.max(1, Math.abs(gradCpu[i])));
  const poolSame = pool.every((v, i) => Object.is(v, poolCpu[i]));
  console.log(JSON.stringify({ threads: choice.threads, simd, worst, poolSame, adamSame, direct }));
})();
`,
    { TFJS_WASM_THREADS: '1' },
  );
}

describe('SIMD kernels on the single-threaded build', () => {
  it('run on its plain memory and agree with cpu', async () => {
    const { code, out } = await runSingleThreaded();
    const line = out.split('\n').find((l) => l.startsWith('{'));
    if (line === undefined) throw new Error(`no result from the child:\n${out}`);
    const result = JSON.parse(line) as {
      threads: number;
      simd: boolean;
      worst: number;
      poolSame: boolean;
      adamSame: boolean;
      direct: boolean;
    };
    expect(result.threads).toBe(1);
    expect(result.simd).toBe(true);
    expect(result.worst).toBeLessThan(1e-5);
    expect(result.poolSame).toBe(true);
    expect(result.adamSame).toBe(true);
    expect(result.direct).toBe(true);
    expect(code).toBe(0);
  });
});
