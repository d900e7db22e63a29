/**
 * Backend selection in a browser: `webgl`, `wasm` with our training kernels (single-threaded:
 * the Node thread pool and threaded loader stay out) or `cpu`. tfjs and its wasm backend come
 * from the page; nothing here needs a Node module.
 */
import * as tf from '@tensorflow/tfjs';
import * as tfWasm from '@tensorflow/tfjs-backend-wasm';
import { registerWasmKernels } from './wasm';
import { assertOneTfjs } from '../util/tfjs-copies';

/** The backends a page can ask for, in the order {@link initBrowserBackend} tries them. */
export const BROWSER_BACKENDS = ['webgl', 'wasm', 'cpu'] as const;

/** One of {@link BROWSER_BACKENDS}. */
export type BrowserBackendId = (typeof BROWSER_BACKENDS)[number];

/** What {@link initBrowserBackend} chose, and why. */
export interface BrowserBackendChoice {
  /** The tfjs backend name (`tf.getBackend()`). */
  id: BrowserBackendId;
  /** Requested, or the best that initialised (with what was skipped and why). */
  reason: string;
}

/** Options of {@link initBrowserBackend}. */
export interface BrowserBackendOptions {
  /** Backend to use; default: the first of {@link BROWSER_BACKENDS} that initialises. */
  backend?: BrowserBackendId;
  /**
   * Where the wasm backend's `.wasm` files are served (a URL prefix ending in `/`), passed to
   * `setWasmPaths`; default: tfjs' own (next to its script).
   */
  wasmPaths?: string;
}

interface WasmPackage {
  setWasmPaths?: (prefix: string) => void;
  version_wasm?: string;
}

async function activate(id: BrowserBackendId, options: BrowserBackendOptions): Promise<void> {
  if (id === 'wasm') {
    const wasm = tfWasm as WasmPackage;
    if (typeof wasm.setWasmPaths !== 'function' || tf.findBackendFactory('wasm') === null) {
      throw new Error(
        "@tensorflow/tfjs-backend-wasm is not loaded: load its script (tf-backend-wasm.js) after tfjs'",
      );
    }
    if (options.wasmPaths !== undefined) wasm.setWasmPaths(options.wasmPaths);
    registerWasmKernels(wasm.version_wasm ?? 'unknown');
  }
  if (!(await tf.setBackend(id))) throw new Error(`tf.setBackend('${id}') failed`);
  await tf.ready();
}

/**
 * Chooses and activates a tfjs backend in a browser: the one asked for (an error when it cannot
 * be used), else the first of `webgl`, `wasm` (with our kernels, see `registerWasmKernels`) and
 * `cpu` that initialises.
 */
export async function initBrowserBackend(
  options: BrowserBackendOptions = {},
): Promise<BrowserBackendChoice> {
  assertOneTfjs('initBrowserBackend');
  const { backend } = options;
  if (backend !== undefined) {
    if (!BROWSER_BACKENDS.includes(backend)) {
      throw new Error(
        `backend '${String(backend)}' is not a browser backend: use one of ${BROWSER_BACKENDS.join(', ')}`,
      );
    }
    try {
      await activate(backend, options);
    } catch (err) {
      throw new Error(`backend '${backend}' was requested but cannot be used: ${message(err)}`);
    }
    return { id: backend, reason: 'requested' };
  }
  const skipped: string[] = [];
  for (const id of BROWSER_BACKENDS) {
    try {
      await activate(id, options);
      const reason = skipped.length
        ? `best available; skipped ${skipped.join('; ')}`
        : 'best available';
      return { id, reason };
    } catch (err) {
      skipped.push(`${id}: ${message(err)}`);
    }
  }
  throw new Error(`no tfjs backend could be initialised: ${skipped.join('; ')}`);
}

function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
