/**
 * Our kernels for tfjs' `wasm` backend: the gradient kernels it lacks for training convolutional
 * networks, faster versions of nine of its kernels (where the bench's CNN spent its time), and
 * an exact `MaxPoolGrad` and `Sign`. They compose ordinary tf ops (run on wasm, untaped inside a
 * kernel), read the backend's memory (typed views, plain copies) or call SIMD kernels of ours
 * (`simd/kernels.wat`), and rest on tfjs internals (kernel names, attributes, engine semantics)
 * of exactly the version they were written and tested against: {@link registerWasmKernels}
 * refuses any other.
 */
import * as tf from '@tensorflow/tfjs';
import { ADAM_KERNEL, adamStep, registerWasmAdam } from './adam';
import { makeAdd } from './add';
import { makeSmallBroadcast } from './broadcast';
import { makeBatchMatMul } from './batch-mat-mul';
import { makeCast } from './cast';
import { makeDirectConv } from './conv-forward';
import {
  conv2DBackpropFilter,
  conv2DBackpropInput,
  depthwiseConv2dNativeBackpropFilter,
  depthwiseConv2dNativeBackpropInput,
} from './conv-gradients';
import type { KernelArgs } from './kernel-io';
import { makeGatherV2 } from './gather';
import { makeIdentity } from './identity';
import { makeMaxPool } from './max-pool';
import { maxPoolGrad } from './max-pool-grad';
import { RELU_GRAD_KERNEL, registerReluGradient } from '../gradients/relu';
import { reluGrad } from './relu-grad';
import { makeSign } from './sign';
import { makeSlice } from './slice';
import { makeSum } from './sum';
import { makeTile } from './tile';

/** The tfjs version our wasm kernels were written against and are tested with. */
export const WASM_KERNELS_TFJS_VERSION = '4.22.0';

/** How a kernel of ours relates to the wasm backend's own. */
export type WasmKernelRole =
  /** wasm has no such kernel; training a network that needs it fails without ours. */
  | 'added'
  /** wasm's kernel is slow on our shapes; ours is faster and agrees with `cpu`. */
  | 'faster'
  /** wasm's kernel gives different results from `cpu`; ours is exact. */
  | 'corrected';

/** One kernel that {@link registerWasmKernels} registers for `wasm`. */
export interface WasmKernelInfo {
  /** The tfjs kernel name. */
  kernelName: string;
  /** Added, faster or corrected (see {@link WasmKernelRole}). */
  role: WasmKernelRole;
  /** What it does differently, in one line. */
  note: string;
}

/** The kernels {@link registerWasmKernels} registers, with why. */
export const WASM_KERNELS: readonly WasmKernelInfo[] = [
  {
    kernelName: 'Conv2DBackpropFilter',
    role: 'added',
    note:
      'up to 4 input channels: a SIMD kernel of ours (output channels a multiple of 8) or one ' +
      "product of the input's patches with dy; otherwise one convolution of the input " +
      '(batch↔channels) with dy as a strided-dilated filter',
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropFilter',
    role: 'added',
    note: 'one depthwise convolution over batch·channels, summed over the batch',
  },
  {
    kernelName: 'DepthwiseConv2dNativeBackpropInput',
    role: 'added',
    note: 'depthwise convolution of the stride-spread dy with the flipped filter',
  },
  {
    kernelName: 'Conv2DBackpropInput',
    role: 'faster',
    note:
      'XNNPACK convolution of the stride-spread dy with the flipped filter (wasm: plain loops); ' +
      'depthwise per input channel for ≤ 2 of them',
  },
  {
    kernelName: 'Conv2D',
    role: 'faster',
    note:
      'up to 4 input channels (a first layer), output channels a multiple of 8: a SIMD kernel ' +
      "of ours on every thread (XNNPACK's product is 9–36 deep there)",
  },
  {
    kernelName: 'FusedConv2D',
    role: 'faster',
    note: 'as Conv2D, with the bias and ReLU applied as the output is written',
  },
  {
    kernelName: 'BatchMatMul',
    role: 'faster',
    note: 'transposes materialised, batches folded or looped onto the XNNPACK path',
  },
  {
    kernelName: 'Tile',
    role: 'faster',
    note: 'one broadcasting multiplication by ones (exact)',
  },
  {
    kernelName: 'Sum',
    role: 'faster',
    note:
      'sums over leading axes (bias gradients) or a short last axis by SIMD kernels of ours; ' +
      'other leading-axis sums as an average pooling (wasm: transpose, loop)',
  },
  {
    kernelName: 'Add',
    role: 'faster',
    note:
      'a narrow bias tiled and x viewed as wider rows, for the same kernel (wasm: row by row); ' +
      'small broadcasts as one loop, like Sub',
  },
  ...['Sub', 'Multiply', 'RealDiv'].map((kernelName) => ({
    kernelName,
    role: 'faster' as const,
    note: 'small float32 broadcasts (≤ 16,384 values) as one loop (wasm: ~50 ns a value)',
  })),
  {
    kernelName: 'Cast',
    role: 'faster',
    note: 'a cast to the same dtype shares the input data (wasm: a copy)',
  },
  {
    kernelName: 'Identity',
    role: 'faster',
    note: 'shares the input data, as cpu does (wasm: a copy)',
  },
  {
    kernelName: 'GatherV2',
    role: 'faster',
    note: 'one block copy per gathered slice (wasm: value by value)',
  },
  {
    kernelName: 'Slice',
    role: 'faster',
    note: 'contiguous blocks, whole trailing axes merged (wasm: one innermost row at a time)',
  },
  {
    kernelName: 'Sign',
    role: 'corrected',
    note:
      'float32 signs as cpu (wasm: 0 for every |x| below ~1e-6, which erases small FGSM ' +
      'gradients; and ~5 ns a value)',
  },
  {
    kernelName: RELU_GRAD_KERNEL,
    role: 'faster',
    note:
      "ReLU's gradient in one pass (a SIMD kernel of ours; tfjs: Step, Cast, Multiply), which " +
      "Relu's gradient calls on wasm (registerReluGradient)",
  },
  {
    kernelName: 'MaxPoolGrad',
    role: 'corrected',
    note:
      'routes to the first maximum of each window, also when all values are ≤ 0 (as cpu); ' +
      '2×2 windows at stride 2 by a SIMD kernel of ours',
  },
  {
    kernelName: 'MaxPool',
    role: 'corrected',
    note:
      "2×2 windows at stride 2 by a SIMD kernel of ours, with cpu's values (NaN never wins a " +
      'window; wasm lets it through), large inputs shared over the threads (memory-bound)',
  },
  {
    kernelName: ADAM_KERNEL,
    role: 'faster',
    note:
      'one Adam step of a variable in one pass (a SIMD kernel of ours; tfjs: ~14 ops), which ' +
      "tfjs' AdamOptimizer calls on wasm (registerWasmAdam); the same float32 operations",
  },
];

/** Thrown when the loaded tfjs is not the version our wasm kernels were written against. */
export class TfjsVersionError extends Error {
  constructor(found: string) {
    super(
      `tfjs-antifragile's wasm kernels were written against tfjs ${WASM_KERNELS_TFJS_VERSION}, ` +
        `but ${found} is loaded. They rely on tfjs internals that change between versions: ` +
        `install exactly @tensorflow/tfjs@${WASM_KERNELS_TFJS_VERSION} and ` +
        `@tensorflow/tfjs-backend-wasm@${WASM_KERNELS_TFJS_VERSION}, or use another backend.`,
    );
    this.name = 'TfjsVersionError';
  }
}

/**
 * The versions of the loaded tfjs packages that matter to us, e.g. `{ 'tfjs-core': '4.22.0' }`.
 * `wasmVersion`: the wasm backend's `version_wasm` when the caller has the package at hand (a
 * browser build, where it comes from the page); otherwise it is required here (Node).
 */
function loadedVersions(wasmVersion?: string): Record<string, string> {
  if (wasmVersion === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const wasm = require('@tensorflow/tfjs-backend-wasm') as { version_wasm?: string };
    wasmVersion = wasm.version_wasm;
  }
  return {
    'tfjs-core': tf.version_core,
    tfjs: tf.version.tfjs,
    'tfjs-backend-wasm': wasmVersion ?? 'unknown',
  };
}

/**
 * Throws a {@link TfjsVersionError} unless every given package version is exactly
 * {@link WASM_KERNELS_TFJS_VERSION}.
 */
export function checkTfjsVersion(versions: Record<string, string> = loadedVersions()): void {
  const wrong = Object.entries(versions).filter(([, v]) => v !== WASM_KERNELS_TFJS_VERSION);
  if (wrong.length > 0) {
    throw new TfjsVersionError(wrong.map(([name, v]) => `${name} ${v}`).join(', '));
  }
}

type KernelFn = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** Our kernel functions, built once (replacements wrap the original they fall back to). */
let ours: Map<string, tf.KernelFunc> | undefined;

function build(): Map<string, tf.KernelFunc> {
  const original = (name: string) => tf.getKernel(name, 'wasm');
  const plain = (fn: KernelFn) => fn as unknown as tf.KernelFunc;
  const required = (name: string) => {
    const kernel = original(name);
    if (kernel === undefined) throw new Error(`the wasm backend has no ${name} kernel`);
    return kernel.kernelFunc;
  };
  return new Map<string, tf.KernelFunc>([
    ['Conv2DBackpropFilter', plain(conv2DBackpropFilter)],
    ['DepthwiseConv2dNativeBackpropFilter', plain(depthwiseConv2dNativeBackpropFilter)],
    ['DepthwiseConv2dNativeBackpropInput', plain(depthwiseConv2dNativeBackpropInput)],
    ['Conv2DBackpropInput', plain(conv2DBackpropInput)],
    ['Conv2D', makeDirectConv(required('Conv2D'))],
    ['FusedConv2D', makeDirectConv(required('FusedConv2D'))],
    ['BatchMatMul', makeBatchMatMul(required('BatchMatMul'))],
    ['Sum', makeSum(required('Sum'))],
    ['Add', makeAdd(makeSmallBroadcast(required('Add'), 'add'))],
    ['Sub', makeSmallBroadcast(required('Sub'), 'sub')],
    ['Multiply', makeSmallBroadcast(required('Multiply'), 'mul')],
    ['RealDiv', makeSmallBroadcast(required('RealDiv'), 'div')],
    ['Cast', makeCast(required('Cast'))],
    ['Identity', makeIdentity(original('Identity')?.kernelFunc)],
    ['GatherV2', makeGatherV2(required('GatherV2'))],
    ['Slice', makeSlice(required('Slice'))],
    ['Sign', makeSign(required('Sign'))],
    [RELU_GRAD_KERNEL, plain(reluGrad)],
    ['Tile', makeTile(original('Tile')?.kernelFunc)],
    ['MaxPoolGrad', plain(maxPoolGrad)],
    ['MaxPool', makeMaxPool(required('MaxPool'))],
    [ADAM_KERNEL, plain(adamStep)],
  ]);
}

/**
 * Registers our kernels for tfjs' `wasm` backend (see {@link WASM_KERNELS}), replacing wasm's own
 * where ours are faster or exact, and routes `Relu`'s gradient and tfjs' Adam updates through
 * ours on wasm (see {@link registerReluGradient}, {@link registerWasmAdam}). Idempotent; call it after `@tensorflow/tfjs-backend-wasm` is
 * loaded and before or after `tf.setBackend('wasm')`. Throws a {@link TfjsVersionError} when the
 * loaded tfjs is not exactly {@link WASM_KERNELS_TFJS_VERSION}. `wasmVersion`: the loaded
 * `@tensorflow/tfjs-backend-wasm`'s `version_wasm`, for a browser build that has the package from
 * the page (default: the package as Node's `require` finds it).
 */
export function registerWasmKernels(wasmVersion?: string): void {
  checkTfjsVersion(loadedVersions(wasmVersion));
  ours ??= build();
  registerReluGradient();
  registerWasmAdam();
  for (const [kernelName, kernelFunc] of ours) {
    const existing = tf.getKernel(kernelName, 'wasm');
    if (existing?.kernelFunc === kernelFunc) continue;
    if (existing !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    // The original's setup (binding its wasm function) must still run when the backend
    // initialises after this call, since a replacement may call the original.
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc,
      setupFunc: existing?.setupFunc,
    });
  }
}

/** True when every kernel of {@link WASM_KERNELS} is ours in the registry now. */
export function wasmKernelsRegistered(): boolean {
  return (
    ours !== undefined &&
    [...ours].every(([name, fn]) => tf.getKernel(name, 'wasm')?.kernelFunc === fn)
  );
}
