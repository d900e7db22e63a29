import * as tf from '@tensorflow/tfjs';
import {
  ArchitectureOptions,
  resolveArchitectureOptions,
  scaleChannels,
  TorchStyleBuilder,
} from './common';

type BlockKind = 'basic' | 'bottleneck';

interface ResNetSpec {
  name: string;
  block: BlockKind;
  /** Blocks per stage (layer1 … layer4). */
  layers: [number, number, number, number];
}

/** Output channels of a block relative to its `planes` (torchvision's `expansion`). */
const EXPANSION: Record<BlockKind, number> = { basic: 1, bottleneck: 4 };

/**
 * One residual block, named as torchvision's module path with `_` for `.`
 * (`layer2_0_conv1`, `layer2_0_downsample_0`, …).
 */
function block(
  b: TorchStyleBuilder,
  x: tf.SymbolicTensor,
  kind: BlockKind,
  prefix: string,
  planes: number,
  stride: number,
): tf.SymbolicTensor {
  const init = 'kaimingNormalFanOut';
  const inChannels = x.shape[3] as number;
  const outChannels = planes * EXPANSION[kind];
  let y: tf.SymbolicTensor;
  if (kind === 'basic') {
    y = b.conv(x, {
      name: `${prefix}_conv1`,
      filters: planes,
      kernel: 3,
      stride,
      padding: 1,
      init,
    });
    y = b.relu(b.bn(y, `${prefix}_bn1`), `${prefix}_relu1`);
    y = b.conv(y, { name: `${prefix}_conv2`, filters: planes, kernel: 3, padding: 1, init });
    y = b.bn(y, `${prefix}_bn2`);
  } else {
    // ResNet V1.5 (torchvision): the stride sits in the 3×3 convolution.
    y = b.conv(x, { name: `${prefix}_conv1`, filters: planes, kernel: 1, init });
    y = b.relu(b.bn(y, `${prefix}_bn1`), `${prefix}_relu1`);
    y = b.conv(y, {
      name: `${prefix}_conv2`,
      filters: planes,
      kernel: 3,
      stride,
      padding: 1,
      init,
    });
    y = b.relu(b.bn(y, `${prefix}_bn2`), `${prefix}_relu2`);
    y = b.conv(y, { name: `${prefix}_conv3`, filters: outChannels, kernel: 1, init });
    y = b.bn(y, `${prefix}_bn3`);
  }
  let shortcut = x;
  if (stride !== 1 || inChannels !== outChannels) {
    shortcut = b.conv(x, {
      name: `${prefix}_downsample_0`,
      filters: outChannels,
      kernel: 1,
      stride,
      init,
    });
    shortcut = b.bn(shortcut, `${prefix}_downsample_1`);
  }
  const sum = tf.layers.add({ name: `${prefix}_add` }).apply([y, shortcut]) as tf.SymbolicTensor;
  return b.relu(sum, `${prefix}_relu`);
}

function resnet(spec: ResNetSpec, options: ArchitectureOptions): tf.LayersModel {
  const resolved = resolveArchitectureOptions(spec.name, options);
  const b = new TorchStyleBuilder(spec.name, resolved);
  const width = (c: number) => scaleChannels(c, resolved.width);
  const input = tf.input({ shape: resolved.inputShape, name: 'input' });
  let x = b.conv(input, {
    name: 'conv1',
    filters: width(64),
    kernel: 7,
    stride: 2,
    padding: 3,
    init: 'kaimingNormalFanOut',
  });
  x = b.relu(b.bn(x, 'bn1'), 'relu');
  x = b.maxPool(x, { name: 'maxpool', pool: 3, stride: 2, padding: 1 });
  spec.layers.forEach((blocks, stage) => {
    const planes = width(64 * 2 ** stage);
    for (let i = 0; i < blocks; i++) {
      const stride = i === 0 && stage > 0 ? 2 : 1;
      x = block(b, x, spec.block, `layer${stage + 1}_${i}`, planes, stride);
    }
  });
  x = b.globalAveragePool(x, 'avgpool');
  const logits = b.dense(x, 'fc', resolved.classes);
  return tf.model({ name: spec.name, inputs: input, outputs: b.softmax(logits) });
}

/**
 * ResNet-18 (He et al. 2016) as torchvision defines it: 7×7/2 stem convolution and 3×3/2 max
 * pooling, four stages of two basic blocks (64, 128, 256, 512 channels × `width`), global
 * average pooling, a linear layer `fc` (logits) and a `softmax` layer. Convolutions have no bias
 * and are followed by BatchNorm; weights start as torchvision's (Kaiming normal, fan-out).
 * With `inputShape [224, 224, 3]`, 1,000 classes and width 1 it has torchvision's 11,689,512
 * trainable parameters. Layer names follow torchvision's module paths (`layer1_0_conv1`).
 */
export function resnet18(options: ArchitectureOptions = {}): tf.LayersModel {
  return resnet({ name: 'resnet18', block: 'basic', layers: [2, 2, 2, 2] }, options);
}

/**
 * ResNet-50 as torchvision defines it (V1.5: stride in the bottleneck's 3×3 convolution):
 * torchvision's stem, stages of 3, 4, 6, 3 bottleneck blocks (1×1, 3×3, 1×1, expansion 4),
 * global average pooling, `fc` and `softmax`. With `inputShape [224, 224, 3]`, 1,000 classes and
 * width 1 it has torchvision's 25,557,032 trainable parameters.
 */
export function resnet50(options: ArchitectureOptions = {}): tf.LayersModel {
  return resnet({ name: 'resnet50', block: 'bottleneck', layers: [3, 4, 6, 3] }, options);
}
