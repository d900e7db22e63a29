import * as tf from '@tensorflow/tfjs';
import { ArchitectureOptions } from './common';
import { resnet18, resnet50 } from './resnet';
import { shufflenetV2x1_0 } from './shufflenet';
import { smallCnn } from './small-cnn';
import { squeezenet1_1 } from './squeezenet';

export type { ArchitectureOptions, ResolvedArchitectureOptions } from './common';
export { NativeBatchNormalization } from './batch-norm';
export { LazyGradConv2D } from './conv';
export { torchOutputSize } from './common';
export type { ChannelGroupsArgs } from './layers';
export { ChannelShuffle, ChannelSplit, channelShuffle, channelSplit } from './layers';
export { resnet18, resnet50 } from './resnet';
export { shufflenetV2x1_0 } from './shufflenet';
export type { SmallCnnOptions } from './small-cnn';
export { smallCnn } from './small-cnn';
export { squeezenet1_1 } from './squeezenet';

/** Names accepted by {@link buildModel}: the paper's four systems (torchvision names) and our small CNN. */
export const MODEL_NAMES = [
  'resnet18',
  'resnet50',
  'squeezenet1_1',
  'shufflenet_v2_x1_0',
  'small_cnn',
] as const;

/** One of {@link MODEL_NAMES}. */
export type ModelName = (typeof MODEL_NAMES)[number];

/**
 * Builds a model by name: `resnet18`, `resnet50`, `squeezenet1_1`, `shufflenet_v2_x1_0` (the
 * paper's architectures, as torchvision defines them) or `small_cnn` (our quick CNN, which has
 * no `width` option). Options as {@link ArchitectureOptions}: `inputShape` (default
 * `[28, 28, 1]`), `classes` (default 10), `width` (default 1), `seed` (default 0). Every model
 * ends in a `softmax` layer; the layer before it gives the logits.
 */
export function buildModel(name: ModelName, options: ArchitectureOptions = {}): tf.LayersModel {
  switch (name) {
    case 'resnet18':
      return resnet18(options);
    case 'resnet50':
      return resnet50(options);
    case 'squeezenet1_1':
      return squeezenet1_1(options);
    case 'shufflenet_v2_x1_0':
      return shufflenetV2x1_0(options);
    case 'small_cnn': {
      if (options.width !== undefined && options.width !== 1) {
        throw new Error(`buildModel('small_cnn'): 'width' is not supported; got ${options.width}`);
      }
      return smallCnn({
        inputShape: options.inputShape,
        classes: options.classes,
        seed: options.seed,
      });
    }
    default:
      throw new Error(
        `buildModel: unknown model '${String(name)}'; use one of ${MODEL_NAMES.join(', ')}`,
      );
  }
}
