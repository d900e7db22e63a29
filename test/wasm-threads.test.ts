/**
 * The threaded wasm build in Node: the thread count asked for, the pool it gets, the process
 * still exiting on its own, and the single-threaded build when one thread is asked for.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { MAX_WASM_THREADS, requestedWasmThreads, wasmThreading } from '../src/kernels/wasm/threads';
import { switchToWasm } from './support/wasm';
import { projectPath, runNodeScript } from './support/child-script';

describe('requestedWasmThreads', () => {
  it.each([
    ['1', 1],
    ['2', 2],
    ['8', 8],
  ])('reads TFJS_WASM_THREADS=%s', (raw, n) => {
    expect(requestedWasmThreads({ TFJS_WASM_THREADS: raw })).toBe(n);
  });

  it.each(['0', '9', '1.5', 'two', '-1'])('refuses TFJS_WASM_THREADS=%s, naming it', (raw) => {
    expect(() => requestedWasmThreads({ TFJS_WASM_THREADS: raw })).toThrow(
      new RegExp(`TFJS_WASM_THREADS='${raw.replace('.', '\\.')}' is not a thread count.*1 to 8`),
    );
  });

  it("defaults to the machine's parallelism, at most 8", () => {
    expect(requestedWasmThreads({})).toBe(Math.min(MAX_WASM_THREADS, os.availableParallelism()));
  });
});

describe('threaded wasm backend', () => {
  let previous: string;
  beforeAll(async () => {
    previous = await switchToWasm();
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  it('runs XNNPACK on the threads asked for and agrees with cpu', async () => {
    const expected = Math.min(MAX_WASM_THREADS, os.availableParallelism());
    const threading = wasmThreading();
    expect(threading?.requested).toBe(expected);
    expect(threading?.threaded).toBe(expected > 1);
    expect(threading?.threads).toBe(expected);
    const module = (tf.backend() as unknown as { wasm: { tfjs: { getThreadsCount(): number } } })
      .wasm;
    expect(module.tfjs.getThreadsCount()).toBe(expected);

    // Large enough for XNNPACK to split the work between threads.
    const a = tf.randomNormal([256, 300], 0, 1, 'float32', 1);
    const b = tf.randomNormal([300, 200], 0, 1, 'float32', 2);
    const onWasm = await tf.matMul(a, b).data();
    const [av, bv] = [await a.data(), await b.data()];
    await tf.setBackend('cpu');
    const onCpu = await tf
      .tidy(() => tf.matMul(tf.tensor2d(av, [256, 300]), tf.tensor2d(bv, [300, 200])))
      .data();
    await tf.setBackend('wasm');
    // Float32 sums in another order: compare in norm (‖wasm − cpu‖ / ‖cpu‖).
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < onCpu.length; i++) {
      diff += (onWasm[i] - onCpu[i]) ** 2;
      norm += onCpu[i] ** 2;
    }
    expect(Math.sqrt(diff / norm)).toBeLessThan(1e-6);
    tf.dispose([a, b]);
  });
});

/**
 * Runs a script that picks the wasm backend, multiplies two matrices and takes a filter gradient
 * (on our SIMD pool's threads when there is one); resolves its output. A thread of XNNPACK's
 * pool or of ours that kept the process alive would make it time out.
 */
function runChild(env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return runNodeScript(
    `const tf = require('@tensorflow/tfjs');
const { initBackend } = require(${projectPath('src/kernels/backend.ts')});
(async () => {
  const choice = await initBackend({ backend: 'wasm', log: (m) => console.log(m) });
  const a = tf.ones([512, 512]);
  const sum = tf.matMul(a, a).sum().dataSync()[0];
  const x = tf.ones([4, 10, 10, 16]);
  const dy = tf.ones([4, 8, 8, 32]);
  const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
    { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 16, 32] });
  const { simdPool } = require(${projectPath('src/kernels/wasm/simd/index.ts')});
  const pool = simdPool(tf.backend());
  console.log('THREADS=' + choice.threads + ' SUM=' + sum + ' DW=' + dw.max().dataSync()[0] +
    ' POOL=' + (pool ? pool.threads : 0));
})();
`,
    env,
  );
}

describe('a process on the threaded wasm backend', () => {
  it('exits by itself when its work is done', async () => {
    const { code, out } = await runChild({ TFJS_WASM_THREADS: '2' });
    expect(out).toContain('THREADS=2 SUM=134217728 DW=256 POOL=2');
    expect(out).toMatch(/backend: wasm .*; 2 threads\)/);
    expect(code).toBe(0);
  });

  it('uses the single-threaded build with TFJS_WASM_THREADS=1, and says so', async () => {
    const { code, out } = await runChild({ TFJS_WASM_THREADS: '1' });
    expect(out).toContain('THREADS=1 SUM=134217728 DW=256 POOL=0');
    expect(out).toMatch(/1 thread \(one thread was asked for\)/);
    expect(code).toBe(0);
  });

  it('falls back to the single-threaded build when the threaded one cannot load, and says why', async () => {
    // The thread script goes to the temp folder: make that a file, so it cannot be written.
    const blocked = path.join(os.tmpdir(), `not-a-folder-${process.pid}`);
    fs.writeFileSync(blocked, '');
    try {
      const { code, out } = await runChild({ TFJS_WASM_THREADS: '2', TMPDIR: blocked });
      expect(out).toContain('THREADS=1 SUM=134217728 DW=256 POOL=0');
      expect(out).toMatch(/1 thread \(the threaded build failed to load: .*not-a-folder/);
      expect(code).toBe(0);
    } finally {
      fs.rmSync(blocked, { force: true });
    }
  });
});
