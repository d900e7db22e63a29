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
 * which the op repeats bit for bit (checked from 16 to 128; wider products Eigen may split into
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
  const backend = args.backend as NativeBackend;
  const b = backend.binding;
  if (ourOpsAvailable() && dy.shape[3] <= MAX_OUR_OUTPUTS) {
    // Our op: the same values as the TensorFlow kernel below, in one pass per example.
    const ours = [
      { name: 'strides', type: b.TF_ATTR_INT, value: [info.strideHeight, info.strideWidth] },
      { name: 'pads', type: b.TF_ATTR_INT, value: [top, left] },
      { name: 'input_size', type: b.TF_ATTR_INT, value: [inputShape[1], inputShape[2]] },
    ];
    calls += 1;
    ourCalls += 1;
    return backend.executeSingleOutput('AntifragileInputGrad', ours, [dy, filter]);
  }
  const opAttrs = [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, info.strideHeight, info.strideWidth, 1] },
    { name: 'use_cudnn_on_gpu', type: b.TF_ATTR_BOOL, value: true },
    { name: 'padding', type: b.TF_ATTR_STRING, value: 'EXPLICIT' },
    {
      name: 'explicit_paddings',
      type: b.TF_ATTR_INT,
      value: [0, 0, top, bottom, left, right, 0, 0],
    },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'dilations', type: b.TF_ATTR_INT, value: [1, 1, 1, 1] },
  ];
  const sizes = tf.tensor1d(inputShape, 'int32');
  try {
    const dx = backend.executeSingleOutput('Conv2DBackpropInput', opAttrs, [sizes, filter, dy]);
    calls += 1;
    return dx;
  } finally {
    sizes.dispose();
  }
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
