import * as tf from '@tensorflow/tfjs';

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
 * tfjs-layers' `Conv2D` that, without bias or activation, runs `tf.conv2d` rather than the fused
 * convolution tfjs-layers always calls. Same kernel and values (the fused op without bias or
 * activation is the same native `Conv2D`), but `tf.conv2d`'s gradient computes the input and
 * filter gradients only when asked, where the fused op's custom gradient computes both: the
 * first layer's input gradient (a full-resolution `Conv2DBackpropInput` nobody reads) is no
 * longer computed in training. Its class name stays `Conv2D`, so saved models load as the
 * standard layer.
 */
export class LazyGradConv2D extends Conv2DBase {
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor {
    const f = this as unknown as Conv2DFields;
    const plain =
      f.rank === 2 &&
      f.bias === null &&
      f.activation.getClassName() === 'linear' &&
      f.dataFormat === 'channelsLast' &&
      f.dilationRate.every((d) => d === 1) &&
      (f.padding === 'same' || f.padding === 'valid');
    if (!plain) return super.call(inputs, kwargs) as tf.Tensor;
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      return tf.conv2d(x, f.kernel.read() as tf.Tensor4D, f.strides, f.padding as 'same' | 'valid');
    });
  }
}
