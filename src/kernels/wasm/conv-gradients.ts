import * as tf from '@tensorflow/tfjs';
import {
  attr,
  composed,
  input,
  isHeapBackend,
  type HeapBackend,
  type KernelArgs,
  heapAddress,
} from './kernel-io';
import { paddedInput, patchRows, simdPatchRows } from './im2col';
import { runShared, simdKernels, simdOnEveryThread, simdPool, type SimdKernels } from './simd';
import {
  cropNegativePads,
  explicitPadding,
  isChannelsFirst,
  pair,
  spreadByStrides,
  toChannelsFirst,
  toChannelsLast,
  type SpatialPads,
} from './geometry';

type Shape4 = [number, number, number, number];
type Padding = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** The geometry tfjs derives for a forward convolution, in NHWC. */
export function convInfo(
  args: KernelArgs,
  inShape: Shape4,
  filterShape: Shape4,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape,
    filterShape,
    attr<number | [number, number]>(args, 'strides'),
    depthwise ? pair(attr<number | [number, number]>(args, 'dilations')) : 1,
    attr<Padding>(args, 'pad'),
    attr<Rounding>(args, 'dimRoundingMode'),
    depthwise,
    'channelsLast',
  );
}

function nhwcShape(shape: Shape4, channelsFirst: boolean): Shape4 {
  return channelsFirst ? [shape[0], shape[2], shape[3], shape[1]] : shape;
}

/** Applies a per-axis padding rule to the rows and the columns of a convolution. */
function bothAxes(
  info: tf.backend_util.Conv2DInfo,
  rule: (
    pad: number,
    kEff: number,
    inSize: number,
    outSize: number,
    stride: number,
  ) => [number, number],
): SpatialPads {
  return [
    rule(
      info.padInfo.top,
      info.effectiveFilterHeight,
      info.inHeight,
      info.outHeight,
      info.strideHeight,
    ),
    rule(
      info.padInfo.left,
      info.effectiveFilterWidth,
      info.inWidth,
      info.outWidth,
      info.strideWidth,
    ),
  ];
}

/**
 * Padding, in the input-gradient convolution, that makes the output as large as the forward
 * input: the spread `dy` (strides inserted as zeros, `s − 1` trailing zeros included) is
 * correlated with the flipped filter.
 */
function inputGradientPads(info: tf.backend_util.Conv2DInfo): SpatialPads {
  return bothAxes(info, (pad, kEff, inSize, outSize, s) => [
    kEff - 1 - pad,
    inSize + pad - (outSize - 1) * s - 1 - (s - 1),
  ]);
}

/**
 * Padding, in the filter-gradient convolution (input as the image, `dy` as a filter dilated by the
 * strides), that makes the output exactly the filter's size.
 */
function filterGradientPads(info: tf.backend_util.Conv2DInfo): SpatialPads {
  return bothAxes(info, (pad, kEff, inSize, outSize, s) => [
    pad,
    kEff + (outSize - 1) * s - pad - inSize,
  ]);
}

/**
 * `Conv2DBackpropFilter`: the gradient of a convolution with respect to its filter. On float32
 * data in the backend's memory: with few input channels and output channels a multiple of 8, our
 * SIMD kernel straight from the input; else, with input channels a multiple of 4 (or few), the
 * matrix product of the input's patches (see {@link patchRows}) with `dy`, a batch slice at a
 * time when the patches would be large. Otherwise one convolution of the input (batch and
 * channels swapped) with `dy` used as the filter.
 */
export function conv2DBackpropFilter(args: KernelArgs): tf.TensorInfo {
  return composed(args, () => {
    const channelsFirst = isChannelsFirst(attr<string>(args, 'dataFormat'));
    let x = input<tf.Rank.R4>(args, 'x');
    let dy = input<tf.Rank.R4>(args, 'dy');
    if (channelsFirst) {
      x = toChannelsLast(x);
      dy = toChannelsLast(dy);
    }
    const filterShape = attr<Shape4>(args, 'filterShape');
    const info = convInfo(args, x.shape, filterShape, false);
    const backend: unknown = args.backend;
    if (isHeapBackend(backend) && x.dtype === 'float32' && dy.dtype === 'float32') {
      const [, , inC, outC] = filterShape;
      const simd = simdKernels(backend);
      const direct =
        inC <= patchLimits.maxInputChannels ||
        (inC <= patchLimits.maxPooledInputChannels && simdPool(backend) !== undefined);
      if (simd !== undefined && direct && outC % 8 === 0) {
        return simdFilterGradient(simd, backend, x, dy, info, filterShape);
      }
      if (simd !== undefined && inC % 4 === 0) {
        const padded = paddedInput(x, info);
        const patches = (first: number, count: number) =>
          simdPatchRows(simd, backend, padded, info, first, count);
        return patchFilterGradient(patches, dy, info, filterShape);
      }
      if (inC <= patchLimits.maxInputChannels) {
        const patches = (first: number, count: number) => patchRows(backend, x, info, first, count);
        return patchFilterGradient(patches, dy, info, filterShape);
      }
    }
    const xt = tf.transpose(x, [3, 1, 2, 0]); // [inC, h, w, batch]
    const dyt = tf.transpose(dy, [1, 2, 0, 3]); // [outH, outW, batch, outC]
    const cropped = cropNegativePads(xt, filterGradientPads(info));
    const dw = tf.conv2d(
      cropped.x,
      dyt,
      [info.dilationHeight, info.dilationWidth],
      explicitPadding(cropped.pads),
      'NHWC',
      [info.strideHeight, info.strideWidth],
    ); // [inC, kh, kw, outC]
    return tf.transpose(dw, [1, 2, 0, 3]);
  });
}

/**
 * Limits of the paths of {@link conv2DBackpropFilter} that avoid XNNPACK's convolution with `dy`
 * as its filter, which re-packs `dy` on every call and, with few input channels (a first layer),
 * computes a product of a few rows by a reduction over every output position. Settable for tests.
 */
export const patchLimits = {
  /** Up to this many input channels, the direct kernel or patches are used for any channel count. */
  maxInputChannels: 4,
  /** The most patch values built at once (32 MB); larger batches go a slice at a time. */
  maxValues: 1 << 23,
  /**
   * Up to this many input channels, the direct kernel is used when a thread pool shares out its
   * work (it then beats patches and XNNPACK's product, which re-packs `dy` on every call).
   */
  maxPooledInputChannels: 32,
  /** Images the direct kernel takes at a time (each block passes over them while in cache). */
  imagesPerPass: 2,
};

/**
 * `Σ_batch patches · dy` (see {@link conv2DBackpropFilter}), with every intermediate freed;
 * `patches(first, count)` gives the patch rows of images `[first, first + count)`.
 */
function patchFilterGradient(
  patches: (first: number, count: number) => tf.Tensor2D,
  dy: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
  filterShape: Shape4,
): tf.Tensor4D {
  const [batch] = dy.shape;
  const [kh, kw, inC, outC] = filterShape;
  const perImage = kh * kw * inC * info.outHeight * info.outWidth;
  const step = Math.max(1, Math.floor(patchLimits.maxValues / perImage));
  const positions = info.outHeight * info.outWidth;
  let sum: tf.Tensor | undefined;
  for (let first = 0; first < batch; first += step) {
    const count = Math.min(step, batch - first);
    const part = tf.tidy(() => {
      const cols = patches(first, count);
      const dyPart = count === batch ? dy : tf.slice(dy, [first, 0, 0, 0], [count, -1, -1, -1]);
      return tf.matMul(cols, tf.reshape(dyPart, [count * positions, outC]));
    });
    if (sum === undefined) sum = part;
    else {
      const next = tf.add(sum, part);
      tf.dispose([sum, part]);
      sum = next;
    }
  }
  return tf.reshape(sum as tf.Tensor, filterShape);
}

/**
 * `Conv2DBackpropInput`: the gradient of a convolution with respect to its input, computed as a
 * stride-1 convolution of `dy` (spread by the strides) with the flipped, transposed filter.
 */
export function conv2DBackpropInput(args: KernelArgs): tf.TensorInfo {
  return composed(args, () => {
    const channelsFirst = isChannelsFirst(attr<string>(args, 'dataFormat'));
    let dy = input<tf.Rank.R4>(args, 'dy');
    const filter = input<tf.Rank.R4>(args, 'filter');
    if (channelsFirst) dy = toChannelsLast(dy);
    const inShape = nhwcShape(attr<Shape4>(args, 'inputShape'), channelsFirst);
    const info = convInfo(args, inShape, filter.shape, false);
    const backend: unknown = args.backend;
    const simd = simdKernels(backend);
    const [, , inC, outC] = filter.shape;
    const direct =
      simd !== undefined &&
      isHeapBackend(backend) &&
      dy.dtype === 'float32' &&
      filter.dtype === 'float32' &&
      inC <= directGradientLimits.maxInputChannels &&
      outC % 4 === 0 &&
      info.strideHeight === 1 &&
      info.strideWidth === 1 &&
      simdOnEveryThread(backend);
    if (direct) {
      directGradientStats.inputGradient += 1;
      const dx = simdInputGradient(simd, backend, dy, filter, info);
      return channelsFirst ? toChannelsFirst(dx) : dx;
    }
    const spread = spreadByStrides(dy, info.strideHeight, info.strideWidth);
    const flipped = flipFilter(args.backend, filter, true); // [kh, kw, outC, inC]
    const cropped = cropNegativePads(spread, inputGradientPads(info));
    const pads = explicitPadding(cropped.pads);
    const dx =
      inC <= MAX_DEPTHWISE_INPUT_CHANNELS
        ? fewChannelsGradient(cropped.x, flipped, pads)
        : tf.conv2d(cropped.x, flipped, 1, pads, 'NHWC');
    return channelsFirst ? toChannelsFirst(dx) : dx;
  });
}

/** Calls that went to our direct SIMD gradient kernels (for tests: that a case took the path). */
export const directGradientStats = { inputGradient: 0 };

/**
 * Up to `maxInputChannels` (a grey or RGB image: FGSM's gradient of the first layer), a
 * stride-1 input gradient is computed by our SIMD kernel (kernels.wat `inputGradFew`) on every
 * thread: each input pixel's sum over taps and output channels, read straight from `dy` (no
 * padded or spread copy), 4 pixels at a time. Settable for tests.
 */
export const directGradientLimits = { maxInputChannels: 4 };

/** {@link conv2DBackpropInput} by our kernel, rows of `dx` shared out over the pool's threads. */
function simdInputGradient(
  simd: SimdKernels,
  backend: HeapBackend,
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
): tf.Tensor4D {
  const { batchSize, inHeight, inWidth, outHeight, outWidth } = info;
  const [kh, kw, inC, outC] = filter.shape;
  const outInfo = backend.makeOutput([batchSize, inHeight, inWidth, inC], 'float32');
  const dx = tf.engine().makeTensorFromTensorInfo(outInfo) as tf.Tensor4D;
  const fixed = [
    heapAddress(backend, dy),
    heapAddress(backend, filter),
    heapAddress(backend, outInfo),
    inHeight,
    inWidth,
    outHeight,
    outWidth,
    inC,
    outC,
    kh,
    kw,
    info.padInfo.top,
    info.padInfo.left,
  ];
  runShared(backend, simd, 'inputGradFew', fixed, batchSize * inHeight);
  return dx;
}

/**
 * `filter` (`[kh, kw, a, b]`) flipped in both spatial axes, with its last two axes swapped when
 * `swap` (`[kh, kw, b, a]`): one pass over the backend's memory, where `tf.reverse` on wasm costs
 * ~50 ns a value.
 */
function flipFilter(backend: unknown, filter: tf.Tensor4D, swap: boolean): tf.Tensor4D {
  const [kh, kw, a, b] = filter.shape;
  if (!isHeapBackend(backend) || filter.dtype !== 'float32') {
    const flipped = tf.reverse(filter, [0, 1]);
    return swap ? tf.transpose(flipped, [0, 1, 3, 2]) : flipped;
  }
  const outInfo = backend.makeOutput(swap ? [kh, kw, b, a] : [kh, kw, a, b], 'float32');
  const src = backend.typedArrayFromHeap(filter) as Float32Array;
  const dst = backend.typedArrayFromHeap(outInfo) as Float32Array;
  const tap = a * b;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const from = ((kh - 1 - i) * kw + (kw - 1 - j)) * tap;
      const to = (i * kw + j) * tap;
      if (!swap) dst.set(src.subarray(from, from + tap), to);
      else {
        for (let p = 0; p < a; p++) {
          for (let q = 0; q < b; q++) dst[to + q * a + p] = src[from + p * b + q];
        }
      }
    }
  }
  return tf.engine().makeTensorFromTensorInfo(outInfo) as tf.Tensor4D;
}

/**
 * Up to this many input channels, the input gradient is computed per input channel as a depthwise
 * convolution summed over the output channels: XNNPACK's convolution computes output channels in
 * groups of 8 or more, so with one to two of them (a grey or two-channel image: FGSM's gradient
 * of the first layer) most of its work is wasted.
 */
const MAX_DEPTHWISE_INPUT_CHANNELS = 2;

/**
 * The stride-1 convolution of `dy` (`[n, h, w, outC]`) with `flipped` (`[kh, kw, outC, inC]`),
 * one depthwise convolution and one sum over the output channels per input channel.
 */
function fewChannelsGradient(
  dy: tf.Tensor4D,
  flipped: tf.Tensor4D,
  pads: tf.backend_util.ExplicitPadding,
): tf.Tensor4D {
  const [kh, kw, outC, inC] = flipped.shape;
  const perChannel = tf.split(flipped, inC, 3).map((f) => {
    const filter = tf.reshape(f, [kh, kw, outC, 1]) as tf.Tensor4D;
    return tf.sum(tf.depthwiseConv2d(dy, filter, 1, pads, 'NHWC'), 3);
  });
  return (inC === 1 ? tf.expandDims(perChannel[0], 3) : tf.stack(perChannel, 3)) as tf.Tensor4D;
}

/**
 * `DepthwiseConv2dNativeBackpropInput`: a stride-1 depthwise convolution of `dy` (spread by the
 * strides) with the flipped filter, dilated like the forward one; with a channel multiplier the
 * multiplied channels are summed back.
 */
export function depthwiseConv2dNativeBackpropInput(args: KernelArgs): tf.TensorInfo {
  return composed(args, () => {
    const dy = input<tf.Rank.R4>(args, 'dy');
    const filter = input<tf.Rank.R4>(args, 'filter');
    const inShape = attr<Shape4>(args, 'inputShape');
    const info = convInfo(args, inShape, filter.shape, true);
    const [kh, kw, channels, multiplier] = filter.shape;
    const spread = spreadByStrides(dy, info.strideHeight, info.strideWidth);
    const flipped = tf.reshape(flipFilter(args.backend, filter, false), [
      kh,
      kw,
      channels * multiplier,
      1,
    ]);
    const cropped = cropNegativePads(spread, inputGradientPads(info));
    const dx = tf.depthwiseConv2d(
      cropped.x,
      flipped as tf.Tensor4D,
      1,
      explicitPadding(cropped.pads),
      'NHWC',
      [info.dilationHeight, info.dilationWidth],
    );
    if (multiplier === 1) return dx;
    const [n, h, w] = dx.shape;
    return tf.sum(tf.reshape(dx, [n, h, w, channels, multiplier]), 4);
  });
}

/**
 * `DepthwiseConv2dNativeBackpropFilter`: one depthwise convolution over the input with batch and
 * channels merged (`[1, h, w, batch·C]`), `dy` as the filter dilated by the strides, then summed
 * over the batch.
 */
export function depthwiseConv2dNativeBackpropFilter(args: KernelArgs): tf.TensorInfo {
  return composed(args, () => {
    const x = input<tf.Rank.R4>(args, 'x');
    const dy = input<tf.Rank.R4>(args, 'dy');
    const filterShape = attr<Shape4>(args, 'filterShape');
    const info = convInfo(args, x.shape, filterShape, true);
    const [n, h, w, channels] = x.shape;
    const [kh, kw, , multiplier] = filterShape;
    const [, outH, outW] = dy.shape;
    const xt = tf.reshape(tf.transpose(x, [1, 2, 0, 3]), [1, h, w, n * channels]) as tf.Tensor4D;
    const dyt = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [outH, outW, n * channels, multiplier]);
    const cropped = cropNegativePads(xt, filterGradientPads(info));
    const dw = tf.depthwiseConv2d(
      cropped.x,
      dyt as tf.Tensor4D,
      [info.dilationHeight, info.dilationWidth],
      explicitPadding(cropped.pads),
      'NHWC',
      [info.strideHeight, info.strideWidth],
    ); // [1, kh, kw, n·C·M]
    return tf.sum(tf.reshape(dw, [kh, kw, n, channels, multiplier]), 2);
  });
}

/** Filter-gradient rows per block of kernels.wat `filterGradBlocks` (its `filterGrad6`). */
const ROWS_PER_BLOCK = 6;

/**
 * The filter gradient by our SIMD kernel (see kernels.wat `filterGradBlocks`), straight from the
 * (padded) input and `dy`: rows of the filter gradient 6 at a time, output channels 8 at a time.
 * Rows beyond the filter's (when their count is not a multiple of 6) go to scratch rows.
 */
function simdFilterGradient(
  simd: SimdKernels,
  backend: HeapBackend,
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
  filterShape: Shape4,
): tf.Tensor4D {
  const [batch, , , inC] = x.shape;
  const [kh, kw, , outC] = filterShape;
  const { strideHeight: sH, strideWidth: sW, outHeight: oh, outWidth: ow } = info;
  const padded = paddedInput(x, info);
  const [, hp, wp] = padded.shape;
  const rows = kh * kw * inC;
  const blocks = Math.ceil(rows / ROWS_PER_BLOCK);
  const sumInfo = backend.makeOutput([blocks * ROWS_PER_BLOCK, outC], 'float32');
  const sum = tf.engine().makeTensorFromTensorInfo(sumInfo) as tf.Tensor2D;
  (backend.typedArrayFromHeap(sumInfo) as Float32Array).fill(0);
  const xAt = heapAddress(backend, padded);
  const dyAt = heapAddress(backend, dy);
  const sumAt = heapAddress(backend, sumInfo);
  // Blocks of 6 rows × 8 output channels, shared out in contiguous ranges, one per thread.
  const fixed = [xAt, dyAt, sumAt, batch, hp, wp, inC, oh, ow, outC, sH, sW, kw, rows];
  runShared(
    backend,
    simd,
    'filterGradBlocks',
    [...fixed, patchLimits.imagesPerPass],
    blocks * (outC / 8),
  );
  const rowsOnly = blocks * ROWS_PER_BLOCK === rows ? sum : tf.slice(sum, [0, 0], [rows, outC]);
  return tf.reshape(rowsOnly, filterShape);
}
