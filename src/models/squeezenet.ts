import * as tf from '@tensorflow/tfjs';
import {
  ArchitectureOptions,
  resolveArchitectureOptions,
  scaleChannels,
  TorchStyleBuilder,
} from './common';

/**
 * A fire module (Iandola et al. 2016): a 1×1 "squeeze" convolution, then 1×1 and 3×3 "expand"
 * convolutions side by side, each followed by ReLU, concatenated along the channels.
 */
function fire(
  b: TorchStyleBuilder,
  x: tf.SymbolicTensor,
  prefix: string,
  squeeze: number,
  expand: number,
): tf.SymbolicTensor {
  const init = 'kaimingUniform';
  let s = b.conv(x, { name: `${prefix}_squeeze`, filters: squeeze, kernel: 1, bias: true, init });
  s = b.relu(s, `${prefix}_squeeze_activation`);
  let e1 = b.conv(s, { name: `${prefix}_expand1x1`, filters: expand, kernel: 1, bias: true, init });
  e1 = b.relu(e1, `${prefix}_expand1x1_activation`);
  let e3 = b.conv(s, {
    name: `${prefix}_expand3x3`,
    filters: expand,
    kernel: 3,
    padding: 1,
    bias: true,
    init,
  });
  e3 = b.relu(e3, `${prefix}_expand3x3_activation`);
  return tf.layers
    .concatenate({ name: `${prefix}_concat`, axis: -1 })
    .apply([e1, e3]) as tf.SymbolicTensor;
}

/**
 * SqueezeNet 1.1 as torchvision defines it: a 3×3/2 stem convolution (64 channels, with bias),
 * ceil-mode 3×3/2 max pooling (torch's output sizes reproduced), eight fire modules, and the
 * convolutional classifier: dropout 0.5, a 1×1 convolution to `classes` channels
 * (`classifier_1`), ReLU and global average pooling, then a `softmax` layer. Layer names follow
 * torchvision's module paths (`features_3_squeeze`). With `inputShape [224, 224, 3]`, 1,000
 * classes and width 1 it has torchvision's 1,235,496 parameters.
 *
 * As in torchvision, the classifier ends in ReLU, so the values before `softmax` are non-negative
 * averages rather than unconstrained logits.
 */
export function squeezenet1_1(options: ArchitectureOptions = {}): tf.LayersModel {
  const name = 'squeezenet1_1';
  const resolved = resolveArchitectureOptions(name, options);
  const b = new TorchStyleBuilder(name, resolved);
  const width = (c: number) => scaleChannels(c, resolved.width);
  const input = tf.input({ shape: resolved.inputShape, name: 'input' });
  let x = b.conv(input, {
    name: 'features_0',
    filters: width(64),
    kernel: 3,
    stride: 2,
    bias: true,
    init: 'kaimingUniform',
  });
  x = b.relu(x, 'features_1');
  const pool = (y: tf.SymbolicTensor, index: number) =>
    b.maxPool(y, { name: `features_${index}`, pool: 3, stride: 2, ceilMode: true });
  x = pool(x, 2);
  x = fire(b, x, 'features_3', width(16), width(64));
  x = fire(b, x, 'features_4', width(16), width(64));
  x = pool(x, 5);
  x = fire(b, x, 'features_6', width(32), width(128));
  x = fire(b, x, 'features_7', width(32), width(128));
  x = pool(x, 8);
  x = fire(b, x, 'features_9', width(48), width(192));
  x = fire(b, x, 'features_10', width(48), width(192));
  x = fire(b, x, 'features_11', width(64), width(256));
  x = fire(b, x, 'features_12', width(64), width(256));
  x = tf.layers.dropout({ rate: 0.5, name: 'classifier_0' }).apply(x) as tf.SymbolicTensor;
  x = b.conv(x, {
    name: 'classifier_1',
    filters: resolved.classes,
    kernel: 1,
    bias: true,
    init: { normal: 0.01 },
  });
  x = b.relu(x, 'classifier_2');
  x = b.globalAveragePool(x, 'classifier_3');
  return tf.model({ name, inputs: input, outputs: b.softmax(x) });
}
