import * as tf from '@tensorflow/tfjs';
import { heapAddress, type HeapBackend } from './kernel-io';
import type { SimdKernels } from './simd';

/**
 * `x` with the convolution's padding made explicit (zeros), so that every filter tap of every
 * output position lies inside it; `x` itself when there is no padding.
 */
export function paddedInput(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const [, h, w] = x.shape;
  const { top, left } = info.padInfo;
  const { strideHeight: sH, strideWidth: sW, outHeight: oh, outWidth: ow } = info;
  const kh = info.effectiveFilterHeight;
  const kw = info.effectiveFilterWidth;
  const bottom = Math.max(0, (oh - 1) * sH + kh - top - h);
  const right = Math.max(0, (ow - 1) * sW + kw - left - w);
  if (top + bottom + left + right === 0) return x;
  return tf.pad(x, [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ]);
}

/**
 * {@link patchRows} by our SIMD kernel (kernels.wat `patchRows4`), from the padded input (see
 * {@link paddedInput}); its channels must be a multiple of 4.
 */
export function simdPatchRows(
  simd: SimdKernels,
  backend: HeapBackend,
  padded: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
  first: number,
  count: number,
): tf.Tensor2D {
  const [, hp, wp, channels] = padded.shape;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const outInfo = backend.makeOutput([kh * kw * channels, count * oh * ow], 'float32');
  // The kernel's working space: the window corners of 64 positions.
  const scratch = tf.engine().makeTensorFromTensorInfo(backend.makeOutput([64], 'int32'));
  simd.patchRows4(
    heapAddress(backend, padded),
    heapAddress(backend, outInfo),
    first,
    first + count,
    hp,
    wp,
    channels,
    oh,
    ow,
    info.strideHeight,
    info.strideWidth,
    kh,
    kw,
    heapAddress(backend, scratch),
  );
  scratch.dispose();
  return tf.engine().makeTensorFromTensorInfo(outInfo) as tf.Tensor2D;
}

/**
 * The patches of an NHWC input that a convolution multiplies by its filter, one row per filter
 * tap and input channel: `cols[(kh·KW + kw)·C + c][(n·OH + oh)·OW + ow]` is the input value
 * under tap `(kh, kw)`, channel `c`, of output position `(n, oh, ow)` (0 in the padding), for the
 * images `n` in `[first, first + count)`. The filter gradient is then one matrix product,
 * `cols · dy`, whose rows are already in the filter's `[kh, kw, c, outC]` order.
 */
export function patchRows(
  backend: HeapBackend,
  x: tf.Tensor4D,
  info: tf.backend_util.Conv2DInfo,
  first: number,
  count: number,
): tf.Tensor2D {
  const [, h, w, channels] = x.shape;
  const { outHeight: outH, outWidth: outW, filterHeight: kH, filterWidth: kW } = info;
  const { strideHeight: sH, strideWidth: sW, dilationHeight: dH, dilationWidth: dW } = info;
  const { top, left } = info.padInfo;
  const positions = count * outH * outW;
  const outInfo = backend.makeOutput([kH * kW * channels, positions], 'float32');
  // Views after the allocation, which may have grown (and so detached) the memory.
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const cols = backend.typedArrayFromHeap(outInfo) as Float32Array;
  let dst = 0;
  for (let i = 0; i < kH; i++) {
    for (let j = 0; j < kW; j++) {
      // The output columns whose input column is inside the image, for this tap.
      const colOffset = j * dW - left;
      const owFirst = Math.min(outW, Math.max(0, Math.ceil(-colOffset / sW)));
      const owEnd = Math.max(owFirst, Math.min(outW, Math.ceil((w - colOffset) / sW)));
      for (let c = 0; c < channels; c++) {
        for (let n = first; n < first + count; n++) {
          for (let oh = 0; oh < outH; oh++) {
            const ih = oh * sH + i * dH - top;
            if (ih < 0 || ih >= h) {
              cols.fill(0, dst, dst + outW);
              dst += outW;
              continue;
            }
            const rowBase = (n * h + ih) * w * channels + c;
            let ow = 0;
            for (; ow < owFirst; ow++) cols[dst++] = 0;
            let src = rowBase + (ow * sW + colOffset) * channels;
            const step = sW * channels;
            for (; ow < owEnd; ow++, src += step) cols[dst++] = xs[src];
            for (; ow < outW; ow++) cols[dst++] = 0;
          }
        }
      }
    }
  }
  return tf.engine().makeTensorFromTensorInfo(outInfo) as tf.Tensor2D;
}
