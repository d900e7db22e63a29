import * as tf from '@tensorflow/tfjs';
import { overrideKernel, restoreKernel } from './kernel-override';

/**
 * Convolutions on tiny feature maps as one matrix product.
 *
 * A stride-1 convolution whose input map has fewer pixels than its kernel has taps (a 3×3
 * `same` convolution on a 1×1 or 2×2 map: ResNet-18's last two stages at CIFAR size) spends most
 * of TensorFlow's convolution on taps that fall on the zero padding. The same linear map is
 * `y = x · M` with `x` the image flattened to `H·W·C` values and `M` the `[H·W·C, Ho·Wo·F]`
 * matrix whose block (input pixel, output pixel) is the kernel tap that links them (zero where
 * none does): exactly the in-bounds multiply-adds. It runs as one GEMM (`M` built from the taps
 * gathered per output pixel: weight-sized work), with the centre tap alone on a 1×1 map. The
 * input gradient is `dy · Mᵀ`, also one GEMM; the filter gradient `xᵀ · dy` per output pixel,
 * summed back onto the taps (`UnsortedSegmentSum`).
 * Values equal TensorFlow's to float32 rounding (only the summation order differs).
 *
 * Also: a depthwise convolution on a 1×1 map is an element-wise product with the one tap that
 * links the pixel to itself (forward and input gradient), its filter gradient the batch sum of
 * `x·dy` on that tap (ShuffleNet V2's last stage at CIFAR size).
 */

/** One convolution geometry, as the kernels see it. */
interface Geometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kh: number;
  kw: number;
}

/** Which tap links input pixel (a, b) to output pixel (i, j); `kh·kw` where none does. */
interface TapTable {
  /** int32 `[Ho·Wo·H·W]`: the tap index, output pixel major. */
  indices: tf.Tensor1D;
  taps: number;
  /** Whether some pixel pair is linked by no tap (index `taps`). */
  needsZero: boolean;
  /** The one tap index, when the table has a single entry (1×1 map in and out). */
  single?: number;
}

const tables = new Map<string, TapTable>();

function tapTable(g: Geometry, padTop: number, padLeft: number): TapTable {
  const key = [g.inH, g.inW, g.outH, g.outW, g.kh, g.kw, padTop, padLeft].join(',');
  let table = tables.get(key);
  if (!table) {
    const taps = g.kh * g.kw;
    const values: number[] = [];
    for (let i = 0; i < g.outH; i++) {
      for (let j = 0; j < g.outW; j++) {
        for (let a = 0; a < g.inH; a++) {
          for (let b = 0; b < g.inW; b++) {
            const ki = a - i + padTop;
            const kj = b - j + padLeft;
            const inside = ki >= 0 && ki < g.kh && kj >= 0 && kj < g.kw;
            values.push(inside ? ki * g.kw + kj : taps);
          }
        }
      }
    }
    table = {
      indices: tf.keep(tf.tensor1d(values, 'int32')),
      taps,
      needsZero: values.includes(taps),
      single: values.length === 1 && values[0] < taps ? values[0] : undefined,
    };
    tables.set(key, table);
  }
  return table;
}

/**
 * The padding of a 4-D NHWC convolution with stride 1 and dilation 1, the only case the matrix
 * forms below handle; undefined otherwise. tfjs-node's kernels take only `same` and `valid`
 * padding: other values go to them (and their error message).
 */
function unitStrideNhwcPad(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): 'same' | 'valid' | undefined {
  const dataFormat = (attrs.dataFormat as string | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC' || xShape.length !== 4 || filterShape.length !== 4) return undefined;
  const pad = attrs.pad as 'same' | 'valid';
  if (pad !== 'same' && pad !== 'valid') return undefined;
  const strides = attrs.strides as number | [number, number];
  const dilations = (attrs.dilations as number | [number, number] | undefined) ?? 1;
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1) return undefined;
  return pad;
}

/**
 * The geometry when the matrix form applies: NHWC, stride 1, dilation 1, float32, and a 1×1
 * input map or fewer input pixels than kernel taps (so the GEMM does fewer multiply-adds than the convolution's
 * nominal count, and exactly the in-bounds ones); otherwise undefined.
 */
function smallGeometry(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): { geometry: Geometry; padTop: number; padLeft: number } | undefined {
  const pad = unitStrideNhwcPad(xShape, filterShape, attrs);
  if (pad === undefined) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    1,
    1,
    pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const geometry: Geometry = {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
  };
  // A 1×1 map (in and out) is one matrix product for any kernel: for a 1×1 kernel there it is
  // several times faster than TensorFlow's convolution and its gradients (which dispatch to
  // oneDNN's convolution primitives: 3.6 ms against 0.85 ms for 464 → 1,024 channels on 100
  // images; ShuffleNet's last stage and `conv5` at CIFAR size).
  const onePixel = geometry.inH === 1 && geometry.inW === 1;
  if (geometry.inH * geometry.inW >= geometry.kh * geometry.kw && !onePixel) return undefined;
  if (geometry.outH < 1 || geometry.outW < 1) return undefined;
  return { geometry, padTop: info.padInfo.top, padLeft: info.padInfo.left };
}

/**
 * The convolution's taps arranged per output pixel: `[Ho·Wo, H·W·C, F]`, block (q, p) the tap
 * linking input pixel p to output pixel q (the rows of `M` for that output pixel).
 */
function tapBlocks(filter: tf.Tensor, g: Geometry, table: TapTable): tf.Tensor3D {
  const taps = tf.reshape(filter, [table.taps, g.inC, g.outC]);
  // A zero tap only where some pixel pair is not linked (never for 3×3 `same` on 2×2).
  const source = table.needsZero ? tf.concat([taps, tf.zeros([1, g.inC, g.outC])], 0) : taps;
  const blocks = tf.gather(source, table.indices); // [Ho·Wo·H·W, C, F]
  return tf.reshape(blocks, [g.outH * g.outW, g.inH * g.inW * g.inC, g.outC]);
}

/** `dy` as `[Ho·Wo, N, F]`: one matrix per output pixel. */
function perOutputPixel(dy: tf.Tensor, g: Geometry): tf.Tensor3D {
  return tf.transpose(tf.reshape(dy, [g.batch, g.outH * g.outW, g.outC]), [1, 0, 2]);
}

/** The one tap of a 1×1 map in and out, as a `[C, F]` matrix. */
function singleTap(filter: tf.Tensor, g: Geometry, table: TapTable): tf.Tensor2D {
  if (table.taps === 1) return tf.reshape(filter, [g.inC, g.outC]);
  const taps = tf.reshape(filter, [table.taps, g.inC, g.outC]);
  return tf.reshape(tf.slice(taps, [table.single as number, 0, 0], [1, g.inC, g.outC]), [
    g.inC,
    g.outC,
  ]);
}

/**
 * `M` itself, `[H·W·C, Ho·Wo·F]`: rows are (input pixel, channel), columns (output pixel, filter),
 * so that `x · M` is the output in NHWC order and `dy · Mᵀ` the input gradient, each one matrix
 * product (weight-sized work to build; measured faster than one product per output pixel, which
 * needs the output or `dy` transposed and, for the gradient, a sum over output pixels).
 */
function tapMatrix(filter: tf.Tensor, g: Geometry, table: TapTable): tf.Tensor2D {
  const blocks = tapBlocks(filter, g, table); // [Ho·Wo, H·W·C, F]
  return tf.reshape(tf.transpose(blocks, [1, 0, 2]), [
    g.inH * g.inW * g.inC,
    g.outH * g.outW * g.outC,
  ]);
}

/** `conv2d(x, filter)`: the flattened image times {@link tapMatrix}. */
function forward(x: tf.Tensor, filter: tf.Tensor, g: Geometry, table: TapTable): tf.Tensor {
  return tf.tidy(() => {
    const xs = tf.reshape(x, [g.batch, g.inH * g.inW * g.inC]);
    const taps =
      table.single !== undefined ? singleTap(filter, g, table) : tapMatrix(filter, g, table);
    return tf.reshape(tf.matMul(xs, taps), [g.batch, g.outH, g.outW, g.outC]);
  });
}

/** The input gradient: the flattened `dy` times {@link tapMatrix} transposed. */
function inputGradient(dy: tf.Tensor, filter: tf.Tensor, g: Geometry, table: TapTable): tf.Tensor {
  return tf.tidy(() => {
    const dys = tf.reshape(dy, [g.batch, g.outH * g.outW * g.outC]);
    const taps =
      table.single !== undefined ? singleTap(filter, g, table) : tapMatrix(filter, g, table);
    return tf.reshape(tf.matMul(dys, taps, false, true), [g.batch, g.inH, g.inW, g.inC]);
  });
}

/** The filter gradient: per output pixel `xᵀ · dy`, each block added onto its tap. */
function filterGradient(x: tf.Tensor, dy: tf.Tensor, g: Geometry, table: TapTable): tf.Tensor {
  return tf.tidy(() => {
    const xs = tf.reshape(x, [g.batch, g.inH * g.inW * g.inC]);
    const shape = [g.kh, g.kw, g.inC, g.outC];
    if (table.single !== undefined) {
      const dw = tf.matMul(xs, tf.reshape(dy, [g.batch, g.outC]), true, false);
      if (table.taps === 1) return tf.reshape(dw, shape);
      const before = [Math.floor(table.single / g.kw), table.single % g.kw];
      return tf.pad(tf.reshape(dw, [1, 1, g.inC, g.outC]), [
        [before[0], g.kh - 1 - before[0]],
        [before[1], g.kw - 1 - before[1]],
        [0, 0],
        [0, 0],
      ]);
    }
    const dBlocks = tf.matMul(tf.expandDims(xs, 0), perOutputPixel(dy, g), true, false);
    const blocks = tf.reshape(dBlocks, [g.outH * g.outW * g.inH * g.inW, g.inC, g.outC]);
    const perTap = tf.unsortedSegmentSum(blocks, table.indices, table.taps + 1);
    return tf.reshape(tf.slice(perTap, [0, 0, 0], [table.taps, g.inC, g.outC]), shape);
  });
}

/**
 * A depthwise convolution (channel multiplier 1) on a 1×1 map, NHWC, stride 1: the output pixel
 * sees the input pixel through one tap, so it is an element-wise product with that tap's
 * `[C]` weights (ShuffleNet V2's last stage at CIFAR size). Returns the tap's index
 * (`row·kw + column`), or undefined when the form does not apply.
 */
function onePixelDepthwiseTap(
  xShape: number[],
  filterShape: number[],
  attrs: Record<string, unknown>,
): number | undefined {
  const pad = unitStrideNhwcPad(xShape, filterShape, attrs);
  if (pad === undefined) return undefined;
  if (xShape[1] !== 1 || xShape[2] !== 1 || filterShape[3] !== 1) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    1,
    1,
    pad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    true,
  );
  if (info.outHeight !== 1 || info.outWidth !== 1) return undefined;
  const [row, column] = [info.padInfo.top, info.padInfo.left];
  if (row >= info.filterHeight || column >= info.filterWidth) return undefined;
  return row * info.filterWidth + column;
}

/** The `[C]` weights of one tap of a `[kh, kw, C, 1]` depthwise filter. */
function depthwiseTap(filter: tf.Tensor, tap: number): tf.Tensor {
  const [kh, kw, channels] = filter.shape;
  const taps = tf.reshape(filter, [kh * kw, channels]);
  return tf.reshape(tf.slice(taps, [tap, 0], [1, channels]), [channels]);
}

type KernelArgs = Parameters<tf.KernelFunc>[0];

const BACKEND = 'tensorflow';
const originals = new Map<string, tf.KernelConfig>();
let matrixCalls = 0;

/** How many kernel calls the matrix form has served in this process (for tests and profiles). */
export function smallConvCallCount(): number {
  return matrixCalls;
}

/** Whether {@link registerSmallConvKernels} is in effect. */
export function smallConvKernelsRegistered(): boolean {
  return originals.size > 0;
}

/**
 * Registers the matrix form over tfjs-node's `Conv2D`, `FusedConv2D` (without bias or
 * activation), `Conv2DBackpropInput` and `Conv2DBackpropFilter` for the cases it covers; every
 * other call runs tfjs-node's kernel. Idempotent; returns whether the kernels are in effect.
 */
export function registerSmallConvKernels(): boolean {
  if (originals.size > 0) return true;
  if (!tf.findBackend(BACKEND) || !tf.getKernel('Conv2D', BACKEND)) return false;
  const register = (name: string, func: (args: KernelArgs) => tf.Tensor | undefined) => {
    const original = overrideKernel(name, (args) => {
      const result = func(args);
      if (result !== undefined) matrixCalls += 1;
      return result;
    });
    // Undefined: not a kernel of this tfjs-node version, nothing to speed up.
    if (original) originals.set(name, original);
  };
  const float = (...ts: tf.TensorInfo[]) => ts.every((t) => t.dtype === 'float32');
  const convForward = (args: KernelArgs) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<
      string,
      tf.Tensor | undefined
    >;
    const attrs = args.attrs as Record<string, unknown>;
    if (!x || !filter || bias || preluActivationWeights || !float(x, filter)) return undefined;
    if (attrs.activation !== undefined && attrs.activation !== 'linear') return undefined;
    const small = smallGeometry(x.shape, filter.shape, attrs);
    if (!small) return undefined;
    return forward(
      x,
      filter,
      small.geometry,
      tapTable(small.geometry, small.padTop, small.padLeft),
    );
  };
  register('Conv2D', convForward);
  register('FusedConv2D', convForward);
  register('Conv2DBackpropInput', (args) => {
    const { dy, filter } = args.inputs as Record<string, tf.Tensor>;
    const attrs = args.attrs as Record<string, unknown>;
    if (!float(dy, filter)) return undefined;
    const small = smallGeometry(attrs.inputShape as number[], filter.shape, attrs);
    if (!small) return undefined;
    const table = tapTable(small.geometry, small.padTop, small.padLeft);
    return inputGradient(dy, filter, small.geometry, table);
  });
  register('Conv2DBackpropFilter', (args) => {
    const { x, dy } = args.inputs as Record<string, tf.Tensor>;
    const attrs = args.attrs as Record<string, unknown>;
    if (!float(x, dy)) return undefined;
    const small = smallGeometry(x.shape, attrs.filterShape as number[], attrs);
    if (!small) return undefined;
    const table = tapTable(small.geometry, small.padTop, small.padLeft);
    return filterGradient(x, dy, small.geometry, table);
  });
  register('DepthwiseConv2dNative', (args) => {
    const { x, filter } = args.inputs as Record<string, tf.Tensor>;
    if (!float(x, filter)) return undefined;
    const tap = onePixelDepthwiseTap(x.shape, filter.shape, args.attrs as Record<string, unknown>);
    if (tap === undefined) return undefined;
    return tf.tidy(() => tf.mul(x, depthwiseTap(filter, tap)));
  });
  register('DepthwiseConv2dNativeBackpropInput', (args) => {
    const { dy, filter } = args.inputs as Record<string, tf.Tensor>;
    const attrs = args.attrs as Record<string, unknown>;
    if (!float(dy, filter)) return undefined;
    const tap = onePixelDepthwiseTap(attrs.inputShape as number[], filter.shape, attrs);
    if (tap === undefined) return undefined;
    return tf.tidy(() => tf.mul(dy, depthwiseTap(filter, tap)));
  });
  register('DepthwiseConv2dNativeBackpropFilter', (args) => {
    const { x, dy } = args.inputs as Record<string, tf.Tensor>;
    const attrs = args.attrs as Record<string, unknown>;
    if (!float(x, dy)) return undefined;
    const filterShape = attrs.filterShape as number[];
    const tap = onePixelDepthwiseTap(x.shape, filterShape, attrs);
    if (tap === undefined) return undefined;
    const [kh, kw, channels] = filterShape;
    return tf.tidy(() => {
      // Σ over the batch of x·dy, on the one tap; zeros elsewhere.
      const weights = tf.reshape(tf.sum(tf.mul(x, dy), [0, 1, 2]), [1, channels]);
      const taps = tf.pad(weights, [
        [tap, kh * kw - 1 - tap],
        [0, 0],
      ]);
      return tf.reshape(taps, filterShape);
    });
  });
  return true;
}

/** Restores tfjs-node's own convolution kernels (for comparisons). */
export function unregisterSmallConvKernels(): void {
  originals.forEach(restoreKernel);
  originals.clear();
}
