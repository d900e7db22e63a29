import * as tf from '@tensorflow/tfjs';
import {
  batchNormAddRelu,
  batchNormFusable,
  type BatchNormInputs,
} from '../kernels/native/batch-norm';
import { batchNormReluPool } from '../kernels/native/batch-norm-pool';
import { isPlainRelu, pair, readersOf, sameInputShapes } from './blocks';
import type { LayerNode } from './conv-pool-block';

/**
 * A BatchNormalization whose output only a ReLU reads, directly or through an Add (a ResNet
 * block's `relu(bn(conv(x)) + shortcut)`), as our one op (src/kernels/native/batch-norm.ts):
 * TensorFlow's values bit for bit, one pass over memory instead of three.
 */

/** The nodes after a batch norm that its op computes with it. */
export interface BatchNormBlock<N extends LayerNode> {
  /** The Add between the batch norm and the ReLU, if any (its other input is the side). */
  add?: N;
  relu: N;
}

/** The fields of tfjs-layers' BatchNormalization that inference reads (private in its typings). */
interface BatchNormFields {
  axis: number;
  epsilon: number;
  movingMean?: tf.LayerVariable;
  movingVariance?: tf.LayerVariable;
  gamma?: tf.LayerVariable | null;
  beta?: tf.LayerVariable | null;
}

/** Whether inference runs the layer as `tf.batchNorm` over the last axis of `rank`. */
function lastAxisBatchNorm(layer: tf.layers.Layer, rank: number): boolean {
  const own = layer as unknown as BatchNormFields;
  return (
    layer.getClassName() === 'BatchNormalization' &&
    own.movingMean !== undefined &&
    own.movingVariance !== undefined &&
    (own.axis === -1 || own.axis === rank - 1) &&
    rank >= 2 &&
    rank <= 4
  );
}

/** The node's only reader, or undefined. */
function onlyReader<N extends LayerNode>(readers: Map<number, N[]>, node: N): N | undefined {
  const next = readers.get(node.outputs[0].id);
  return node.outputs.length === 1 && next?.length === 1 ? next[0] : undefined;
}

/**
 * The batch norms of `nodes` (a model's graph in order) that our op can compute with the ReLU
 * after them, keyed by the batch norm's node. `outputId`: the model output (never fused away).
 */
export function batchNormBlocks<N extends LayerNode>(
  nodes: N[],
  outputId: number,
): Map<N, BatchNormBlock<N>> {
  const readers = readersOf(nodes);
  const blocks = new Map<N, BatchNormBlock<N>>();
  for (const node of nodes) {
    const input = node.inputs[0] as tf.SymbolicTensor | undefined;
    if (!input || node.inputs.length !== 1 || !lastAxisBatchNorm(node.layer, input.rank)) continue;
    const next = onlyReader(readers, node);
    if (!next || node.outputs[0].id === outputId) continue;
    if (isPlainRelu(next.layer)) {
      blocks.set(node, { relu: next });
      continue;
    }
    if (next.layer.getClassName() !== 'Add' || next.inputs.length !== 2 || !sameInputShapes(next)) {
      continue;
    }
    const relu = onlyReader(readers, next);
    if (relu && isPlainRelu(relu.layer) && next.outputs[0].id !== outputId) {
      blocks.set(node, { add: next, relu });
    }
  }
  return blocks;
}

/** Whether the op takes this batch norm's channel count (see batchNormFusable). */
export function batchNormBlockFits(node: LayerNode): boolean {
  const input = node.inputs[0] as tf.SymbolicTensor;
  return batchNormFusable(input.shape[input.rank - 1] as number);
}

/** The layer's inference weights with input `x`, as the ops take them. */
function inferenceInputs(layer: tf.layers.Layer, x: tf.Tensor): BatchNormInputs {
  const own = layer as unknown as Required<BatchNormFields>;
  return {
    x,
    mean: own.movingMean.read(),
    variance: own.movingVariance.read(),
    scale: own.gamma ? own.gamma.read() : undefined,
    offset: own.beta ? own.beta.read() : undefined,
    varianceEpsilon: own.epsilon,
  };
}

/** `relu(batchNorm(x) + side)` with the layer's inference weights; undefined where the op does not run. */
export function applyBatchNormBlock(
  layer: tf.layers.Layer,
  x: tf.Tensor,
  side: tf.Tensor | undefined,
): tf.Tensor | undefined {
  return batchNormAddRelu({
    ...inferenceInputs(layer, x),
    side,
    relu: true,
  });
}

/** A batch norm's ReLU, then a zero padding and a `valid` max pooling that alone read it. */
export interface NormPoolChain<N extends LayerNode> {
  relu: N;
  pad: N;
  pool: N;
}

/**
 * The batch norms of `blocks` (see {@link batchNormBlocks}) whose ReLU only a ZeroPadding2D
 * reads, and that only a `valid` MaxPooling2D (a network's stem: ResNet's, ShuffleNet's), keyed
 * by the batch norm's node: forward passes compute the four layers as one op.
 */
export function normPoolChains<N extends LayerNode>(
  nodes: N[],
  blocks: Map<N, BatchNormBlock<N>>,
  outputId: number,
): Map<N, NormPoolChain<N>> {
  const readers = readersOf(nodes);
  const chains = new Map<N, NormPoolChain<N>>();
  for (const [norm, block] of blocks) {
    if (block.add || block.relu.outputs[0].id === outputId) continue;
    const pad = onlyReader(readers, block.relu);
    const pool = pad && onlyReader(readers, pad);
    if (!pad || !pool || pad.outputs[0].id === outputId) continue;
    const padConfig = pad.layer.getConfig();
    const poolConfig = pool.layer.getConfig();
    const fits =
      pad.layer.getClassName() === 'ZeroPadding2D' &&
      padConfig.dataFormat === 'channelsLast' &&
      pool.layer.getClassName() === 'MaxPooling2D' &&
      poolConfig.dataFormat === 'channelsLast' &&
      poolConfig.padding === 'valid';
    if (fits) chains.set(norm, { relu: block.relu, pad, pool });
  }
  return chains;
}

/**
 * `maxPool(pad(relu(batchNorm(x))))` with the layers' inference weights, as one op (forward
 * only); undefined where the op does not run.
 */
export function applyNormPool<N extends LayerNode>(
  norm: tf.layers.Layer,
  chain: NormPoolChain<N>,
  x: tf.Tensor,
): tf.Tensor | undefined {
  const pool = chain.pool.layer.getConfig();
  const poolSize = pair(pool.poolSize);
  return batchNormReluPool({
    ...inferenceInputs(norm, x),
    padding: chain.pad.layer.getConfig().padding as [[number, number], [number, number]],
    poolSize,
    strides: pair(pool.strides ?? poolSize),
  });
}
