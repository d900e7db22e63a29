/**
 * Multi-threaded `wasm` in Node. tfjs ships a threaded SIMD build of its wasm backend, whose
 * XNNPACK matrix products and convolutions run on a pool of threads, but in Node its loader
 * fails: it hands `worker_threads` a `blob:` URL for the thread script, and the build sizes its
 * pool at half the logical cores (one thread on a 2-core machine). {@link useThreadedWasm}
 * replaces the `wasm` backend's factory with one that loads the same build from files (the
 * thread script written once to the temp folder, named by its hash) with the pool size asked
 * for, and falls back to tfjs' own single-threaded loader if that fails.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { createSimdPool } from './simd/pool';
import { useSimdPoolFactory } from './simd';
import {
  setThreadingState,
  threadingState,
  wasmThreading,
  type WasmThreading,
} from './threading-state';

export { wasmThreading };
export type { WasmThreading };

/** The environment variable that sets the number of wasm threads (1: the single-threaded build). */
export const WASM_THREADS_ENV = 'TFJS_WASM_THREADS';

/** The most threads the build can use: it starts this many workers. */
export const MAX_WASM_THREADS = 8;

const BUILD = 'tfjs-backend-wasm-threaded-simd';

/** The emscripten module of the threaded build, as far as we use it. */
interface ThreadedModule {
  cwrap(name: string, returns: string | null, args: string[]): (...args: number[]) => number;
  PThread: { runningWorkers: WorkerLike[]; unusedWorkers: WorkerLike[] };
  tfjs?: Record<string, unknown>;
}

interface WorkerLike {
  unref(): void;
}

type BackendFactory = () => tf.KernelBackend | Promise<tf.KernelBackend>;

interface WasmPackage {
  BackendWasm: new (module: unknown) => tf.KernelBackend;
  setThreadsCount(n: number): void;
}

/**
 * The number of threads to use: `TFJS_WASM_THREADS` when set (an integer 1–8), else the
 * machine's available parallelism, at most {@link MAX_WASM_THREADS}.
 */
export function requestedWasmThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[WASM_THREADS_ENV];
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
      throw new Error(
        `${WASM_THREADS_ENV}='${raw}' is not a thread count: use an integer from 1 to ` +
          `${MAX_WASM_THREADS} (1 selects the single-threaded build)`,
      );
    }
    return n;
  }
  return Math.max(1, Math.min(MAX_WASM_THREADS, os.availableParallelism()));
}

function threadsSupported(): string | undefined {
  if (typeof SharedArrayBuffer === 'undefined') return 'SharedArrayBuffer is not available';
  const wasmApi = (globalThis as { WebAssembly?: { Memory: new (d: object) => unknown } })
    .WebAssembly;
  if (wasmApi === undefined) return 'WebAssembly is not available';
  try {
    new wasmApi.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return 'shared WebAssembly memory is not supported';
  }
  return undefined;
}

/** The thread script, written once per content to the temp folder; returns its path. */
function threadScript(buildDir: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { wasmWorkerContents } = require(path.join(buildDir, `${BUILD}.worker.js`)) as {
    wasmWorkerContents: string;
  };
  // The script is stored with its line breaks inside strings unescaped (tfjs escapes them the
  // same way before making its blob).
  const source = wasmWorkerContents.replace(/\n/g, '\\n');
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), 'tfjs-antifragile');
  const file = path.join(dir, `wasm-thread-${hash}.js`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true });
    const partial = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(partial, source);
    fs.renameSync(partial, file);
  }
  return file;
}

/** Loads the threaded build with file paths and a pool of `threads`; resolves to the module. */
async function loadThreadedModule(threads: number): Promise<ThreadedModule> {
  const buildDir = path.dirname(
    require.resolve(`@tensorflow/tfjs-backend-wasm/wasm-out/${BUILD}.js`),
  );
  const worker = threadScript(buildDir);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const factory = require(path.join(buildDir, `${BUILD}.js`)) as (
    config: object,
  ) => Promise<ThreadedModule>;
  const config = {
    locateFile: (file: string) =>
      file.endsWith('.worker.js') ? worker : path.join(buildDir, file),
    // The threads load the build's script from this path (tfjs passes a Blob, which Node's
    // workers cannot import).
    mainScriptUrlOrBlob: path.join(buildDir, `${BUILD}.js`),
  };
  // The build caps its pool at half of os.cpus().length, read while it initialises (from the
  // module object itself, whose property we can set, unlike this file's import of it).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeOs = require('os') as { cpus: typeof os.cpus };
  const realCpus = nodeOs.cpus;
  nodeOs.cpus = () => {
    const cpus = realCpus();
    return Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]);
  };
  let module: ThreadedModule;
  try {
    module = await factory(config);
  } finally {
    nodeOs.cpus = realCpus;
  }
  module.tfjs = {
    init: module.cwrap('init', null, []),
    initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
    getThreadsCount: module.cwrap('get_threads_count', 'number', []),
    registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
    disposeData: module.cwrap('dispose_data', null, ['number']),
    dispose: module.cwrap('dispose', null, []),
  };
  return module;
}

/** Lets the process exit while the pool's threads wait for work. */
function unrefWorkers(module: ThreadedModule): void {
  for (const w of [...module.PThread.runningWorkers, ...module.PThread.unusedWorkers]) w.unref();
}

/**
 * Makes tfjs' `wasm` backend load its threaded SIMD build with `threads` threads (default:
 * {@link requestedWasmThreads}) when it initialises. Call it after `@tensorflow/tfjs-backend-wasm`
 * is loaded and before `tf.setBackend('wasm')`; it does nothing once `wasm` has initialised, and
 * with one thread, or where threads are unsupported, the stock single-threaded loader stays.
 * If the threaded build fails to load, the backend falls back to the stock loader and
 * {@link wasmThreading} says why.
 */
export function useThreadedWasm(threads: number = requestedWasmThreads()): WasmThreading {
  if (threadingState() !== undefined) return wasmThreading() as WasmThreading;
  const threading = setThreadingState({ requested: threads });
  useSimdPoolFactory(createSimdPool);
  const engine = tf.engine() as unknown as {
    registryFactory: Record<string, { factory: BackendFactory; priority: number } | undefined>;
    registry: Record<string, tf.KernelBackend | undefined>;
  };
  const registered = engine.registryFactory.wasm;
  if (registered === undefined) throw new Error('@tensorflow/tfjs-backend-wasm is not loaded');
  if (engine.registry.wasm !== undefined) {
    threading.fallbackReason = 'the wasm backend had already initialised';
    return wasmThreading() as WasmThreading;
  }
  const unsupported = threads <= 1 ? 'one thread was asked for' : threadsSupported();
  if (unsupported !== undefined) {
    setThreadingState({ ...threading, threaded: false, threads: 1, fallbackReason: unsupported });
    return wasmThreading() as WasmThreading;
  }
  const stock = registered.factory;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const wasm = require('@tensorflow/tfjs-backend-wasm') as WasmPackage;
  const factory: BackendFactory = async () => {
    const state = threading;
    try {
      const module = await loadThreadedModule(threads);
      wasm.setThreadsCount(threads);
      const backend = new wasm.BackendWasm(module);
      unrefWorkers(module);
      state.threaded = true;
      state.threads = (module.tfjs?.getThreadsCount as () => number)();
      return backend;
    } catch (err) {
      state.threaded = false;
      state.threads = 1;
      state.fallbackReason = `the threaded build failed to load: ${
        err instanceof Error ? err.message : String(err)
      }`;
      return stock();
    }
  };
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory, registered.priority);
  return wasmThreading() as WasmThreading;
}
