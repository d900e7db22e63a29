/**
 * Worker threads that run our SIMD kernels (kernels.wat) on the shared memory of tfjs' threaded
 * wasm build, so that one of our kernels can use every core as XNNPACK's do. Each worker
 * instantiates the same module on the same memory and waits on a slot of a shared control
 * array; {@link SimdPool.run} hands each thread its arguments, runs the first share on the
 * calling thread and returns when every share is done. Workers are unref'd: they never keep a
 * script alive.
 */
import { Worker } from 'worker_threads';
import type { SimdPool } from './pool-ranges';

export { evenRanges, type SimdPool } from './pool-ranges';

/** Int32 cells per worker slot: state, argument count, then the arguments. */
const SLOT = 32;
const MAX_ARGS = SLOT - 2;
/** A slot's state while its worker starts (then 0: idle; > 0: a call; < 0: stop). */
const STARTING = -2;
const START_TIMEOUT_MS = 10_000;

/** The worker's program: instantiate, then serve calls from its slot until told to stop. */
const WORKER_SOURCE = `
const { workerData } = require('worker_threads');
const { module, memory, control, slot, names } = workerData;
const exports_ = new WebAssembly.Instance(module, { env: { memory } }).exports;
const ctl = new Int32Array(control);
Atomics.store(ctl, slot, 0); // ready
Atomics.notify(ctl, slot);
for (;;) {
  Atomics.wait(ctl, slot, 0);
  const call = Atomics.load(ctl, slot);
  if (call < 0) break;
  const argc = ctl[slot + 1];
  const args = [];
  for (let i = 0; i < argc; i++) args.push(ctl[slot + 2 + i]);
  let status = 0;
  try {
    exports_[names[call - 1]](...args);
  } catch (err) {
    status = -1;
  }
  ctl[slot + 1] = status;
  Atomics.store(ctl, slot, 0);
  Atomics.notify(ctl, slot);
}
`;

interface PoolState extends SimdPool {
  workers: Worker[];
}

/**
 * A pool of `threads − 1` workers running `module` (our kernels, shared-memory variant) on
 * `memory`, calling `local` (the instance on this thread) for the caller's share. The exports
 * a pool can run are `names`.
 */
export function createSimdPool(
  module: object,
  memory: object,
  local: Record<string, (...args: number[]) => void>,
  names: readonly string[],
  threads: number,
): SimdPool {
  const control = new SharedArrayBuffer(threads * SLOT * 4);
  const ctl = new Int32Array(control);
  const workers: Worker[] = [];
  for (let w = 1; w < threads; w++) {
    ctl[w * SLOT] = STARTING;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, memory, control, slot: w * SLOT, names: [...names] },
    });
    worker.unref();
    workers.push(worker);
  }
  // A worker that never starts would leave run() waiting for ever: wait for all, once, here.
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (let w = 1; w < threads; w++) {
    const slot = w * SLOT;
    while (Atomics.load(ctl, slot) === STARTING && Date.now() < deadline) {
      Atomics.wait(ctl, slot, STARTING, Math.max(1, deadline - Date.now()));
    }
    if (Atomics.load(ctl, slot) === STARTING) {
      for (const worker of workers) void worker.terminate();
      throw new Error(`a SIMD pool thread did not start within ${START_TIMEOUT_MS} ms`);
    }
  }
  const state: PoolState = {
    threads,
    workers,
    run(name, shares) {
      const call = names.indexOf(name) + 1;
      if (call === 0) throw new Error(`the SIMD pool cannot run '${name}'`);
      if (shares.length > threads)
        throw new Error(`${shares.length} shares for ${threads} threads`);
      for (let w = 1; w < shares.length; w++) {
        const args = shares[w];
        if (args.length > MAX_ARGS) throw new Error(`'${name}': more than ${MAX_ARGS} arguments`);
        const slot = w * SLOT;
        ctl[slot + 1] = args.length;
        ctl.set(args, slot + 2);
        Atomics.store(ctl, slot, call);
        Atomics.notify(ctl, slot);
      }
      let failed = false;
      try {
        if (shares.length > 0) local[name](...shares[0]);
      } finally {
        for (let w = 1; w < shares.length; w++) {
          const slot = w * SLOT;
          while (Atomics.load(ctl, slot) !== 0) Atomics.wait(ctl, slot, call);
          if (ctl[slot + 1] !== 0) failed = true;
        }
      }
      if (failed) throw new Error(`'${name}' failed on a SIMD pool thread`);
    },
  };
  return state;
}
