import * as tf from '@tensorflow/tfjs';

/** Explicit padding of the two spatial axes of an NHWC tensor: `[[top, bottom], [left, right]]`. */
export type SpatialPads = [[number, number], [number, number]];

/**
 * Applies the negative entries of `pads` by cropping the spatial axes of `x` (NHWC), and returns
 * the cropped tensor with the remaining, non-negative padding.
 */
export function cropNegativePads(
  x: tf.Tensor4D,
  pads: SpatialPads,
): { x: tf.Tensor4D; pads: SpatialPads } {
  const [[top, bottom], [left, right]] = pads;
  if (top >= 0 && bottom >= 0 && left >= 0 && right >= 0) return { x, pads };
  const [n, h, w, c] = x.shape;
  const y0 = Math.max(0, -top);
  const x0 = Math.max(0, -left);
  const rows = h - y0 - Math.max(0, -bottom);
  const cols = w - x0 - Math.max(0, -right);
  if (rows <= 0 || cols <= 0) {
    throw new Error(`padding ${JSON.stringify(pads)} leaves nothing of a ${h}×${w} input`);
  }
  return {
    x: tf.slice(x, [0, y0, x0, 0], [n, rows, cols, c]),
    pads: [
      [Math.max(0, top), Math.max(0, bottom)],
      [Math.max(0, left), Math.max(0, right)],
    ],
  };
}

/** The explicit-padding argument of `tf.conv2d` / `tf.depthwiseConv2d` for NHWC. */
export function explicitPadding(pads: SpatialPads): tf.backend_util.ExplicitPadding {
  return [[0, 0], pads[0], pads[1], [0, 0]];
}

/**
 * Inserts `sH − 1` zero rows after every row and `sW − 1` zero columns after every column of `x`
 * (NHWC): `[n, h, w, c]` becomes `[n, h·sH, w·sW, c]`, the original values at multiples of the
 * strides. (The trailing zeros are extra bottom/right padding the caller accounts for.)
 */
export function spreadByStrides(x: tf.Tensor4D, sH: number, sW: number): tf.Tensor4D {
  if (sH === 1 && sW === 1) return x;
  const [n, h, w, c] = x.shape;
  const x6 = tf.reshape(x, [n, h, 1, w, 1, c]);
  const spread = tf.pad(x6, [
    [0, 0],
    [0, 0],
    [0, sH - 1],
    [0, 0],
    [0, sW - 1],
    [0, 0],
  ]);
  return tf.reshape(spread, [n, h * sH, w * sW, c]);
}

/** Converts an NCHW tensor to NHWC. */
export function toChannelsLast(x: tf.Tensor4D): tf.Tensor4D {
  return tf.transpose(x, [0, 2, 3, 1]);
}

/** Converts an NHWC tensor to NCHW. */
export function toChannelsFirst(x: tf.Tensor4D): tf.Tensor4D {
  return tf.transpose(x, [0, 3, 1, 2]);
}

/** True when a Conv2D-family `dataFormat` attribute means NCHW. */
export function isChannelsFirst(dataFormat: string | undefined): boolean {
  return dataFormat === 'NCHW' || dataFormat === 'channelsFirst';
}

/** A `[h, w]` pair from a number or pair attribute. */
export function pair(value: number | [number, number] | undefined, fallback = 1): [number, number] {
  if (value === undefined) return [fallback, fallback];
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}
