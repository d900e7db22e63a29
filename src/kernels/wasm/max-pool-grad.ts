import * as tf from '@tensorflow/tfjs';
import { attr, handOver, isHeapBackend, heapAddress, type KernelArgs } from './kernel-io';
import { runShared, simdKernels, simdSettings } from './simd';

type Padding = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/**
 * `MaxPoolGrad`, exact: each output gradient goes to the FIRST maximum of its window (row-major
 * window order, padding excluded), as the `cpu` backend routes it — also in windows whose values
 * are all ≤ 0 and on ties. A window without a maximum (all NaN or −∞) passes nothing on.
 * Where windows overlap, gradients meeting in one input cell are summed in float64 in the `cpu`
 * backend's order, so the result is identical to `cpu`'s.
 */
export function maxPoolGrad(args: KernelArgs): tf.TensorInfo {
  const { input: x, dy } = args.inputs;
  if (x === undefined || dy === undefined) throw new Error('MaxPoolGrad needs inputs dy and input');
  const info = poolInfo(args, x.shape);
  const backend: unknown = args.backend;
  if (isHeapBackend(backend)) {
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    const simd = simdKernels(backend);
    if (simd !== undefined && isInside2x2(info) && info.inChannels % 4 === 0) {
      const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
      runShared(
        backend,
        simd,
        'maxPoolGrad2x2Range',
        [
          heapAddress(backend, x),
          heapAddress(backend, dy),
          heapAddress(backend, out),
          inHeight,
          inWidth,
          inChannels,
          outHeight,
          outWidth,
        ],
        batchSize,
        Math.ceil(simdSettings.minValuesPerThread / (inHeight * inWidth * inChannels)),
      );
      return out;
    }
    route(
      info,
      backend.typedArrayFromHeap(x) as Float32Array,
      backend.typedArrayFromHeap(dy) as Float32Array,
      backend.typedArrayFromHeap(out) as Float32Array,
    );
    return out;
  }
  const dx = new Float32Array(info.inShape.reduce((p, d) => p * d, 1));
  route(
    info,
    args.backend.readSync(x.dataId) as Float32Array,
    args.backend.readSync(dy.dataId) as Float32Array,
    dx,
  );
  return handOver(args.backend, tf.tensor(dx, x.shape, 'float32'));
}

/** The geometry of a `MaxPool` or `MaxPoolGrad` call on an NHWC input of `shape`. */
export function poolInfo(args: KernelArgs, shape: number[]): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    shape as [number, number, number, number],
    attr<number | [number, number]>(args, 'filterSize'),
    attr<number | [number, number]>(args, 'strides'),
    1,
    attr<Padding>(args, 'pad'),
    attr<'floor' | 'round' | 'ceil' | undefined>(args, 'dimRoundingMode'),
  );
}

/** 2×2 windows at stride 2 that all lie inside the input (no padding). */
export function isInside2x2(info: tf.backend_util.Conv2DInfo): boolean {
  return (
    info.effectiveFilterHeight === 2 &&
    info.effectiveFilterWidth === 2 &&
    info.strideHeight === 2 &&
    info.strideWidth === 2 &&
    info.padInfo.top === 0 &&
    info.padInfo.left === 0 &&
    info.outHeight * 2 <= info.inHeight &&
    info.outWidth * 2 <= info.inWidth
  );
}

/** Writes into `dx` the gradient routed from `dys` to the first maximum of each window of `xs`. */
function route(
  info: tf.backend_util.Conv2DInfo,
  xs: Float32Array,
  dys: Float32Array,
  dx: Float32Array,
): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  if (isInside2x2(info)) {
    route2x2(info, xs, dys, dx);
    return;
  }
  const overlapping = strideHeight < fh || strideWidth < fw;
  const sums = overlapping ? new Float64Array(dx.length) : null;
  dx.fill(0);
  const rowStride = inWidth * channels;
  const taps = new Int32Array(fh * fw); // offsets of the window's cells, row-major
  let dyIndex = 0;
  for (let b = 0; b < batchSize; b++) {
    const batchBase = b * inHeight * rowStride;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - info.padInfo.top;
      const yStart = Math.max(0, y0);
      const yEnd = Math.min(inHeight, y0 + fh);
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - info.padInfo.left;
        const xStart = Math.max(0, x0);
        const xEnd = Math.min(inWidth, x0 + fw);
        let count = 0;
        for (let iy = yStart; iy < yEnd; iy++) {
          for (let ix = xStart; ix < xEnd; ix++) {
            taps[count++] = batchBase + iy * rowStride + ix * channels;
          }
        }
        for (let c = 0; c < channels; c++, dyIndex++) {
          let best = -Infinity;
          let bestIndex = -1;
          for (let t = 0; t < count; t++) {
            const v = xs[taps[t] + c];
            if (v > best) {
              best = v;
              bestIndex = taps[t] + c;
            }
          }
          if (bestIndex < 0) continue;
          if (sums) sums[bestIndex] += dys[dyIndex];
          else dx[bestIndex] = dys[dyIndex];
        }
      }
    }
  }
  if (sums) dx.set(sums);
}

/**
 * {@link route} for 2×2 windows at stride 2 that lie inside the input (no padding): the same
 * first-maximum rule (`>` from −∞, row-major), unrolled.
 */
function route2x2(
  info: tf.backend_util.Conv2DInfo,
  xs: Float32Array,
  dys: Float32Array,
  dx: Float32Array,
): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  dx.fill(0);
  const rowStride = inWidth * channels;
  let dyIndex = 0;
  for (let b = 0; b < batchSize; b++) {
    const batchBase = b * inHeight * rowStride;
    for (let oy = 0; oy < outHeight; oy++) {
      const rowBase = batchBase + 2 * oy * rowStride;
      for (let ox = 0; ox < outWidth; ox++) {
        const p0 = rowBase + 2 * ox * channels;
        for (let c = 0; c < channels; c++, dyIndex++) {
          const i0 = p0 + c;
          const i1 = i0 + channels;
          const i2 = i0 + rowStride;
          const i3 = i2 + channels;
          let best = -Infinity;
          let bestIndex = -1;
          const v0 = xs[i0];
          const v1 = xs[i1];
          const v2 = xs[i2];
          const v3 = xs[i3];
          if (v0 > best) {
            best = v0;
            bestIndex = i0;
          }
          if (v1 > best) {
            best = v1;
            bestIndex = i1;
          }
          if (v2 > best) {
            best = v2;
            bestIndex = i2;
          }
          if (v3 > best) bestIndex = i3;
          if (bestIndex >= 0) dx[bestIndex] = dys[dyIndex];
        }
      }
    }
  }
}
