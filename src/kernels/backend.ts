import * as tf from '@tensorflow/tfjs';
import { registerWasmKernels } from './wasm';
import { useThreadedWasm, wasmThreading } from './wasm/threads';
import { registerFastTensorflowKernels } from './native/fast-kernels';
import { registerLeanGradients } from './gradients/batch-norm';
import { assertOneTfjs } from '../util/tfjs-copies';

/** The backends we know how to set up, best first. */
export type BackendId = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

/** What {@link initBackend} chose, and why. */
export interface BackendChoice {
  /** Our id of the backend. */
  id: BackendId;
  /** The name tfjs knows it by (`tf.getBackend()`). */
  tfjsName: string;
  /** The npm package that provides it. */
  package: string;
  /** Why this one was chosen (first available, or the `TFJS_BACKEND` override). */
  reason: string;
  /** For `wasm`: the threads its matrix products and convolutions run on. */
  threads?: number;
}

interface Candidate {
  id: BackendId;
  tfjsName: string;
  package: string;
  /** Loads the package (registering the backend); throws when it is not usable here. */
  load(): void;
}

const BACKEND_ENV = 'TFJS_BACKEND';

function gpuVisible(): boolean {
  // The NVIDIA driver exposes this file when a GPU is usable by CUDA.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require('fs') as typeof import('fs');
  return fs.existsSync('/proc/driver/nvidia/version');
}

function quietTensorFlowLogs(): void {
  // TensorFlow's C++ banner lines (CPU features, oneDNN) are noise for our users.
  if (process.env.TF_CPP_MIN_LOG_LEVEL === undefined) process.env.TF_CPP_MIN_LOG_LEVEL = '2';
}

const CANDIDATES: Candidate[] = [
  {
    id: 'tensorflow-gpu',
    tfjsName: 'tensorflow',
    package: '@tensorflow/tfjs-node-gpu',
    load() {
      if (!gpuVisible()) throw new Error('no NVIDIA GPU is visible');
      quietTensorFlowLogs();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-node-gpu');
    },
  },
  {
    id: 'tensorflow',
    tfjsName: 'tensorflow',
    package: '@tensorflow/tfjs-node',
    load() {
      quietTensorFlowLogs();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-node');
    },
  },
  {
    id: 'wasm',
    tfjsName: 'wasm',
    package: '@tensorflow/tfjs-backend-wasm',
    load() {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@tensorflow/tfjs-backend-wasm');
      // The threaded SIMD build, loaded so that it works in Node (TFJS_WASM_THREADS sets the count).
      useThreadedWasm();
      // Gradient kernels wasm lacks for training, faster ones, and an exact MaxPoolGrad;
      // throws TfjsVersionError unless tfjs is exactly the version they were written for.
      registerWasmKernels();
    },
  },
  {
    id: 'cpu',
    tfjsName: 'cpu',
    package: '@tensorflow/tfjs-backend-cpu',
    load() {
      /* bundled with @tensorflow/tfjs */
    },
  },
];

let current: BackendChoice | undefined;

/** The backend chosen by {@link initBackend}, if it has run. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}

/** Options of {@link initBackend}. */
export interface InitBackendOptions {
  /** Backend to use; default: the `TFJS_BACKEND` environment variable, else the best available. */
  backend?: BackendId;
  /** Where the one-line report goes; default `console.log`. Pass `() => {}` to silence it. */
  log?: (message: string) => void;
}

async function activate(candidate: Candidate): Promise<void> {
  candidate.load();
  const ok = await tf.setBackend(candidate.tfjsName);
  if (!ok) throw new Error(`tf.setBackend('${candidate.tfjsName}') failed`);
  await tf.ready();
  registerLeanGradients();
  if (candidate.tfjsName === 'tensorflow') registerFastTensorflowKernels();
}

function describeChoice(choice: BackendChoice): string {
  const { id, tfjsName, package: pkg, reason, threads } = choice;
  let threading = '';
  if (threads !== undefined) {
    const why = wasmThreading()?.fallbackReason;
    threading = `; ${threads} thread${threads === 1 ? '' : 's'}${why ? ` (${why})` : ''}`;
  }
  return `${id} (tfjs '${tfjsName}' from ${pkg}; ${reason}${threading})`;
}

function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0];
}

/**
 * Chooses and activates the fastest available tfjs backend, once per process:
 * `@tensorflow/tfjs-node-gpu` when installed and a GPU is visible, else `@tensorflow/tfjs-node`
 * (TensorFlow's native library), else `wasm`, else the pure-JS `cpu`. The environment variable
 * `TFJS_BACKEND` (one of `tensorflow-gpu`, `tensorflow`, `wasm`, `cpu`) overrides the choice, and
 * then a backend that cannot be loaded is an error rather than a fallback. Two copies of tfjs
 * loaded in the process (your code's and another one that tfjs-antifragile resolved) are a
 * `TfjsCopiesError`, checked before and after loading the backend's package.
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendChoice> {
  assertOneTfjs('initBackend');
  const requested = options.backend ?? (process.env[BACKEND_ENV] as BackendId | undefined);
  if (current && (requested === undefined || requested === current.id)) {
    // Someone may have switched backends since (tf.setBackend): switch back to ours.
    if (tf.getBackend() !== current.tfjsName) await tf.setBackend(current.tfjsName);
    return current;
  }
  const log = options.log ?? ((m: string) => console.log(m));

  if (requested !== undefined && requested !== ('' as BackendId)) {
    const candidate = CANDIDATES.find((c) => c.id === requested);
    if (!candidate) {
      throw new Error(
        `${BACKEND_ENV}/backend='${requested}' is not a backend we know; ` +
          `use one of ${CANDIDATES.map((c) => c.id).join(', ')}`,
      );
    }
    try {
      await activate(candidate);
    } catch (err) {
      throw new Error(
        `backend '${requested}' was requested but cannot be used: ${describeError(err)}` +
          (candidate.package.includes('tfjs-node')
            ? ' (is the package installed and `npm run setup` done?)'
            : ''),
      );
    }
    current = {
      id: candidate.id,
      tfjsName: candidate.tfjsName,
      package: candidate.package,
      reason: `requested (${BACKEND_ENV} or option)`,
    };
  } else {
    const skipped: string[] = [];
    for (const candidate of CANDIDATES) {
      try {
        await activate(candidate);
        current = {
          id: candidate.id,
          tfjsName: candidate.tfjsName,
          package: candidate.package,
          reason: skipped.length
            ? `best available; skipped ${skipped.join('; ')}`
            : 'best available',
        };
        break;
      } catch (err) {
        skipped.push(`${candidate.id}: ${describeError(err)}`);
      }
    }
    if (!current) throw new Error(`no tfjs backend could be initialised: ${skipped.join('; ')}`);
  }
  assertOneTfjs(`initBackend (after loading ${current.package})`);
  if (current.id === 'wasm') current.threads = wasmThreading()?.threads ?? 1;
  log(`[tfjs-antifragile] backend: ${describeChoice(current)}`);
  return { ...current };
}
