import * as tf from '@tensorflow/tfjs';
import { overrideKernel, restoreKernel } from './kernel-override';
import type { NativeBackend } from './native-backend';
import { ourOpsAvailable } from './our-ops';

/**
 * The input gradient of a convolution whose input has few channels (a network's stem on
 * grayscale or RGB images) as TensorFlow's own CPU kernel instead of oneDNN's.
 *
 * TensorFlow's x86 build hands `Conv2DBackpropInput` to oneDNN, whose kernel is slow when the
 * gradient has one to a few channels: measured on this project's machine, 30.7 µs per example
 * against 16.1 for the small CNN's first layer (`[26, 26, 16]` → `[28, 28, 1]`), 30.8 against 17.1
 * for ResNet-18's 7×7 stride-2 stem. TensorFlow only sends `EXPLICIT` padding to its own kernel,
 * so this kernel states the padding `same`/`valid` means as explicit amounts (the same
 * computation). With 16 input channels oneDNN is the faster (18.3 against 33.0 µs), so wider
 * inputs keep tfjs-node's kernel. The values equal oneDNN's to float32 rounding (another
 * summation order); every caller on this backend gets the same kernel.
 */

type KernelArgs = Parameters<tf.KernelFunc>[0];

const BACKEND = 'tensorflow';

/** Input channels below which TensorFlow's own kernel is the faster. */
const MAX_CHANNELS = 8;

/**
 * Output channels up to which our `AntifragileInputGrad` op (./addon/conv_pool.cc) computes the
 * gradient instead: TensorFlow's kernel sums over them in one chain of fused multiply-adds,
 * which the op repeats bit for bit where the sizes let it (checked from 16 to 128; each geometry
 * is checked again on its first call, see matchingGradient; wider products Eigen may split into
 * blocks, so they keep TensorFlow's kernel). Faster on the shapes that matter here (measured:
 * ResNet-18's 7×7 stride-2 stem into one channel 9.7 against 17.3 µs per example, the small
 * CNN's 3×3 conv1 7.3–10.2 against 13–14); about even at 64–128 output channels.
 */
const MAX_OUR_OUTPUTS = 128;

let original: tf.KernelConfig | undefined;
let calls = 0;
let ourCalls = 0;

/** How many of {@link narrowConvCallCount}'s gradients our own op computed. */
export function narrowConvOurOpCount(): number {
  return ourCalls;
}

/**
 * Whether an input gradient into `channels` channels may be asked for with explicit padding on
 * the active backend: this kernel takes it (tfjs-node's own refuses it).
 */
export function narrowConvTakesExplicitPadding(channels: number): boolean {
  return original !== undefined && tf.getBackend() === BACKEND && channels < MAX_CHANNELS;
}

/** How many input gradients this kernel computed (tests check it is used). */
export function narrowConvCallCount(): number {
  return calls;
}

/** One input gradient's geometry, as both kernels take it. */
interface Geometry {
  backend: NativeBackend;
  filter: tf.TensorInfo;
  inputShape: [number, number, number, number];
  strides: [number, number];
  /** Top, bottom, left, right. */
  pads: [number, number, number, number];
}

/** Our `AntifragileInputGrad` op (./addon/conv_pool.cc): one pass per example. */
function ourGradient(
  { backend, filter, inputShape, strides, pads }: Geometry,
  dy: tf.TensorInfo,
): tf.Tensor {
  const b = backend.binding;
  const attrs = [
    { name: 'strides', type: b.TF_ATTR_INT, value: strides },
    { name: 'pads', type: b.TF_ATTR_INT, value: [pads[0], pads[2]] },
    { name: 'input_size', type: b.TF_ATTR_INT, value: [inputShape[1], inputShape[2]] },
  ];
  return backend.executeSingleOutput('AntifragileInputGrad', attrs, [dy, filter]);
}

/** TensorFlow's own kernel (it takes explicit padding; oneDNN's does not). */
function tensorflowGradient(
  { backend, filter, inputShape, strides, pads }: Geometry,
  dy: tf.TensorInfo,
): tf.Tensor {
  const b = backend.binding;
  const attrs = [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, ...strides, 1] },
    { name: 'use_cudnn_on_gpu', type: b.TF_ATTR_BOOL, value: true },
    { name: 'padding', type: b.TF_ATTR_STRING, value: 'EXPLICIT' },
    { name: 'explicit_paddings', type: b.TF_ATTR_INT, value: [0, 0, ...pads, 0, 0] },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'dilations', type: b.TF_ATTR_INT, value: [1, 1, 1, 1] },
  ];
  const sizes = tf.tensor1d(inputShape, 'int32');
  try {
    return backend.executeSingleOutput('Conv2DBackpropInput', attrs, [sizes, filter, dy]);
  } finally {
    sizes.dispose();
  }
}

/** Per geometry and gradient shape: whether our op gave TensorFlow's kernel's values. */
const matches = new Map<string, boolean>();

/**
 * The gradient by our op where it repeats TensorFlow's kernel for this geometry and gradient
 * shape, else by TensorFlow's: found on the first call by running both on its `dy`. TensorFlow's
 * kernel is a tensor contraction whose summation order depends on the sizes (the batch among
 * them): measured, our op's chain of fused multiply-adds matches it on the stems of the paper's
 * models and the small CNN, but not on some small maps (a 1×1 convolution on a 2×2 map, a 3×3
 * one on a 3×3 map).
 */
function matchingGradient(geometry: Geometry, dy: tf.TensorInfo): tf.Tensor {
  const { filter, inputShape, strides, pads } = geometry;
  const key = JSON.stringify([dy.shape, filter.shape, inputShape, strides, pads]);
  const known = matches.get(key);
  if (known !== undefined) {
    if (known) ourCalls += 1;
    return known ? ourGradient(geometry, dy) : tensorflowGradient(geometry, dy);
  }
  const ours = ourGradient(geometry, dy);
  const theirs = tensorflowGradient(geometry, dy);
  const [a, b] = [ours.dataSync(), theirs.dataSync()];
  const same = a.every((v, i) => Object.is(v, b[i]));
  matches.set(key, same);
  if (same) ourCalls += 1;
  (same ? theirs : ours).dispose();
  return same ? ours : theirs;
}

function narrowInputGradient(args: KernelArgs): tf.Tensor | undefined {
  const { dy, filter } = args.inputs as Record<string, tf.TensorInfo>;
  const attrs = args.attrs as Record<string, unknown>;
  const inputShape = attrs.inputShape as [number, number, number, number];
  if (dy.dtype !== 'float32' || filter.dtype !== 'float32') return undefined;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC' || inputShape[3] >= MAX_CHANNELS) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const { top, bottom, left, right } = info.padInfo;
  if (info.outHeight !== dy.shape[1] || info.outWidth !== dy.shape[2]) return undefined;
  const geometry: Geometry = {
    backend: args.backend as NativeBackend,
    filter,
    inputShape,
    strides: [info.strideHeight, info.strideWidth],
    pads: [top, bottom, left, right],
  };
  calls += 1;
  return ourOpsAvailable() && dy.shape[3] <= MAX_OUR_OUTPUTS
    ? matchingGradient(geometry, dy)
    : tensorflowGradient(geometry, dy);
}

/**
 * Registers the kernel over tfjs-node's `Conv2DBackpropInput` (wider inputs, other layouts and
 * dtypes run the original). Idempotent; returns whether it is registered.
 */
export function registerNarrowConvKernels(): boolean {
  original ??= overrideKernel('Conv2DBackpropInput', narrowInputGradient);
  return original !== undefined;
}

/** Restores tfjs-node's kernel. */
export function unregisterNarrowConvKernels(): void {
  if (!original) return;
  restoreKernel(original);
  original = undefined;
}
