import * as tf from '@tensorflow/tfjs';
import { reluGradient } from '../kernels/gradients/relu';

/** The activations {@link fusedConv2d} takes (those whose gradient follows from the output). */
export type FusedConvActivation = 'linear' | 'relu';

/**
 * The gradient of tfjs' `FusedConv2D` kernel when it is called directly under a tape (tfjs'
 * own `tf.fused.conv2d` wraps it in a custom gradient and, while recording, splits a ReLU off
 * into separate ops). `dz = dy · step(y)` (ReLU) or `dy` (linear) from the saved output `y`;
 * then tfjs' own `Conv2D` gradient, whose input and filter parts are computed only when asked
 * for (a first layer's input gradient is not), and the bias gradient `Σ dz` over all but the
 * channels.
 */
function fusedConv2DGradient(
  dy: tf.Tensor | tf.Tensor[],
  saved: tf.Tensor[],
  attrs: tf.NamedAttrMap,
): Record<string, () => tf.Tensor> {
  const [x, filter, y] = saved;
  const activation = attrs.activation as string;
  if (activation !== 'linear' && activation !== 'relu') {
    throw new Error(`no gradient for FusedConv2D with activation '${activation}'`);
  }
  const dyIn = dy as tf.Tensor;
  const dz = activation === 'relu' ? reluGradient(dyIn, y) : dyIn;
  const conv = tf.getGradient('Conv2D');
  if (conv === undefined) throw new Error('tfjs has no Conv2D gradient registered');
  const { x: dx, filter: dFilter } = conv.gradFunc(dz, [x, filter], attrs);
  return {
    x: dx,
    filter: dFilter,
    bias: () => tf.sum(dz, [0, 1, 2]),
  };
}

let registered = false;

/** Registers {@link fusedConv2DGradient} for `FusedConv2D` (process-wide; idempotent). */
export function registerFusedConvGradient(): void {
  if (registered && tf.getGradient('FusedConv2D') !== undefined) return;
  tf.registerGradient({
    kernelName: 'FusedConv2D',
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: fusedConv2DGradient,
  });
  registered = true;
}

/**
 * A 2-D convolution (NHWC, no dilation) with bias and activation in one kernel, also while
 * gradients are recorded: on every backend, `FusedConv2D` applies the bias and the ReLU as it
 * writes the output, where `tf.fused.conv2d` under a tape runs three ops (three passes over the
 * output in the forward pass). The gradient is {@link fusedConv2DGradient}'s.
 */
export function fusedConv2d(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  bias: tf.Tensor1D | null,
  strides: [number, number],
  pad: 'same' | 'valid',
  activation: FusedConvActivation,
): tf.Tensor4D {
  registerFusedConvGradient();
  const inputs: tf.NamedTensorMap = { x, filter };
  if (bias !== null) inputs.bias = bias;
  return tf.engine().runKernel('FusedConv2D', inputs, {
    strides,
    pad,
    dataFormat: 'NHWC',
    dilations: [1, 1],
    dimRoundingMode: undefined as unknown as string,
    activation,
    leakyreluAlpha: 0,
  }) as tf.Tensor4D;
}
