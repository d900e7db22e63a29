import * as tf from '@tensorflow/tfjs';
import { fusedConv2d, type FusedConvActivation } from './fused-conv';

type Conv2DArgs = Parameters<typeof tf.layers.conv2d>[0];
type Conv2DLayer = ReturnType<typeof tf.layers.conv2d>;

/** The fields of tfjs-layers' `Conv2D` this layer reads (private in its typings). */
interface Conv2DFields {
  kernel: tf.LayerVariable;
  bias: tf.LayerVariable | null;
  activation: { getClassName(): string };
  strides: [number, number];
  padding: string;
  dataFormat: string;
  dilationRate: [number, number];
  rank: number;
}

/** tfjs-layers' `Conv2D` class (not exported by name; taken from an instance). */
const Conv2DBase = Object.getPrototypeOf(tf.layers.conv2d({ filters: 1, kernelSize: 1 }))
  .constructor as new (args: Conv2DArgs) => Conv2DLayer;

/**
 * tfjs-layers' `Conv2D` that trains with fewer passes over memory. Without bias or activation it
 * runs `tf.conv2d` rather than the fused convolution tfjs-layers always calls: the same kernel
 * and values, but `tf.conv2d`'s gradient computes the input and filter gradients only when asked,
 * where the fused op's custom gradient computes both, so a first layer's input gradient (a
 * full-resolution `Conv2DBackpropInput` nobody reads) is not computed. With a bias and a linear
 * or ReLU activation it runs {@link fusedConv2d}: one `FusedConv2D` kernel also while training,
 * where tfjs-layers' convolution then runs a convolution, a bias addition and a ReLU (the same
 * values up to float32 rounding: the bias joins the sum first), with the same lazy gradients.
 * Its class name stays `Conv2D`, so saved models load as the standard layer.
 */
export class LazyGradConv2D extends Conv2DBase {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const f = this as unknown as Conv2DFields;
    const activation = f.activation.getClassName().toLowerCase();
    const plain =
      f.rank === 2 &&
      (activation === 'linear' || activation === 'relu') &&
      f.dataFormat === 'channelsLast' &&
      f.dilationRate.every((d) => d === 1) &&
      (f.padding === 'same' || f.padding === 'valid');
    if (!plain) return super.call(inputs, kwargs) as tf.Tensor;
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const kernel = f.kernel.read() as tf.Tensor4D;
      const padding = f.padding as 'same' | 'valid';
      if (f.bias === null && activation === 'linear') {
        return tf.conv2d(x, kernel, f.strides, padding);
      }
      const bias = f.bias === null ? null : (f.bias.read() as tf.Tensor1D);
      return fusedConv2d(x, kernel, bias, f.strides, padding, activation as FusedConvActivation);
    });
  }
}
