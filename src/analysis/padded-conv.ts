import * as tf from '@tensorflow/tfjs';
import { narrowConvTakesExplicitPadding } from '../kernels/native/narrow-conv';
import { ourOpsAvailable } from '../kernels/native/our-ops';
import { pair, readersOf } from './blocks';
import type { LayerNode } from './conv-pool-block';

/**
 * A ZeroPadding2D whose only reader is a `valid` Conv2D (a strided convolution with torch's
 * symmetric padding, as the paper's models build it) as one convolution with explicit padding.
 * TensorFlow's Conv2D takes the padding as an attribute and skips the padded copy of its input:
 * measured on this project's machine (4,096 examples), ResNet-18's downsampling convolutions
 * 7.5–9.8 against 11.6–17.5 ms, the same values bit for bit (`.scratch` comparison of every
 * geometry of the four models' pads; tests compare the graph runner with `model.predict`).
 * Where the pass is differentiated, the input's gradient is the one tfjs computes for the two
 * layers (see {@link paddedConvInputGrad}).
 */

/** A ZeroPadding2D's `[[top, bottom], [left, right]]`. */
export type Padding = [[number, number], [number, number]];

type Pads4 = [[number, number], [number, number], [number, number], [number, number]];

/** The four-axis padding of a channels-last map. */
export function pads4([[top, bottom], [left, right]]: Padding): Pads4 {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

let calls = 0;

/** How many convolutions took their padding (tests check the fold is used). */
export function paddedConvCallCount(): number {
  return calls;
}

/** Whether the fold runs now: measured identical on TensorFlow's kernels, switched with our ops. */
export function paddingFoldable(): boolean {
  return ourOpsAvailable();
}

/**
 * The Conv2D nodes of `nodes` (a model's graph in order) whose input is a padding that only they
 * read, mapped to that padding's node. `outputId`: the model output (never folded away).
 */
export function paddedConvPairs<N extends LayerNode>(nodes: N[], outputId: number): Map<N, N> {
  const readers = readersOf(nodes);
  const producer = new Map(nodes.map((n) => [n.outputs[0]?.id, n]));
  const pairs = new Map<N, N>();
  for (const node of nodes) {
    const config = node.layer.getConfig();
    const fits =
      node.layer.getClassName() === 'Conv2D' &&
      node.inputs.length === 1 &&
      config.dataFormat === 'channelsLast' &&
      config.padding === 'valid' &&
      pair(config.dilationRate ?? 1).every((v) => v === 1);
    if (!fits) continue;
    const input = node.inputs[0].id;
    const pad = producer.get(input);
    if (!pad || pad.layer.getClassName() !== 'ZeroPadding2D' || input === outputId) continue;
    if (pad.layer.getConfig().dataFormat !== 'channelsLast') continue;
    if (readers.get(input)?.length === 1) pairs.set(node, pad);
  }
  return pairs;
}

/** A ZeroPadding2D layer's padding. */
export function paddingOf(layer: tf.layers.Layer): Padding {
  return layer.getConfig().padding as Padding;
}

/**
 * The gradient of `conv2d(pad(x), kernel, strides, 'valid')` with respect to `x` (shape
 * `xShape`), as tfjs' gradients of the two ops compute it: into the padded input, then its
 * window. Straight into `x` where the backend's kernel for few channels takes explicit padding
 * (./../kernels/native/narrow-conv.ts: the same values, no padded copy).
 */
export function paddedConvInputGrad(
  dy: tf.Tensor4D,
  kernel: tf.Tensor4D,
  xShape: [number, number, number, number],
  strides: [number, number],
  padding: Padding,
): tf.Tensor4D {
  const [n, h, w, c] = xShape;
  if (narrowConvTakesExplicitPadding(c)) {
    return tf.conv2dTranspose(dy, kernel, xShape, strides, pads4(padding));
  }
  const [[top, bottom], [left, right]] = padding;
  const padded: typeof xShape = [n, h + top + bottom, w + left + right, c];
  const g = tf.conv2dTranspose(dy, kernel, padded, strides, 'valid');
  return tf.slice(g, [0, top, left, 0], xShape);
}

/**
 * `conv2d(pad(x), kernel, strides, 'valid')` as one convolution with explicit padding. With
 * `differentiable`, its gradient with respect to `x` only (the graph runner's passes are
 * differentiated with respect to the model input, never the weights).
 */
export function paddedConv(
  x: tf.Tensor4D,
  kernel: tf.Tensor4D,
  strides: [number, number],
  padding: Padding,
  differentiable: boolean,
): tf.Tensor4D {
  calls++;
  if (!differentiable) return tf.conv2d(x, kernel, strides, pads4(padding));
  const op = tf.customGrad((input: tf.Tensor | tf.GradSaveFunc) => {
    const xs = input as tf.Tensor4D;
    const shape = xs.shape as [number, number, number, number];
    return {
      value: tf.conv2d(xs, kernel, strides, pads4(padding)),
      gradFunc: (dy: tf.Tensor) =>
        paddedConvInputGrad(dy as tf.Tensor4D, kernel, shape, strides, padding),
    };
  });
  return op(x) as tf.Tensor4D;
}
