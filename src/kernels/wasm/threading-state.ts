/**
 * How the `wasm` backend is threaded: state that {@link useThreadedWasm} (Node only, in
 * `threads.ts`) sets and the kernels read. Browser-safe, so that the kernels need no Node module.
 */

/** How the `wasm` backend was (or will be) loaded. */
export interface WasmThreading {
  /** Threads asked for (`TFJS_WASM_THREADS`, else the machine's parallelism, at most 8). */
  requested: number;
  /** Whether the threaded build is in use (known once the backend has initialised). */
  threaded?: boolean;
  /** Threads XNNPACK uses (known once the backend has initialised). */
  threads?: number;
  /** Why the single-threaded build is used, when it is. */
  fallbackReason?: string;
}

let threading: WasmThreading | undefined;

/** How the `wasm` backend is threaded, if `useThreadedWasm` has run (never in a browser). */
export function wasmThreading(): WasmThreading | undefined {
  return threading && { ...threading };
}

/** The live state object (for `useThreadedWasm`, which fills it in as the backend loads). */
export function threadingState(): WasmThreading | undefined {
  return threading;
}

/** Replaces the state (for `useThreadedWasm`); returns the object now held. */
export function setThreadingState(state: WasmThreading): WasmThreading {
  threading = state;
  return threading;
}
