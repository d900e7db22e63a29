import * as tf from '@tensorflow/tfjs';
import { attr, handOver, type KernelArgs } from './kernel-io';

type Padding = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;

/** Backends that expose their memory (wasm): read inputs and write outputs in place. */
interface HeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}

function isHeapBackend(backend: unknown): backend is HeapBackend {
  const b = backend as Partial<HeapBackend>;
  return typeof b.makeOutput === 'function' && typeof b.typedArrayFromHeap === 'function';
}

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
  const info = tf.backend_util.computePool2DInfo(
    x.shape as [number, number, number, number],
    attr<number | [number, number]>(args, 'filterSize'),
    attr<number | [number, number]>(args, 'strides'),
    1,
    attr<Padding>(args, 'pad'),
    attr<'floor' | 'round' | 'ceil' | undefined>(args, 'dimRoundingMode'),
  );
  const backend: unknown = args.backend;
  if (isHeapBackend(backend)) {
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    route(
      info,
      backend.typedArrayFromHeap(x),
      backend.typedArrayFromHeap(dy),
      backend.typedArrayFromHeap(out),
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

/** Writes into `dx` the gradient routed from `dys` to the first maximum of each window of `xs`. */
function route(
  info: tf.backend_util.Conv2DInfo,
  xs: Float32Array,
  dys: Float32Array,
  dx: Float32Array,
): void {
  const { batchSize, inHeight, inWidth, inChannels: channels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
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
