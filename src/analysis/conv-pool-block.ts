import * as tf from '@tensorflow/tfjs';
import {
  convPool,
  convPoolFits,
  convPoolGrad,
  convPoolGradFits,
  convPoolRoute,
} from '../kernels/native/conv-pool';
import { pair, readersOf } from './blocks';

/**
 * A Conv2D whose only reader is a max pooling (a LeNet-style block) as our one op
 * (src/kernels/native/conv-pool.ts): TensorFlow's values bit for bit, without the full-size
 * convolution output in memory. Forward passes take it as is; gradients through it take the
 * op's route of each pooled value and our input-gradient op, the same values as tfjs' gradients
 * of the separate ops.
 */

/** A layer call in a graph, as the graph runner and the shared prefix see it. */
export interface LayerNode {
  layer: tf.layers.Layer;
  inputs: { id: number }[];
  outputs: { id: number }[];
}

type Pair = [number, number];

/** The parts of tfjs-layers' Conv2D that the block reads. */
interface ConvLayer {
  kernel?: tf.LayerVariable;
  bias?: tf.LayerVariable | null;
  activation?: { getClassName(): string } | null;
}

/** The block's pooling and activation, or undefined for layers it does not cover. */
export interface BlockShape {
  poolSize: Pair;
  strides: Pair;
  relu: boolean;
}

function blockShape(conv: tf.layers.Layer, pool: tf.layers.Layer): BlockShape | undefined {
  const config = conv.getConfig();
  const own = conv as unknown as ConvLayer;
  const activation = own.activation?.getClassName() ?? 'linear';
  const poolConfig = pool.getConfig();
  const fits =
    conv.getClassName() === 'Conv2D' &&
    own.kernel !== undefined &&
    config.dataFormat === 'channelsLast' &&
    config.padding === 'valid' &&
    pair(config.strides).every((v) => v === 1) &&
    pair(config.dilationRate ?? 1).every((v) => v === 1) &&
    (activation === 'relu' || activation === 'linear') &&
    pool.getClassName() === 'MaxPooling2D' &&
    poolConfig.dataFormat === 'channelsLast' &&
    poolConfig.padding === 'valid';
  if (!fits) return undefined;
  const poolSize = pair(poolConfig.poolSize);
  return { poolSize, strides: pair(poolConfig.strides ?? poolSize), relu: activation === 'relu' };
}

/**
 * Conv2D nodes whose output only a max pooling reads (and that the block covers), each mapped
 * to that pooling node.
 */
export function convPoolPairs<N extends LayerNode>(nodes: N[], outputId: number): Map<N, N> {
  const readers = readersOf(nodes);
  const pairs = new Map<N, N>();
  for (const node of nodes) {
    const id = node.outputs[0]?.id;
    const next = readers.get(id);
    if (node.outputs.length !== 1 || id === outputId || next?.length !== 1) continue;
    if (blockShape(node.layer, next[0].layer)) pairs.set(node, next[0]);
  }
  return pairs;
}

/**
 * The block's pooling and activation where our ops take it, forward and backward, on inputs of
 * `input`'s shape (`[n, h, w, c]`); undefined otherwise.
 */
export function convPoolStepShape(
  conv: tf.layers.Layer,
  pool: tf.layers.Layer,
  input: number[],
): BlockShape | undefined {
  const shape = blockShape(conv, pool);
  const kernel = (conv as unknown as ConvLayer).kernel;
  if (!shape || !kernel) return undefined;
  const fits = convPoolFits({ ...shape, input, filter: kernel.shape as number[] });
  return fits && convPoolGradFits(shape.poolSize, shape.strides) ? shape : undefined;
}

/** The block's weights: `filters` `[sets, kh, kw, c, f]`, `biases` `[sets, f]` or null. */
export interface BlockWeights {
  filters: tf.Tensor;
  biases: tf.Tensor | null;
  /** Output groups (stacked variants on one input, laid out per variant); 1 otherwise. */
  groups: number;
}

/** One set of the layer's own weights, as {@link BlockWeights}. */
export function ownWeights(conv: tf.layers.Layer): BlockWeights {
  const own = conv as unknown as ConvLayer;
  const kernel = own.kernel as tf.LayerVariable;
  return {
    filters: tf.expandDims(kernel.read(), 0),
    biases: own.bias ? tf.expandDims(own.bias.read(), 0) : null,
    groups: 1,
  };
}

/**
 * The pooled output of `conv` then `pool` on `x` with `weights`; with `differentiable`, a
 * gradient with respect to `x` through our input-gradient op (one set of output groups only).
 * Undefined where the ops do not take this block (the caller runs the layers).
 */
export function convThenPool(
  conv: tf.layers.Layer,
  pool: tf.layers.Layer,
  x: tf.Tensor,
  weights: BlockWeights,
  differentiable: boolean,
): tf.Tensor | undefined {
  const shape = blockShape(conv, pool);
  if (!shape) return undefined;
  const filter = weights.filters.shape.slice(1);
  const f = filter[3] / weights.groups;
  const fits = convPoolFits({ ...shape, input: x.shape, filter: [...filter.slice(0, 3), f] });
  if (!fits) return undefined;
  const args = { ...shape, x, filters: weights.filters, biases: weights.biases };
  if (!differentiable) return convPool({ ...args, groups: weights.groups });
  if (weights.groups !== 1 || !convPoolGradFits(shape.poolSize, shape.strides)) return undefined;
  const [, h, w] = x.shape;
  const block = tf.customGrad(
    (input: tf.Tensor | tf.GradSaveFunc, save: tf.Tensor | tf.GradSaveFunc) => {
      const out = convPoolRoute({ ...args, x: input as tf.Tensor });
      if (!out) throw new Error('internal: the conv-pool op went away between calls');
      // Saved, so that they outlive the forward pass's scope until the gradient runs.
      (save as tf.GradSaveFunc)([out.route, weights.filters]);
      return {
        value: out.y,
        gradFunc: (dy: tf.Tensor, [route, filters]: tf.Tensor[]) =>
          convPoolGrad({ ...shape, dy, route, filters, inputSize: [h, w] }),
      };
    },
  );
  return block(x);
}
