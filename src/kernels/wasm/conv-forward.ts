import * as tf from '@tensorflow/tfjs';
import { convInfo } from './conv-gradients';
import { pair } from './geometry';
import { paddedInput } from './im2col';
import {
  attr,
  composed,
  heapAddress,
  input,
  isHeapBackend,
  type HeapBackend,
  type KernelArgs,
} from './kernel-io';
import { runShared, simdKernels, simdOnEveryThread, type SimdKernels } from './simd';

/**
 * Which convolutions our direct SIMD kernel (kernels.wat `convForward`) computes in place of
 * XNNPACK's. XNNPACK computes output channels in groups against a product whose depth is
 * taps × input channels: with one to four input channels (a first layer) that depth is 9 to 36
 * and most of its time goes to overheads; ours runs 4 pixels × 8 channels at a time on every
 * thread (conv1 of the bench's CNN, batch 100: 0.65 → 0.47 ms on 2 threads, 1.16 → 0.73 ms on
 * one). Settable for tests.
 */
export const directConvLimits = {
  /** Up to this many input channels (output channels: a multiple of 8). */
  maxInputChannels: 4,
};

/** Calls that went to our kernel (for tests: that a case took this path). */
export const directConvStats = { calls: 0 };

type Shape4 = [number, number, number, number];

/** The convolution's geometry when our kernel takes it, else undefined. */
function directGeometry(args: KernelArgs): tf.backend_util.Conv2DInfo | undefined {
  const { x, filter, bias, preluActivationWeights } = args.inputs;
  if (x === undefined || filter === undefined || preluActivationWeights !== undefined) {
    return undefined;
  }
  const activation = attr<string | undefined>(args, 'activation') ?? 'linear';
  const dataFormat = attr<string>(args, 'dataFormat');
  const [, , inC, outC] = filter.shape;
  const plain =
    x.dtype === 'float32' &&
    filter.dtype === 'float32' &&
    x.shape.length === 4 &&
    (dataFormat === 'NHWC' || dataFormat === 'channelsLast') &&
    pair(attr<number | [number, number]>(args, 'dilations') ?? 1).every((d) => d === 1) &&
    (activation === 'linear' || activation === 'relu') &&
    inC <= directConvLimits.maxInputChannels &&
    outC % 8 === 0 &&
    (bias === undefined ||
      (bias.dtype === 'float32' && bias.shape.length === 1 && bias.shape[0] === outC));
  if (!plain) return undefined;
  return convInfo(args, x.shape as Shape4, filter.shape as Shape4, false);
}

/** The convolution by our kernel, its output rows shared out over the SIMD pool's threads. */
function directConv(
  args: KernelArgs,
  simd: SimdKernels,
  backend: HeapBackend,
  info: tf.backend_util.Conv2DInfo,
): tf.TensorInfo {
  return composed(args, () => {
    const x = input<tf.Rank.R4>(args, 'x');
    const filter = input<tf.Rank.R4>(args, 'filter');
    const bias = args.inputs.bias === undefined ? undefined : input(args, 'bias');
    const relu = (attr<string | undefined>(args, 'activation') ?? 'linear') === 'relu';
    const padded = paddedInput(x, info);
    const [batch, hp, wp, inC] = padded.shape;
    const [kh, kw, , outC] = filter.shape;
    const { outHeight: oh, outWidth: ow } = info;
    const outInfo = backend.makeOutput([batch, oh, ow, outC], 'float32');
    const out = tf.engine().makeTensorFromTensorInfo(outInfo);
    const fixed = [
      heapAddress(backend, padded),
      heapAddress(backend, filter),
      bias === undefined ? 0 : heapAddress(backend, bias),
      heapAddress(backend, outInfo),
      hp,
      wp,
      inC,
      oh,
      ow,
      outC,
      info.strideHeight,
      info.strideWidth,
      kh,
      kw,
      relu ? 1 : 0,
    ];
    runShared(backend, simd, 'convForward', fixed, batch * oh);
    return out;
  });
}

/**
 * Builds the replacement of wasm's `Conv2D` or `FusedConv2D` (`original`): convolutions with few
 * input channels (see {@link directConvLimits}), float32 NHWC, no dilation, bias and ReLU or none,
 * by our kernel; every other call to `original` unchanged.
 */
export function makeDirectConv(original: tf.KernelFunc): tf.KernelFunc {
  return (params) => {
    const args = params as unknown as KernelArgs;
    const backend: unknown = args.backend;
    const simd = simdKernels(backend);
    // On one thread ours is faster; with several, only when it runs on all of them too.
    const ours = simd !== undefined && simdOnEveryThread(backend);
    const info = ours ? directGeometry(args) : undefined;
    if (simd === undefined || info === undefined || !isHeapBackend(backend)) {
      return original(params);
    }
    directConvStats.calls += 1;
    return directConv(args, simd, backend, info);
  };
}
