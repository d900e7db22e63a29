import * as tf from '@tensorflow/tfjs';
import { batchNormAddRelu, batchNormFusable } from '../kernels/native/batch-norm';
import { isPlainRelu, readersOf, sameInputShapes } from './blocks';
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

/** `relu(batchNorm(x) + side)` with the layer's inference weights; undefined where the op does not run. */
export function applyBatchNormBlock(
  layer: tf.layers.Layer,
  x: tf.Tensor,
  side: tf.Tensor | undefined,
): tf.Tensor | undefined {
  const own = layer as unknown as Required<BatchNormFields>;
  return batchNormAddRelu({
    x,
    mean: own.movingMean.read(),
    variance: own.movingVariance.read(),
    scale: own.gamma ? own.gamma.read() : undefined,
    offset: own.beta ? own.beta.read() : undefined,
    varianceEpsilon: own.epsilon,
    side,
    relu: true,
  });
}
