/**
 * Our SIMD wasm kernels (kernels.wat), instantiated on the memory of tfjs' wasm backend so that
 * they read and write tensors in place. One instance per backend memory; the module importing a
 * shared memory serves the threaded build, the other the single-threaded one.
 */
import { base64Bytes } from '../../../util/base64';
import { wasmThreading } from '../threading-state';
import { KERNELS_PLAIN_MEMORY, KERNELS_SHARED_MEMORY } from './binary';
import { evenRanges, type SimdPool } from './pool-ranges';

/** The functions of kernels.wat; pointers are byte offsets in the backend's memory. */
export interface SimdKernels {
  /**
   * See kernels.wat: the filter gradient over the blocks `[b0, b1)` (6 rows × 8 output channels
   * each, by `filterGrad6`) of the zeroed `[⌈rows/6⌉·6, outC]` gradient at `dw`, images `group`
   * at a time; disjoint block ranges may run on several threads at once.
   */
  filterGradBlocks(
    x: number,
    dy: number,
    dw: number,
    batch: number,
    hp: number,
    wp: number,
    ci: number,
    oh: number,
    ow: number,
    outC: number,
    sH: number,
    sW: number,
    kw: number,
    rows: number,
    group: number,
    b0: number,
    b1: number,
  ): void;
  /**
   * See kernels.wat: a convolution's output rows `[r0, r1)` (of `batch · oh`) from a padded NHWC
   * input with few channels, output channels a multiple of 8, plus `bias` (0: none), then ReLU
   * when `relu` is 1; disjoint row ranges may run on several threads at once.
   */
  convForward(
    x: number,
    w: number,
    bias: number,
    out: number,
    hp: number,
    wp: number,
    ci: number,
    oh: number,
    ow: number,
    outC: number,
    sH: number,
    sW: number,
    kh: number,
    kw: number,
    relu: number,
    r0: number,
    r1: number,
  ): void;
  /**
   * See kernels.wat: a stride-1 convolution's input gradient for few input channels (`ci`),
   * rows `[r0, r1)` of the batch's `n · h` rows of `dx`; output channels a multiple of 4.
   */
  inputGradFew(
    dy: number,
    w: number,
    dx: number,
    h: number,
    wd: number,
    oh: number,
    ow: number,
    ci: number,
    outC: number,
    kh: number,
    kw: number,
    padT: number,
    padL: number,
    r0: number,
    r1: number,
  ): void;
  /**
   * See kernels.wat: MaxPool of 2×2 windows at stride 2 inside the input, channels a multiple of
   * 4, as cpu computes it (NaN never wins); output rows `[r0, r1)` of the batch's `n · outH`.
   */
  maxPool2x2(
    x: number,
    out: number,
    inH: number,
    inW: number,
    c: number,
    outH: number,
    outW: number,
    r0: number,
    r1: number,
  ): void;
  /** See kernels.wat `sign`: float32 signs as tfjs' cpu computes them, values `[first, end)`. */
  signRange(x: number, out: number, first: number, end: number): void;
  /** See kernels.wat `reluGrad`: ReLU's gradient `dy · step(x)` in one pass, values `[first, end)`. */
  reluGradRange(x: number, dy: number, out: number, first: number, end: number): void;
  /**
   * See kernels.wat `maxPoolGrad2x2`: exact first-maximum routing, 2×2 windows at stride 2,
   * channels % 4 = 0, over images `[first, end)`.
   */
  maxPoolGrad2x2Range(
    x: number,
    dy: number,
    dx: number,
    inH: number,
    inW: number,
    channels: number,
    outH: number,
    outW: number,
    first: number,
    end: number,
  ): void;
  /**
   * See kernels.wat: the patches of a padded NHWC input (channels a multiple of 4) as rows
   * `[(i·kw + j)·ci + c][position]`, for the output positions of images `[n0, n1)`; `scratch`:
   * 64 int32 of working space.
   */
  patchRows4(
    x: number,
    cols: number,
    n0: number,
    n1: number,
    hp: number,
    wp: number,
    ci: number,
    oh: number,
    ow: number,
    sH: number,
    sW: number,
    kh: number,
    kw: number,
    scratch: number,
  ): void;
  /** See kernels.wat: `out[r] = Σ_c x[r][c]`, rows of `width` values (a multiple of 4). */
  rowSum(x: number, out: number, rows: number, width: number): void;
  /** See kernels.wat: `out[c] = Σ_r x[r][c]`, rows of `width` values (a multiple of 4). */
  columnSum(x: number, out: number, rows: number, width: number): void;
  /**
   * See kernels.wat: one Adam step over `n` float32 values, exactly as tfjs' `AdamOptimizer`
   * computes it; `a1`, `a2` are `1 − β1ᵗ`, `1 − β2ᵗ`, `c1`, `c2` are `1 − β1`, `1 − β2`.
   */
  adam(
    w: number,
    m: number,
    v: number,
    g: number,
    w1: number,
    m1: number,
    v1: number,
    n: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    a1: number,
    a2: number,
    eps: number,
    negLr: number,
  ): void;
}

/**
 * Whether our kernels call the SIMD functions (else their JS paths), and whether they may share
 * their work out to a {@link SimdPool} on the threaded build; settable for tests.
 */
export const simdSettings = {
  enabled: true,
  pooled: true,
  /**
   * Memory-bound kernels share out at least this many values per thread: below, the data sits in
   * cache, one thread reads it about as fast, and waking another costs tens of microseconds.
   */
  minValuesPerThread: 1 << 20,
};

/**
 * The exports a {@link SimdPool} runs: kernels whose work splits into disjoint parts, each
 * taking the part's range `[first, end)` as its last two arguments.
 */
const POOLED_EXPORTS = [
  'filterGradBlocks',
  'convForward',
  'inputGradFew',
  'maxPool2x2',
  'maxPoolGrad2x2Range',
  'reluGradRange',
  'signRange',
] as const;

/** A kernel {@link runShared} shares out. */
export type PooledExport = (typeof POOLED_EXPORTS)[number];

interface WasmMemory {
  buffer: ArrayBufferLike;
}

interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

/** The emscripten module of tfjs' wasm backend, as far as we use it. */
interface EmscriptenModule {
  /** The threaded build's memory. */
  wasmMemory?: WasmMemory;
  /** The single-threaded build's exports, its memory among them. */
  asm?: { memory?: WasmMemory };
}

/** Makes a {@link SimdPool} (Node's worker threads: set by `useThreadedWasm`, never in a browser). */
export type SimdPoolFactory = (
  module: object,
  memory: object,
  local: Record<string, (...args: number[]) => void>,
  names: readonly string[],
  threads: number,
) => SimdPool;

let poolFactory: SimdPoolFactory | undefined;

/**
 * Sets how pools of threads are made for our kernels. `useThreadedWasm` passes Node's
 * worker-thread pool; without one (in a browser) our kernels run on the calling thread.
 */
export function useSimdPoolFactory(factory: SimdPoolFactory): void {
  poolFactory = factory;
}

const compiled = new Map<boolean, object>();
const instances = new WeakMap<WasmMemory, SimdKernels>();
/** Per shared memory: its pool, or why there is none (one thread; workers failed to start). */
const pools = new WeakMap<WasmMemory, SimdPool | string>();

function memoryOf(backend: unknown): WasmMemory | undefined {
  const module = (backend as { wasm?: EmscriptenModule } | null)?.wasm;
  return module?.wasmMemory ?? module?.asm?.memory;
}

/**
 * The SIMD kernels bound to `backend`'s memory, or undefined when they are switched off or
 * `backend` is not tfjs' wasm backend.
 */
export function simdKernels(backend: unknown): SimdKernels | undefined {
  if (!simdSettings.enabled) return undefined;
  const memory = memoryOf(backend);
  if (memory === undefined) return undefined;
  let kernels = instances.get(memory);
  if (kernels === undefined) {
    const api = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const shared =
      typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    let module = compiled.get(shared);
    if (module === undefined) {
      const bytes = base64Bytes(shared ? KERNELS_SHARED_MEMORY : KERNELS_PLAIN_MEMORY);
      module = new api.Module(bytes);
      compiled.set(shared, module);
    }
    kernels = new api.Instance(module, { env: { memory } }).exports as SimdKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}

/**
 * The pool of threads that runs our kernels on `backend`'s memory, one per thread XNNPACK uses
 * (see {@link SimdPool}); undefined on the single-threaded build, with one thread, when pooling
 * is switched off, or when its workers could not start (then our kernels run on one thread).
 */
export function simdPool(backend: unknown): SimdPool | undefined {
  const kernels = simdKernels(backend);
  const memory = memoryOf(backend);
  if (!simdSettings.pooled || kernels === undefined || memory === undefined) return undefined;
  let pool = pools.get(memory);
  if (pool === undefined) {
    const threads = wasmThreading()?.threads ?? 1;
    const shared =
      typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
    if (!shared || threads < 2) pool = 'one thread';
    else if (poolFactory === undefined) pool = 'no thread pool in this environment';
    else {
      try {
        const module = compiled.get(true) as object;
        const local = kernels as unknown as Record<string, (...args: number[]) => void>;
        pool = poolFactory(module, memory, local, POOLED_EXPORTS, threads);
      } catch (err) {
        pool = err instanceof Error ? err.message : String(err);
      }
    }
    pools.set(memory, pool);
  }
  return typeof pool === 'string' ? undefined : pool;
}

/**
 * Whether our kernels run on as many threads as XNNPACK's on `backend`: on the single-threaded
 * build, or with the {@link SimdPool} up. Kernels of ours that compete with XNNPACK's threaded
 * ones take over only then.
 */
export function simdOnEveryThread(backend: unknown): boolean {
  return (wasmThreading()?.threads ?? 1) === 1 || simdPool(backend) !== undefined;
}

/**
 * Runs the kernel `name` over the parts `[0, total)` (rows, blocks, values) with the arguments
 * `fixed` followed by a range: split evenly over the {@link SimdPool}'s threads when there is one
 * and each thread gets at least `minShare` parts (waking a thread costs microseconds), else in
 * one call on this thread.
 */
export function runShared(
  backend: unknown,
  simd: SimdKernels,
  name: PooledExport,
  fixed: number[],
  total: number,
  minShare = 1,
): void {
  const pool = simdPool(backend);
  if (pool === undefined || total < 2 * minShare) {
    (simd[name] as (...args: number[]) => void)(...fixed, 0, total);
    return;
  }
  const threads = Math.min(pool.threads, Math.floor(total / minShare));
  pool.run(
    name,
    evenRanges(total, threads).map((range) => [...fixed, ...range]),
  );
}
