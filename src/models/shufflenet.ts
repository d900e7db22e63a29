import * as tf from '@tensorflow/tfjs';
import {
  ArchitectureOptions,
  resolveArchitectureOptions,
  scaleChannels,
  TorchStyleBuilder,
} from './common';
import { ChannelShuffle, ChannelSplit } from './layers';

/** Blocks per stage (stage2 … stage4) and channels (stem, stages, conv5) of ShuffleNet V2 x1.0. */
const REPEATS = [4, 8, 4];
const CHANNELS = [24, 116, 232, 464, 1024];

/**
 * ShuffleNet V2's building unit (torchvision's `InvertedResidual`). With stride 1 the input's
 * channels are split in two halves, one passes through, the other goes through branch 2
 * (1×1 conv, 3×3 depthwise conv, 1×1 conv); with stride 2 both branches take the whole input
 * (branch 1: 3×3 depthwise/2, 1×1 conv). The halves are concatenated and channel-shuffled (one
 * {@link ChannelShuffle} layer given both halves).
 */
function invertedResidual(
  b: TorchStyleBuilder,
  x: tf.SymbolicTensor,
  prefix: string,
  outChannels: number,
  stride: number,
): tf.SymbolicTensor {
  const init = 'torchDefault';
  const half = outChannels / 2;
  let passThrough: tf.SymbolicTensor;
  let branchInput: tf.SymbolicTensor;
  if (stride === 1) {
    const parts = new ChannelSplit({ name: `${prefix}_split`, groups: 2 }).apply(
      x,
    ) as tf.SymbolicTensor[];
    [passThrough, branchInput] = parts;
  } else {
    let y = b.depthwise(x, { name: `${prefix}_branch1_0`, kernel: 3, stride, padding: 1, init });
    y = b.bn(y, `${prefix}_branch1_1`);
    y = b.conv(y, { name: `${prefix}_branch1_2`, filters: half, kernel: 1, init });
    y = b.relu(b.bn(y, `${prefix}_branch1_3`), `${prefix}_branch1_4`);
    passThrough = y;
    branchInput = x;
  }
  let y = b.conv(branchInput, { name: `${prefix}_branch2_0`, filters: half, kernel: 1, init });
  y = b.relu(b.bn(y, `${prefix}_branch2_1`), `${prefix}_branch2_2`);
  y = b.depthwise(y, { name: `${prefix}_branch2_3`, kernel: 3, stride, padding: 1, init });
  y = b.bn(y, `${prefix}_branch2_4`);
  y = b.conv(y, { name: `${prefix}_branch2_5`, filters: half, kernel: 1, init });
  y = b.relu(b.bn(y, `${prefix}_branch2_6`), `${prefix}_branch2_7`);
  // Concatenation and shuffle in one layer (the shuffle of the two halves' concatenation).
  return new ChannelShuffle({ name: `${prefix}_shuffle`, groups: 2 }).apply([
    passThrough,
    y,
  ]) as tf.SymbolicTensor;
}

/**
 * ShuffleNet V2 x1.0 (Ma et al. 2018) as torchvision defines it: a 3×3/2 stem convolution
 * (24 channels) with BatchNorm and ReLU, 3×3/2 max pooling, stages of 4, 8, 4 units
 * (116, 232, 464 channels) built from channel split, depthwise convolutions, concatenation and
 * channel shuffle (custom layers {@link ChannelSplit} and {@link ChannelShuffle}, registered for
 * serialisation), a 1×1 convolution to 1,024 channels (`conv5_0`), global average pooling, `fc`
 * (logits) and `softmax`. Weights start as torch's defaults. With `inputShape [224, 224, 3]`,
 * 1,000 classes and width 1 it has torchvision's 2,278,604 trainable parameters. With `width`,
 * stage widths are scaled and kept even (the split needs two equal halves).
 */
export function shufflenetV2x1_0(options: ArchitectureOptions = {}): tf.LayersModel {
  const name = 'shufflenet_v2_x1_0';
  const resolved = resolveArchitectureOptions(name, options);
  const b = new TorchStyleBuilder(name, resolved);
  const even = (c: number) => 2 * scaleChannels(c / 2, resolved.width);
  const init = 'torchDefault';
  const input = tf.input({ shape: resolved.inputShape, name: 'input' });
  let x = b.conv(input, {
    name: 'conv1_0',
    filters: scaleChannels(CHANNELS[0], resolved.width),
    kernel: 3,
    stride: 2,
    padding: 1,
    init,
  });
  x = b.relu(b.bn(x, 'conv1_1'), 'conv1_2');
  x = b.maxPool(x, { name: 'maxpool', pool: 3, stride: 2, padding: 1 });
  REPEATS.forEach((repeats, s) => {
    const out = even(CHANNELS[s + 1]);
    for (let i = 0; i < repeats; i++) {
      x = invertedResidual(b, x, `stage${s + 2}_${i}`, out, i === 0 ? 2 : 1);
    }
  });
  x = b.conv(x, {
    name: 'conv5_0',
    filters: scaleChannels(CHANNELS[4], resolved.width),
    kernel: 1,
    init,
  });
  x = b.relu(b.bn(x, 'conv5_1'), 'conv5_2');
  x = b.globalAveragePool(x, 'avgpool');
  const logits = b.dense(x, 'fc', resolved.classes);
  return tf.model({ name, inputs: input, outputs: b.softmax(logits) });
}
