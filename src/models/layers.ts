import * as tf from '@tensorflow/tfjs';

/** Options of the {@link ChannelShuffle} and {@link ChannelSplit} layers. */
export interface ChannelGroupsArgs {
  /** Number of channel groups; default 2. The channel count must be divisible by it. */
  groups?: number;
  /** Layer name (tfjs-legal: letters, digits, `_`, `-`, `.`, `/`). */
  name?: string;
  /** Whether the layer's weights train (these layers have none); default true. */
  trainable?: boolean;
}

function checkGroups(layer: string, groups: number): number {
  if (!Number.isInteger(groups) || groups < 1) {
    throw new Error(`${layer}: 'groups' must be a positive integer; got ${groups}`);
  }
  return groups;
}

function channelsOf(layer: string, inputShape: tf.Shape | tf.Shape[], groups: number): number {
  if (Array.isArray(inputShape[0])) {
    throw new Error(`${layer} takes exactly one input; got ${inputShape.length}`);
  }
  const shape = inputShape as tf.Shape;
  if (shape.length !== 4) {
    throw new Error(
      `${layer} expects a 4-D input [batch, height, width, channels]; got [${shape}]`,
    );
  }
  const channels = shape[3];
  if (channels === null || channels % groups !== 0) {
    throw new Error(`${layer}: ${channels} channels cannot be divided into ${groups} equal groups`);
  }
  return channels;
}

/** The shapes of `groups` equal parts, checked, and the shape of their concatenation. */
function partsShape(layer: string, inputShape: tf.Shape[], groups: number): tf.Shape {
  if (inputShape.length !== groups) {
    throw new Error(
      `${layer} takes one input or ${groups} parts (one per group); got ${inputShape.length}`,
    );
  }
  const [first] = inputShape;
  if (first.length !== 4 || inputShape.some((s) => JSON.stringify(s) !== JSON.stringify(first))) {
    throw new Error(
      `${layer}: the ${groups} parts must be 4-D [batch, height, width, channels] of one shape; got ${JSON.stringify(inputShape)}`,
    );
  }
  return [first[0], first[1], first[2], (first[3] as number) * groups];
}

/**
 * ShuffleNet's channel shuffle (Zhang et al. 2018): views the channels as a `groups × (C/groups)`
 * matrix, transposes it and flattens it back, so that the next grouped operation mixes
 * information from every group. NHWC layout; no weights. Registered for serialisation.
 *
 * Given a list of `groups` equal parts instead of one tensor, it shuffles their concatenation
 * (torchvision's `channel_shuffle(torch.cat(parts, 1), groups)`) in one step: the result
 * interleaves the parts' channels (`stack` on a new last axis, then a reshape), one copy instead
 * of the concatenation's and the transpose's, in the forward and the backward pass.
 */
export class ChannelShuffle extends tf.layers.Layer {
  /** @nocollapse */
  static className = 'ChannelShuffle';
  readonly groups: number;

  constructor(args: ChannelGroupsArgs = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.groups = checkGroups('ChannelShuffle', args.groups ?? 2);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    if (Array.isArray(inputShape[0])) {
      return partsShape('ChannelShuffle', inputShape as tf.Shape[], this.groups);
    }
    channelsOf('ChannelShuffle', inputShape, this.groups);
    return inputShape as tf.Shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      if (Array.isArray(inputs) && inputs.length > 1) {
        const [batch, height, width, channels] = inputs[0].shape;
        return tf.reshape(tf.stack(inputs, 4), [batch, height, width, channels * inputs.length]);
      }
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      const [, height, width, channels] = x.shape;
      const perGroup = channels / this.groups;
      return x
        .reshape([-1, height, width, this.groups, perGroup])
        .transpose([0, 1, 2, 4, 3])
        .reshape([-1, height, width, channels]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}

/**
 * Splits the channels into `groups` equal consecutive parts (torch's `x.chunk(groups, dim=1)`),
 * one output per part. NHWC layout; no weights. Registered for serialisation.
 */
export class ChannelSplit extends tf.layers.Layer {
  /** @nocollapse */
  static className = 'ChannelSplit';
  readonly groups: number;

  constructor(args: ChannelGroupsArgs = {}) {
    super({ name: args.name, trainable: args.trainable });
    this.groups = checkGroups('ChannelSplit', args.groups ?? 2);
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape[] {
    const channels = channelsOf('ChannelSplit', inputShape, this.groups);
    const shape = inputShape as tf.Shape;
    const part: tf.Shape = [shape[0], shape[1], shape[2], channels / this.groups];
    return Array.from({ length: this.groups }, () => [...part]);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor[] {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      return tf.split(x, this.groups, 3);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), groups: this.groups };
  }
}

tf.serialization.registerClass(ChannelShuffle);
tf.serialization.registerClass(ChannelSplit);

/** Builds a {@link ChannelShuffle} layer. */
export function channelShuffle(args: ChannelGroupsArgs = {}): ChannelShuffle {
  return new ChannelShuffle(args);
}

/** Builds a {@link ChannelSplit} layer. */
export function channelSplit(args: ChannelGroupsArgs = {}): ChannelSplit {
  return new ChannelSplit(args);
}
